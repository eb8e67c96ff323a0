"""The same config gives the same bytes: every split of every named config (and of the settings
that reach the rest of the pipeline: text noise with back-translation, CIFAR-10-C tables, the
reference tool's images, label noise on one modality composed with conflict, compactness 0 with
the EDM images) is built through `load_dataset` on the fixture mirror and its digest compared
with the one recorded in `tests/data/split_digests.json`.

The digests were recorded on the code before the builder was reorganised (issue 18; commit
68636c3 of branch h-builder, checked out alone), so a refactor that
changes a single byte, column or feature type of any example fails here. A change that is meant
to change content (and bumps `_VERSION`) records them again:

    LUMA_RECORD_DIGESTS=1 python -m pytest -q tests/e2e/dataset/test_same_bytes.py

The digests depend on the fixture mirror and on the noise libraries' exact output (nlpaug,
imagecorruptions, CTranslate2 int8 on this CPU): a new release of one of those may also need a new
recording, after checking that only that library's modality changed (the failure names the split).
Cost: about 25 s on the 2-core reference machine (15 builds of 249 examples; tiny models, one shared
feature cache).
"""

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.support.helpers import load

DIGESTS = Path(__file__).resolve().parents[2] / "data" / "split_digests.json"
RECORD = os.environ.get("LUMA_RECORD_DIGESTS") == "1"
_TEXT_NOISES = ["KeyboardNoise", "OCRNoise", "RandomCharNoise", "RandomWordNoise", "SpellingNoise", "BackTranslationNoise"]

# name -> (named config, field overrides); "models" and "translation" are filled in by fixtures.
CASES = {
    "clean": ("clean", {}),
    "sample_noise_image_audio": ("sample_noise", {"text_noise_ratio": 0.0}),
    "sample_noise_text": ("sample_noise", {"image_noise_ratio": 0.0, "audio_noise_ratio": 0.0,
                                           "text_noises": _TEXT_NOISES, "translation": True}),
    "sample_noise_partial": ("sample_noise", {"image_noise_ratio": 0.5, "audio_noise_test": False,
                                              "image_severity_tables": "cifar10-c", "image_severity": 2,
                                              "text_noise_ratio": 0.0}),
    "reference_effective": ("clean", {"reference_effective": True}),
    "low_diversity": ("low_diversity", {"models": True}),
    "compactness_zero": ("clean", {"image_compactness": 0.0, "text_compactness": 3.0, "num_sampling": 2,
                                   "models": True}),
    **{f"label_noise_{p}": (f"label_noise_{p}", {"models": True}) for p in ("0.1", "0.2", "0.3", "0.4", "0.5")},
    "label_noise_image_conflict": ("conflict", {"label_noise": 0.3, "label_noise_modality": "image",
                                                "label_noise_neighbours": 2, "models": True}),
    "conflict": ("conflict", {}),
    "conflict_seed": ("conflict", {"seed": 7, "conflict_ratio": 0.25}),
}


def _canonical(value, folder: str):
    """A JSON-encodable stand-in for a value of an example: bytes by their sha256, and the
    test's temporary `folder` (in the text-noise records' model paths) as "<tmp>"."""
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, str):
        return value.replace(folder, "<tmp>")
    if isinstance(value, dict):
        return {k: _canonical(v, folder) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, folder) for v in value]
    return value


def split_digest(dataset, folder: str) -> str:
    """sha256 of a split's columns (in order) and features, and of every example in order (images
    and audio as stored bytes; paths under the temporary `folder` made independent of it)."""
    import datasets

    digest = hashlib.sha256(json.dumps([list(dataset.features), dataset.features.to_dict()], sort_keys=True).encode())
    dataset = dataset.cast_column("image", datasets.Image(decode=False)).cast_column("audio", datasets.Audio(decode=False))
    for example in dataset:
        digest.update(json.dumps(_canonical(example, folder), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@pytest.fixture(scope="module")
def model_kwargs(tmp_path_factory):
    from luma_noise.fixtures.models import save_tiny_models

    models = save_tiny_models(tmp_path_factory.mktemp("models"))
    return {f"{m}_feature_model": path for m, path in models.items()} | {
        "feature_cache_dir": str(tmp_path_factory.mktemp("features"))}


@pytest.fixture(scope="module")
def translation_params(tmp_path_factory):
    from luma_noise.fixtures.marian import build_marian_model

    folder = tmp_path_factory.mktemp("same-bytes-translation", numbered=False)  # in the records: a fixed name
    return {"BackTranslationNoise": {"from_model_name": build_marian_model(folder / "forth", seed=0)[0],
                                     "to_model_name": build_marian_model(folder / "back", seed=1)[0],
                                     "max_length": 16}}


@pytest.fixture(scope="module")
def recorded():
    return {} if RECORD else json.loads(DIGESTS.read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_every_split_has_its_recorded_bytes(case, mirror, tmp_path, tmp_path_factory, model_kwargs, translation_params,
                                           recorded):
    name, fields = CASES[case]
    fields = dict(fields)
    if fields.pop("models", False):
        fields.update(model_kwargs)
    if fields.pop("translation", False):
        fields["text_noise_params"] = translation_params
    built = load(name, mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"), **fields)
    digests = {split: split_digest(built[split], str(tmp_path_factory.getbasetemp())) for split in sorted(built)}
    if RECORD:
        stored = json.loads(DIGESTS.read_text()) if DIGESTS.is_file() else {}
        stored[case] = digests
        DIGESTS.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    assert case in recorded, f"no digests recorded for {case!r}: see this module's docstring"
    changed = [split for split in digests if digests[split] != recorded[case].get(split)]
    assert not changed and set(digests) == set(recorded[case]), (
        f"{case}: the bytes of split(s) {changed or sorted(set(recorded[case]) ^ set(digests))} changed")
