"""Tests for luma_noise.variants.deep_features (and luma_noise.variants.feature_source) on tiny
random checkpoints, offline."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.stem import PorterStemmer
from scipy.signal import resample_poly
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from tests.support.helpers import load
from luma_noise.variants import deep_features
from luma_noise.classes import CLASSES
from luma_noise.variants.deep_features import (
    IRREGULAR_PLURALS,
    Extractor,
    FeatureCache,
    cached_features,
    content_key,
    default_cache_dir,
    extract_features,
    mask_label_words,
)
from luma_noise.variants.feature_source import FeatureSource
from luma_noise.fixtures.models import AUDIO_DIM, AUDIO_RATE, IMAGE_DIM, TEXT_DIM, save_tiny_models


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def group_norm_audio_model(tmp_path_factory):
    """A tiny Wav2Vec 2.0 with a group-norm feature encoder and no attention mask (as wav2vec2-base)."""
    folder = tmp_path_factory.mktemp("group-norm-audio")
    torch.manual_seed(1)
    config = Wav2Vec2Config(
        hidden_size=AUDIO_DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, feat_extract_norm="group", do_stable_layer_norm=False, mask_time_prob=0.0,
    )
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=AUDIO_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def loads(monkeypatch):
    """Modalities whose model `deep_features._load` loaded, in order."""
    calls = []
    real = deep_features._load

    def counting(modality, model_id, revision):
        calls.append(modality)
        return real(modality, model_id, revision)

    monkeypatch.setattr(deep_features, "_load", counting)
    return calls


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
    ("two mice", "mouse", "two [MASK]"),
    ("Men and women", "man", "[MASK] and women"),
    ("women and men", "woman", "[MASK] and men"),
    ("the wolves' den", "wolf", "the [MASK]' den"),
    ("buses and a bus", "bus", "[MASK] and a [MASK]"),
    ("roses and a rose", "roses", "[MASK] and a [MASK]"),
    ("", "horse", ""),
])
def test_mask_label_words(text, label, expected):
    assert mask_label_words(text, label, "[MASK]") == expected


def _regular_plural(word):
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word[:-1] + "ies" if word.endswith("y") and word[-2] not in "aeiou" else word + "s"


@pytest.mark.parametrize("label", CLASSES)
def test_every_class_word_and_its_plurals_are_masked(label):
    singular = "rose" if label == "roses" else label  # the one class word that is a plural
    plurals = (_regular_plural(singular),) + IRREGULAR_PLURALS.get(label, ())
    text = " ".join((label, label.capitalize(), singular) + plurals)
    assert set(mask_label_words(text, label, "<m>").split()) == {"<m>"}


_WORDS = ["horse", "horses", "Horse", "man", "woman", "men", "women", "train", "training", "bus", "buses", "a",
          "the", "snowman", "mice", "mouse"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=8), st.sampled_from(["horse", "man", "train", "bus", "mouse"]),
       st.sampled_from([" ", ", ", "; "]))
def test_masking_is_word_by_word(words, label, separator):
    stem = PorterStemmer().stem

    def named(word):
        return stem(word.lower()) == stem(label) or word.lower() in IRREGULAR_PLURALS.get(label, ())

    expected = separator.join("<m>" if named(w) else w for w in words)
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
    # Padding is excluded from the means, so neither the batch nor the order changes a row.
    one_by_one = extract_features(modality, items, models[modality], batch_size=1, progress=False, device="cpu")
    np.testing.assert_allclose(one_by_one, first, rtol=1e-4, atol=1e-5)
    reversed_order = extract_features(modality, items[::-1], models[modality], batch_size=3, progress=False)
    np.testing.assert_allclose(reversed_order[::-1], first, rtol=1e-4, atol=1e-5)


def test_group_norm_audio_model_is_batched_by_equal_length_only(group_norm_audio_model):
    # Without an attention mask, a padded clip's features change: such models batch equal lengths.
    rng = np.random.default_rng(5)
    clips = [(rng.uniform(-0.5, 0.5, size=n).astype(np.float32), AUDIO_RATE) for n in (3000, 8000, 3000, 5000)]
    batched = extract_features("audio", clips, group_norm_audio_model, batch_size=4, progress=False)
    single = extract_features("audio", clips, group_norm_audio_model, batch_size=1, progress=False)
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prefetch", [False, True])
def test_batches_group_similar_sizes_and_items_are_read_batch_by_batch(models, prefetch):
    clips = _clips() * 3  # 12 clips, 4 distinct durations
    sizes = [deep_features.item_size("audio", clip) for clip in clips]
    extractor = Extractor("audio", models["audio"], batch_size=3, prefetch=prefetch)
    batches = extractor.plan(range(len(clips)), sizes)
    assert sorted(np.concatenate(batches).tolist()) == list(range(12))
    assert all(len({sizes[i] for i in batch}) == 1 for batch in batches)  # 3 copies of each duration

    read = []

    class Lazy:
        def __len__(self):
            return len(clips)

        def __getitem__(self, i):
            read.append(i)
            return clips[i]

    out = np.empty((12, AUDIO_DIM), dtype=np.float32)
    for count, (positions, rows) in enumerate(extractor.run(Lazy(), batches), 1):
        # this batch has been read and, when prefetching, at most the next one besides
        assert set(positions.tolist()) <= set(read)
        assert 3 * count <= len(read) <= 3 * (count + prefetch)
        out[positions] = rows
    np.testing.assert_allclose(out, extract_features("audio", clips, models["audio"], batch_size=5, progress=False),
                               rtol=1e-4, atol=1e-5)


def test_time_estimate_is_shown_before_most_of_the_work(models, capsys, monkeypatch):
    monkeypatch.setattr(deep_features, "_TIMED_S", 0.0)  # tiny models: no need to time 5 s
    extract_features("image", _images(40), models["image"], batch_size=4)
    err = capsys.readouterr().err
    assert "image features: 40 items with" in err and "on cpu" in err and "left" in err


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
    men = extract_features("text", [("two men", "man")], models["text"], progress=False)
    np.testing.assert_allclose(men, extract_features("text", [("two [MASK]", "dog")], models["text"], progress=False),
                               atol=1e-6)


def test_extract_features_rejects_bad_input(models):
    with pytest.raises(ValueError, match="modality"):
        extract_features("video", _images(1), models["image"])
    with pytest.raises(ValueError, match="no image items"):
        extract_features("image", [], models["image"])
    with pytest.raises(ValueError, match="batch_size"):
        Extractor("image", models["image"], batch_size=0)


def test_too_short_audio_is_reported(models):
    with pytest.raises(ValueError, match="too short"):
        extract_features("audio", [(np.zeros(10, dtype=np.float32), AUDIO_RATE)], models["audio"], progress=False)


# ---------------------------------------------------------------- cache


class CountingItems:
    """A sequence that records which positions were read."""

    def __init__(self, items):
        self.items, self.read = items, []

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.read.append(int(i))
        return self.items[i]


def _image_keys(images):
    return [content_key(str(im.shape), im.tobytes()) for im in images]


def test_cache_is_per_item_and_computes_only_missing_rows(models, tmp_path, loads):
    images = _images(9)
    keys = _image_keys(images)
    first = CountingItems(images[:6])
    got = cached_features(keys[:6], first, Extractor("image", models["image"]), tmp_path, progress=False)
    assert sorted(first.read) == list(range(6))
    # Other rows in another order (another seed or split): only the three new ones are computed.
    order = [8, 2, 7, 0, 6, 5]
    second = CountingItems([images[i] for i in order])
    again = cached_features([keys[i] for i in order], second, Extractor("image", models["image"]), tmp_path,
                            progress=False)
    assert sorted(second.read) == [0, 2, 4]
    np.testing.assert_array_equal(again[[1, 3, 5]], got[[2, 0, 5]])
    direct = extract_features("image", [images[i] for i in order], models["image"], progress=False)
    np.testing.assert_allclose(again, direct, rtol=1e-5, atol=1e-6)
    # Everything cached: no item read, no model loaded.
    loads.clear()
    third = CountingItems(images)
    cached_features(keys, third, Extractor("image", models["image"]), tmp_path, progress=False)
    assert third.read == [] and loads == []


def test_cache_depends_on_model_and_revision(tmp_path):
    folders = {FeatureCache(tmp_path, "image", "m", None).folder, FeatureCache(tmp_path, "audio", "m", None).folder,
               FeatureCache(tmp_path, "image", "m2", None).folder, FeatureCache(tmp_path, "image", "m", "abc").folder}
    assert len(folders) == 4 and FeatureCache(tmp_path, "image", "m", None).folder in folders


def test_content_key_separates_parts():
    assert content_key("ab", "c") != content_key("a", "bc") != content_key("abc")
    assert content_key("horse", "horse") != content_key("horse", "man")  # text keys include the masked word
    assert content_key(b"x") == content_key("x") and len(content_key(b"")) == 16


def test_duplicate_items_are_computed_once(models, tmp_path):
    images = _images(2)
    items = CountingItems([images[0], images[1], images[0]])
    got = cached_features(_image_keys(items.items), items, Extractor("image", models["image"]), tmp_path,
                          progress=False)
    assert sorted(items.read) == [0, 1]
    np.testing.assert_array_equal(got[0], got[2])


def test_failed_computation_leaves_nothing(models, tmp_path):
    class Broken:
        def __len__(self):
            return 1

        def __getitem__(self, i):
            raise RuntimeError("source unreadable")

    with pytest.raises(RuntimeError):
        cached_features([content_key("k")], Broken(), Extractor("image", models["image"]), tmp_path, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unreadable_cache_file_is_removed_and_recomputed(models, tmp_path):
    images = _images(2)
    extractor = Extractor("image", models["image"])
    good = cached_features(_image_keys(images), images, extractor, tmp_path, progress=False)
    (stored,) = FeatureCache(tmp_path, "image", models["image"], None).folder.glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable feature cache file"):
        again = cached_features(_image_keys(images), CountingItems(images), extractor, tmp_path, progress=False)
    np.testing.assert_allclose(again, good, rtol=1e-6)
    assert np.load(stored)["features"].shape == (2, IMAGE_DIM)


def test_stale_temporaries_are_removed(tmp_path):
    folder = FeatureCache(tmp_path, "image", "m", None).folder
    folder.mkdir(parents=True)
    stale, fresh, old_layout = folder / ".x.npz.1.tmp", folder / ".y.npz.2.tmp", tmp_path / ".image-k.npy.3.tmp"
    for path in (stale, fresh, old_layout):
        path.write_bytes(b"partial")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(old_layout, (hours_ago, hours_ago))
    FeatureCache(tmp_path, "image", "m", None)
    assert not stale.exists() and not old_layout.exists() and fresh.exists()


def test_default_cache_dir_follows_datasets_config(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "ds")
    assert default_cache_dir() == tmp_path / "ds" / "luma_features"
    assert default_cache_dir(str(tmp_path / "root")) == tmp_path / "root" / "luma_features"


def test_default_cache_dir_honours_xdg_cache_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_DATASETS_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run([sys.executable, "-c", "from luma_noise.variants.deep_features import default_cache_dir; "
                          "print(default_cache_dir())"], env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == tmp_path / "xdg" / "huggingface" / "datasets" / "luma_features"


def test_concurrent_threads_write_one_whole_file(tmp_path):
    big = np.arange(2_000_000, dtype=np.float32).reshape(-1, 100)
    keys = [content_key(str(i)) for i in range(len(big))]
    start = threading.Barrier(4)

    def write():
        start.wait()  # all four write the same rows at the same time
        FeatureCache(tmp_path, "image", "m", None).write(keys, big)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folder = FeatureCache(tmp_path, "image", "m", None).folder
    (path,) = folder.iterdir()  # one file, no temporary left
    np.testing.assert_array_equal(np.load(path)["features"], big)


_WRITER = """
import sys
from pathlib import Path
import numpy as np
from luma_noise.atomic import write_npz
value = int(sys.argv[2])
for _ in range(15):
    write_npz(Path(sys.argv[1]), {"features": np.full((1000, 1000), value, dtype=np.float32)})
