"""Unit tests of the upstream readers and the restricted unpickler."""

import io
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from luma_noise.upstream import sources
from luma_noise.classes import CLASS_ID
from luma_noise.upstream.safe_pickle import RefusedPickleError, safe_load
from luma_noise.fixtures.pickles import py2_pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo unpickled",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_dataframes_of_arrays_load_under_every_protocol(protocol):
    frame = pd.DataFrame({"image": [np.full((32, 32, 3), i, np.uint8) for i in range(3)],
                          "label": pd.Series(["fish", "bee", "oak"], dtype=object)})
    frame.columns = pd.Index(["image", "label"], dtype=object)
    loaded = safe_load(io.BytesIO(pickle.dumps(frame, protocol=protocol)), "edm_images.pickle")
    assert loaded["label"].tolist() == ["fish", "bee", "oak"]
    assert all(np.array_equal(a, b) for a, b in zip(loaded["image"], frame["image"]))


def test_anything_else_is_refused_naming_file_and_global():
    with pytest.raises(RefusedPickleError, match=r"edm_images.pickle: refused to load global (posix|os)\.system"):
        safe_load(io.BytesIO(pickle.dumps(_Evil())), "edm_images.pickle")


def test_a_malicious_cifar_member_is_refused():
    evil = pickle.dumps(_Evil(), protocol=2)
    members = [("cifar-10-batches-py/batches.meta", io.BytesIO(py2_pickle({"label_names": ["cat"]})))]
    members += [(f"cifar-10-batches-py/{name}", io.BytesIO(evil))
                for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")]
    with pytest.raises(RefusedPickleError, match="cifar-10-python.tar.gz:data_batch_1"):
        sources.read_cifar(members, "cifar-10-python.tar.gz")


def test_python2_cifar_batches_decode_to_hwc_images():
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    batch = py2_pickle({"data": data, "labels": [1, 0], "batch_label": "b", "filenames": ["a.png", "b.png"]})
    members = [("cifar-10-batches-py/batches.meta", io.BytesIO(py2_pickle({"label_names": ["cat", "dog"]})))]
    members += [(f"cifar-10-batches-py/data_batch_{i}", io.BytesIO(batch)) for i in range(1, 6)]
    members += [("cifar-10-batches-py/test_batch", io.BytesIO(batch)), ("cifar-10-batches-py/readme.html", io.BytesIO(b"<html>"))]
    parsed = sources.read_cifar(members, "cifar-10-python.tar.gz")
    images, names = parsed["train"]
    assert images.shape == (10, 32, 32, 3) and names[:2].tolist() == ["dog", "cat"]
    # pixel (0, 1) of image 0: red is byte 1, green byte 1025, blue byte 2049 of the row
    assert images[0, 0, 1].tolist() == [data[0, 1], data[0, 1025], data[0, 2049]]


def test_frames_rename_filter_and_keep_order():
    marks = iter(range(1, 100))

    def part(names):  # image i of the whole test is filled with the value i + 1
        images = np.stack([np.full((32, 32, 3), next(marks), np.uint8) for _ in names]) if names else None
        return images, np.array(names, dtype=object)

    cifar10 = {"train": part(["airplane", "truck", "cat"]), "test": part(["truck", "deer"])}
    cifar100 = {"train": part(["pickup_truck", "apple", "rose", "bicycle"]), "test": part(["bicycle", "oak_tree"])}
    edm = part(["roses", "apple"])
    train = sources.image_train_frame(cifar10, cifar100, edm)
    assert train.labels.tolist() == [CLASS_ID[n] for n in ("truck", "cat", "truck", "roses", "bicycle", "roses")]
    assert train.sources.tolist() == ["cifar10", "cifar10", "cifar100", "cifar100", "cifar100", "edm"]
    marks = [2, 3, 6, 8, 9, 12]  # truck, cat of cifar10's train; pickup_truck, rose, bicycle of cifar100's; edm's roses
    assert [int(train.images[i][0, 0, 0]) for i in range(6)] == marks and train.images.shape == (6, 32, 32, 3)
    gathered = train.images[np.array([5, 0, 3])]
    assert gathered.flags.c_contiguous and [int(image.max()) for image in gathered] == [12, 2, 8]
    assert (gathered == np.array([12, 2, 8], np.uint8)[:, None, None, None]).all()
    test = sources.image_test_frame(cifar10, cifar100)
    assert test.labels.tolist() == [CLASS_ID["oak"]]  # truck and bicycle are out-of-distribution


def test_split_files_are_checked():
    assert sources.read_split(io.BytesIO(b"3\n1\n\n2\n"), "x.txt", 4).tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="x.txt: names some rows more than once"):
        sources.read_split(io.BytesIO(b"1\n1\n"), "x.txt", 4)
    with pytest.raises(ValueError, match="x.txt: row 4 is out of range; the indexed table has 4 rows"):
        sources.read_split(io.BytesIO(b"4\n"), "x.txt", 4)


def test_tables_select_columns_by_name():
    tsv = "\ttext\tlabel\textra\n0\ta horse\thorse\t1\n1\tsome cloud\tcloud\t2\n"
    frame = sources.read_texts(io.BytesIO(tsv.encode()))
    assert list(frame.columns) == ["text", "label", "label_id"]
    assert frame["label_id"].tolist() == [CLASS_ID["horse"], CLASS_ID["cloud"]]
    with pytest.raises(ValueError, match=r"datalist.csv: missing column\(s\) \['label'\]"):
        sources.read_datalist(io.BytesIO(b"path,tts_label\na.wav,x\n"))


def test_mirror_bases(tmp_path):
    upstream = {"luma": "https://h/luma/", "cifar": "https://c/"}
    assert sources.source_bases(upstream, None) == upstream
    assert sources.source_bases(upstream, "http://127.0.0.1:8000/m/") == {
        "luma": "http://127.0.0.1:8000/m/luma/", "cifar": "http://127.0.0.1:8000/m/cifar/"}
    assert sources.source_bases(upstream, str(tmp_path))["cifar"] == str(tmp_path / "cifar") + os.sep
    with pytest.raises(ValueError, match="neither an existing folder nor an http"):
        sources.source_bases(upstream, str(tmp_path / "missing"))


def test_an_image_column_slices_pixels_or_pngs_across_chunks():
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from luma_noise import examples

    images = np.stack([np.full((32, 32, 3), i % 251, np.uint8) for i in range(700)])
    rows = np.arange(699, -1, -1)  # every row, reversed
    plan = SimpleNamespace(split="train", image_rows=rows)
    upstream = SimpleNamespace(image_frame=lambda split: SimpleNamespace(images=images))
    pixels = examples.ImageColumn(plan, upstream)
    assert [int(image[0, 0, 0]) for image in pixels[250:600]] == [int(r) % 251 for r in rows[250:600]]
    with ThreadPoolExecutor(2) as pool:
        pngs = examples.ImageColumn(plan, upstream, pool)
        assert pngs[250:600] == [examples.png_bytes(images[r]) for r in rows[250:600]]  # chunks 0-2 of 256
        assert pngs[600:800] == [examples.png_bytes(images[r]) for r in rows[600:]]
