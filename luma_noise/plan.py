"""Which upstream rows make up each split, and how the three modalities are paired.

A `SplitPlan` is a table of aligned examples: example i pairs image row
`image_rows[i]` (of the split's image frame), audio row `audio_rows[i]` (of
datalist.csv) and text row `text_rows[i]` (of text_data.tsv), all of class
`labels[i]`. Plans hold row numbers only; content is attached when examples are yielded.
"""

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd

from .classes import CLASSES, ID_CLASSES, MODALITIES, OOD_CLASSES
from .rng import derive_rng
from .upstream.sources import ImageFrame


@dataclasses.dataclass
class Upstream:
    """Everything read from the upstream sources except audio files.

    splits maps a split file's stem (e.g. "audio_train_clean") to its (N,) row numbers.
    """

    image_train: ImageFrame
    image_test: ImageFrame
    audio: pd.DataFrame
    text: pd.DataFrame
    splits: dict

    def image_frame(self, split: str) -> ImageFrame:
        """The frame a split's image rows index: the test frame for "test", else the train frame."""
        return self.image_test if split == "test" else self.image_train

    def labels(self, modality: str, split: str) -> np.ndarray:
        """(N,) class id of every row of the table that `modality`'s rows index in `split`."""
        if modality == "image":
            return self.image_frame(split).labels
        return (self.audio if modality == "audio" else self.text)["label_id"].to_numpy()


@dataclasses.dataclass
class SplitPlan:
    """Aligned examples of one split; every array has one entry per example."""

    split: str
    keys: np.ndarray  # stable example keys "<class>-<position in class>"
    labels: np.ndarray  # (N,) int class ids
    image_rows: np.ndarray
    audio_rows: np.ndarray
    text_rows: np.ndarray
    original_labels: Optional[np.ndarray] = None  # set by label noise
    conflict_modality: Optional[np.ndarray] = None  # set by conflict: modality name or None

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, modality: str) -> np.ndarray:
        return getattr(self, f"{modality}_rows")


def align(split: str, pools: dict, classes: tuple, seed: int, counts: dict = None) -> SplitPlan:
    """Pair the modalities' rows class by class.

    pools maps each modality to (rows (N_m,), labels (N_m,)). Within each class, each
    modality's rows are shuffled with a generator derived from (seed, split, class,
    modality) and paired position by position; `counts` (class name -> n) takes the first
    n of each shuffled pool, otherwise every pool of a class must have the same size.
    Examples are then put in a seeded random order, so the split is not sorted by class.
    """
    keys, labels, rows = [], [], {m: [] for m in MODALITIES}
    for name in classes:
        class_id = CLASSES.index(name)
        picked = {}
        for modality in MODALITIES:
            pool_rows, pool_labels = pools[modality]
            members = pool_rows[pool_labels == class_id]
            picked[modality] = derive_rng(seed, "align", split, name, modality).permutation(members)
        sizes = {m: len(r) for m, r in picked.items()}
        n = counts[name] if counts else sizes["image"]
        if (not counts and len(set(sizes.values())) > 1) or min(sizes.values()) < n:
            raise ValueError(f"split {split!r}, class {name!r}: the modalities have {sizes} rows; cannot pair {n} examples")
        keys += [f"{name}-{i}" for i in range(n)]
        labels += [class_id] * n
        for modality in MODALITIES:
            rows[modality].append(picked[modality][:n])
    order = derive_rng(seed, "order", split).permutation(len(keys))
    return SplitPlan(
        split=split,
        keys=np.asarray(keys, dtype=object)[order],
        labels=np.asarray(labels, dtype=np.int64)[order],
        **{f"{m}_rows": np.concatenate(rows[m]).astype(np.int64)[order] if rows[m] else np.zeros(0, np.int64) for m in MODALITIES},
    )


def check_split_labels(upstream: Upstream, split: str) -> None:
    """Raise ValueError if a split file names a row whose label is not an in-distribution class."""
    for modality in MODALITIES:
        stem = f"{modality}_{'test' if split == 'test' else 'train_clean'}"
        rows = upstream.splits[stem]
        labels = upstream.labels(modality, split)[rows]
        bad = rows[(labels < 0) | (labels >= len(ID_CLASSES))]
        if len(bad):
            raise ValueError(f"{stem}.txt names row {bad[0]}, whose label is not one of the 42 in-distribution classes")


def published_plan(upstream: Upstream, split: str, seed: int) -> SplitPlan:
    """The published train or test split: exactly the rows LUMA's split files name, aligned."""
    check_split_labels(upstream, split)
    stem = "test" if split == "test" else "train_clean"
    pools = {}
    for modality in MODALITIES:
        rows = upstream.splits[f"{modality}_{stem}"]
        pools[modality] = (rows, upstream.labels(modality, split)[rows])
    return align(split, pools, ID_CLASSES, seed)


def ood_plan(upstream: Upstream, seed: int) -> SplitPlan:
    """The OOD split: every row of the 8 OOD classes is a candidate; per class, as many
    examples as its smallest modality has, drawn at random from each modality."""
    pools, counts = {}, {}
    for modality in MODALITIES:
        labels = upstream.labels(modality, "ood")
        rows = np.flatnonzero(labels >= len(ID_CLASSES))
        pools[modality] = (rows, labels[rows])
    for name in OOD_CLASSES:
        class_id = CLASSES.index(name)
        counts[name] = min(int(np.sum(pools[m][1] == class_id)) for m in MODALITIES)
    return align("ood", pools, OOD_CLASSES, seed, counts)