"""


def test_concurrent_processes_never_expose_a_partial_file(tmp_path):
    path = tmp_path / "shared.npz"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(v)]) for v in (1, 2)]
    reads = 0
    while any(w.poll() is None for w in writers):
        try:
            with np.load(path) as data:
                array = data["features"]
        except FileNotFoundError:
            continue
        assert array.shape == (1000, 1000) and array[0, 0] in (1, 2) and (array == array[0, 0]).all()
        reads += 1
    assert [w.returncode for w in writers] == [0, 0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    assert reads > 0


# ---------------------------------------------------------------- the builder's feature source


class _Config:
    def __init__(self, models, **fields):
        for modality, path in models.items():
            setattr(self, f"{modality}_feature_model", path)
            setattr(self, f"{modality}_feature_revision", None)
        self.__dict__.update(fields)


class _Upstream:
    def __init__(self, images, texts, labels):
        import pandas as pd

        self.frame = type("Frame", (), {"images": np.stack(images)})()
        self.text = pd.DataFrame({"text": texts, "label": labels})

    def image_frame(self, split):
        return self.frame


def _write_wavs(folder, n, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(str(folder / f"{i}.wav"))
        soundfile.write(paths[-1], rng.uniform(-0.5, 0.5, size=2000 + 500 * i), 16000, subtype="PCM_16")
    return paths


class _Fetcher:
    """The build's `Fetcher` for wavs already on disk (datalist paths are the files), counting decodes."""

    def __init__(self, decoded):
        self.decoded = decoded

    def wav_files(self, paths):
        return list(paths)

    def read_wav(self, path):
        with open(path, "rb") as f:
            return f.read()

    def decoded_wav(self, path):
        self.decoded.append(path)
        samples, rate = soundfile.read(path, dtype="float32")
        return samples, rate


