"""Reading LUMA's upstream files: mirrors, CIFAR tarballs, the EDM pickle, audio list, texts, splits.

The readers take open binary file objects (CIFAR's, the tarball's members) and fail with
the file's name and what was expected. The builder hands them local files: a local
mirror's own, or copies fetched into the download cache (also when streaming).
"""

import dataclasses
import io
import os
import posixpath
import tarfile
from typing import Iterable, Iterator, Optional

import numpy as np
import pandas as pd

from ..classes import CIFAR_RENAMES, CLASS_ID, ID_CLASSES
from .safe_pickle import safe_load

SOURCE_KEYS = ("luma", "cifar", "splits", "esc50")
SPLIT_FILES = tuple(f"{m}_{s}.txt" for m in ("audio", "image", "text") for s in ("train_clean", "test"))


def check_mirror(mirror: Optional[str]) -> None:
    """Raise ValueError unless `mirror` is None, an http(s) base URL or an existing local folder."""
    if mirror is None or mirror.startswith(("http://", "https://")):
        return
    if not os.path.isdir(mirror):
        raise ValueError(
            f"mirror={mirror!r} is neither an existing folder nor an http(s) URL; a mirror holds the "
            f"folders {', '.join(SOURCE_KEYS)} in the upstream layout (see the dataset card)"
        )


def source_bases(upstream: dict, mirror: Optional[str]) -> dict:
    """Base URL (ending in '/') of each source: `upstream`'s, or the mirror's folder of the same name."""
    check_mirror(mirror)
    if mirror is None:
        return dict(upstream)
    if mirror.startswith(("http://", "https://")):
        return {key: f"{mirror.rstrip('/')}/{key}/" for key in upstream}
    return {key: os.path.join(os.path.abspath(mirror), key) + os.sep for key in upstream}


# ---------------------------------------------------------------- images


class FrameRows:
    """Rows of several (N_p, 32, 32, 3) uint8 image arrays, read as one table without
    concatenating them (a copy of about 300 MB at the real sizes): row i of the table is row
    `local[i]` of array `part[i]`. Indexed by a row (that image) or an array of rows (a new
    C-contiguous (len(rows), 32, 32, 3) array)."""

    def __init__(self, arrays: list, part: np.ndarray, local: np.ndarray):
        self.arrays, self.part, self.local = arrays, part, local
        self.shape = (len(part), 32, 32, 3)

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, rows):
        if np.ndim(rows) == 0:
            return self.arrays[self.part[rows]][self.local[rows]]
        rows = np.asarray(rows, dtype=np.int64)
        out, parts = np.empty((len(rows), 32, 32, 3), np.uint8), self.part[rows]
        for p, array in enumerate(self.arrays):
            at = np.flatnonzero(parts == p)
            # whole rows of the channels-first storage (contiguous copies), transposed on the way out
            out[at] = array.transpose(0, 3, 1, 2)[self.local[rows[at]]].transpose(0, 2, 3, 1)
        return out


@dataclasses.dataclass
class ImageFrame:
    """Images in the row order LUMA's split files index.

    images: `FrameRows` over the sources' own arrays, channels-last views of CIFAR's
    channels-first rows (a selected row is transposed when it is copied); labels: (N,) int
    class ids; sources: (N,) str ("cifar10", "cifar100", "edm").
    """

    images: FrameRows
    labels: np.ndarray
    sources: np.ndarray


def _cifar_batch(fileobj, member: str, label_key: str) -> tuple:
    """(images (N, 3, 32, 32) uint8 channels-first, labels (N,)) of one CIFAR batch member."""
    batch = safe_load(fileobj, member, encoding="latin1")
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        raise ValueError(f"{member}: expected a dict with keys 'data' and {label_key!r}")
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{member}: 'data' has shape {data.shape}, expected (N, 3072)")
    # rows are 1024 red, 1024 green, 1024 blue values of a 32x32 image
    return data.reshape(-1, 3, 32, 32), np.asarray(batch[label_key])


def tar_members(path: str) -> Iterator[tuple]:
    """(member path, file object) of each file in a .tar.gz, in one pass; reads of 64 KiB (not
    tarfile's 10 KiB) make fewer zlib calls, which release the GIL for longer."""
    with tarfile.open(path, "r|gz", bufsize=1 << 16) as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member)


def read_cifar(members: Iterable, archive: str) -> dict:
    """Read a CIFAR-10 or CIFAR-100 python tarball given as (member path, file object) pairs.

    Returns {"train": (images (N,32,32,3) uint8, names (N,) str), "test": (...)} with the
    CIFAR label names (not yet renamed); CIFAR-10 train batches are concatenated in order 1..5.
    Images are channels-last views of the channels-first rows (see `ImageFrame`).
    """
    raw = {}
    for path, fileobj in members:
        raw[posixpath.basename(path)] = fileobj.read()
    if "batches.meta" in raw:  # CIFAR-10
        names = safe_load(io.BytesIO(raw["batches.meta"]), f"{archive}:batches.meta", "latin1")["label_names"]
        parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        label_key = "labels"
    elif "meta" in raw:  # CIFAR-100
        names = safe_load(io.BytesIO(raw["meta"]), f"{archive}:meta", "latin1")["fine_label_names"]
        parts = {"train": ["train"], "test": ["test"]}
        label_key = "fine_labels"
    else:
        raise ValueError(f"{archive}: neither 'batches.meta' (CIFAR-10) nor 'meta' (CIFAR-100) found")
    out = {}
    for split, members_ in parts.items():
        missing = [m for m in members_ if m not in raw]
        if missing:
            raise ValueError(f"{archive}: missing members {missing}")
        batches = [_cifar_batch(io.BytesIO(raw[m]), f"{archive}:{m}", label_key) for m in members_]
        images = batches[0][0] if len(batches) == 1 else np.concatenate([b[0] for b in batches])
        images = images.transpose(0, 2, 3, 1)
        labels = np.concatenate([b[1] for b in batches])
        out[split] = (images, np.asarray(names, dtype=object)[labels])
    return out


