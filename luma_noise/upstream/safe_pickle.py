"""Unpickling of downloaded files without running their code or trusting their layout.

`edm_images.pickle` (a pandas DataFrame of object columns) and the CIFAR batches (Python 2
pickles of dicts holding uint8 arrays) come from the internet. A plain `pickle.load` calls
whatever the file names. Refusing unknown globals is not enough either: constructors that
rebuild objects from raw memory layouts crash the process on a tampered file. Measured on
pandas 3.1 / numpy 2.4: a string column's Arrow offsets (`pyarrow.lib._restore_array`),
a block placement of pandas' `BlockManager`, and a `numpy.dtype` state with a field offset
past the item size each end in a segmentation fault.

So no library unpickling code runs on the file's structure. Every name a pickle may ask
for resolves to one of the stand-ins below, and the audit of each says why it is safe:

- `numpy.dtype` -> `_new_dtype`: only plain bool, integer, float, complex, object, str and
  bytes codes (no structured, void, datetime or subarray dtypes); always a fresh copy (a
  pickle must never mutate numpy's shared singletons), and its one `BUILD` state must equal
  the state numpy itself writes for that code, byte order aside. This rules out forged
  field offsets, item sizes and flags.
- `numpy.ndarray` -> `_NDARRAY`, a marker only `_new_array` accepts (the class itself would
  let a pickle call `ndarray(shape, dtype, buffer, offset, strides)`).
- `numpy.core.multiarray._reconstruct` -> `_new_array`: an empty array, filled once by
  numpy's own `ndarray.__setstate__`, which refuses data whose length differs from
  shape x item size and object arrays not given as lists; the dtype is one of the above.
- `numpy.core.numeric._frombuffer` (protocol 5) -> `numpy.frombuffer` + `reshape`, which
  check the buffer length against the dtype and the shape.
- `numpy.core.multiarray.scalar` -> `_scalar`: a numeric scalar read from exactly
  item-size bytes, or the object itself for object dtype.
- pandas' `DataFrame`, `BlockManager`, blocks and indexes -> inert records (`_Record`)
  holding the values the pickle gives; `_frame` then checks shapes, dtypes and that the
  block placements cover each column exactly once, and builds the frame with the public
  `pandas.DataFrame` constructor. pandas' own unpickling code never runs.
- `slice`, `object`, `bytearray` (plain values), `copyreg._reconstructor` (only for the
  records, so `object.__new__` of a record), `_codecs.encode` (latin-1 only: Python 3
  pickles of bytes at protocols 0-2).

Arrow-backed columns (`pyarrow`, `ArrowStringArray`, `StringDtype`: what pandas 3 writes
for string columns by default) are refused with an error that says so: they are rebuilt
from raw buffers, offsets and lengths that nothing validates.

Longer than 300 lines because an allow-list unpickler is only safe when every callable it admits
is checked in one place.

A Python 2 `str` longer than 64 KiB (with `encoding="latin1"`, CIFAR's) is kept as bytes
instead of being decoded to text: only an array's raw data is that long, numpy's
`__setstate__` takes bytes as well as text, and decoding 150 MB to text only for numpy to
encode it back costs two copies (about 0.3 s of the CIFAR read).

`pickle._Unpickler` (the standard library's pure-Python unpickler) is used because only it
lets `BUILD` be checked. It is slower than the C one: 2.4 s against `pickle.loads`'s 1.2 s for
a 93 MB frame of 30,000 (32, 32, 3) images, measured once on a busy 2-core machine.

Longer than 300 lines because the restricted unpickler, the checks of everything it rebuilds and
their messages are one security boundary, read together; each function fits a screen.
"""

import codecs
import numbers
import pickle
import re
import struct

import numpy as np
import pandas as pd

_DTYPE_CODE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|O[48]?|[US][0-9]{1,6})")
_BYTE_ORDERS = ("<", ">", "|", "=")
_RAW_STRING_BYTES = 64 * 1024  # a longer Python 2 str is an array's raw data: kept as bytes