def _source(models, tmp_path, paths, decoded):
    import pandas as pd

    upstream = _Upstream(_images(4), ["a horse", "the man and men", "a horse", "two mice"],
                         ["horse", "man", "man", "mouse"])
    upstream.audio = pd.DataFrame({"path": paths})
    return FeatureSource(_Config(models), upstream, _Fetcher(decoded), tmp_path / "cache")


def test_feature_source_keys_audio_by_content_and_text_by_masked_word(models, tmp_path, loads):
    paths, decoded = _write_wavs(tmp_path / "wav", 4, seed=0), []
    source = _source(models, tmp_path, paths, decoded)
    before = source("audio", "train", np.arange(4))
    assert sorted(decoded) == sorted(paths)
    # A wav rewritten in place (same path, new content): only it is computed again.
    soundfile.write(paths[2], np.random.default_rng(9).uniform(-0.5, 0.5, size=3000), 16000, subtype="PCM_16")
    decoded.clear()
    after = _source(models, tmp_path, paths, decoded)("audio", "train", np.array([3, 2, 1, 0]))[::-1]
    assert decoded == [paths[2]]
    np.testing.assert_array_equal(after[[0, 1, 3]], before[[0, 1, 3]])
    assert not np.allclose(after[2], before[2])
    # Text rows 0 and 2 hold the same text with other class words: two keys, two masked inputs.
    text = source("text", "train", np.arange(4))
    assert not np.allclose(text[0], text[2])
    # One FeatureSource (one build), asked modality by modality, loads each model once and
    # keeps only the one in use.
    source("text", "test", np.array([3, 1]))
    source("image", "train", np.arange(2))
    source("image", "test", np.arange(4))
    assert sorted(loads) == ["audio", "audio", "image", "text"]  # audio: two FeatureSources above
    assert [m for m, e in source.extractors.items() if e._loaded is not None] == ["image"]


