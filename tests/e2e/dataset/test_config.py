"""Config API: every documented value reachable (None included), mirror paths normalised before
the cache id, every bad field reported at once and before the mirror's existence."""

import math
import shutil

import pytest

from tests.support.helpers import SCRIPT, load, rows


def _builder(name="clean", **kwargs):
    """The builder `load_dataset` would use (script path), without preparing anything."""
    import datasets

    return datasets.load_dataset_builder(SCRIPT, name, trust_remote_code=True, **kwargs)


def test_none_overrides_keep_the_published_train_rows(mirror, cache_dir):
    """`datasets` drops None keywords: low_diversity would re-draw the train split anyway."""
    nones = {f"{m}_compactness": None for m in ("image", "audio", "text")}
    ds = load("low_diversity", mirror=str(mirror[0]), cache_dir=cache_dir, **nones)
    clean = load("clean", mirror=str(mirror[0]), cache_dir=cache_dir)
    for column in ("image_index", "audio_path", "text_index", "label"):
        assert ds["train"][column] == clean["train"][column]


def test_a_none_override_is_applied_and_changes_the_config_id():
    builder = _builder("low_diversity", image_compactness=None)
    assert builder.config.image_compactness is None and builder.config.audio_compactness == 10
    assert builder.config_id != _builder("low_diversity").config_id


def test_feature_model_none_is_the_default_checkpoint():
    from luma_noise.variants.deep_features import DEFAULT_MODEL_IDS

    builder = _builder("clean", audio_feature_model=None)
    assert builder.config.audio_feature_model == DEFAULT_MODEL_IDS["audio"]
    assert builder.config_id == "clean"  # the same config as no keyword at all


def test_the_config_id_follows_the_values_not_the_keywords():
    assert _builder("clean", seed=42).config_id == "clean"
    assert _builder("clean", seed=7).config_id != "clean"
    assert _builder("clean", seed=7).config_id == _builder("clean", seed=7).config_id


def test_two_relative_mirrors_get_their_own_cache_entries(mirror, tmp_path, monkeypatch, cache_dir):
    """Two folders both typed "./mirror" used to share one cache entry (the first one's examples)."""
    for side in ("a", "b"):
        shutil.copytree(mirror[0], tmp_path / side / "mirror")
    texts = tmp_path / "b" / "mirror" / "luma" / "text_data.tsv"
    header, *rows = texts.read_text().splitlines()
    texts.write_text("\n".join([header] + [row.replace("\t", "\tchanged ", 1) for row in rows]) + "\n")
    monkeypatch.chdir(tmp_path / "a")
    first = load("clean", split="test", mirror="./mirror", cache_dir=cache_dir)
    monkeypatch.chdir(tmp_path / "b")
    second = load("clean", split="test", mirror="./mirror", cache_dir=cache_dir)
    assert first.cache_files[0]["filename"] != second.cache_files[0]["filename"]
    assert first["text"] != second["text"]


def test_home_and_relative_mirror_paths_are_made_absolute(mirror, tmp_path, monkeypatch):
    shutil.copytree(mirror[0], tmp_path / "mirror")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _builder("clean", mirror="~/mirror").config.mirror == str(tmp_path / "mirror")
    monkeypatch.chdir(tmp_path)
    assert _builder("clean", mirror="./mirror/../mirror").config.mirror == str(tmp_path / "mirror")
    assert _builder("clean", mirror="mirror").config_id == _builder("clean", mirror=str(tmp_path / "mirror")).config_id


@pytest.mark.parametrize("field, value, message", [
    ("image_compactness", math.inf, "image_compactness=inf: expected None or a finite number"),
    ("audio_compactness", math.nan, "audio_compactness=nan: expected None or a finite number"),
    ("image_corruptions", 5, "image_corruptions=5: expected a non-empty list of names"),
    ("image_corruptions", ["fog", "nope"], "image_corruptions: corruption must be one of"),
    ("text_noises", ["Nope"], "text_noises: unknown text noise 'Nope'; allowed: KeyboardNoise"),
    ("text_noises", [], "text_noises=[]: expected a non-empty list of names"),
    ("text_noise_params", {"KeyboardNoise": {"nope": 1}}, "KeyboardNoise: nlpaug's KeyboardAug has no parameter 'nope'"),
    ("text_noise_params", {"OCRNoise": {}, "Nope": {}}, "text_noise_params: given for ['Nope']"),
    ("seed", None, "seed=None: expected an integer"),
    ("image_feature_revision", "a b", "image_feature_revision='a b': expected None or a branch"),
    ("label_noise_modality", None, "label_noise_modality=None"),
])
def test_bad_values_are_named_even_with_text_noise_off_and_a_missing_mirror(field, value, message, cache_dir, tmp_path):
    with pytest.raises(ValueError) as err:
        load("clean", cache_dir=cache_dir, mirror=str(tmp_path / "no-such-mirror"), **{field: value})
    assert message in str(err.value)
    assert "no-such-mirror" in str(err.value)  # reported too, after the values
    assert str(err.value).index(message) < str(err.value).index("no-such-mirror")


def test_every_bad_field_is_reported_at_once(cache_dir):
    bad = {"seed": -1, "image_severity": 9, "audio_min_snr_db": 9.0, "text_noises": ["Nope"],
           "num_sampling": 0, "label_noise": 2.0, "conflict_ratio": -0.1, "image_compactness": math.inf}
    with pytest.raises(ValueError) as err:
        load("clean", cache_dir=cache_dir, **bad)
    assert str(err.value).startswith("8 bad LUMA config values:")
    for field in bad:
        assert field in str(err.value)


def test_per_modality_feature_revisions_and_the_deprecated_alias():
    builder = _builder("clean", image_feature_revision="abc123", text_feature_revision="v2")
    assert (builder.config.image_feature_revision, builder.config.audio_feature_revision,
            builder.config.text_feature_revision) == ("abc123", None, "v2")
    assert builder.config_id != _builder("clean", audio_feature_revision="abc123").config_id
    with pytest.warns(DeprecationWarning, match="feature_revision is deprecated"):
        old = _builder("clean", feature_revision="r1")
    assert [getattr(old.config, f"{m}_feature_revision") for m in ("image", "audio", "text")] == ["r1"] * 3


def test_the_examples_module_is_importable_by_name():
    import luma_noise.examples

    assert callable(luma_noise.examples.png_bytes) and callable(luma_noise.examples.plan_examples)


def test_named_configs_build_without_importing_nlpaug():
    """Validation at script import stays cheap: nlpaug (torch, transformers) is not imported."""
    import subprocess
    import sys

    code = "import sys; from luma_noise.builder import Luma; Luma(config_name='clean'); print('nlpaug' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-500:]


def test_esc50_is_not_fetched_when_no_split_is_audio_noised(mirror, tmp_path, cache_dir):
    """audio_noise_ratio > 0 with both audio_noise_train and audio_noise_test off noises nothing."""
    shutil.copytree(mirror[0], tmp_path / "mirror")
    shutil.rmtree(tmp_path / "mirror" / "esc50")
    ds = load("clean", split="test", mirror=str(tmp_path / "mirror"), cache_dir=cache_dir,
              audio_noise_ratio=1.0, audio_noise_train=False, audio_noise_test=False)
    clean = load("clean", split="test", mirror=str(mirror[0]), cache_dir=cache_dir)
    assert [r["audio"]["bytes"] for r in rows(ds)] == [r["audio"]["bytes"] for r in rows(clean)]
