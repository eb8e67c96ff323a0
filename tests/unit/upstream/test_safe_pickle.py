"""The restricted unpickler against tampered files: each is refused with an error, never a crash.

Each tampered pickle below crashes the process (segmentation fault) when loaded by a plain
`pickle.load`; the loads run in a subprocess so a crash fails the test instead of killing it.
"""

import io
import pickle
import pickletools
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from luma_noise.upstream.safe_pickle import RefusedPickleError, safe_load
from luma_noise.fixtures.pickles import py2_pickle


def tampered_arrow_pickle() -> bytes:
    """A DataFrame with an Arrow-backed string column whose last offset points 1 TB away."""
    frame = pd.DataFrame({"label": pd.Series(["fish", "bee", "oak"], dtype=pd.StringDtype("pyarrow"))})
    data = pickle.dumps(frame)
    offsets = np.array([0, 4, 7, 10], np.int64).tobytes()  # large_string offsets
    assert data.count(offsets) == 1
    return data.replace(offsets, np.array([0, 4, 7, 1 << 40], np.int64).tobytes())


def _object_frame(labels=("a", "b")) -> pd.DataFrame:
    frame = pd.DataFrame({"x": pd.Series(list(labels), dtype=object), "n": np.arange(len(labels)),
                          "y": pd.Series(list(labels), dtype=object)})
    frame.columns = pd.Index(["x", "n", "y"], dtype=object)
    return frame


def tampered_placement_pickle() -> bytes:
    """An object frame whose first block claims column 100,000,000 of 3."""
    data = pickle.dumps(_object_frame(), protocol=4)
    old = b"K\x00K\x04K\x02\x87"  # slice(0, 4, 2): columns x and y
    assert data.count(old) == 1
    data = data.replace(old, b"K\x00J" + struct.pack("<i", 200_000_000) + b"J" + struct.pack("<i", 100_000_000) + b"\x87")
    return data[:2] + b"\x95" + struct.pack("<Q", len(data) - 11) + data[11:]  # fix the FRAME length


def tampered_dtype_pickle() -> bytes:
    """A structured array whose only field sits 100 MB past its 8-byte items."""
    data = pickle.dumps(np.zeros(1, [("a", "i8")]), protocol=2)
    assert data.count(b"K\x00\x86") == 1  # the field's (dtype, offset 0)
    return data.replace(b"K\x00\x86", b"J" + struct.pack("<i", 100_000_000) + b"\x86")


def built_twice_pickle() -> bytes:
    """An array given its state, then given it again through the memo (BUILD twice)."""
    data = pickle.dumps(np.arange(3, dtype=np.uint8), protocol=2)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    # the array: the REDUCE whose memo slot is followed by its state's MARK; the state: the tuple before BUILD
    array = next(ops[i + 1][1] for i, (name, _) in enumerate(ops) if name == "REDUCE" and ops[i + 2][0] == "MARK")
    build = max(i for i, (name, _) in enumerate(ops) if name == "BUILD")
    state = ops[build - 1][1]
    assert ops[build - 1][0] == "BINPUT" and ops[build - 2][0] == "TUPLE"
    return data[:-1] + b"0h" + bytes([array]) + b"h" + bytes([state]) + b"b."


