"""Write a miniature LUMA upstream mirror in the exact upstream formats.

The mirror has the layout of /work/shared/LUMA_SOURCES.md: ``cifar/`` (the two CIFAR
tarballs, members pickled as Python 2 wrote them), ``luma/`` (``edm_images.pickle``,
``audio/datalist.csv`` with its wavs, ``text_data.tsv``), ``splits/`` (the six index
files) and ``esc50/master.zip``. ``scale=None`` gives a tiny mirror for unit tests;
``scale=1.0`` gives the real row counts with cheap content, for benchmarks.

Every sample carries markers so tests can trace where it came from:

* images: pixel ``[0, 0, 0]`` = LUMA class id (255 for a non-LUMA label),
  ``[0, 0, 1:3]`` = source row (big-endian, mod 65536), ``[0, 1, 0]`` = source code;
* wavs: sample 0 = class id, sample 1 = datalist row % 32768, sample 2 = row // 32768;
* texts: contain the label word.

Usage: ``python tests/make_mirror.py OUT_DIR [--scale S] [--seed N]``.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import io
import json
import sys
import tarfile
import time
import wave
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from luma_noise.classes import CIFAR_RENAMES, CLASSES, ID_CLASSES, OOD_CLASSES
from py2_pickle import py2_pickle

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")
# CIFAR-100 superclass -> its five fine classes; the fine names sorted give the real order.
CIFAR100_COARSE = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_NAMES = tuple(sorted(f for fines in CIFAR100_COARSE.values() for f in fines))
COARSE_NAMES = tuple(CIFAR100_COARSE)
SOURCES = ("cifar10_train", "cifar10_test", "cifar100_train", "cifar100_test", "edm")
NON_LUMA = 255
AUDIO_RATE = 16_000  # Hz, LUMA's wavs
ESC50_RATE = 44_100  # Hz, ESC-50's clips
AUDIO_SOURCES = ("cv_audio", "ls_audio", "sw_audio", "re_audio")
EDM_NON_LUMA = "apple"  # a CIFAR-100 class outside LUMA; loaders must drop its EDM rows
# Real upstream sizes, per class unless named a total.
REAL = {"c10_train": 5000, "c10_test": 1000, "c100_train": 500, "c100_test": 100,
        "edm": 60, "edm_non_luma": 40, "audio_total": 135_096, "text_total": 62_875,
        "split_train": 500, "split_test": 100}
# OOD classes (in OOD_CLASSES order) get modality counts that differ per class, so the
# "min over modalities" alignment has each modality as the minimum for some class.
OOD_EDM_ROWS = (1, 2, 3, 1, 2, 3, 2, 1)       # small mirror: EDM rows per OOD class
OOD_AUDIO_EXTRA = (3, 1, 4, 2, 0, 5, 3, 2)    # small: audio rows = CIFAR-100 train rows + extra
OOD_TEXT_EXTRA = (2, 4, 0, 3, 5, 1, 4, 2)     # small: text rows = CIFAR-100 train rows + extra
OOD_AUDIO_WEIGHT = (0.2, 0.9, 1.0, 0.15, 1.1, 0.8, 0.9, 0.18)  # x mean class size, at scale
OOD_TEXT_WEIGHT = (0.35, 0.3, 0.3, 1.1, 0.45, 0.8, 0.38, 1.0)
ESC50_CLIPS = (  # fold, src_file, take, target, category, esc10 (real ESC-50 categories)
    (1, 100032, "A", 0, "dog", True), (1, 100038, "A", 14, "chirping_birds", False),
    (2, 102414, "B", 10, "rain", True), (3, 104089, "A", 36, "vacuum_cleaner", False),
    (4, 110389, "A", 41, "chainsaw", True), (5, 117250, "C", 16, "wind", False),
)
_STAMP = (2020, 1, 1, 0, 0, 0)  # fixed archive timestamps so output bytes are reproducible


def luma_class_id(name: str) -> int:
    """LUMA class id (0-49) of a LUMA or CIFAR label name, or 255 if it is not a LUMA class."""
    name = CIFAR_RENAMES.get(name, name)
    return CLASSES.index(name) if name in CLASSES else NON_LUMA


def _class_ids(names) -> np.ndarray:
    """uint8 LUMA class ids (255 = non-LUMA) of an iterable of label names."""
    return np.array([luma_class_id(n) for n in names], dtype=np.uint8)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a stateless, vectorised hash of uint64 values."""
    x = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@functools.lru_cache(maxsize=1)
def _noise_table() -> np.ndarray:
    """Fixed 1 MiB of random bytes (+ 64 KiB slack); windows into it give cheap textures."""
    return np.random.default_rng(0x4C554D41).integers(0, 256, 2**20 + 2**16, dtype=np.uint8)


