"""Files written whole: a reader (or a process killed mid-write) sees the old file or the new one,
never a part. The temporary file sits beside the target (`.NAME.XXXX.tmp`), since a rename is
atomic only within one file system; stale ones are recognisable by that pattern."""

import contextlib
import json
import os
import tempfile
from pathlib import Path


def _atomic_write(path: Path, write) -> None:
    """Call write(binary file) on a temporary file next to `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic within one file system, hence the temporary file in the same folder
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, content) -> None:
    """Write `content` as indented JSON to `path`: readers see the old file or the whole new one."""
    _atomic_write(path, lambda f: f.write(json.dumps(content, indent=1).encode("utf-8")))


def write_npz(path, arrays: dict) -> None:
    """Write `arrays` ({name: numpy array}) as an uncompressed .npz to `path`, atomically."""
    import numpy as np

    _atomic_write(path, lambda f: np.savez(f, **arrays))
