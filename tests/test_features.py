"""Tests for luma_noise.features on tiny random checkpoints, offline."""

import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.stem import PorterStemmer
from scipy.signal import resample_poly

from luma_noise import features
from luma_noise.features import (
    CACHE_EVENTS,
    cache_path,
    cached_features,
    default_cache_dir,
    extract_features,
    mask_label_words,
)
from tiny_models import AUDIO_DIM, AUDIO_RATE, IMAGE_DIM, TEXT_DIM, save_tiny_models


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("models"))


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(n)]


def _clips(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-0.5, 0.5, size=n).astype(np.float32), rate)
            for n, rate in ((8000, 16000), (4000, 8000), (11025, 22050), (3000, 16000))]


TEXTS = [("a horse runs on the field", "horse"), ("the man sits near a woman", "man"),
         ("Horses and a big dog", "horse"), ("a small cat", "cat")]


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("text, label, expected", [
    ("a horse runs", "horse", "a [MASK] runs"),
    ("Horses, HORSE and horse's tail", "horse", "[MASK], [MASK] and [MASK]'s tail"),
    ("the man and the woman", "man", "the [MASK] and the woman"),
    ("a manly snowman", "man", "a manly snowman"),
    ("trains and training", "train", "[MASK] and [MASK]"),
    ("two mice", "mouse", "two mice"),  # irregular plural: the stemmer does not relate them
    ("men", "man", "men"),
    ("buses", "bus", "buses"),  # Porter: "buses" -> "buse", "bus" -> "bu"
    ("roses and a rose", "roses", "[MASK] and a [MASK]"),
    ("", "horse", ""),
])
def test_mask_label_words(text, label, expected):
    assert mask_label_words(text, label, "[MASK]") == expected


_WORDS = ["horse", "horses", "Horse", "man", "woman", "men", "train", "training", "bus", "a", "the", "snowman"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=8), st.sampled_from(["horse", "man", "train", "bus"]),
       st.sampled_from([" ", ", ", "; "]))
def test_masking_is_word_by_word(words, label, separator):
    stem = PorterStemmer().stem
    expected = separator.join("<m>" if stem(w.lower()) == stem(label) else w for w in words)
    assert mask_label_words(separator.join(words), label, "<m>") == expected


# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize("modality, items, dim", [
    ("image", _images(5), IMAGE_DIM), ("audio", _clips(), AUDIO_DIM), ("text", TEXTS, TEXT_DIM),
])
def test_shapes_determinism_and_batch_size(models, modality, items, dim):
    first = extract_features(modality, items, models[modality], batch_size=2, progress=False)
    assert first.shape == (len(items), dim) and first.dtype == np.float32
    again = extract_features(modality, items, models[modality], batch_size=2, progress=False)
    np.testing.assert_array_equal(first, again)
    # Padding is excluded from the means, so batching does not change a row's features.
    one_by_one = extract_features(modality, items, models[modality], batch_size=1, progress=False, device="cpu")
    np.testing.assert_allclose(one_by_one, first, rtol=1e-4, atol=1e-5)


