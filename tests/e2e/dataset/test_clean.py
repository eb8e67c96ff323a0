"""End-to-end tests of the `clean` config through `datasets.load_dataset` on the script path."""

import collections
from pathlib import Path

import numpy as np

from tests.support.helpers import load, rows, wav_samples
from luma_noise.fixtures.mirror import fixture_image, fixture_text
from luma_noise.classes import CLASSES, ID_CLASSES, OOD_CLASSES


def test_split_sizes_and_balance(clean, mirror):
    _, manifest = mirror
    per_train = len(manifest["splits"]["audio_train_clean"]) // len(ID_CLASSES)
    per_test = len(manifest["splits"]["audio_test"]) // len(ID_CLASSES)
    assert {s: len(v) for s, v in clean.items()} == {
        "train": per_train * 42, "test": per_test * 42, "ood": manifest["ood_total"]}
    for split, per_class in (("train", per_train), ("test", per_test)):
        counts = collections.Counter(ex["label"] for ex in clean[split])
        assert counts == {i: per_class for i in range(42)}
    ood_counts = collections.Counter(CLASSES[ex["label"]] for ex in clean["ood"])
    assert ood_counts == {name: min(c.values()) for name, c in manifest["ood_counts"].items() if min(c.values())}
    assert set(ood_counts) <= set(OOD_CLASSES)


def test_every_modality_carries_the_example_label(clean, mirror):
    for split, examples in clean.items():
        for ex in examples:
            name = CLASSES[ex["label"]]
            assert ex["image"][0, 0, 0] == ex["label"], (split, ex["image_index"])
            assert wav_samples(ex["audio"]["bytes"])[0] == ex["label"], (split, ex["audio_path"])
            assert f"/{name}/" in ex["audio_path"]
            assert name in ex["text"].lower()


def test_train_and_test_are_exactly_the_split_files(clean, mirror):
    root, manifest = mirror
    audio_paths = manifest["audio_paths"]
    for split, stem in (("train", "train_clean"), ("test", "test")):
        examples = clean[split]
        assert sorted(ex["image_index"] for ex in examples) == sorted(manifest["splits"][f"image_{stem}"])
        assert sorted(ex["text_index"] for ex in examples) == sorted(manifest["splits"][f"text_{stem}"])
        assert sorted(ex["audio_path"] for ex in examples) == sorted(audio_paths[r] for r in manifest["splits"][f"audio_{stem}"])
    assert all(ex["image_source"] != "edm" for ex in clean["train"])


def test_images_and_audio_are_lossless(clean, mirror):
    root, manifest = mirror
    frames = {"train": manifest["image_train_frame"], "test": manifest["image_test_frame"], "ood": manifest["image_train_frame"]}
    for split, examples in clean.items():
        for ex in examples:
            source, source_row, label = frames[split][ex["image_index"]]
            assert ex["image_source"] == source.split("_")[0]
            np.testing.assert_array_equal(ex["image"], fixture_image(source, source_row, label))
            assert ex["audio"]["bytes"] == (Path(root) / "luma" / "audio" / ex["audio_path"]).read_bytes()
            assert ex["text"] == fixture_text(ex["text_index"], manifest["text_labels"][ex["text_index"]])


def test_ood_draws_from_every_ood_row_including_edm(clean, mirror):
    """Per OOD class, the image candidates are all its train-frame rows, EDM ones included:
    where images are the class's smallest modality every one of them is drawn."""
    _, manifest = mirror
    frame = manifest["image_train_frame"]
    drawn = collections.defaultdict(set)
    for ex in clean["ood"]:
        assert CLASSES[ex["label"]] in OOD_CLASSES
        assert frame[ex["image_index"]][2] == CLASSES[ex["label"]]
        drawn[CLASSES[ex["label"]]].add(ex["image_index"])
    keys = [(ex["image_index"], ex["audio_path"], ex["text_index"]) for ex in clean["ood"]]
    assert len(set(keys)) == len(keys)
    image_smallest = [c for c, counts in manifest["ood_counts"].items() if counts["image"] == min(counts.values())]
    assert image_smallest
    for name in image_smallest:
        assert drawn[name] == {i for i, (_, _, label) in enumerate(frame) if label == name}
    assert any(frame[i][0] == "edm" for name in image_smallest for i in drawn[name])


def test_the_wav_bytes_are_stored_whatever_the_working_directory(clean, mirror, tmp_path, monkeypatch):
    # from the upstream's audio folder every `audio_path` names a file: `datasets` would keep the path only
    root, _ = mirror
    monkeypatch.chdir(Path(root) / "luma" / "audio")
    test = rows(load(mirror=str(root), cache_dir=str(tmp_path / "cache"), split="test"))
    assert [ex["audio"] for ex in test] == [ex["audio"] for ex in clean["test"]]
    assert all(ex["audio"]["bytes"] and ex["audio"]["path"] is None for ex in test)
