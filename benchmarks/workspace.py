"""What the benchmarks share: an offline workspace in a temporary folder and the mirror they build from."""

import os
import tempfile
import time
from pathlib import Path


def offline_workspace(prefix: str) -> Path:
    """A new temporary folder, with the Hugging Face caches in it and the Hub offline. Call it
    before importing `datasets`, which reads these variables at import."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update({"HF_HOME": str(work / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    return work


def mirror_folder(mirror, work: Path, scale: float) -> str:
    """`mirror` when given, else a mirror written into `work` at `scale` (1.0: real row counts)."""
    if mirror is not None:
        return mirror
    from luma_noise.fixtures.mirror import write_mirror

    mirror, start = str(work / "mirror"), time.perf_counter()
    write_mirror(mirror, scale=scale)
    print(f"mirror written in {time.perf_counter() - start:.1f} s (scale {scale})")
    return mirror