def _windows(keys: np.ndarray, width: int) -> np.ndarray:
    """(N, width) uint8 windows (width <= 65536) of the noise table, offsets from `keys`."""
    table = _noise_table()
    view = np.lib.stride_tricks.sliding_window_view(table[: 2**20 + width - 1], width)
    return view[(keys % np.uint64(2**20)).astype(np.int64)]


def fixture_images(source: str, rows, class_ids) -> np.ndarray:
    """Marked test images, shape (N, 32, 32, 3) uint8, deterministic per (source, row).

    A per-row colour gradient plus byte noise (so blurs, noise and PSNR have something to
    act on), then the markers: [0,0,0] = class id (0-49, 255 non-LUMA), [0,0,1:3] = row
    mod 65536 (big-endian), [0,1,0] = index of `source` in SOURCES.
    """
    code = SOURCES.index(source)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    keys = _mix64((np.uint64(code) << np.uint64(32)) | rows.astype(np.uint64))
    # Integer maths in place (int16): a third of the time of float32 at scale 1.0.
    # 6 slopes in [-128, 128) from the hash's bytes: one x and one y slope per channel.
    slopes = ((keys[:, None] >> (np.arange(6, dtype=np.uint64) * np.uint64(8)))
              & np.uint64(255)).astype(np.int16) - 128
    grid = np.arange(32, dtype=np.int16) - 16
    images = (slopes[:, None, None, 0:3] * grid[None, None, :, None]
              + slopes[:, None, None, 3:6] * grid[None, :, None, None])
    images >>= 6  # gradient within +-64 of mid-grey
    images += _windows(keys >> np.uint64(12), 3072).reshape(-1, 32, 32, 3) >> 1
    images += 64  # 128 + gradient + (noise - 128) / 2
    return _mark(np.clip(images, 0, 255).astype(np.uint8), code, rows, class_ids)


def _mark(images: np.ndarray, code: int, rows: np.ndarray, class_ids) -> np.ndarray:
    """Write the class, row and source markers into (N, 32, 32, 3) uint8 `images`, in place."""
    images[:, 0, 0, 0] = np.asarray(class_ids, dtype=np.uint8)
    images[:, 0, 0, 1] = (rows >> 8) & 255
    images[:, 0, 0, 2] = rows & 255
    images[:, 0, 1, 0] = code
    return images


def fixture_image(source: str, row: int, label: int | str) -> np.ndarray:
    """One marked image (32, 32, 3) uint8; `label` is a class id or a LUMA/CIFAR label name."""
    class_id = luma_class_id(label) if isinstance(label, str) else label
    return fixture_images(source, [row], [class_id])[0]


def decode_image_marker(image: np.ndarray) -> tuple[int, str, int]:
    """(class id, source, row mod 65536) written by `fixture_images` into an HWC image."""
    image = np.asarray(image)
    row = int(image[0, 0, 1]) * 256 + int(image[0, 0, 2])
    return int(image[0, 0, 0]), SOURCES[int(image[0, 1, 0])], row


