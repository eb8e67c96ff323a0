"""`luma_noise.load`: LUMA without loading scripts, on any `datasets` release.

`datasets` 4 removed `load_dataset` on scripts, but builder classes still work: this drives
the package's own `Luma` builder (the class `luma.py` subclasses), from a checkout or an
installed wheel, the way `load_dataset` drives a script's builder, and returns the same objects.
"""

import inspect
from typing import Optional


def builder_class():
    """The `Luma` builder class of the installed package."""
    from .builder import Luma

    return Luma


def load(config_name: str = "clean", split: Optional[str] = None, streaming: bool = False,
         cache_dir: Optional[str] = None, num_proc: Optional[int] = None, download_mode=None,
         verification_mode=None, download_config=None, storage_options: Optional[dict] = None,
         keep_in_memory: Optional[bool] = None, token=None, revision=None, **config_kwargs):
    """Build a LUMA config and return it like `datasets.load_dataset` would.

    Returns a `DatasetDict` (or `Dataset` for one `split`); with `streaming=True`, an
    `IterableDatasetDict` (or `IterableDataset`). `config_kwargs` are LumaConfig fields, e.g.
    `mirror="/data/luma-mirror"`. `download_mode` ("force_redownload" rebuilds),
    `verification_mode`, `download_config`, `storage_options`, `keep_in_memory`, `token`,
    `num_proc` and `cache_dir` mean what they mean for `load_dataset`. `revision` is refused:
    for `load_dataset` it is the revision of the loading script's repository, and here the
    code is the installed package; the revision of the LUMA data is the field `luma_revision`.
    """
    if revision is not None:
        raise ValueError(f"revision={revision!r}: luma_noise.load runs the installed package's builder, so there "
                         f"is no script revision to pick; for a revision of the bezirganyan/LUMA data pass "
                         f"luma_revision={revision!r}")
    import datasets.utils.info_utils

    if token is None and download_config is not None:
        token = download_config.token
    builder = builder_class()(config_name=config_name, cache_dir=cache_dir, dataset_name="luma", token=token,
                              storage_options=storage_options, **config_kwargs)
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare(download_config=download_config, download_mode=download_mode,
                                 verification_mode=verification_mode, num_proc=num_proc,
                                 storage_options=storage_options)
    if keep_in_memory is None:
        keep_in_memory = datasets.utils.info_utils.is_small_dataset(builder.info.dataset_size)
    # datasets >= 4 verifies while preparing only: its as_dataset has no verification_mode
    verify = {"verification_mode": verification_mode} if "verification_mode" in inspect.signature(builder.as_dataset).parameters else {}
    return builder.as_dataset(split=split, in_memory=keep_in_memory, **verify)