def test_feature_source_decodes_clips_one_batch_at_a_time(models, tmp_path, monkeypatch):
    paths, decoded = _write_wavs(tmp_path / "wav", 6, seed=1), []
    source = _source(models, tmp_path, paths, decoded)
    source.extractor("audio").batch_size = 2
    decoded_at_forward = []
    real = deep_features._embed_audio

    def spy(inputs, model):
        decoded_at_forward.append(len(decoded))
        return real(inputs, model)

    monkeypatch.setattr(deep_features, "_STEPS", {**deep_features._STEPS, "audio": (deep_features._audio_inputs, spy)})
    source("audio", "train", np.arange(6))
    # before the k-th forward pass: batches 1..k decoded, batch k + 1 perhaps (prepared ahead)
    assert len(decoded_at_forward) == 3
    assert all(2 * k <= n <= 2 * (k + 1) for k, n in enumerate(decoded_at_forward, 1))


# ---------------------------------------------------------------- through load_dataset


def test_builds_share_rows_and_load_each_model_once(mirror, models, tmp_path, loads):
    model_kwargs = {f"{m}_feature_model": path for m, path in models.items()}
    load("label_noise_0.3", mirror=str(mirror[0]), cache_dir=str(tmp_path / "a"), **model_kwargs)
    assert sorted(loads) == ["audio", "image", "text"]  # train and test split: one load each
    features_folder = tmp_path / "a" / "luma_features"  # under load_dataset's cache_dir
    assert {p.name.split("-")[0] for p in features_folder.iterdir()} == {"audio", "image", "text"}
    loads.clear()
    # Another seed and another config draw other rows of the same upstream: all cached.
    load("label_noise_0.1", mirror=str(mirror[0]), cache_dir=str(tmp_path / "a"), seed=7, **model_kwargs)
    assert loads == []
    # A fresh cache_dir does not see the old features.
    load("label_noise_0.1", mirror=str(mirror[0]), cache_dir=str(tmp_path / "b"), **model_kwargs)
    assert sorted(loads) == ["audio", "image", "text"]
    assert (tmp_path / "b" / "luma_features").is_dir()
