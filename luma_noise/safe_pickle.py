"""Unpickling of downloaded files without running their code.

`edm_images.pickle` (a pandas DataFrame) and the CIFAR batches (Python 2 pickles) come
from the internet. A plain `pickle.load` would call whatever the file names; this
unpickler resolves only the constructors needed to rebuild numpy arrays and pandas
frames, and refuses anything else before it can run.
"""

import pickle

ALLOWED_GLOBALS = frozenset({
    # numpy arrays and scalars (numpy < 2 wrote numpy.core, numpy >= 2 writes numpy._core)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    # pandas frames, as pandas 1.x to 3.x write them
    ("pandas", "DataFrame"),
    ("pandas", "Index"),
    ("pandas", "RangeIndex"),
    ("pandas", "StringDtype"),
    ("pandas.arrays", "ArrowStringArray"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.arrays.string_", "StringDtype"),
    ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
    # pandas >= 3 stores strings as Arrow arrays rebuilt from raw buffers
    ("pyarrow.lib", "_restore_array"),
    ("pyarrow.lib", "type_for_alias"),
    ("pyarrow.lib", "py_buffer"),
    # plain Python objects; protocols 0-2 spell them the Python 2 way
    ("builtins", "slice"),
    ("builtins", "bytearray"),
    ("builtins", "object"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "slice"),
    ("__builtin__", "bytearray"),
    ("__builtin__", "object"),
    ("copy_reg", "_reconstructor"),
    ("_codecs", "encode"),
})


class RefusedPickleError(pickle.UnpicklingError):
    """A pickle named a global outside ALLOWED_GLOBALS."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str, encoding: str):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedPickleError(
                f"{self.source}: refused to load global {module}.{name}; only numpy array and pandas "
                f"DataFrame constructors are allowed ({len(ALLOWED_GLOBALS)} names, see "
                "luma_noise.safe_pickle.ALLOWED_GLOBALS)"
            )
        return super().find_class(module, name)


def safe_load(file, source: str, encoding: str = "ASCII"):
    """Unpickle `file` (binary file object) allowing only array/DataFrame constructors.

    `source` names the file in errors. Python 2 pickles (the CIFAR batches) need
    `encoding="latin1"` (str keys) or `"bytes"`.
    """
    try:
        return _RestrictedUnpickler(file, source, encoding).load()
    except RefusedPickleError:
        raise
    except Exception as err:
        raise ValueError(f"{source}: not a readable pickle ({type(err).__name__}: {err})") from err
