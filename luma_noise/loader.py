"""`luma_noise.load`: LUMA without loading scripts, for `datasets` 4 and newer.

`datasets` 4 removed `load_dataset` on scripts, but builder classes still work: this
drives the package's own `Luma` builder (the class `luma.py` subclasses), from a checkout
or an installed wheel, and returns the same objects `load_dataset` would.
"""

from typing import Optional


def builder_class():
    """The `Luma` builder class of the installed package."""
    from .builder import Luma

    return Luma


def load(config_name: str = "clean", split: Optional[str] = None, streaming: bool = False,
         cache_dir: Optional[str] = None, num_proc: Optional[int] = None, **config_kwargs):
    """Build a LUMA config and return it like `datasets.load_dataset` would.

    Returns a `DatasetDict` (or `Dataset` for one `split`); with `streaming=True`, an
    `IterableDatasetDict` (or `IterableDataset`). `config_kwargs` are LumaConfig fields,
    e.g. `mirror="/data/luma-mirror"`.
    """
    builder = builder_class()(config_name=config_name, cache_dir=cache_dir, dataset_name="luma", **config_kwargs)
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare(num_proc=num_proc)
    return builder.as_dataset(split=split)