def fixture_waves(rows, class_ids, num_samples: int) -> np.ndarray:
    """Marked speech stand-ins, shape (N, num_samples) int16, deterministic per (row, class).

    A class-pitched tone (220-900 Hz at 16 kHz) at 0.3 of full scale plus byte noise at
    about 0.02; samples 0..2 hold class id, row % 32768 and row // 32768.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    ids = np.asarray(class_ids, dtype=np.float32).reshape(-1, 1)
    keys = _mix64(rows.astype(np.uint64) | (np.uint64(1) << np.uint64(40)))
    phase = (keys % np.uint64(6283)).astype(np.float32)[:, None] / 1000.0
    t = np.arange(num_samples, dtype=np.float32)[None, :] / AUDIO_RATE
    tone = np.sin(2 * np.pi * 220.0 * 2.0 ** (ids / 24.0) * t + phase)
    noise = _windows(keys >> np.uint64(12), num_samples).view(np.int8).astype(np.float32) / 128
    waves = (32767 * (0.3 * tone + 0.02 * noise)).astype(np.int16)
    waves[:, 0] = np.asarray(class_ids).reshape(-1)
    waves[:, 1] = rows % 32768
    waves[:, 2] = rows // 32768
    return waves


def decode_audio_marker(samples: np.ndarray) -> tuple[int, int]:
    """(class id, datalist row) from the first three int16 samples of a fixture wav."""
    return int(samples[0]), int(samples[1]) + 32768 * int(samples[2])


_ADJ = ("big", "small", "happy", "sad", "old", "new", "quiet", "loud", "fast", "slow",
        "bright", "dark", "warm", "cold", "clean", "dirty", "strong", "weak", "gentle", "rough")
# No LUMA class words here: a text names its own class only (label-masking features rely on it).
_NOUN = ("garden", "river", "village", "market", "window", "school", "park", "bakery",
         "kitchen", "station", "meadow", "library", "harbor", "hill", "field", "city")
_TIME = ("morning", "afternoon", "evening", "night", "summer", "winter")
_VERB = ("walked", "rested", "waited", "played", "stood", "moved", "appeared", "slept")
_PEOPLE = ("My neighbor", "The teacher", "A young child", "Our friend", "The old farmer",
           "Everyone", "The visitor", "My sister")


def fixture_texts(rows, labels) -> list[str]:
    """Two ordinary English sentences (about 30 words) naming each label, deterministic per row."""
    hashes = _mix64(np.asarray(rows, dtype=np.uint64) | np.uint64(2 << 40)).tolist()
    return [_sentence(h, label) for h, label in zip(hashes, labels)]


def fixture_text(row: int, label: str) -> str:
    """The text of text_data.tsv row `row` with class word `label` (see `fixture_texts`)."""
    return fixture_texts([row], [label])[0]


def _sentence(h: int, label: str) -> str:
    """Fill the sentence template with words picked by 5-bit slices of the hash `h`."""
    def pick(words, k):
        return words[(h >> (5 * k)) % len(words)]
    return (f"The {pick(_ADJ, 0)} {label} {pick(_VERB, 1)} near the {pick(_ADJ, 2)} "
            f"{pick(_NOUN, 3)} one {pick(_TIME, 4)}. {pick(_PEOPLE, 5)} said that this "
            f"{label} looked {pick(_ADJ, 6)} and rather {pick(_ADJ, 7)} beside the "
            f"{pick(_NOUN, 8)}, so everyone remembered it for a long time.")


# ---- planted content -----------------------------------------------------------------
# `write_mirror(planted=True)` writes content whose deep features are known under the
# models of tests/planted_models.py, so the variants' answers are known:
# * image of ID class c: a uniform colour. R, G place c's pair p = c % 21 on a 5x5 grid
#   PLANTED_GRID apart; B = 128 -/+ PLANTED_MEMBER for c // 21 (the pair's two members),
#   plus the row's offset (`planted_offsets`: +-2..6, 0 for EDM rows, which sit on their
#   class centre). Features are the colour, so c's nearest other class is
#   `image_partner(c)` = (c + 21) % 42 for any row and any number of neighbours.
# * text of class c: "the <class word> <pair word> <member word> ." with the pair and
#   member of `text_partner`'s pairs (c <-> c +- 3 within blocks of 6). With the class
#   word masked the text's nearest other class is `text_partner(c)`; unmasked, the planted
#   text model's class-word embedding (60 units per class id) makes it c - 1 or c + 1.
# Other classes get mid-grey images (plus offsets); audio is the ordinary fixture audio.
PLANTED_GRID = 45
PLANTED_MEMBER = 10
PLANTED_OFFSETS = (2, 3, 4, 5, 6)  # |B offset| of a CIFAR row from its class centre
PLANTED_PAIR_WORDS = tuple(f"pq{chr(97 + i)}" for i in range(26))
PLANTED_MEMBER_WORDS = ("mqa", "mqb")


def image_partner(class_id: int) -> int:
    """The nearest other class of an ID class's planted images."""
    return (class_id + 21) % len(ID_CLASSES)


def text_partner(class_id: int) -> int:
    """The nearest other class of an ID class's planted texts (class word masked)."""
    return class_id + 3 if class_id % 6 < 3 else class_id - 3


