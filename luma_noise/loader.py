"""`luma_noise.load`: LUMA without loading scripts, for `datasets` 4 and newer.

`datasets` 4 removed `load_dataset` on scripts, but builder classes still work: this
imports the `Luma` builder from `luma.py` and drives it directly, returning the same
objects `load_dataset` would.
"""

import importlib.util
import sys
from pathlib import Path
from typing import Optional

SCRIPT = Path(__file__).resolve().parent.parent / "luma.py"


def builder_class(script: Optional[str] = None):
    """The `Luma` builder class from `script` (default: the `luma.py` beside this package)."""
    path = Path(script) if script else SCRIPT
    if not path.is_file():
        raise FileNotFoundError(f"LUMA loading script not found at {path}; pass script='path/to/luma.py'")
    name = "luma"
    if name not in sys.modules or getattr(sys.modules[name], "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so num_proc workers can pickle the builder by reference
        spec.loader.exec_module(module)
    return sys.modules[name].Luma


def load(config_name: str = "clean", split: Optional[str] = None, streaming: bool = False,
         cache_dir: Optional[str] = None, num_proc: Optional[int] = None, script: Optional[str] = None, **config_kwargs):
    """Build a LUMA config and return it like `datasets.load_dataset` would.

    Returns a `DatasetDict` (or `Dataset` for one `split`); with `streaming=True`, an
    `IterableDatasetDict` (or `IterableDataset`). `config_kwargs` are LumaConfig fields,
    e.g. `mirror="/data/luma-mirror"`.
    """
    builder = builder_class(script)(config_name=config_name, cache_dir=cache_dir, **config_kwargs)
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare(num_proc=num_proc)
    return builder.as_dataset(split=split)
