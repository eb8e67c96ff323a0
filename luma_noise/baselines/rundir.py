"""Output folders of `train` and `sweep` that survive kill -9, a second writer and careless inputs.

- `write_json`, `write_npz`: a file is either absent or whole (temporary file in the same
  folder, fsync, then an atomic rename); `read_json` names the file when it is not JSON.
- `FolderLock`: one writer per output folder. A kernel lock (`flock`) on `<folder>/.luma.lock`
  decides; the file records the holder's pid, host and command for the message a second
  writer gets. The kernel drops the lock when its process dies (even by kill -9), so a lock
  left by a dead process on this host is taken over; one recorded by another host is not
  (this host cannot tell whether that process lives).
- `differing`: the options two records disagree on, with both values, for the refusal messages.
- `output_problems`: why a `train` output folder cannot be used (a file, not writable, not
  ours, or made with other options); `remove_leftovers`: what killed runs left in one.
- `newest_complete_checkpoint`: the Trainer checkpoint to resume from, skipping any whose
  files are missing or torn (a kill during the write).
- `remove_temporaries`: leftovers of killed writes (only called under the folder's lock).
- `seeded_torch`: torch's random state for one evaluation, from the run's seed.
- `model_folder_digest`: the content digest of a local model folder (cache keys, run records).

Longer than 300 lines because a run folder's guarantees (locks, complete checkpoints, seeded
evaluation, digests) are one contract, read together; each helper fits a screen.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..atomic import write_json, write_npz  # noqa: F401 (rundir's writers, used as rundir.write_*)

logger = logging.getLogger(__name__)

LOCK_NAME = ".luma.lock"
# What a Trainer checkpoint must hold to resume (transformers' names): JSON files, safetensors
# weights, and torch's zip archives (optimizer, scheduler, RNG states).
CHECKPOINT_JSON = ("config.json", "trainer_state.json")
CHECKPOINT_SAFETENSORS = ("model.safetensors",)
CHECKPOINT_ZIPS = ("optimizer.pt", "scheduler.pt", "rng_state.pth")


def read_json(path):
    """The JSON content of `path`; ValueError naming the file if it is empty or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}): remove it or choose another output folder") from None


def differing(held: dict, wanted: dict) -> list:
    """["name: <held> there, <wanted> asked", ...] for every key whose values differ (sorted)."""
    missing = object()
    out = []
    for key in sorted(set(held) | set(wanted)):
        a, b = held.get(key, missing), wanted.get(key, missing)
        if a != b:
            there = "not recorded" if a is missing else json.dumps(a)
            asked = "not asked" if b is missing else json.dumps(b)
            out.append(f"{key}: {there} there, {asked} asked")
    return out


class FolderBusy(ValueError):
    """Another process holds the output folder's lock."""