class RefusedPickleError(pickle.UnpicklingError):
    """A pickle named a global outside ALLOWED_GLOBALS, or an Arrow-backed column."""


class _Record:
    """A pandas object as the pickle describes it: its arguments and state, nothing run."""

    def __new__(cls, *args):
        record = object.__new__(cls)
        record.args, record.state = args, None
        return record

    def __setstate__(self, state):
        self.state = state


class _Frame(_Record):
    pass


class _Manager(_Record):
    pass


class _Block(_Record):
    pass


class _Index(_Record):
    pass


class _RangeIndex(_Index):
    pass


class _Marker:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_NDARRAY = _Marker("numpy.ndarray")
_OBJECT = _Marker("object")


def _new_index(cls, state):
    if not isinstance(cls, type) or not issubclass(cls, _Index) or not isinstance(state, dict):
        raise pickle.UnpicklingError(f"_new_Index({cls!r}, ...): expected a pandas index class and a dict")
    return cls(state)


def _block(values, placement, ndim=2):
    return _Block(values, placement, ndim)


def _reconstructor(cls, base, state):
    if not (isinstance(cls, type) and issubclass(cls, _Record)) or base is not _OBJECT or state is not None:
        raise pickle.UnpicklingError(f"copyreg._reconstructor({cls!r}, {base!r}, ...) is not allowed")
    return cls.__new__(cls)


def _encode(text, encoding="utf-8"):
    if not isinstance(text, str) or codecs.lookup(encoding).name not in ("latin-1", "iso8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode(..., {encoding!r}): only latin-1 text is allowed")
    return text.encode("latin-1")


def _checked_dtype(dtype):
    if not isinstance(dtype, np.dtype) or not _DTYPE_CODE.fullmatch(dtype.str):
        raise pickle.UnpicklingError(f"dtype {dtype!r} is not allowed (plain numbers, objects and strings only)")
    return dtype


def _scalar(dtype, raw):
    _checked_dtype(dtype)
    if dtype.hasobject:
        return raw
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of {dtype}: expected {dtype.itemsize} bytes")
    return np.frombuffer(raw, dtype)[0]


def _frombuffer(buffer, dtype, shape, order):
    _checked_dtype(dtype)
    if dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError("_frombuffer: only numeric arrays in C or F order")
    return np.frombuffer(buffer, dtype).reshape(shape, order=order)


class _RestrictedUnpickler(pickle._Unpickler):  # pure Python: the only one whose BUILD can be checked
    def __init__(self, file, source: str, encoding: str):
        super().__init__(file, encoding=encoding)
        self.source = source
        self._unbuilt = {}  # id -> object: dtypes and arrays made here, not yet given their state

    def _fresh(self, obj):
        self._unbuilt[id(obj)] = obj
        return obj

    def _new_dtype(self, code, align=False, copy=True):
        if not isinstance(code, str) or not _DTYPE_CODE.fullmatch(code):
            raise pickle.UnpicklingError(f"numpy.dtype({code!r}) is not allowed (plain numbers, objects and strings only)")
        return self._fresh(np.dtype(code, bool(align), True))

    def _new_array(self, cls, shape, typecode):
        if cls is not _NDARRAY or typecode not in (b"b", "b"):
            raise pickle.UnpicklingError(f"_reconstruct({cls!r}, ..., {typecode!r}) is not allowed")
        return self._fresh(np.ndarray((0,), np.uint8))

    def load_build(self):
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, _Record):
            return super().load_build()
        if self._unbuilt.pop(id(inst), None) is not inst:
            raise pickle.UnpicklingError(f"refused to set the state of {type(inst).__name__} (only new arrays and dtypes, once)")
        if isinstance(inst, np.dtype):
            expected = inst.__reduce__()[2]
            if not (isinstance(state, tuple) and len(state) == len(expected) and state[1] in _BYTE_ORDERS
                    and state[0] == expected[0] and state[2:] == expected[2:]):
                raise pickle.UnpicklingError(f"dtype {inst} with state {state!r} is not allowed (expected {expected!r})")
        elif not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype)):
            raise pickle.UnpicklingError("array state: expected (version, shape, dtype, fortran, data)")
        return super().load_build()

    def load_binstring(self):  # a Python 2 `str` of 256 bytes or more
        (length,) = struct.unpack("<i", self.read(4))
        if length < 0:
            raise pickle.UnpicklingError("BINSTRING pickle has negative byte count")
        data = self.read(length)
        self.append(data if length > _RAW_STRING_BYTES and self.encoding == "latin1" else self._decode_string(data))

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BINSTRING[0]] = load_binstring

    def find_class(self, module, name):
        if module.split(".")[0] == "pyarrow" or "Arrow" in name or name == "StringDtype":
            raise RefusedPickleError(
                f"{self.source}: refused {module}.{name}: Arrow-backed columns are rebuilt from raw buffers, offsets and "
                "lengths that nothing validates; expected object or numeric columns (re-save the frame after "
                "`frame = frame.astype(object)` and `frame.columns = frame.columns.astype(object)`)"
            )
        resolved = _GLOBALS.get((module, name))
        if resolved is None:
            raise RefusedPickleError(
                f"{self.source}: refused to load global {module}.{name}; only numpy array and pandas DataFrame "
                f"constructors are allowed (see luma_noise.upstream.safe_pickle.ALLOWED_GLOBALS)"
            )
        return getattr(self, resolved) if isinstance(resolved, str) else resolved  # str: a method of this unpickler


