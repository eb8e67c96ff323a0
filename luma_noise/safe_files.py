"""Reading files from folders that other people can write to (shared run and export folders).

Only regular files are opened (not a symlink to `/dev/zero`, not a FIFO that would block forever,
not a device): the path is checked with `os.lstat`, then opened with `O_NOFOLLOW | O_NONBLOCK` and
checked again with `os.fstat`, so a file swapped in between is caught too. Sizes are bounded
before anything is read or allocated:

- JSON files (`results.json`, `luma_variant.json`, an export's `README.md`): at most
  `MAX_TEXT_BYTES` (16 MiB) on disk;
- `.npz` files: at most `MAX_NPZ_BYTES` (256 MiB) on disk *and* declared uncompressed (the sum
  of the zip members' sizes from the zip directory, each matching its `.npy` header's shape and
  dtype), at most `MAX_NPZ_MEMBERS` (256) arrays, no object arrays; and, through a `Budget`,
  at most `MAX_NPZ_TOTAL_BYTES` (2 GiB) over all the files one command reads. A zip bomb is
  refused from its directory, before a byte is decompressed.

Every refusal is a `BadInput` listing problems that name the file (and the entry); the commands
collect them from every file, print them all and exit with status 2.
"""

import errno
import json
import math
import os
import stat
import zipfile
from pathlib import Path

MiB = 2 ** 20
MAX_TEXT_BYTES = 16 * MiB
MAX_NPZ_BYTES = 256 * MiB
MAX_NPZ_TOTAL_BYTES = 2048 * MiB
MAX_NPZ_MEMBERS = 256
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class BadInput(ValueError):
    """Input refused before any work: `problems` is every problem found, each naming its file and entry."""

    def __init__(self, problems, title: str = "bad input"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n  ".join([f"{title}:", *self.problems]))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path, limit: int):
    """A binary file object of `path`, which must be a regular file (not a symlink) of at most
    `limit` bytes; raises BadInput otherwise. Never blocks on a FIFO, never follows the last link."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as err:
        raise BadInput(f"{path}: cannot read it ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"{path}: {_kind(mode)}; only regular files are read")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        reason = "a symbolic link" if err.errno == errno.ELOOP else err.strerror
        raise BadInput(f"{path}: cannot read it ({reason}); only regular files are read") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"{path}: {_kind(info.st_mode)}; only regular files are read")
        raise BadInput(f"{path}: {info.st_size} bytes, more than the {limit} bytes read from such a file")
    return os.fdopen(fd, "rb")


def read_bytes(path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file `path` (at most `limit`; a file growing past it is refused)."""
    with open_regular(path, limit) as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise BadInput(f"{path}: more than the {limit} bytes read from such a file")
    return data


def read_text(path, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file `path`; raises BadInput naming the first bad byte."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadInput(f"{path}: not UTF-8 text (byte {err.start}: {data[err.start:err.start + 1]!r})") from None


def read_json(path, limit: int = MAX_TEXT_BYTES):
    """The parsed JSON of the regular UTF-8 file `path` (NaN and Infinity parse: the caller checks values)."""
    text = read_text(path, limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"{path}: not JSON ({err})") from None
    except RecursionError:
        raise BadInput(f"{path}: not JSON this reader accepts (nested too deeply)") from None


def confined(root, relative, entry: str) -> Path:
    """`root / relative` resolved (symlinks followed), refused unless it stays inside `root`.

    `relative` must be a relative path string; `entry` names it in the message (e.g.
    "runs/a/results.json: results[0].predictions")."""
    if not isinstance(relative, str) or not relative:
        raise BadInput(f"{entry}: expected a path relative to {root}, got {relative!r}")
    try:
        base = Path(root).resolve()
        target = (base / relative).resolve()
    except (ValueError, OSError, RuntimeError) as err:  # a NUL byte, a symlink loop
        raise BadInput(f"{entry}: {relative!r} is not a usable path ({err})") from None
    if Path(relative).is_absolute() or not target.is_relative_to(base):
        raise BadInput(f"{entry}: {relative!r} points outside {root}; only files inside it are read")
    return target


def output_folder_problems(path, option: str = "--output-dir") -> list:
    """Why `path` cannot be used as an output folder (a file, or no writable folder to create it in)."""
    path = Path(path)
    if os.path.lexists(path):
        if not path.is_dir():
            return [f"{option} {path}: not a folder"]
        return [] if os.access(path, os.W_OK | os.X_OK) else [f"{option} {path}: not writable"]
    parent = path.absolute().parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        return [f"{option} {path}: cannot be created, {parent} is not a folder"]
    return [] if os.access(parent, os.W_OK | os.X_OK) else [f"{option} {path}: cannot be created in {parent} (not writable)"]


class Budget:
    """Bytes still allowed to be loaded by one command (`MAX_NPZ_TOTAL_BYTES` by default)."""

    def __init__(self, total: int = MAX_NPZ_TOTAL_BYTES):
        self.total, self.left = total, total

    def take(self, nbytes: int, path) -> None:
        if nbytes > self.left:
            raise BadInput(f"{path}: its arrays would take the files read together past {self.total} bytes")
        self.left -= nbytes


def _npy_header(member, info, path) -> int:
    """Check one `.npy` zip member's header against its declared size; returns its data bytes."""
    import numpy as np

    name = info.filename
    try:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version} is not read")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise BadInput(f"{path}: array {name}: not a readable .npy header ({err})") from None
    if dtype.hasobject:
        raise BadInput(f"{path}: array {name}: object arrays are not read")
    nbytes = math.prod(shape) * dtype.itemsize
    if member.tell() + nbytes != info.file_size:
        raise BadInput(f"{path}: array {name}: its header declares shape {shape} of {dtype} ({nbytes} bytes) "
                       f"but the zip member holds {info.file_size - member.tell()}")
    return nbytes


def load_npz(path, limit: int = MAX_NPZ_BYTES, budget: "Budget | None" = None) -> dict:
    """{name: array} of the `.npy` members of the regular `.npz` file `path`, after checking
    every member's declared size against `limit` (and `budget`), never unpickling."""
    import numpy as np

    with open_regular(path, limit) as file:
        try:
            with zipfile.ZipFile(file) as archive:
                infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
                if len(infos) > MAX_NPZ_MEMBERS:
                    raise BadInput(f"{path}: {len(infos)} arrays, more than the {MAX_NPZ_MEMBERS} read")
                declared = sum(i.file_size for i in infos)
                if declared > limit:
                    raise BadInput(f"{path}: its arrays declare {declared} bytes uncompressed, more than the "
                                   f"{limit} read from one file")
                for info in infos:
                    with archive.open(info) as member:
                        _npy_header(member, info, path)
                if budget is not None:
                    budget.take(declared, path)
                file.seek(0)
                with np.load(file, allow_pickle=False) as data:
                    return {i.filename[:-4]: data[i.filename[:-4]] for i in infos}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as err:
            if isinstance(err, BadInput):
                raise
            raise BadInput(f"{path}: not a readable .npz file ({err})") from None