def _text_pair(class_id: int) -> tuple[int, int]:
    """(pair index 0..25, member 0/1) of a class's planted text."""
    return (class_id // 6) * 3 + class_id % 3, (class_id % 6) // 3


def planted_offsets(source: str, labels) -> np.ndarray:
    """int16 B offsets (N,) of the planted images of a source whose rows have `labels`: 0 for
    EDM rows; else the k-th row of a label gets +-PLANTED_OFFSETS[(k // 2) % 5], signs
    alternating, so a class's offsets are symmetric and its centre sits near 0."""
    labels = pd.Series(list(labels))
    if source == "edm":
        return np.zeros(len(labels), np.int16)
    rank = labels.groupby(labels).cumcount().to_numpy()
    size = np.asarray(PLANTED_OFFSETS, np.int16)[(rank // 2) % len(PLANTED_OFFSETS)]
    return np.where(rank % 2, -size, size).astype(np.int16)


def planted_colours(class_ids) -> np.ndarray:
    """(N, 3) int16 planted centre colour of each class id (mid-grey for non-ID classes)."""
    ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    pair, member = ids % 21, ids // 21
    colours = np.stack([30 + PLANTED_GRID * (pair % 5), 30 + PLANTED_GRID * (pair // 5),
                        128 + PLANTED_MEMBER * (2 * member - 1)], axis=1)
    colours[ids >= len(ID_CLASSES)] = 128
    return colours.astype(np.int16)


def planted_images(source: str, rows, class_ids, offsets) -> np.ndarray:
    """Planted images (N, 32, 32, 3) uint8: class colour + B `offsets`, with the usual markers."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    colours = planted_colours(class_ids)
    colours[:, 2] += np.asarray(offsets, np.int16)
    images = np.empty((len(rows), 32, 32, 3), np.uint8)  # C order: pickled as upstream's arrays are
    images[:] = colours[:, None, None, :]
    return _mark(images, SOURCES.index(source), rows, class_ids)


def planted_texts(labels) -> list[str]:
    """Planted texts of class words `labels`: "the <word> <pair word> <member word> ."."""
    out = []
    for label in labels:
        pair, member = _text_pair(CLASSES.index(label))
        out.append(f"the {label} {PLANTED_PAIR_WORDS[pair]} {PLANTED_MEMBER_WORDS[member]} .")
    return out


def _images(plan: dict, source: str, rows, class_ids, offsets) -> np.ndarray:
    """Rows of a source's images: planted (with their `offsets`) or ordinary fixture images."""
    if plan.get("planted"):
        return planted_images(source, rows, class_ids, offsets)
    return fixture_images(source, rows, class_ids)


# ---- sizes ---------------------------------------------------------------------------
def _count(real: float, scale: float | None, minimum: int) -> int:
    """`real` rows scaled by `scale`, never fewer than `minimum` (just `minimum` if unscaled)."""
    return minimum if scale is None else max(minimum, int(round(real * scale)))


def plan_sizes(scale: float | None = None, per_class_train: int = 3,
               per_class_test: int = 2, per_class_pool: int | None = None) -> dict:
    """Rows per class of every source and split file; ``scale=1.0`` gives the real counts.

    Returns ``per_class_train``/``per_class_test`` (rows per ID class in each split file),
    ``cifar10_train``/``cifar10_test``/``cifar100_train``/``cifar100_test``/``edm``
    (label name -> rows) and ``audio``/``text`` (rows per LUMA class id, length 50).
    per_class_pool: rows per ID class in the CIFAR train sources (the diversity sampling's
    candidates; default one more than the train split takes), at least per_class_train.
    """
    if scale is not None and not 0 < scale <= 1:
        raise ValueError(f"scale must be None or in (0, 1], got {scale!r}")
    if per_class_train < 1 or per_class_test < 1:
        raise ValueError("per_class_train and per_class_test must be >= 1, got "
                         f"{per_class_train} and {per_class_test}")
    pool = per_class_train + 1 if per_class_pool is None else per_class_pool
    if pool < per_class_train:
        raise ValueError(f"per_class_pool must be >= per_class_train ({per_class_train}), got {pool}")
    pt = _count(REAL["split_train"], scale, per_class_train)
    pe = _count(REAL["split_test"], scale, per_class_test)

    def per_name(names, real, luma_min, other_min):
        return {n: _count(real, scale, luma_min if luma_class_id(n) != NON_LUMA else other_min)
                for n in names}

    # Real CIFAR-100 has exactly the 500/100 rows per class the splits take; only the
    # small mirror adds a spare row, so scale 1.0 keeps the real totals.
    c100_train = {n: max(pt, c) if luma_class_id(n) != NON_LUMA else c for n, c in
                  per_name(CIFAR100_NAMES, REAL["c100_train"], pool, 1).items()}
    c100_test = {n: max(pe, c) if luma_class_id(n) != NON_LUMA else c for n, c in
                 per_name(CIFAR100_NAMES, REAL["c100_test"], per_class_test + 1, 1).items()}
    ood_base = pool  # the small mirror's CIFAR-100 train rows per class
    return {
        "scale": scale, "per_class_train": pt, "per_class_test": pe,
        "cifar10_train": per_name(CIFAR10_NAMES, REAL["c10_train"], max(pool, pt + 1), 2),
        "cifar10_test": per_name(CIFAR10_NAMES, REAL["c10_test"], pe + 1, 2),
        "cifar100_train": c100_train, "cifar100_test": c100_test,
        "edm": _edm_counts(scale),
        "audio": _modality_counts(REAL["audio_total"], OOD_AUDIO_WEIGHT, OOD_AUDIO_EXTRA,
                                  scale, pt + pe + 1, ood_base),
        "text": _modality_counts(REAL["text_total"], OOD_TEXT_WEIGHT, OOD_TEXT_EXTRA,
                                 scale, pt + pe + 1, ood_base),
    }


def _edm_counts(scale: float | None) -> dict:
    """EDM rows per LUMA label of CIFAR-100 origin (renamed), plus a non-LUMA label."""
    counts = {}
    for name in CIFAR100_NAMES:
        luma = CIFAR_RENAMES.get(name, name)
        if luma in OOD_CLASSES:
            counts[luma] = _count(REAL["edm"], scale, OOD_EDM_ROWS[OOD_CLASSES.index(luma)])
        elif luma in CLASSES:
            counts[luma] = _count(REAL["edm"], scale, 1)
    counts[EDM_NON_LUMA] = _count(REAL["edm_non_luma"], scale, 2)
    return counts


def _modality_counts(total: int, ood_weight, ood_extra, scale, id_min: int,
                     ood_base: int) -> list[int]:
    """Rows per class id (50) for audio or text: unequal class sizes summing to the real
    total at scale 1.0, never below what the splits need (ID) or the small OOD table."""
    ids = np.arange(len(CLASSES))
    minimum = np.where(ids < len(ID_CLASSES), id_min, 0)
    minimum[len(ID_CLASSES):] = ood_base + np.asarray(ood_extra)
    if scale is None:
        return minimum.tolist()
    weight = 0.7 + 0.6 * ((ids * 0.6180339887) % 1.0)  # uneven but fixed class sizes
    weight[len(ID_CLASSES):] = ood_weight
    counts = np.maximum(minimum, np.round(total * scale * weight / weight.sum())).astype(int)
    # Spread the rounding remainder over the ID classes so the total is exact.
    diff = int(round(total * scale)) - int(counts.sum())
    step, rest = divmod(abs(diff), len(ID_CLASSES))
    delta = np.full(len(ID_CLASSES), step)
    delta[:rest] += 1
    counts[: len(ID_CLASSES)] += int(np.sign(diff)) * delta
    return np.maximum(counts, minimum).tolist()  # tiny scales: the minima win over the total


# ---- archives ------------------------------------------------------------------------
def _write_targz(path: Path, members: list[tuple[str, bytes | None]]) -> None:
    """A .tar.gz of (name, bytes) members, None = directory; fixed times, so reproducible.

    gzip level 1: the format is the same and the fixture's noisy pixels barely compress.
    """
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1,
                                                mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_230_000_000
            info.mode = 0o755 if data is None else 0o644
            info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
            info.size = 0 if data is None else len(data)
            tar.addfile(info, None if data is None else io.BytesIO(data))


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit PCM RIFF/WAVE file holding int16 `samples` at `rate` Hz."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


# ---- CIFAR ---------------------------------------------------------------------------
def _cifar_source(source: str, names: tuple, plan: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled label indices into `names` (N,) and marked CIFAR rows (N, 3072) uint8.

    A row is 1024 red, 1024 green, 1024 blue values of a 32x32 image, row-major.
    """
    labels = rng.permutation(np.repeat(np.arange(len(names)), [plan[source][n] for n in names]))
    ids = _class_ids(names)[labels]
    offsets = planted_offsets(source, labels)
    data = np.empty((len(labels), 3072), np.uint8)
    for start in range(0, len(labels), 4096):  # chunks bound the float32 temporaries
        rows = np.arange(start, min(start + 4096, len(labels)))
        images = _images(plan, source, rows, ids[rows], offsets[rows])
        data[rows] = images.transpose(0, 3, 1, 2).reshape(len(rows), 3072)
    return labels, data


def _filenames(names: tuple, labels: np.ndarray, first_row: int) -> list[str]:
    """CIFAR-style file names, e.g. 'horse_s_000017.png', unique by source row."""
    return [f"{names[lab]}_s_{first_row + i:06d}.png" for i, lab in enumerate(labels.tolist())]


def _write_cifar10(root: Path, plan: dict, rng) -> dict[str, list[str]]:
    """Write cifar/cifar-10-python.tar.gz; return label names per row of train and test."""
    top = "cifar-10-batches-py"
    train_labels, train_data = _cifar_source("cifar10_train", CIFAR10_NAMES, plan, rng)
    test_labels, test_data = _cifar_source("cifar10_test", CIFAR10_NAMES, plan, rng)
    members = [(top, None)]
    first = 0
    batches = zip(np.array_split(train_labels, 5), np.array_split(train_data, 5))
    for i, (labels, data) in enumerate(batches, 1):
        members.append((f"{top}/data_batch_{i}", _cifar10_batch(f"training batch {i} of 5",
                                                                labels, data, first)))
        first += len(labels)
    members += [
        (f"{top}/test_batch", _cifar10_batch("testing batch 1 of 1", test_labels, test_data, 0)),
        (f"{top}/batches.meta", py2_pickle({
            "num_cases_per_batch": len(np.array_split(train_labels, 5)[0]),
            "label_names": list(CIFAR10_NAMES), "num_vis": 3072})),
        (f"{top}/readme.html", b"<html><body><p>CIFAR-10 fixture.</p></body></html>\n"),
    ]
    _write_targz(root / "cifar" / "cifar-10-python.tar.gz", members)
    return {"cifar10_train": [CIFAR10_NAMES[i] for i in train_labels.tolist()],
            "cifar10_test": [CIFAR10_NAMES[i] for i in test_labels.tolist()]}


def _cifar10_batch(batch_label: str, labels: np.ndarray, data: np.ndarray, first: int) -> bytes:
    """One CIFAR-10 batch member, keys in the order Python 2 left them."""
    return py2_pickle({"batch_label": batch_label, "labels": labels.tolist(), "data": data,
                       "filenames": _filenames(CIFAR10_NAMES, labels, first)})


def _write_cifar100(root: Path, plan: dict, rng) -> dict[str, list[str]]:
    """Write cifar/cifar-100-python.tar.gz; return fine label names per row of train and test."""
    top = "cifar-100-python"
    coarse_of = np.array([next(i for i, fines in enumerate(CIFAR100_COARSE.values()) if n in fines)
                          for n in CIFAR100_NAMES])
    members, out = [(top, None)], {}
    for part, batch_label in (("train", "training batch 1 of 1"), ("test", "testing batch 1 of 1")):
        source = f"cifar100_{part}"
        labels, data = _cifar_source(source, CIFAR100_NAMES, plan, rng)
        members.append((f"{top}/{part}", py2_pickle({
            "filenames": _filenames(CIFAR100_NAMES, labels, 0), "batch_label": batch_label,
            "fine_labels": labels.tolist(), "coarse_labels": coarse_of[labels].tolist(),
            "data": data})))
        out[source] = [CIFAR100_NAMES[i] for i in labels.tolist()]
    members += [
        (f"{top}/meta", py2_pickle({"fine_label_names": list(CIFAR100_NAMES),
                                    "coarse_label_names": list(COARSE_NAMES)})),
        (f"{top}/file.txt~", b"CIFAR-100 fixture\n"),
    ]
    _write_targz(root / "cifar" / "cifar-100-python.tar.gz", members)
    return out


# ---- LUMA's own files ----------------------------------------------------------------
def _write_edm(root: Path, plan: dict, rng) -> list[str]:
    """Write luma/edm_images.pickle (DataFrame: image (32,32,3) uint8 objects, label words)."""
    names = list(plan["edm"])
    labels = rng.permutation(np.repeat(np.arange(len(names)), list(plan["edm"].values())))
    label_names = [names[i] for i in labels.tolist()]
    images = _images(plan, "edm", np.arange(len(labels)), _class_ids(label_names), 0)
    column = np.empty(len(images), dtype=object)
    column[:] = list(images)  # an object column of separate arrays, as upstream
    # Object dtype for the labels and the column names too: pandas 3 would otherwise
    # pickle Arrow-backed strings, which upstream's (older pandas) file doesn't contain.
    frame = pd.DataFrame({"image": column, "label": pd.Series(label_names, dtype=object)})
    frame.columns = pd.Index(["image", "label"], dtype=object)
    frame.to_pickle(root / "luma" / "edm_images.pickle")
    return label_names


def _write_audio(root: Path, plan: dict, rng, seconds: float) -> tuple[list[str], list[str]]:
    """Write luma/audio/datalist.csv and its wavs (16 kHz mono int16); return labels, paths."""
    ids = rng.permutation(np.repeat(np.arange(len(CLASSES)), plan["audio"]))
    labels = np.array(CLASSES, dtype=object)[ids]
    srcs = np.array(AUDIO_SOURCES, dtype=object)[rng.choice(4, len(ids), p=[0.5, 0.25, 0.15, 0.1])]
    number = pd.DataFrame({"s": srcs, "l": labels}).groupby(["s", "l"]).cumcount().to_numpy()
    paths = [f"{s}/{lab}/{n}.wav" for s, lab, n in zip(srcs, labels, number.tolist())]
    rows = np.arange(len(ids))
    tts = np.where(rows % 11 == 3, labels + "s", labels)  # the recogniser mishears a few
    pd.DataFrame({"path": paths, "label": labels, "tts_label": tts}).to_csv(
        root / "luma" / "audio" / "datalist.csv", index=False)
    audio = root / "luma" / "audio"
    for folder in {p.rsplit("/", 1)[0] for p in paths}:
        (audio / folder).mkdir(parents=True, exist_ok=True)
    num_samples = int(round(seconds * AUDIO_RATE))
    for start in range(0, len(ids), 8192):
        chunk = rows[start:start + 8192]
        for row, samples in zip(chunk.tolist(), fixture_waves(chunk, ids[chunk], num_samples)):
            (audio / paths[row]).write_bytes(_wav_bytes(samples, AUDIO_RATE))
    return labels.tolist(), paths


def _write_text(root: Path, plan: dict, rng) -> list[str]:
    """Write luma/text_data.tsv (unnamed index, text, label, source); return the labels."""
    ids = rng.permutation(np.repeat(np.arange(len(CLASSES)), plan["text"]))
    labels = [CLASSES[i] for i in ids.tolist()]
    texts = planted_texts(labels) if plan.get("planted") else fixture_texts(np.arange(len(ids)), labels)
    frame = pd.DataFrame({"text": texts,
                          "label": labels, "source": "fixture"})
    frame.to_csv(root / "luma" / "text_data.tsv", sep="\t")
    return labels


def _image_frame(src_labels: dict, sources: tuple, keep: tuple) -> list[list]:
    """Rows [source, source_row, luma_label] of the concatenated, renamed, filtered frame."""
    rows = []
    for source in sources:
        for i, name in enumerate(src_labels[source]):
            luma = CIFAR_RENAMES.get(name, name)
            if luma in keep:
                rows.append([source, i, luma])
    return rows


# ---- split files ---------------------------------------------------------------------
def _pick(class_ids: np.ndarray, per_class: int, rng, taken=()) -> np.ndarray:
    """`per_class` random rows of every ID class, none in `taken`; shuffled, (42*per_class,)."""
    free = np.ones(len(class_ids), bool)
    free[np.asarray(taken, dtype=np.int64)] = False
    chosen = []
    for c, name in enumerate(ID_CLASSES):
        candidates = np.flatnonzero((class_ids == c) & free)
        if len(candidates) < per_class:
            raise ValueError(f"class {name!r} has {len(candidates)} candidate rows, "
                             f"the splits need {per_class}")
        chosen.append(rng.choice(candidates, per_class, replace=False))
    return rng.permutation(np.concatenate(chosen))


def _write_splits(root: Path, plan: dict, frames: dict, rng) -> dict[str, list[int]]:
    """Write splits/{audio,image,text}_{train_clean,test}.txt; return the index lists.

    `frames` maps "image_train"/"image_test"/"audio"/"text" to class ids per row; image
    train candidates must already exclude EDM rows (class id 255 there).
    """
    pt, pe = plan["per_class_train"], plan["per_class_test"]
    splits = {}
    for modality in ("audio", "image", "text"):
        train_ids = frames["image_train" if modality == "image" else modality]
        train = _pick(train_ids, pt, rng)
        if modality == "image":
            test = _pick(frames["image_test"], pe, rng)  # a different frame: no overlap
        else:
            test = _pick(train_ids, pe, rng, taken=train)
        for part, rows in (("train_clean", train), ("test", test)):
            splits[f"{modality}_{part}"] = rows.tolist()
            (root / "splits" / f"{modality}_{part}.txt").write_text(
                "".join(f"{r}\n" for r in rows.tolist()))
    return splits


# ---- ESC-50 --------------------------------------------------------------------------
def _write_esc50(root: Path, rng) -> list[str]:
    """Write esc50/master.zip as GitHub's archive lays it out; return the clip file names."""
    files, meta = [], []
    with zipfile.ZipFile(root / "esc50" / "master.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name, data=b""):
            zf.writestr(zipfile.ZipInfo(name, date_time=_STAMP), data, zipfile.ZIP_DEFLATED)
        for folder in ("ESC-50-master/", "ESC-50-master/audio/", "ESC-50-master/meta/"):
            add(folder)
        add("ESC-50-master/README.md", b"# ESC-50 fixture\n")
        for fold, src, take, target, category, esc10 in ESC50_CLIPS:
            name = f"{fold}-{src}-{take}-{target}.wav"
            # 1 s of smoothed noise (a 5-tap average colours it), peak 0.3 of full scale.
            noise = np.convolve(rng.standard_normal(ESC50_RATE + 4), np.ones(5), "valid")
            add(f"ESC-50-master/audio/{name}",
                _wav_bytes((9830 * noise / np.abs(noise).max()).astype(np.int16), ESC50_RATE))
            files.append(name)
            meta.append((name, fold, target, category, esc10, src, take))
        table = pd.DataFrame(meta, columns=["filename", "fold", "target", "category",
                                            "esc10", "src_file", "take"])
        add("ESC-50-master/meta/esc50.csv", table.to_csv(index=False).encode())
    return files


# ---- the mirror ----------------------------------------------------------------------
_PURPOSES = ("cifar10", "cifar100", "edm", "audio", "text", "splits", "esc50")


def write_mirror(root, scale: float | None = None, seed: int = 0, per_class_train: int = 3,
                 per_class_test: int = 2, audio_seconds: float | None = None,
                 per_class_pool: int | None = None, planted: bool = False) -> dict:
    """Write the mirror under folder `root`; return the manifest (also root/manifest.json).

    scale: None for the tiny default, or (0, 1] of the real row counts (1.0 = real).
    per_class_train / per_class_test: minimum rows per ID class in each split file.
    audio_seconds: wav length in (0, 4] s; default 0.25 s, or 0.1 s once the datalist
        passes 20,000 rows (a 0.1 s wav fits one 4 KiB disk block).
    per_class_pool: CIFAR train rows per ID class (see `plan_sizes`).
    planted: images and texts with known features (see "planted content" above) instead
        of the ordinary fixture content; the manifest's sizes then say "planted": true.
    Each purpose draws from its own ``default_rng([seed, k])``, so they don't shift each other.

    Manifest keys: scale, seed, audio_seconds, sizes (`plan_sizes`), source_labels (label
    name per row of each of SOURCES), image_train_frame / image_test_frame ([source,
    source_row, luma_label] per frame row), audio_labels / audio_paths (per datalist row),
    text_labels (per tsv row), splits ("{modality}_{train_clean,test}" -> rows in file
    order), ood_counts ({class: {image, audio, text}} candidate rows), ood_total (sum of
    per-class minima), esc50_files.
    """
    root = Path(root)
    plan = {**plan_sizes(scale, per_class_train, per_class_test, per_class_pool), "planted": planted}
    if audio_seconds is None:
        audio_seconds = 0.25 if sum(plan["audio"]) <= 20_000 else 0.1
    if not 0 < audio_seconds <= 4:  # the noise table's windows are at most 65536 samples
        raise ValueError(f"audio_seconds must be in (0, 4], got {audio_seconds!r}")
    for sub in ("cifar", "luma/audio", "splits", "esc50"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = {p: np.random.default_rng([seed, k]) for k, p in enumerate(_PURPOSES)}
    src_labels = {**_write_cifar10(root, plan, rng["cifar10"]),
                  **_write_cifar100(root, plan, rng["cifar100"]),
                  "edm": _write_edm(root, plan, rng["edm"])}
    train_frame = _image_frame(src_labels, ("cifar10_train", "cifar100_train", "edm"), CLASSES)
    test_frame = _image_frame(src_labels, ("cifar10_test", "cifar100_test"), ID_CLASSES)
    audio_labels, audio_paths = _write_audio(root, plan, rng["audio"], audio_seconds)
    text_labels = _write_text(root, plan, rng["text"])
    frames = {
        # EDM rows are never clean-train candidates: mark them non-LUMA for the picker.
        "image_train": _class_ids(r[2] if r[0] != "edm" else "-" for r in train_frame),
        "image_test": _class_ids(r[2] for r in test_frame),
        "audio": _class_ids(audio_labels), "text": _class_ids(text_labels)}
    splits = _write_splits(root, plan, frames, rng["splits"])
    manifest = {
        "scale": scale, "seed": seed, "audio_seconds": audio_seconds, "sizes": plan,
        "source_labels": src_labels, "image_train_frame": train_frame,
        "image_test_frame": test_frame, "audio_labels": audio_labels,
        "audio_paths": audio_paths, "text_labels": text_labels, "splits": splits,
        "ood_counts": _ood_counts(train_frame, audio_labels, text_labels),
        "esc50_files": _write_esc50(root, rng["esc50"]),
    }
    manifest["ood_total"] = sum(min(c.values()) for c in manifest["ood_counts"].values())
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _ood_counts(train_frame: list, audio_labels: list, text_labels: list) -> dict:
    """Candidate rows per OOD class and modality (image train frame incl. EDM, datalist, tsv)."""
    image = pd.Series([r[2] for r in train_frame]).value_counts()
    audio = pd.Series(audio_labels).value_counts()
    text = pd.Series(text_labels).value_counts()
    return {c: {"image": int(image.get(c, 0)), "audio": int(audio.get(c, 0)),
                "text": int(text.get(c, 0))} for c in OOD_CLASSES}


def _disk_bytes(root: Path) -> int:
    """Bytes of all files under `root` (apparent sizes)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv=None) -> int:
    """CLI: write a mirror and print its timing, size and main counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=float, default=None, help="(0, 1]; 1.0 = real counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class-train", type=int, default=3)
    parser.add_argument("--per-class-test", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    manifest = write_mirror(args.out_dir, args.scale, args.seed,
                            args.per_class_train, args.per_class_test)
    seconds = time.perf_counter() - start
    print(f"wrote {args.out_dir} in {seconds:.1f} s, {_disk_bytes(args.out_dir) / 1e6:.1f} MB: "
          f"{len(manifest['image_train_frame'])} image train / "
          f"{len(manifest['image_test_frame'])} image test frame rows, "
          f"{len(manifest['audio_labels'])} audio rows, {len(manifest['text_labels'])} text rows, "
          f"OOD aligned total {manifest['ood_total']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
