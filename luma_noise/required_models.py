"""The pretrained models a config needs, found before generation.

`check_available(config, feature_cache_dir)` resolves every translation model the config's text
noise would load and every deep-feature model its variants (diversity sampling, label noise) would
load (local folder, or the Hugging Face cache / Hub as `transformers` resolves it, honouring
HF_HUB_OFFLINE: `checkpoints.model_dir`) and raises one `ModelNotAvailableError` naming, for each
missing model, the noise or field, the model id and what to do. The builder calls it before reading
any source, so an offline run without the models fails at once instead of minutes (or hours of
extraction) in. A feature model that cannot be resolved but already has rows in the feature cache
passes: the build may need none of its rows again (if it does, loading it fails naming the model).
"""

import os

from .checkpoints import hub_offline
from .checkpoints import model_dir
from .variants.deep_features import FeatureCache
from .noise.text import TextNoise
from .variants import feature_modalities


class ModelNotAvailableError(OSError):
    """A model the config needs can be neither found locally nor downloaded."""


def needed_models(config) -> list[tuple[str, str, str]]:
    """(noise, parameter, model id) of every model the config's sample noise would load."""
    if not config.text_noise_ratio or "BackTranslationNoise" not in config.text_noises:
        return []
    params = TextNoise(config.text_noises, config.text_noise_params).params["BackTranslationNoise"]
    return [("BackTranslationNoise", key, params[key]) for key in ("from_model_name", "to_model_name")]


def needed_feature_models(config) -> list[tuple[str, str, str | None]]:
    """(modality, model id, revision) of every deep-feature model the config's variants (diversity
    sampling, label noise) would load."""
    return [(m, getattr(config, f"{m}_feature_model"), getattr(config, f"{m}_feature_revision", None))
            for m in feature_modalities(config)]


def _why(model_id: str, error: OSError) -> str:
    return ("not in the local Hugging Face cache" if hub_offline() and not os.path.isdir(model_id)
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
             if hub_offline() else "they could not be downloaded")
    raise ModelNotAvailableError(
        f"{len(missing)} model(s) this config needs are not available ({where}):\n" + "\n".join(missing)
        + "\nWhat to do: run once online (unset HF_HUB_OFFLINE) so they are downloaded into the cache; or "
        + "; or ".join(remedies) + ".")


def _has_cached_rows(cache_dir, modality: str, model_id: str, revision) -> bool:
    return any(FeatureCache(cache_dir, modality, model_id, revision).folder.glob("*.npz"))