def test_audio_is_resampled_to_the_extractor_rate(models):
    wave = np.random.default_rng(3).uniform(-0.5, 0.5, size=4000).astype(np.float32)
    at_8k = extract_features("audio", [(wave, 8000)], models["audio"], progress=False)
    upsampled = resample_poly(wave, AUDIO_RATE // 8000, 1).astype(np.float32)
    at_16k = extract_features("audio", [(upsampled, AUDIO_RATE)], models["audio"], progress=False)
    np.testing.assert_allclose(at_8k, at_16k, atol=1e-6)


def test_text_label_word_is_masked_before_encoding(models):
    masked = extract_features("text", [("a horse runs", "horse")], models["text"], progress=False)
    by_hand = extract_features("text", [("a [MASK] runs", "dog")], models["text"], progress=False)
    unmasked = extract_features("text", [("a horse runs", "dog")], models["text"], progress=False)
    np.testing.assert_allclose(masked, by_hand, atol=1e-6)
    assert not np.allclose(masked, unmasked)


def test_extract_features_rejects_bad_input(models):
    with pytest.raises(ValueError, match="modality"):
        extract_features("video", _images(1), models["image"])
    with pytest.raises(ValueError, match="no image items"):
        extract_features("image", [], models["image"])


# ---------------------------------------------------------------- cache


class CountingItems:
    def __init__(self, items):
        self.items, self.calls = items, 0

    def __call__(self):
        self.calls += 1
        return self.items


def test_cache_reuses_and_invalidates(models, tmp_path):
    items = CountingItems(_images(3))
    CACHE_EVENTS.clear()
    first = cached_features("image", "train:v1", items, models["image"], None, tmp_path, progress=False)
    again = cached_features("image", "train:v1", items, models["image"], None, tmp_path, progress=False)
    np.testing.assert_array_equal(first, again)
    assert (CACHE_EVENTS["computed"], CACHE_EVENTS["loaded"], items.calls) == (1, 1, 1)
    np.testing.assert_array_equal(first, extract_features("image", items.items, models["image"], progress=False))

    other_model = shutil.copytree(models["image"], tmp_path / "copy-of-image-model")
    cached_features("image", "train:v1", items, str(other_model), None, tmp_path, progress=False)
    cached_features("image", "train:v2", items, models["image"], None, tmp_path, progress=False)
    assert (CACHE_EVENTS["computed"], items.calls) == (3, 3)
    assert len(list(tmp_path.glob("image-*.npy"))) == 3


def test_cache_path_depends_on_every_key_part(tmp_path):
    base = ("image", "k", "m", None, tmp_path)
    paths = {cache_path(*base), cache_path("audio", *base[1:]), cache_path("image", "k2", *base[2:]),
             cache_path("image", "k", "m2", None, tmp_path), cache_path("image", "k", "m", "abc123", tmp_path)}
    assert len(paths) == 5 and cache_path(*base) == cache_path(*base)


def test_failed_computation_leaves_nothing(tmp_path):
    def broken():
        raise RuntimeError("source unreadable")

    with pytest.raises(RuntimeError):
        cached_features("image", "k", broken, "unused", None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_cache_file_is_recomputed(monkeypatch, tmp_path):
    monkeypatch.setattr(features, "extract_features", lambda *args, **kwargs: np.ones((2, 3), dtype=np.float32))
    path = cache_path("text", "k", "m", None, tmp_path)
    path.write_bytes(b"\x93NUMPY truncated")
    with pytest.warns(UserWarning, match="unreadable feature cache"):
        np.testing.assert_array_equal(cached_features("text", "k", list, "m", None, tmp_path), np.ones((2, 3)))
    np.testing.assert_array_equal(np.load(path), np.ones((2, 3)))


def test_too_short_audio_is_reported(models):
    with pytest.raises(ValueError, match="too short"):
        extract_features("audio", [(np.zeros(10, dtype=np.float32), AUDIO_RATE)], models["audio"], progress=False)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "luma_features"
    monkeypatch.delenv("HF_DATASETS_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert default_cache_dir() == tmp_path / "hf" / "datasets" / "luma_features"


def test_concurrent_threads_write_one_whole_file(monkeypatch, tmp_path):
    big = np.arange(2_000_000, dtype=np.float32).reshape(-1, 100)
    start = threading.Barrier(4)

    def slow_extract(modality, items, model_id, revision, **kwargs):
        start.wait()  # all four compute and write at the same time
        return big.copy()

    monkeypatch.setattr(features, "extract_features", slow_extract)
    results = [None] * 4

    def build(i):
        results[i] = cached_features("image", "k", list, "m", None, tmp_path)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, big) for r in results)
    assert [p.name for p in tmp_path.iterdir()] == [cache_path("image", "k", "m", None, tmp_path).name]
    np.testing.assert_array_equal(np.load(cache_path("image", "k", "m", None, tmp_path)), big)


_WRITER = """
import sys
from pathlib import Path
import numpy as np
from luma_noise.features import _save_atomically
value = int(sys.argv[2])
for _ in range(15):
    _save_atomically(Path(sys.argv[1]), np.full((1000, 1000), value, dtype=np.float32))
"""


def test_concurrent_processes_never_expose_a_partial_file(tmp_path):
    path = tmp_path / "image-shared.npy"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(v)]) for v in (1, 2)]
    reads = 0
    while any(w.poll() is None for w in writers):
        try:
            array = np.load(path)
        except FileNotFoundError:
            continue
        assert array.shape == (1000, 1000) and array[0, 0] in (1, 2) and (array == array[0, 0]).all()
        reads += 1
    assert [w.returncode for w in writers] == [0, 0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    assert reads > 0