def _load_in_subprocess(data: bytes, tmp_path, loader: str) -> subprocess.CompletedProcess:
    path = tmp_path / "tampered.pickle"
    path.write_bytes(data)
    code = textwrap.dedent(f"""
        import pickle, sys
        from luma_noise.upstream.safe_pickle import safe_load
        with open({str(path)!r}, "rb") as f:
            loaded = {loader}
        print(repr(loaded)[:200])
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("make, message", [
    (tampered_arrow_pickle, ": Arrow-backed columns are rebuilt from raw buffers"),
    (tampered_placement_pickle, "placement 100000000: outside the 3 columns"),
    (tampered_dtype_pickle, "not allowed"),
])
def test_tampered_pickles_are_refused_cleanly_where_plain_pickle_crashes(make, message, tmp_path):
    data = make()
    plain = _load_in_subprocess(data, tmp_path, "pickle.load(f)\n        print(loaded.iloc[:, 0].tolist() if hasattr(loaded, 'columns') else loaded['a'])")
    assert plain.returncode < 0 or plain.returncode > 128, (plain.returncode, plain.stdout, plain.stderr[-300:])
    refused = _load_in_subprocess(data, tmp_path, "safe_load(f, 'edm_images.pickle')")
    assert refused.returncode == 1, (refused.returncode, refused.stderr[-500:])
    assert "edm_images.pickle" in refused.stderr and message in refused.stderr
    assert len(refused.stderr.splitlines()[-1]) < 600  # the error carries no heap dump


def test_arrow_backed_frames_are_refused_saying_so():
    frame = pd.DataFrame({"label": pd.Series(["fish"], dtype=pd.StringDtype("pyarrow"))})
    with pytest.raises(RefusedPickleError, match="Arrow-backed columns .* expected object or numeric columns"):
        safe_load(io.BytesIO(pickle.dumps(frame)), "edm_images.pickle")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numeric_and_object_frames_round_trip(protocol):
    frame = pd.DataFrame({"i": np.arange(4, dtype=np.int16), "f": np.linspace(0, 1, 4), "b": [True, False] * 2,
                          "o": np.array([np.zeros(2), "x", 3, None], dtype=object)}, index=pd.RangeIndex(10, 14))
    frame.columns = pd.Index(["i", "f", "b", "o"], dtype=object)
    loaded = safe_load(io.BytesIO(pickle.dumps(frame, protocol=protocol)), "frame.pickle")
    assert list(loaded.columns) == ["i", "f", "b", "o"] and list(loaded.index) == [10, 11, 12, 13]
    assert loaded.dtypes.tolist() == frame.dtypes.tolist()
    assert loaded["i"].tolist() == [0, 1, 2, 3] and loaded["b"].tolist() == [True, False, True, False]
    assert np.array_equal(loaded["o"][10], np.zeros(2)) and loaded["o"].tolist()[1:] == ["x", 3, None]


def test_a_pickle_cannot_change_numpys_shared_dtypes():
    """dtype('i8', copy=False) is numpy's singleton: its state must never be set from a file."""
    data = pickle.dumps(np.dtype("i8"), protocol=2).replace(b"\x88\x87", b"\x89\x87", 1)  # copy=True -> False
    loaded = safe_load(io.BytesIO(data), "dtype.pickle")
    assert loaded == np.dtype("i8") and loaded is not np.dtype("i8")


def test_setting_an_arrays_state_twice_is_refused():
    data = built_twice_pickle()
    assert pickle.loads(data).tolist() == [0, 1, 2]  # plain pickle accepts it
    with pytest.raises(ValueError, match="array.pickle: not a readable pickle .*only new arrays and dtypes, once"):
        safe_load(io.BytesIO(data), "array.pickle")


def _pandas1_frame_pickle(images, labels) -> bytes:
    """A DataFrame pickled the way pandas 1.x wrote one (BlockManager state "0.14.1", `_mgr`),
    written with stand-in classes whose global names are then spelled as pandas 1.x's."""
    import types

    fake = types.ModuleType("luma_fake_pandas")
    sys.modules[fake.__name__] = fake

    def stand_in(name, **members):
        cls = type(name, (), members)
        cls.__module__ = fake.__name__
        setattr(fake, name, cls)
        return cls

    index_cls = stand_in("Index")
    range_cls = stand_in("RangeIndex")

    def new_index(cls, state):
        raise AssertionError("never called: only pickled")

    new_index.__module__, new_index.__qualname__ = fake.__name__, "_new_Index"
    fake._new_Index = new_index
    index = lambda cls, state: stand_in("_Idx", __reduce__=lambda self: (new_index, (cls, state)))()  # noqa: E731
    column = np.empty(len(images), dtype=object)
    column[:] = list(images)
    values = np.array([column, np.array(labels, dtype=object)], dtype=object)
    items = index(index_cls, {"data": np.array(["image", "label"], dtype=object), "name": None})
    rows = index(range_cls, {"name": None, "start": 0, "stop": len(images), "step": 1})
    manager = stand_in("BlockManager", __getstate__=lambda self: (
        [items, rows], [values], [items], {"0.14.1": {"axes": [items, rows], "blocks": [{"values": values, "mgr_locs": slice(0, 2, 1)}]}}))()
    frame = stand_in("DataFrame")()
    frame.__dict__.update({"_mgr": manager, "_typ": "dataframe", "_metadata": [], "attrs": {}, "_flags": {"allows_duplicate_labels": True}})
    data = pickle.dumps(frame, protocol=2)
    del sys.modules[fake.__name__]
    for name, real in (("DataFrame", "pandas.core.frame"), ("BlockManager", "pandas.core.internals.managers"),
                       ("_new_Index", "pandas.core.indexes.base"), ("Index", "pandas.core.indexes.base"),
                       ("RangeIndex", "pandas.core.indexes.range")):
        data = data.replace(f"c{fake.__name__}\n{name}\n".encode(), f"c{real}\n{name}\n".encode())
    assert fake.__name__.encode() not in data
    return data


def test_a_pandas_1_frame_pickle_loads():
    images = [np.full((32, 32, 3), i, np.uint8) for i in range(3)]
    loaded = safe_load(io.BytesIO(_pandas1_frame_pickle(images, ["fish", "bee", "oak"])), "edm_images.pickle")
    assert list(loaded.columns) == ["image", "label"] and loaded["label"].tolist() == ["fish", "bee", "oak"]
    assert all(np.array_equal(a, b) for a, b in zip(loaded["image"], images))


def test_python2_strings_load_as_with_latin1_and_long_ones_stay_bytes():
    rng = np.random.default_rng(0)
    batch = {"batch_label": "training batch 1 of 5", "labels": [3, 1],
             "data": rng.integers(0, 256, (30, 3072), dtype=np.uint8), "blob": "x" * 70_000}
    raw = py2_pickle(batch)
    plain = pickle.loads(raw, encoding="latin1")
    loaded = safe_load(io.BytesIO(raw), "batch", "latin1")
    np.testing.assert_array_equal(loaded["data"], batch["data"])
    assert loaded["data"].flags.writeable and loaded["batch_label"] == plain["batch_label"]
    assert loaded["blob"] == plain["blob"].encode("latin1")  # over 64 KiB: bytes, not text
    assert {k: v for k, v in loaded.items() if k not in ("data", "blob")} == {
        k: v for k, v in plain.items() if k not in ("data", "blob")}
