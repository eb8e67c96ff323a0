"""The fixture mirror matches the upstream formats described in LUMA_SOURCES.md."""
import io
import json
import pickle
import pickletools
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from luma_noise.classes import CIFAR_RENAMES, CLASSES, ID_CLASSES, OOD_CLASSES
from luma_noise.fixtures.pickles import py2_pickle
from luma_noise.fixtures.mirror import (
    CIFAR100_NAMES, CIFAR10_NAMES, decode_audio_marker, decode_image_marker, fixture_image,
    fixture_text, luma_class_id, main, plan_sizes, write_mirror,
)

ARRAY_MEMBERS = {
    "cifar-10-python.tar.gz": ["cifar-10-batches-py/data_batch_1",
                               "cifar-10-batches-py/test_batch"],
    "cifar-100-python.tar.gz": ["cifar-100-python/train", "cifar-100-python/test"],
}

REAL_FINE_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm
"""


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """(root, manifest) of the default small mirror."""
    root = tmp_path_factory.mktemp("mirror")
    return root, write_mirror(root, seed=0)


def _members(root: Path, tarball: str) -> dict[str, bytes]:
    """name -> bytes (None for directories) of one CIFAR tarball."""
    with tarfile.open(root / "cifar" / tarball) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar}


def _image_source_frames(root: Path) -> dict[str, tuple[list, np.ndarray]]:
    """source -> (label names, HWC images) read back the way a loader would."""
    c10, c100 = _members(root, "cifar-10-python.tar.gz"), _members(root, "cifar-100-python.tar.gz")
    load = lambda raw: pickle.loads(raw, encoding="latin1")  # noqa: E731
    hwc = lambda data: data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # noqa: E731
    names10 = load(c10["cifar-10-batches-py/batches.meta"])["label_names"]
    names100 = load(c100["cifar-100-python/meta"])["fine_label_names"]
    batches = [load(c10[f"cifar-10-batches-py/data_batch_{i}"]) for i in range(1, 6)]
    test10 = load(c10["cifar-10-batches-py/test_batch"])
    out = {
        "cifar10_train": ([names10[i] for b in batches for i in b["labels"]],
                          hwc(np.concatenate([b["data"] for b in batches]))),
        "cifar10_test": ([names10[i] for i in test10["labels"]], hwc(test10["data"])),
    }
    for part in ("train", "test"):
        d = load(c100[f"cifar-100-python/{part}"])
        out[f"cifar100_{part}"] = ([names100[i] for i in d["fine_labels"]], hwc(d["data"]))
    edm = pd.read_pickle(root / "luma" / "edm_images.pickle")
    out["edm"] = (list(edm["label"]), np.stack(list(edm["image"])))
    return out


# ---- CIFAR tarballs and their Python 2 pickles --------------------------------------------
def test_tarball_members(mirror):
    root, _ = mirror
    batches = {f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)}
    assert set(_members(root, "cifar-10-python.tar.gz")) == batches | {
        "cifar-10-batches-py", "cifar-10-batches-py/test_batch",
        "cifar-10-batches-py/batches.meta", "cifar-10-batches-py/readme.html"}
    assert set(_members(root, "cifar-100-python.tar.gz")) == {
        "cifar-100-python", "cifar-100-python/train", "cifar-100-python/test",
        "cifar-100-python/meta", "cifar-100-python/file.txt~"}


@pytest.mark.parametrize("tarball,member", [(t, m) for t, ms in ARRAY_MEMBERS.items() for m in ms])
def test_python2_pickle_needs_an_encoding(mirror, tarball, member):
    raw = _members(mirror[0], tarball)[member]
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)  # like the real files: the array's raw bytes aren't ASCII
    latin1 = pickle.loads(raw, encoding="latin1")
    as_bytes = pickle.loads(raw, encoding="bytes")
    assert all(isinstance(k, str) for k in latin1)
    assert all(isinstance(k, bytes) for k in as_bytes)
    assert latin1["data"].dtype == np.uint8 and latin1["data"].shape[1] == 3072
    np.testing.assert_array_equal(latin1["data"], as_bytes[b"data"])
    label_key = "labels" if tarball.startswith("cifar-10-") else "fine_labels"
    assert len(latin1[label_key]) == len(latin1["filenames"]) == len(latin1["data"])
    expected = {"batch_label", "data", "filenames", label_key}
    assert set(latin1) == expected | ({"coarse_labels"} if label_key == "fine_labels" else set())


def test_python2_pickle_opcodes(mirror):
    raw = _members(mirror[0], "cifar-10-python.tar.gz")["cifar-10-batches-py/data_batch_1"]
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    names = {name for name, _ in ops}
    assert ops[0] == ("PROTO", 2)
    assert {"SHORT_BINSTRING", "BINSTRING"} <= names
    assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops
    assert ("GLOBAL", "numpy dtype") in ops


def test_cifar_meta_names(mirror):
    c10, c100 = (_members(mirror[0], t) for t in ARRAY_MEMBERS)
    meta10 = pickle.loads(c10["cifar-10-batches-py/batches.meta"], encoding="latin1")
    meta100 = pickle.loads(c100["cifar-100-python/meta"], encoding="latin1")
    assert meta10["label_names"] == ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]
    assert meta10["num_vis"] == 3072
    fine = meta100["fine_label_names"]
    assert fine == REAL_FINE_NAMES.split()
    assert len(meta100["coarse_label_names"]) == 20
    assert {"truck", "airplane", "automobile", "deer"} <= set(CIFAR10_NAMES)
    assert {"pickup_truck", "apple"} <= set(CIFAR100_NAMES)


def test_py2_pickle_batches_and_ints():
    obj = {"many": list(range(2500)), "one": ["x"], "none": [], "big": 70000, "neg": -1}
    back = pickle.loads(py2_pickle(obj), encoding="latin1")
    assert back == obj
    with pytest.raises(TypeError, match="float64"):
        py2_pickle(np.zeros(3))


# ---- image frames and markers ----------------------------------------------------------------
def test_image_frames_follow_the_split_semantics(mirror):
    root, manifest = mirror
    sources = _image_source_frames(root)

    def frame(names, keep):
        return [[s, i, CIFAR_RENAMES.get(n, n)] for s in names for i, n in enumerate(sources[s][0])
                if CIFAR_RENAMES.get(n, n) in keep]

    assert manifest["image_train_frame"] == frame(["cifar10_train", "cifar100_train", "edm"],
                                                  CLASSES)
    assert manifest["image_test_frame"] == frame(["cifar10_test", "cifar100_test"], ID_CLASSES)
    for source, (names, images) in sources.items():
        assert manifest["source_labels"][source] == names
    assert "apple" in sources["edm"][0] and "apple" in sources["cifar100_train"][0]
    assert {"airplane", "automobile", "deer", "truck"} <= set(sources["cifar10_train"][0])


def test_image_markers_and_texture(mirror):
    root, manifest = mirror
    sources = _image_source_frames(root)
    for source, (names, images) in sources.items():
        for row, (name, image) in enumerate(zip(names, images)):
            expected = fixture_image(source, row, name)
            np.testing.assert_array_equal(image, expected)
            assert decode_image_marker(image) == (luma_class_id(name), source, row)
    image = fixture_image("cifar10_train", 7, "horse")
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 20
    assert not np.array_equal(image[1:], fixture_image("cifar10_train", 8, "horse")[1:])
    assert not np.array_equal(image[1:], fixture_image("cifar10_test", 7, "horse")[1:])


def test_edm_pickle_round_trips(mirror):
    frame = pd.read_pickle(mirror[0] / "luma" / "edm_images.pickle")
    assert list(frame.columns) == ["image", "label"]
    assert frame["image"].dtype == object
    assert all(a.shape == (32, 32, 3) and a.dtype == np.uint8 for a in frame["image"])
    assert set(OOD_CLASSES) <= set(frame["label"])  # LUMA names, OOD ones included
    assert (frame["label"] == "apple").sum() >= 1 and "fish" in set(frame["label"])


# ---- audio, text ---------------------------------------------------------------------------
def test_datalist_and_wavs(mirror):
    root, manifest = mirror
    datalist = pd.read_csv(root / "luma" / "audio" / "datalist.csv")
    assert list(datalist.columns) == ["path", "label", "tts_label"]
    assert list(datalist["label"]) == manifest["audio_labels"]
    assert {p.split("/")[0] for p in datalist["path"]} == {"cv_audio", "ls_audio", "sw_audio",
                                                           "re_audio"}
    assert all(re.fullmatch(r"\w+_audio/[a-z]+/\d+\.wav", p) for p in datalist["path"])
    for row in range(0, len(datalist), 37):
        path, label = datalist.loc[row, "path"], datalist.loc[row, "label"]
        assert path.split("/")[1] == label
        info = sf.info(root / "luma" / "audio" / path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        samples, _ = sf.read(root / "luma" / "audio" / path, dtype="int16")
        assert decode_audio_marker(samples) == (CLASSES.index(label), row)
        assert len(samples) == 4000
        rms = np.sqrt(np.mean((samples[3:] / 32768.0) ** 2))
        assert 0.15 < rms < 0.3  # a 0.3 full-scale tone plus a little noise


def test_text_tsv(mirror):
    root, manifest = mirror
    path = root / "luma" / "text_data.tsv"
    assert path.read_text().split("\n", 1)[0] == "\ttext\tlabel\tsource"
    table = pd.read_csv(path, sep="\t")
    assert list(table["label"]) == manifest["text_labels"]
    for row, (text, label) in enumerate(zip(table["text"], table["label"])):
        words = set(text.replace(".", "").replace(",", "").split())
        assert label in words and len(text.split()) >= 15
        assert not words & (set(CLASSES) - {label})  # no other class is named
        assert text == fixture_text(row, label)
    assert table["text"].nunique() > 0.9 * len(table)


# ---- split files ---------------------------------------------------------------------------
def _labels(manifest, modality, part):
    if modality == "image":
        frame = manifest["image_train_frame" if part == "train_clean" else "image_test_frame"]
        return [r[2] for r in frame]
    return manifest[f"{modality}_labels"]


@pytest.mark.parametrize("modality", ["audio", "image", "text"])
def test_split_files(mirror, modality):
    root, manifest = mirror
    rows = {}
    for part, per_class in (("train_clean", 3), ("test", 2)):
        text = (root / "splits" / f"{modality}_{part}.txt").read_text()
        rows[part] = [int(line) for line in text.splitlines()]
        assert rows[part] == manifest["splits"][f"{modality}_{part}"]
        assert rows[part] != sorted(rows[part])
        labels = _labels(manifest, modality, part)
        counts = pd.Series([labels[r] for r in rows[part]]).value_counts()
        assert counts.to_dict() == {c: per_class for c in ID_CLASSES}
        assert len(set(rows[part])) == len(rows[part])
        assert len(rows[part]) < len(labels)  # spare rows exist
    if modality == "image":
        frame = manifest["image_train_frame"]
        assert all(frame[r][0] != "edm" for r in rows["train_clean"])
    else:
        assert not set(rows["train_clean"]) & set(rows["test"])


def test_ood_counts_exercise_the_min_rule(mirror):
    _, manifest = mirror
    train = pd.Series([r[2] for r in manifest["image_train_frame"]]).value_counts()
    minimum_of = set()
    for cls, counts in manifest["ood_counts"].items():
        assert counts == {"image": int(train[cls]),
                          "audio": manifest["audio_labels"].count(cls),
                          "text": manifest["text_labels"].count(cls)}
        if list(counts.values()).count(min(counts.values())) == 1:
            minimum_of.add(min(counts, key=counts.get))
    assert minimum_of == {"image", "audio", "text"}
    assert len({tuple(c.values()) for c in manifest["ood_counts"].values()}) > 4


# ---- ESC-50 --------------------------------------------------------------------------------
def test_esc50_zip(mirror):
    root, manifest = mirror
    with zipfile.ZipFile(root / "esc50" / "master.zip") as zf:
        names = zf.namelist()
        meta = pd.read_csv(io.BytesIO(zf.read("ESC-50-master/meta/esc50.csv")))
        wavs = {n: zf.read(n) for n in names if n.endswith(".wav")}
    assert list(meta.columns) == ["filename", "fold", "target", "category", "esc10",
                                  "src_file", "take"]
    assert sorted(meta["filename"]) == sorted(manifest["esc50_files"]) and len(meta) >= 6
    for r in meta.to_dict("records"):
        assert r["filename"] == f"{r['fold']}-{r['src_file']}-{r['take']}-{r['target']}.wav"
        assert f"ESC-50-master/audio/{r['filename']}" in wavs
    for data in wavs.values():
        samples, rate = sf.read(io.BytesIO(data), dtype="int16")
        assert rate == 44100 and samples.ndim == 1 and len(samples) == 44100
        assert np.sqrt(np.mean((samples / 32768.0) ** 2)) > 0.03


# ---- manifest, determinism, scale -------------------------------------------------------------
def test_manifest_file_matches_return_value(mirror):
    root, manifest = mirror
    assert json.loads((root / "manifest.json").read_text()) == manifest


def test_same_seed_same_bytes(mirror, tmp_path):
    root, manifest = mirror
    again = write_mirror(tmp_path / "a", seed=0)
    other = write_mirror(tmp_path / "b", seed=1)
    for rel in ("cifar/cifar-10-python.tar.gz", "cifar/cifar-100-python.tar.gz",
                "splits/audio_test.txt", "luma/text_data.tsv", "esc50/master.zip"):
        assert (tmp_path / "a" / rel).read_bytes() == (root / rel).read_bytes()
    assert again == manifest
    assert other["splits"] != manifest["splits"]


def test_scale_interpolates(tmp_path):
    manifest = write_mirror(tmp_path, scale=0.02)
    assert manifest["sizes"]["per_class_train"] == 10  # round(500 * 0.02)
    assert len(manifest["splits"]["text_train_clean"]) == 42 * 10
    assert len(manifest["splits"]["image_test"]) == 42 * 2  # never below the default
    assert len(manifest["source_labels"]["cifar10_train"]) == 1000
    assert len(manifest["source_labels"]["cifar100_test"]) == 100 * 2 + 44  # 3 per LUMA class
    assert len(manifest["audio_labels"]) == round(135_096 * 0.02)
    assert len(manifest["text_labels"]) == round(62_875 * 0.02)


def test_scale_one_plans_the_real_counts():
    plan = plan_sizes(1.0)
    assert (plan["per_class_train"], plan["per_class_test"]) == (500, 100)
    assert sum(plan["cifar10_train"].values()) == 50_000
    assert sum(plan["cifar10_test"].values()) == 10_000
    assert set(plan["cifar100_train"].values()) == {500}
    assert set(plan["cifar100_test"].values()) == {100}
    assert sum(plan["audio"]) == 135_096 and sum(plan["text"]) == 62_875
    assert 1000 < sum(plan["edm"].values()) < 10_000


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"scale": 1.5}, {"per_class_train": 0}])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError):
        plan_sizes(**kwargs)


def test_bad_audio_length_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="audio_seconds"):
        write_mirror(tmp_path, audio_seconds=5.0)


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path / "m"), "--seed", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["seed"] == 3


def test_planted_mirror_plants_known_neighbours_and_offsets(tmp_path):
    """The planted mirror's answers: partner classes that are nobody's (c + 1), colours a
    grid apart, offsets symmetric per class with EDM on the centre, texts of planted words."""
    from luma_noise.fixtures.mirror import image_partner, planted_colours, planted_offsets, text_partner

    ids = range(len(ID_CLASSES))
    for partner in (image_partner, text_partner):
        assert all(partner(partner(c)) == c != partner(c) and 0 <= partner(c) < len(ID_CLASSES) for c in ids)
    assert all(len({image_partner(c), text_partner(c), (c + 1) % 42, c - 1}) == 4 for c in ids)
    colours = planted_colours(list(ids)).astype(float)
    distance = np.linalg.norm(colours[:, None] - colours[None], axis=2) + np.diag([np.inf] * len(ID_CLASSES))
    assert [int(np.argmin(row)) for row in distance] == [image_partner(c) for c in ids]
    manifest = write_mirror(tmp_path, per_class_pool=6, planted=True)
    assert manifest["sizes"]["planted"] and manifest["sizes"]["cifar10_train"]["horse"] == 6
    offsets = planted_offsets("cifar10_train", manifest["source_labels"]["cifar10_train"])
    horse = np.array(manifest["source_labels"]["cifar10_train"]) == "horse"
    assert sorted(offsets[horse].tolist()) == [-4, -3, -2, 2, 3, 4]
    assert not planted_offsets("edm", ["man", "boy"]).any()
    texts = pd.read_csv(tmp_path / "luma" / "text_data.tsv", sep="\t")
    assert all(t.split()[:2] == ["the", label] for t, label in zip(texts["text"], texts["label"]))
