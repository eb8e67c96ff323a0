"""Python 2 pickles, as cPickle wrote CIFAR's batches: the opcodes written by hand.

Python 2 wrote str keys, str values and an ndarray's raw bytes with the STRING opcodes, which
Python 3 decodes as text unless told `encoding="latin1"` or `"bytes"`; a Python 3 pickle of
the same dict does not behave that way, so a faithful fixture writes those opcodes itself.
"""

import io
import struct

import numpy as np


_BATCHSIZE = 1000  # cPickle flushed APPENDS / SETITEMS every 1000 items


class _Raw(bytes):
    """Opcodes already serialised, emitted verbatim (the REDUCE-built dtype)."""


def py2_pickle(obj) -> bytes:
    """Pickle `obj` as Python 2's cPickle did at protocol 2: str as STRING opcodes.

    Handles dict, list, tuple, str/bytes, int, bool, None and uint8 ndarrays (pickled
    through ``numpy.core.multiarray._reconstruct``), enough for CIFAR's dicts. Python 3
    then needs ``encoding="latin1"`` or ``"bytes"`` to load arrays holding bytes >= 128.
    """
    out = io.BytesIO()
    out.write(b"\x80\x02")
    _emit(out, obj)
    out.write(b".")
    return out.getvalue()


def _emit(out: io.BytesIO, obj) -> None:
    """Write the opcodes for one object."""
    if isinstance(obj, _Raw):
        out.write(obj)
    elif isinstance(obj, np.ndarray):
        _emit_array(out, obj)
    elif isinstance(obj, (str, bytes)):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        head = b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))
        out.write(head)
        out.write(data)
    elif isinstance(obj, bool):
        out.write(b"\x88" if obj else b"\x89")
    elif isinstance(obj, int):
        _emit_int(out, obj)
    elif obj is None:
        out.write(b"N")
    elif isinstance(obj, tuple):
        _emit_tuple(out, obj)
    elif isinstance(obj, (list, dict)):
        _emit_container(out, obj)
    else:
        raise TypeError(f"py2_pickle cannot write {type(obj).__name__}")


def _emit_int(out: io.BytesIO, n: int) -> None:
    """BININT1 / BININT2 for small non-negative ints, else BININT (signed 32 bit)."""
    if 0 <= n < 256:
        out.write(b"K" + bytes([n]))
    elif 0 <= n < 65536:
        out.write(b"M" + struct.pack("<H", n))
    else:
        out.write(b"J" + struct.pack("<i", n))


def _emit_tuple(out: io.BytesIO, items: tuple) -> None:
    """TUPLE1..3 for short tuples, MARK ... TUPLE for longer ones."""
    if len(items) > 3:
        out.write(b"(")
    for item in items:
        _emit(out, item)
    out.write({0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(items), b"t"))


def _emit_container(out: io.BytesIO, obj) -> None:
    """EMPTY_LIST / EMPTY_DICT, then items in batches of 1000 (APPEND(S) / SETITEM(S))."""
    is_dict = isinstance(obj, dict)
    out.write(b"}" if is_dict else b"]")
    items = list(obj.items()) if is_dict else list(obj)
    for start in range(0, len(items), _BATCHSIZE):
        batch = items[start:start + _BATCHSIZE]
        if len(batch) > 1:
            out.write(b"(")
        for item in batch:
            for part in (item if is_dict else (item,)):
                _emit(out, part)
        out.write((b"u" if len(batch) > 1 else b"s") if is_dict
                  else (b"e" if len(batch) > 1 else b"a"))


def _emit_array(out: io.BytesIO, arr: np.ndarray) -> None:
    """``_reconstruct(ndarray, (0,), 'b')`` then BUILD ``(1, shape, dtype, False, raw)``."""
    if arr.dtype != np.uint8:
        raise TypeError(f"py2_pickle writes uint8 arrays only, got {arr.dtype}")
    dtype = io.BytesIO()
    dtype.write(b"cnumpy\ndtype\n")
    _emit_tuple(dtype, ("u1", 0, 1))
    dtype.write(b"R")
    _emit_tuple(dtype, (3, "|", None, None, None, -1, -1, 0))
    dtype.write(b"b")
    out.write(b"cnumpy.core.multiarray\n_reconstruct\n")
    _emit_tuple(out, (_Raw(b"cnumpy\nndarray\n"), (0,), "b"))
    out.write(b"R")
    _emit_tuple(out, (1, tuple(arr.shape), _Raw(dtype.getvalue()), False,
                      np.ascontiguousarray(arr).tobytes()))
    out.write(b"b")
