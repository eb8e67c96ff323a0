"""Sources, alignment, noise and sampling for the LUMA multimodal uncertainty benchmark.

The package's names are imported lazily (PEP 562): `import luma_noise.cli` must stay light
(no `datasets`, `torch` or `nlpaug`), so the command line starts fast and `luma configs` runs
without the heavy stack.
"""

import importlib
import importlib.util

__version__ = "0.2.0"
_EXPORTS = {
    "CLASSES": "classes", "ID_CLASSES": "classes", "OOD_CLASSES": "classes", "MODALITIES": "classes",
    "features_for": "examples", "plan_examples": "examples", "finish_batch": "examples",
    "load": "loader",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'luma_noise' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)  # a submodule, as `import luma_noise.x` would
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value