class FolderLock:
    """Exclusive lock of one output folder, as a context manager (creates the folder).

    `with FolderLock(folder):` raises FolderBusy naming the holder (pid, host, command,
    since when) if another live process holds it, or if the lock file was written on
    another host. The lock file is removed on exit; one left by kill -9 is taken over by
    the next writer on the same host (the kernel released its lock with the process).
    """

    def __init__(self, folder):
        self.folder, self.path, self.fd = Path(folder), Path(folder) / LOCK_NAME, None

    def __enter__(self):
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderBusy(f"{self.folder} is in use by {self._holder()}: wait until it finishes, or "
                                 "choose another output folder") from None
            try:  # the file may have been removed (and recreated) by a holder that just finished
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        try:
            self._take_over(self._record())
        except BaseException:
            self.fd = None
            os.close(fd)
            raise
        return self

    def _record(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
            return json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return {}

    def _holder(self) -> str:
        held = self._record()
        if not held:
            return "another process (its record is not written yet)"
        return (f"pid {held.get('pid')} on host {held.get('host')!r} since {held.get('since')} "
                f"({held.get('command')})")

    def _take_over(self, previous: dict) -> None:
        host = socket.gethostname()
        if previous and previous.get("host") != host:
            raise FolderBusy(f"{self.folder} was locked by pid {previous.get('pid')} on host {previous.get('host')!r} "
                             f"since {previous.get('since')}; this host ({host!r}) cannot check whether that process "
                             f"is alive: if it is gone, remove {self.path}")
        if previous:
            logger.warning("%s: taking over the lock left by pid %s (gone) on this host", self.folder,
                           previous.get("pid"))
        record = {"pid": os.getpid(), "host": host, "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                  "command": " ".join(sys.argv)[:500]}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(record).encode("utf-8"), 0)
        os.fsync(self.fd)

    def __exit__(self, *exc):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding it: a waiter then sees another inode and retries
        os.close(self.fd)
        self.fd = None
        return False


def remove_temporaries(folder) -> list:
    """Delete the temporary files of killed atomic writes under `folder` (`.*.tmp`, `*.npz.tmp`)
    and return their paths. Call it only while holding the folder's lock: then every
    temporary file is a dead writer's."""
    removed = []
    for pattern in (".*.tmp", "*.npz.tmp"):
        for path in Path(folder).rglob(pattern):
            if path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    for path in Path(folder).rglob("*.partial"):  # a model folder saved aside, not renamed in yet
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def output_problems(output_dir: Path, record: dict | None) -> list:
    """Why runs cannot go into output_dir: a file, not writable, not a run folder of ours (a
    non-empty folder without run.json), or one whose run.json records other options than
    `record` (not compared if None)."""
    if output_dir.exists() and not output_dir.is_dir():
        return [f"--output-dir {output_dir} is a file, not a folder"]
    existing = output_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:  # a real probe: as root, os.access says yes even where writing fails (a read-only mount)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return [f"--output-dir {output_dir}: cannot write in {existing} ({err.strerror})"]
    if not output_dir.is_dir():
        return []
    marker = output_dir / "run.json"
    if not marker.is_file():
        others = sorted(p.name for p in output_dir.iterdir() if p.name != LOCK_NAME)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            return [f"--output-dir {output_dir} is not empty ({shown}) and has no run.json, so it is not a train "
                    f"output folder: choose a new or empty folder"]
        return []
    if record is None:
        return []
    try:
        held = read_json(marker)
    except ValueError as err:
        return [str(err)]
    differ = differing(held, record) if isinstance(held, dict) else ["run.json is not a JSON object"]
    if differ:
        return [f"--output-dir {output_dir} holds runs made with other options ({'; '.join(differ)}): rerun "
                f"with its options or choose another --output-dir"]
    return []


def remove_leftovers(output_dir: Path) -> list:
    """Delete what killed runs left in a `train` folder (under its lock): temporary files and the
    checkpoints of finished models or saved members; returns [(run or "output", message)]."""
    said = [("output", f"removed {path.relative_to(output_dir)}, left by a killed write")
            for path in remove_temporaries(output_dir)]
    for folder in sorted((output_dir / "checkpoints").glob("*")):
        name, _, member = folder.name.partition("-member")
        done = output_dir / "models" / name / "done.json"
        if done.exists() or (member and (output_dir / "models" / name / f"member{member}").is_dir()):
            shutil.rmtree(folder, ignore_errors=True)
            said.append((folder.name, "removed the checkpoints of a finished model"))
    return said


def _safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file at `path` is not whole (header length, header JSON, data size), or None."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "shorter than its header"
        (length,) = struct.unpack("<Q", head)
        if 8 + length > size:
            return "its header is cut off"
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its header is not JSON"
    try:
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, TypeError, IndexError, ValueError):
        return "its header does not describe tensors"
    if 8 + length + end != size:
        return f"{size} bytes, its header describes {8 + length + end}"
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why the Trainer cannot resume from checkpoint `folder` (a missing or torn file), or None."""
    for name in CHECKPOINT_JSON + CHECKPOINT_SAFETENSORS + CHECKPOINT_ZIPS:
        if not (folder / name).is_file():
            return f"{name} is missing"
    for name in CHECKPOINT_JSON:
        try:
            json.loads((folder / name).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return f"{name} is not valid JSON"
    for name in CHECKPOINT_SAFETENSORS:
        problem = _safetensors_problem(folder / name)
        if problem:
            return f"{name} is torn ({problem})"
    for name in CHECKPOINT_ZIPS:
        try:  # torch.save's format is a zip: a cut-off file has no central directory at its end
            with zipfile.ZipFile(folder / name) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as err:
            return f"{name} is torn ({err})"
    return None


def newest_complete_checkpoint(folder) -> tuple:
    """(path of the newest complete `checkpoint-N` in `folder` or None, [(skipped path, reason)]).

    Incomplete checkpoints (newer or older) are listed with the reason, newest first."""
    folder = Path(folder)
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            step = path.name.removeprefix("checkpoint-")
            if path.is_dir() and path.name.startswith("checkpoint-") and step.isdigit():
                found.append((int(step), path))
    chosen, skipped = None, []
    for _, path in sorted(found, reverse=True):
        problem = checkpoint_problem(path)
        if problem:
            skipped.append((path, problem))
        elif chosen is None:
            chosen = path
    return chosen, skipped


def resume_point(checkpoints, name: str, say) -> "str | None":
    """The newest complete checkpoint of run `name` under `checkpoints` to resume from (None: start
    afresh). Torn ones (a kill while the Trainer wrote them) are useless and in the way: each is
    removed and named through `say`."""
    last, skipped = newest_complete_checkpoint(checkpoints)
    for path, reason in skipped:
        say({"run": name, "message": f"skipping {path.name}: {reason} (killed while it was written); removed"})
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 removes it
            shutil.rmtree(path, ignore_errors=True)
    if last:
        say({"run": name, "message": f"resuming from {last.name}"})
    return str(last) if last else None


def torch_generator(seed: int, *purpose, device="cpu"):
    """A torch.Generator on `device` seeded from (seed, purpose): an evaluation's noise, drawn batch
    after batch, the same in a resumed run as in an uninterrupted one."""
    import torch

    from ..rng import derive_rng

    return torch.Generator(device=device).manual_seed(int(derive_rng(seed, *purpose).integers(2 ** 63)))


@contextlib.contextmanager
def seeded_torch(seed: int, *purpose):
    """Run the block with torch's random state seeded from (seed, purpose), restored afterwards.

    Dropout masks and the sampling softmax's noise draw from torch's default generators, so
    this makes an evaluation give the same numbers whatever ran before it (a resumed run
    equals an uninterrupted one)."""
    import torch

    from ..rng import derive_rng

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(derive_rng(seed, *purpose).integers(2 ** 63)))
        yield


_DIGESTS = {}  # {(path, size, mtime_ns, inode) of every file: digest}: a sweep digests a model once


def model_folder_digest(folder) -> str:
    """Hex BLAKE2b digest of every file under a local model folder (relative names and bytes),
    so that weights replaced in place give another digest."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    signature = tuple((str(p.resolve()), s.st_size, s.st_mtime_ns, s.st_ino) for p in files for s in [p.stat()])
    if signature not in _DIGESTS:
        _DIGESTS[signature] = _digest_files(root, files)
    return _DIGESTS[signature]


def _digest_files(root: Path, files) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        name = path.relative_to(root).as_posix().encode("utf-8")
        digest.update(len(name).to_bytes(8, "little") + name)
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