def read_edm(fileobj, source: str = "edm_images.pickle") -> tuple:
    """Read the EDM DataFrame (columns image, label) with the restricted unpickler.

    Returns (images (N,32,32,3) uint8, names (N,) str).
    """
    frame = safe_load(fileobj, source)
    if not isinstance(frame, pd.DataFrame) or not {"image", "label"} <= set(frame.columns):
        raise ValueError(f"{source}: expected a pandas DataFrame with columns 'image' and 'label'")
    images = np.stack([np.asarray(im, dtype=np.uint8) for im in frame["image"]]) if len(frame) else np.zeros((0, 32, 32, 3), np.uint8)
    if images.shape[1:] != (32, 32, 3):
        raise ValueError(f"{source}: images have shape {images.shape[1:]}, expected (32, 32, 3)")
    return images, frame["label"].to_numpy(dtype=object)


def _labelled_frame(parts: list, keep: tuple) -> ImageFrame:
    """(source, images, names) parts as one frame: CIFAR names renamed, only labels in `keep`,
    in the parts' order. The images are not copied (`FrameRows`)."""
    arrays, part, local, labels, sources = [], [], [], [], []
    for index, (source, images, names) in enumerate(parts):
        codes, distinct = pd.factorize(np.asarray(names, dtype=object))  # map the few distinct names only
        renamed = [CIFAR_RENAMES.get(n, n) for n in distinct]
        ids = np.array([CLASS_ID[n] if n in keep else -1 for n in renamed], dtype=np.int64)[codes]
        kept = np.flatnonzero(ids >= 0)
        arrays.append(images)
        part.append(np.full(len(kept), index, np.int64))
        local.append(kept)
        labels.append(ids[kept])
        sources.append(np.full(len(kept), source, dtype=object))
    rows = FrameRows(arrays, np.concatenate(part), np.concatenate(local))
    return ImageFrame(rows, np.concatenate(labels), np.concatenate(sources))


def image_train_frame(cifar10: dict, cifar100: dict, edm: tuple) -> ImageFrame:
    """CIFAR-10 train, CIFAR-100 train, then EDM; renamed; the 50 LUMA classes only; renumbered."""
    parts = [("cifar10", *cifar10["train"]), ("cifar100", *cifar100["train"]), ("edm", *edm)]
    return _labelled_frame(parts, tuple(CLASS_ID))


def image_test_frame(cifar10: dict, cifar100: dict) -> ImageFrame:
    """CIFAR-10 test then CIFAR-100 test; renamed; the 42 in-distribution classes only; renumbered."""
    return _labelled_frame([("cifar10", *cifar10["test"]), ("cifar100", *cifar100["test"])], ID_CLASSES)


# ---------------------------------------------------------------- audio, text, splits


def _read_table(fileobj, source: str, sep: str, columns: tuple) -> pd.DataFrame:
    try:
        frame = pd.read_csv(fileobj, sep=sep, keep_default_na=False, dtype=str)
    except Exception as err:
        raise ValueError(f"{source}: not a readable {'TSV' if sep == chr(9) else 'CSV'} file ({err})") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected at least {list(columns)}, found {list(frame.columns)}")
    return frame[list(columns)].reset_index(drop=True)


def _label_ids(names: pd.Series) -> np.ndarray:
    """Class id per row; -1 where the label is not one of the 50 LUMA classes."""
    return names.map(CLASS_ID).fillna(-1).to_numpy(dtype=np.int64)


def read_datalist(fileobj, source: str = "audio/datalist.csv") -> pd.DataFrame:
    """datalist.csv → DataFrame with columns path (relative to audio/), label, label_id."""
    frame = _read_table(fileobj, source, ",", ("path", "label"))
    return frame.assign(label_id=_label_ids(frame["label"]))


def read_texts(fileobj, source: str = "text_data.tsv") -> pd.DataFrame:
    """text_data.tsv → DataFrame with columns text, label, label_id (other columns dropped)."""
    frame = _read_table(fileobj, source, "\t", ("text", "label"))
    return frame.assign(label_id=_label_ids(frame["label"]))


def read_split(fileobj, source: str, num_rows: int) -> np.ndarray:
    """A split index file: one row number per line, each in [0, num_rows). Returns (N,) int64."""
    lines = [line.strip() for line in io.TextIOWrapper(fileobj, encoding="utf-8")]
    rows = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        if not line.isdigit():
            raise ValueError(f"{source}: line {number} is {line!r}, expected a non-negative row number")
        rows.append(int(line))
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and rows.max() >= num_rows:
        raise ValueError(f"{source}: row {rows.max()} is out of range; the indexed table has {num_rows} rows")
    if len(np.unique(rows)) != len(rows):
        raise ValueError(f"{source}: names some rows more than once")
    return rows
