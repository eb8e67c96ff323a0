"""End-to-end tests of the uncertainty configs through `datasets.load_dataset` on the script path."""

import collections
import io
import json
import math
import shutil

import numpy as np
import pytest
import soundfile

from tests.support.helpers import built_rows, load, rows, wav_samples
from luma_noise.fixtures.hub import ThrottledServer
from luma_noise.variants import deep_features
from luma_noise.noise.image import corrupt_image
from luma_noise.classes import CLASSES
from luma_noise.fixtures.mirror import decode_audio_marker
from luma_noise.fixtures.models import save_tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def model_kwargs(models, tmp_path_factory):
    return {f"{m}_feature_model": path for m, path in models.items()} | {
        "feature_cache_dir": str(tmp_path_factory.mktemp("features"))}


def _build(mirror, tmp_path, name, **kwargs):
    return built_rows(mirror[0], tmp_path / "cache", name, **kwargs)


def _pairs(examples):
    return [(ex["image_index"], ex["audio_path"], ex["text_index"]) for ex in examples]


def _binomial_ok(count, n, p, sigmas=4):
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def _image_class(image):
    return int(np.asarray(image)[0, 0, 0])


def _audio_class(audio_bytes):
    return decode_audio_marker(wav_samples(audio_bytes))[0]


# ---------------------------------------------------------------- sample noise


@pytest.fixture(scope="module")
def noisy(mirror, tmp_path_factory):
    """sample_noise on images and audio (text noise has its own tests below)."""
    return _build(mirror, tmp_path_factory.mktemp("noisy"), "sample_noise", text_noise_ratio=0.0)


def test_sample_noise_keeps_clean_rows_and_changes_content(noisy, clean):
    for split in clean:
        assert _pairs(noisy[split]) == _pairs(clean[split])
        for ex, ref in zip(noisy[split], clean[split]):
            assert ex["label"] == ref["label"] and ex["text"] == ref["text"]
            assert ex["noise"]["text"] is None
            assert not np.array_equal(ex["image"], ref["image"])
            assert ex["audio"]["bytes"] != ref["audio"]["bytes"]


def test_image_noise_records_reproduce_the_image(noisy, clean):
    for ex, ref in zip(noisy["test"], clean["test"]):
        record = ex["noise"]["image"]
        params = json.loads(record["params"])
        assert params["severity"] == 4
        np.testing.assert_array_equal(ex["image"], corrupt_image(ref["image"], record["name"], 4, params["seed"]))


def test_audio_noise_snr_lies_in_the_requested_range(noisy, clean):
    for ex, ref in zip(noisy["train"], clean["train"]):
        params = json.loads(ex["noise"]["audio"]["params"])
        assert 3.0 <= params["snr_db"] <= 5.0 and params["applied"]
        noised, _ = soundfile.read(io.BytesIO(ex["audio"]["bytes"]), dtype="float32")
        clean_samples, _ = soundfile.read(io.BytesIO(ref["audio"]["bytes"]), dtype="float32")
        snr = 20 * np.log10(np.sqrt(np.mean(clean_samples**2)) / np.sqrt(np.mean((noised - clean_samples) ** 2)))
        assert 3.0 - 0.2 <= snr <= 5.0 + 0.2  # 16-bit rounding and clipping of the mixture


def test_noised_fraction_follows_the_ratio_and_split_flags(mirror, tmp_path, clean):
    got = _build(mirror, tmp_path, "sample_noise", text_noise_ratio=0.0, image_noise_ratio=0.5, audio_noise_test=False)
    train = got["train"]
    noised = sum(ex["noise"]["image"] is not None for ex in train)
    assert _binomial_ok(noised, len(train), 0.5) and 0 < noised < len(train)
    for ex, ref in zip(train, clean["train"]):
        assert (ex["noise"]["image"] is None) == np.array_equal(ex["image"], ref["image"])
        assert ex["noise"]["audio"] is not None
    for split in ("test", "ood"):
        for ex, ref in zip(got[split], clean[split]):
            assert ex["noise"]["audio"] is None and ex["audio"]["bytes"] == ref["audio"]["bytes"]


def test_one_modality_setting_leaves_the_others_draws_alone(mirror, tmp_path, noisy):
    other = _build(mirror, tmp_path, "sample_noise", text_noise_ratio=0.0, image_severity=2)
    for ex, ref in zip(other["test"], noisy["test"]):
        assert ex["audio"]["bytes"] == ref["audio"]["bytes"]
        assert ex["noise"]["image"]["name"] == ref["noise"]["image"]["name"]


def test_sample_noise_is_identical_prepared_streaming_and_sharded(mirror, tmp_path, noisy):
    streamed = load("sample_noise", mirror=str(mirror[0]), cache_dir=str(tmp_path / "s"), streaming=True, text_noise_ratio=0.0)
    sharded = _build(mirror, tmp_path, "sample_noise", text_noise_ratio=0.0, num_proc=2)
    for split in noisy:
        stream_rows = rows(streamed[split])
        for a, b, c in zip(noisy[split], stream_rows, sharded[split]):
            assert a["audio"]["bytes"] == b["audio"]["bytes"] == c["audio"]["bytes"]
            assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["image"], c["image"])
            assert a["noise"] == b["noise"] == c["noise"]


