"""The pretrained models a config needs: found before generation, converted for CTranslate2 once.

`check_available(config, feature_cache_dir)` resolves every translation model the config's text
noise would load and every deep-feature model its diversity sampling or label noise would load
(local folder, or the Hugging Face cache / Hub as `transformers` resolves it, honouring
HF_HUB_OFFLINE) and raises one `ModelNotAvailableError` naming, for each missing model, the noise
or field, the model id and what to do. The builder calls it before reading any source, so an
offline run without the models fails at once instead of minutes (or hours of extraction) in. A
feature model that cannot be resolved but already has rows in the feature cache passes: the
build may need none of its rows again (if it does, loading it fails naming the model).

`converted_model(model_id)` is the CTranslate2 copy of a `transformers` checkpoint, converted on
first use and kept under `<datasets cache>/luma_ctranslate2/<model id>--<revision>/`: the revision
is the Hub commit of the cached snapshot, or for a local folder a fingerprint of its files' names,
sizes and modification times. The conversion is written to a temporary folder beside it and renamed
into place, so an interrupted conversion never leaves a half-written model behind.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .features import default_cache_dir

# Files a checkpoint needs besides config.json: one of these weight files.
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


class ModelNotAvailableError(OSError):
    """A model the config needs can be neither found locally nor downloaded."""


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def model_dir(model_id: str, revision: str | None = None) -> Path:
    """The folder holding `model_id`'s config.json: the local folder itself, or its snapshot (at
    `revision`) in the Hugging Face cache (downloading config.json unless offline). OSError when
    neither works."""
    if os.path.isdir(model_id):
        if not os.path.isfile(os.path.join(model_id, "config.json")):
            raise FileNotFoundError(f"{model_id} is a folder without config.json")
        return Path(model_id)
    from transformers.utils import cached_file

    config = cached_file(model_id, "config.json", revision=revision)
    if _offline():  # config.json alone is not a model: the weights must be cached too
        from huggingface_hub import try_to_load_from_cache

        if not any(isinstance(try_to_load_from_cache(model_id, name, revision=revision), str) for name in _WEIGHTS):
            raise FileNotFoundError(f"{model_id}: config.json is cached but no weights ({', '.join(_WEIGHTS[:2])})")
    return Path(config).parent


def _revision(folder: Path) -> str:
    """The Hub commit of a cached snapshot, else a fingerprint of the folder's files."""
    if folder.parent.name == "snapshots":
        return folder.name
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "local-" + digest.hexdigest()[:16]


def conversion_cache_dir() -> Path:
    """`<datasets cache>/luma_ctranslate2` (the datasets cache as `features.default_cache_dir`)."""
    return default_cache_dir().parent / "luma_ctranslate2"


def converted_model(model_id: str, cache_dir: Path | None = None) -> Path:
    """The CTranslate2 model folder for `transformers` checkpoint `model_id` (float32 weights;
    the compute type is chosen when loading), converted on first use (a few seconds for
    opus-mt) into `cache_dir` (default `conversion_cache_dir()`)."""
    source, local = model_dir(model_id), os.path.isdir(model_id)
    revision = _revision(source)
    name = "local--" + source.resolve().name if local else model_id.strip("/").replace("/", "--")
    target = Path(cache_dir or conversion_cache_dir()) / f"{name}--{revision}"
    if (target / "model.bin").is_file():
        return target
    import ctranslate2

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # a Hub model by id and commit: `from_pretrained` fetches weights not cached yet
        converter = (ctranslate2.converters.TransformersConverter(str(source)) if local else
                     ctranslate2.converters.TransformersConverter(model_id, revision=revision))
        converter.convert(str(partial), force=True)
        os.rename(partial, target)
    except OSError:
        if not (target / "model.bin").is_file():  # not just another process winning the race
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def needed_models(config) -> list[tuple[str, str, str]]:
    """(noise, parameter, model id) of every model the config's sample noise would load."""
    if not config.text_noise_ratio or "BackTranslationNoise" not in config.text_noises:
        return []
    from .text import TextNoise

    params = TextNoise(config.text_noises, config.text_noise_params).params["BackTranslationNoise"]
    return [("BackTranslationNoise", key, params[key]) for key in ("from_model_name", "to_model_name")]


def needed_feature_models(config) -> list[tuple[str, str, str | None]]:
    """(modality, model id, revision) of every deep-feature model the config's variants (diversity
    sampling, label noise) would load."""
    from .variants import feature_modalities

    return [(m, getattr(config, f"{m}_feature_model"), getattr(config, f"{m}_feature_revision", None))
            for m in feature_modalities(config)]


def _why(model_id: str, error: OSError) -> str:
    return ("not in the local Hugging Face cache" if _offline() and not os.path.isdir(model_id)
            else str(error).splitlines()[0])


def check_available(config, feature_cache_dir=None) -> None:
    """Raise ModelNotAvailableError listing every model `config` needs that cannot be found
    (see module docstring); return None when all are there. Downloads config.json files only.
    feature_cache_dir: the deep-feature cache the build will read (None: no cache to fall back on)."""
    missing, remedies = [], []
    for noise, key, model_id in needed_models(config):
        try:
            model_dir(model_id)
        except OSError as error:
            missing.append(f"  - {noise}: {key}={model_id!r}: {_why(model_id, error)}")
    if missing:
        others = [name for name in config.text_noises if name != "BackTranslationNoise"]
        drop = (f"text_noises={others!r}" if others else "text_noise_ratio=0.0")
        remedies.append("point text_noise_params at models you have, e.g. text_noise_params={'BackTranslationNoise': "
                        "{'from_model_name': '/path/to/en-de', 'to_model_name': '/path/to/de-en'}}; "
                        f"or drop BackTranslationNoise from text_noises: {drop}")
    feature_missing = []
    for modality, model_id, revision in needed_feature_models(config):
        try:
            model_dir(model_id, revision)
        except OSError as error:
            if feature_cache_dir is None or not _has_cached_rows(feature_cache_dir, modality, model_id, revision):
                feature_missing.append(f"  - {modality}_feature_model={model_id!r}: {_why(model_id, error)}")
    if feature_missing:
        missing += feature_missing
        remedies.append("set the *_feature_model fields to local folders holding `transformers` checkpoints")
    if not missing:
        return
    where = ("HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched"
             if _offline() else "they could not be downloaded")
    raise ModelNotAvailableError(
        f"{len(missing)} model(s) this config needs are not available ({where}):\n" + "\n".join(missing)
        + "\nWhat to do: run once online (unset HF_HUB_OFFLINE) so they are downloaded into the cache; or "
        + "; or ".join(remedies) + ".")


def _has_cached_rows(cache_dir, modality: str, model_id: str, revision) -> bool:
    from .features import FeatureCache

    return any(FeatureCache(cache_dir, modality, model_id, revision).folder.glob("*.npz"))