# pandas 1.x to 3.x spell the same classes from different modules.
_PANDAS = {
    ("pandas", "DataFrame"): _Frame,
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _Manager,
    ("pandas.core.internals.blocks", "new_block"): _block,
    ("pandas._libs.internals", "_unpickle_block"): _block,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    **{(module, "Index"): _Index for module in ("pandas", "pandas.core.indexes.base")},
    **{(module, name): _Index for module, name in (("pandas.core.indexes.numeric", "Int64Index"),
                                                  ("pandas.core.indexes.numeric", "UInt64Index"),
                                                  ("pandas.core.indexes.numeric", "Float64Index"))},
    **{(module, "RangeIndex"): _RangeIndex for module in ("pandas", "pandas.core.indexes.range")},
}
_GLOBALS = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): "_new_dtype",
    **{(f"{numpy}.multiarray", "_reconstruct"): "_new_array" for numpy in ("numpy.core", "numpy._core")},
    **{(f"{numpy}.multiarray", "scalar"): _scalar for numpy in ("numpy.core", "numpy._core")},
    **{(f"{numpy}.numeric", "_frombuffer"): _frombuffer for numpy in ("numpy.core", "numpy._core")},
    # protocols 0-2 spell builtins the Python 2 way
    **{(builtins, "slice"): slice for builtins in ("builtins", "__builtin__")},
    **{(builtins, "bytearray"): bytearray for builtins in ("builtins", "__builtin__")},
    **{(builtins, "object"): _OBJECT for builtins in ("builtins", "__builtin__")},
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _encode,
    **_PANDAS,
}
ALLOWED_GLOBALS = frozenset(_GLOBALS)


def _array(value, what: str, ndim: int) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != ndim:
        raise pickle.UnpicklingError(f"{what}: expected a {ndim}-d numpy array")
    _checked_dtype(value.dtype)
    return value


def _index(record) -> pd.Index:
    """A pandas index from its record: a range, or a 1-d array of numbers or objects."""
    if not isinstance(record, _Index) or len(record.args) != 1:
        raise pickle.UnpicklingError("DataFrame axis: expected a pandas Index")
    state = record.args[0]
    name = state.get("name")
    if not (name is None or isinstance(name, (str, numbers.Integral))):
        raise pickle.UnpicklingError(f"index name {name!r}: expected None, a string or an integer")
    if isinstance(record, _RangeIndex):
        bounds = [state.get(k, d) for k, d in (("start", 0), ("stop", None), ("step", 1))]
        if not all(isinstance(b, numbers.Integral) for b in bounds):
            raise pickle.UnpicklingError(f"RangeIndex {bounds}: expected integers")
        return pd.RangeIndex(*bounds, name=name)
    data = _array(state.get("data"), "Index data", 1)
    return pd.Index(data, dtype=data.dtype, name=name, copy=False)