def test_sample_noise_streams_over_http(http_mirror, allow_loopback_http, tmp_path, noisy):
    """ESC-50's zip needs random access: it is fetched whole even when streaming."""
    url, _ = http_mirror
    streamed = load("sample_noise", mirror=url, cache_dir=str(tmp_path / "cache"), streaming=True, text_noise_ratio=0.0)
    got = rows(streamed["test"])
    assert [ex["noise"] for ex in got] == [ex["noise"] for ex in noisy["test"]]
    assert [ex["audio"]["bytes"] for ex in got] == [ex["audio"]["bytes"] for ex in noisy["test"]]


@pytest.fixture(scope="module")
def text_noise_kwargs(tmp_path_factory):
    """Every text noise that needs no WordNet, back-translation through two tiny random Marian
    models with the default backend (CTranslate2, converted into the test's conversion cache)."""
    from luma_noise.fixtures.marian import build_marian_model

    folder = tmp_path_factory.mktemp("translation")
    params = {"BackTranslationNoise": {"from_model_name": build_marian_model(folder / "forth", seed=0)[0],
                                       "to_model_name": build_marian_model(folder / "back", seed=1)[0],
                                       "max_length": 16}}
    names = ["KeyboardNoise", "OCRNoise", "RandomCharNoise", "RandomWordNoise", "SpellingNoise", "BackTranslationNoise"]
    return {"text_noises": names, "text_noise_params": params, "image_noise_ratio": 0.0, "audio_noise_ratio": 0.0}


def test_text_noise_end_to_end_prepared_streaming_sharded(mirror, tmp_path, clean, text_noise_kwargs):
    prepared = _build(mirror, tmp_path / "p", "sample_noise", **text_noise_kwargs)
    used = collections.Counter()
    for split in clean:
        for ex, ref in zip(prepared[split], clean[split]):
            record = ex["noise"]["text"]
            used[record["name"]] += 1
            assert ex["text"] != ref["text"], record
            assert ex["noise"]["image"] is None and ex["audio"]["bytes"] == ref["audio"]["bytes"]
            assert json.loads(record["params"])["seed"] >= 0
    assert set(used) == set(text_noise_kwargs["text_noises"])
    streamed = load("sample_noise", mirror=str(mirror[0]), cache_dir=str(tmp_path / "s"), streaming=True, **text_noise_kwargs)
    sharded = _build(mirror, tmp_path / "n", "sample_noise", num_proc=2, **text_noise_kwargs)
    for split in ("test", "ood"):
        texts = [ex["text"] for ex in prepared[split]]
        assert [ex["text"] for ex in rows(streamed[split])] == texts == [ex["text"] for ex in sharded[split]]


# ---------------------------------------------------------------- label noise


@pytest.fixture(scope="module")
def label_noise(mirror, tmp_path_factory, model_kwargs):
    return _build(mirror, tmp_path_factory.mktemp("ln"), "label_noise_0.3", **model_kwargs)


def test_label_noise_switches_about_p_never_to_the_same_class(label_noise, clean):
    switched = total = 0
    for split in ("train", "test"):
        assert _pairs(label_noise[split]) == _pairs(clean[split])
        for ex, ref in zip(label_noise[split], clean[split]):
            assert ex["original_label"] == ref["label"]
            assert 0 <= ex["label"] < 42
            switched += ex["label"] != ex["original_label"]
            total += 1
    assert _binomial_ok(switched, total, 0.3) and switched > 0
    assert [ex["label"] for ex in label_noise["ood"]] == [ex["label"] for ex in clean["ood"]]


def test_label_noise_composes_with_sample_noise(mirror, tmp_path, model_kwargs, label_noise):
    got = _build(mirror, tmp_path, "label_noise_0.3", image_noise_ratio=1.0, **model_kwargs)
    assert [ex["label"] for ex in got["train"]] == [ex["label"] for ex in label_noise["train"]]
    assert all(ex["noise"]["image"] is not None for ex in got["train"])


# ---------------------------------------------------------------- conflict


def test_conflict_replaces_exactly_the_recorded_modality_with_the_next_class(mirror, tmp_path, clean):
    got = _build(mirror, tmp_path, "conflict")
    assert _pairs(got["train"]) == _pairs(clean["train"])
    per_class = collections.Counter()
    for ex in got["test"]:
        label, modality = ex["label"], ex["conflict_modality"]
        classes = {"image": _image_class(ex["image"]), "audio": _audio_class(ex["audio"]["bytes"])}
        for name, found in classes.items():
            assert found == ((label + 1) % 42 if name == modality else label), (name, modality)
        if modality == "text":
            assert CLASSES[(label + 1) % 42] in ex["text"]
        per_class[label] += modality is not None
    per_test_class = len(clean["test"]) // 42
    assert per_class == {c: math.floor(0.4 * per_test_class + 0.5) for c in range(42)}
    assert all(ex["conflict_modality"] is None for ex in got["ood"])


# ---------------------------------------------------------------- diversity


def test_low_diversity_redraws_train_only_with_consistent_labels(mirror, tmp_path, clean, model_kwargs):
    _, manifest = mirror
    got = _build(mirror, tmp_path, "low_diversity", **model_kwargs)
    for split in ("test", "ood"):
        assert _pairs(got[split]) == _pairs(clean[split])
    train = got["train"]
    assert collections.Counter(ex["label"] for ex in train) == collections.Counter(ex["label"] for ex in clean["train"])
    test_audio = {manifest["audio_paths"][r] for r in manifest["splits"]["audio_test"]}
    test_text = set(manifest["splits"]["text_test"])
    for ex in train:
        assert _image_class(ex["image"]) == ex["label"] and _audio_class(ex["audio"]["bytes"]) == ex["label"]
        assert ex["audio_path"] not in test_audio and ex["text_index"] not in test_text
    assert _pairs(train) != _pairs(clean["train"])


def test_feature_cache_is_reused_and_invalidated_by_a_new_model(mirror, tmp_path, model_kwargs, models, monkeypatch):
    loaded = []
    real_load = deep_features._load
    monkeypatch.setattr(deep_features, "_load", lambda modality, *args: loaded.append(modality) or real_load(modality, *args))
    _build(mirror, tmp_path / "a", "low_diversity", **model_kwargs)  # the module's earlier builds may have cached all
    before = len(loaded)
    _build(mirror, tmp_path / "b", "low_diversity", **model_kwargs)
    assert len(loaded) == before  # every row cached: no model loaded
    moved = shutil.copytree(models["text"], tmp_path / "other-text-model")
    _build(mirror, tmp_path / "c", "low_diversity", **{**model_kwargs, "text_feature_model": str(moved)})
    assert loaded[before:] == ["text"]


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("sample_noise", {"image_severity": 6}, "image_severity: severity must be an int in [1, 2, 3, 4, 5]"),
        ("sample_noise", {"image_corruptions": ["fog", "rain"]}, "corruption must be one of"),
        ("sample_noise", {"image_noise_ratio": 1.5}, "image_noise_ratio=1.5: expected a number in [0.0, 1.0]"),
        ("sample_noise", {"audio_min_snr_db": 6.0}, "min_snr_db (6.0) must be <= max_snr_db (5.0)"),
        ("sample_noise", {"audio_noise_train": "yes"}, "audio_noise_train='yes': expected True or False"),
        ("sample_noise", {"text_noises": ["ShoutingNoise"]}, "text_noises: unknown text noise 'ShoutingNoise'"),
        ("sample_noise", {"text_noise_params": {"KeyboardNoise": {"aug_char_p": 2.0}}}, "aug_char_p"),
        ("sample_noise", {"text_noise_params": {"OCRNoise": {"colour": 1}}}, "colour"),
        ("label_noise_0.1", {"label_noise": 2}, "label_noise=2: expected a number in [0.0, 1.0]"),
        ("label_noise_0.1", {"label_noise_modality": "smell"}, "label_noise_modality='smell'"),
        ("conflict", {"conflict_ratio": -0.1}, "conflict_ratio=-0.1"),
        ("low_diversity", {"image_compactness": -1}, "image_compactness=-1"),
        ("low_diversity", {"num_sampling": 0}, "num_sampling=0"),
    ],
)
def test_bad_variant_fields_fail_before_download(name, kwargs, message, tmp_path):
    with pytest.raises(ValueError) as err:
        load(name, cache_dir=str(tmp_path / "cache"), **kwargs)
    assert message in str(err.value)
    assert not list(tmp_path.rglob("*.arrow"))


def test_missing_wordnet_fails_at_config_time_with_the_install_command(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty-nltk-data")])
    with pytest.raises(LookupError, match=r"python -m nltk\.downloader .*wordnet"):
        load("sample_noise", cache_dir=str(tmp_path / "cache"), text_noises=["SynonymNoise", "KeyboardNoise"])
    assert not list(tmp_path.rglob("*.arrow"))


def test_every_named_config_is_listed(tmp_path):
    from luma_noise.options import NAMED_CONFIGS

    assert set(NAMED_CONFIGS) == {"clean", "sample_noise", "low_diversity", "conflict",
                                  *(f"label_noise_0.{i}" for i in range(1, 6))}



def test_force_redownload_fetches_each_file_once_per_build(mirror, tmp_path, model_kwargs, allow_loopback_http):
    # label noise reads the clips for their features, then stores them: two steps, one fetch
    with ThrottledServer(mirror[0]) as server:
        load("label_noise_0.3", mirror=server.url, cache_dir=str(tmp_path / "cache"),
             download_mode="force_redownload", **model_kwargs)
        wavs = {path: n for path, n in server.served(200).items() if path.endswith(".wav")}
        assert wavs and set(wavs.values()) == {1}