def _manager_parts(manager) -> tuple:
    """(blocks [(values, placement)], axes) of a BlockManager record, as pandas 1.x-3.x write it."""
    if not isinstance(manager, _Manager):
        raise pickle.UnpicklingError("DataFrame: expected a BlockManager")
    if manager.state is None and len(manager.args) == 2:  # pandas >= 2: BlockManager(blocks, axes)
        blocks, axes = manager.args
        if not all(isinstance(b, _Block) and len(b.args) == 3 for b in blocks):
            raise pickle.UnpicklingError("BlockManager: expected blocks")
        return [b.args[:2] for b in blocks], list(axes)
    state = manager.state  # pandas 1.x: (..., {"0.14.1": {"axes": [...], "blocks": [{values, mgr_locs}]}})
    if not (isinstance(state, tuple) and len(state) >= 4 and isinstance(state[3], dict) and "0.14.1" in state[3]):
        raise pickle.UnpicklingError("BlockManager: unknown pickle layout")
    inner = state[3]["0.14.1"]
    return [(b["values"], b["mgr_locs"]) for b in inner["blocks"]], list(inner["axes"])


def _frame(record) -> pd.DataFrame:
    """The DataFrame a `_Frame` record describes, after checking every shape and placement."""
    state = record.state if isinstance(record.state, dict) else {}
    blocks, axes = _manager_parts(state.get("_mgr", state.get("_data")))
    if len(axes) != 2:
        raise pickle.UnpicklingError("DataFrame: expected two axes")
    columns, index = _index(axes[0]), _index(axes[1])
    data = [None] * len(columns)
    for values, placement in blocks:
        values = _array(values, "DataFrame block", 2)
        if isinstance(placement, slice):  # absolute positions, as pandas reads them
            bounds = (placement.start or 0, placement.stop, placement.step or 1)
            if not all(isinstance(b, numbers.Integral) for b in bounds):
                raise pickle.UnpicklingError(f"block placement {placement!r}: expected integer bounds")
            positions = range(*bounds)
        else:
            positions = _array(placement, "block placement", 1).tolist()
        if values.shape != (len(positions), len(index)):
            raise pickle.UnpicklingError(f"DataFrame block of shape {values.shape}: expected ({len(positions)}, {len(index)})")
        for row, position in zip(values, positions):
            if not isinstance(position, numbers.Integral) or not 0 <= position < len(columns) or data[position] is not None:
                raise pickle.UnpicklingError(f"DataFrame block placement {position!r}: outside the {len(columns)} columns or repeated")
            data[position] = row
    if any(column is None for column in data):
        raise pickle.UnpicklingError("DataFrame: a column has no block")
    frame = pd.DataFrame({i: pd.Series(c, index=index, dtype=c.dtype, copy=False) for i, c in enumerate(data)}, index=index)
    frame.columns = columns
    return frame


def safe_load(file, source: str, encoding: str = "ASCII"):
    """Unpickle `file` (binary file object): numpy arrays, plain Python values and DataFrames.

    `source` names the file in errors. Python 2 pickles (the CIFAR batches) need
    `encoding="latin1"` (str keys) or `"bytes"`. A DataFrame comes back with the pickle's
    columns (object or numeric dtypes) and index.
    """
    try:
        loaded = _RestrictedUnpickler(file, source, encoding).load()
        if isinstance(loaded, _Frame):
            return _frame(loaded)
        if isinstance(loaded, _Record):
            raise pickle.UnpicklingError(f"a bare {type(loaded).__name__[1:]}: expected a DataFrame")
        return loaded
    except RefusedPickleError:
        raise
    except Exception as err:
        raise ValueError(f"{source}: not a readable pickle ({type(err).__name__}: {err})") from err
