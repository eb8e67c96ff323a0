"""Feature-space sampling for LUMA's variants: low diversity, label switching, conflict.

All functions take deep features as plain numpy arrays (rows = examples) and an
explicit `numpy.random.Generator`; nothing touches global random state. The work is
vectorised: distances come from matrix products, per-class selections from
`np.partition`/`np.argpartition`, and the only Python loops run over classes (42) or
row chunks, never over rows. Per-row reference versions live in
`benchmarks/bench_sampling.py`; the tests check that both give identical results.
"""

from collections.abc import Sequence

import numpy as np

from luma_noise.classes import MODALITIES

# Distances are computed as ‖a‖² + ‖b‖² − 2a·b with the product in float32: on the
# 2-core reference machine sgemm runs 2-3x faster than dgemm, which is what keeps
# 21,000 x 21,000 x 1,024 label switching within seconds. Features are centred first,
# so the cancellation error stays about 1e-7 of the squared distances; float64 is
# used wherever values are summed over many terms (class scores, spreads).
_DTYPE = np.float32
# Bytes per (rows x N) distance block in `nearest_other_class`; two such blocks are
# alive at a time. 64 MiB gives about 800 rows a chunk for N = 21,000, enough for
# the matrix product to run at full BLAS speed.
_CHUNK_BYTES = 64 * 2**20


def _as_features(features, name: str = "features") -> np.ndarray:
    array = np.asarray(features)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite 2-D array (N, D), got shape {array.shape}")
    return array


def _describe(array: np.ndarray) -> str:
    """dtype, shape and value range, for error messages (never the whole array)."""
    values = f" with values in [{array.min()}, {array.max()}]" if array.size and array.dtype.kind in "iuf" else ""
    return f"{array.dtype} array of shape {array.shape}{values}"


def _as_labels(labels, n_rows: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n_rows,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be an integer array of shape ({n_rows},), got {_describe(array)}")
    return array


def _squared_distances(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, ‖a‖² + ‖b‖² − 2a·b, clipped at 0."""
    out = a @ b.T
    out *= -2.0
    out += a_sq[:, None]
    out += b_sq[None, :]
    return np.maximum(out, 0.0, out=out)


def compactness_log_weights(features: np.ndarray, compactness: float) -> np.ndarray:
    """Log of the paper's Eq. (1) weights for the rows of one class, shape (n,).

    weight_i = 1 / (d_i^k + 1), d_i = ‖F_i − mean(F)‖ (Euclidean, in feature units),
    k = `compactness` >= 0. LUMA_SOURCES writes the weight "∝ 1/‖F_i − mean(F)‖^k + 1";
    we read the "+ 1" as part of the denominator, not as 1/d^k plus one, because:
    (a) 1/d^k + 1 is infinite at d = 0 (a row on the centre would take all the mass);
    (b) for d > 1, the usual case for deep features, 1/d^k + 1 tends to 1 as k grows,
        so a large k would give uniform sampling again instead of the low-diversity
        variant the paper describes. 1/(d^k + 1) is bounded by 1, equals 1/2 for every
        row when k = 0 (uniform), and for d > 1 behaves like d^-k, concentrating the
        draw near the class centre as k grows. Computed as −log1p(d^k) in log space
        (logaddexp) so that k = 20 with d = 1e3 neither overflows nor underflows.
    The weights depend on the scale of the features: rows with d < 1 all weigh ≈ 1.
    """
    if compactness == 0:
        return np.zeros(len(features))
    distance = np.linalg.norm(features - features.mean(axis=0), axis=1)
    with np.errstate(divide="ignore"):  # log(0) = -inf is right: a row on the centre weighs 1
        return -np.logaddexp(0.0, compactness * np.log(distance))


def _centred(features: np.ndarray) -> np.ndarray:
    """`features` minus their column means, as `_DTYPE` (distances are unchanged)."""
    return (features - features.mean(axis=0)).astype(_DTYPE)


def _row_sq(features: np.ndarray) -> np.ndarray:
    """(N,) squared row norms, in the features' dtype."""
    return np.einsum("ij,ij->i", features, features)


def _mean_pairwise_distance(features: np.ndarray, sq: np.ndarray, draw: np.ndarray) -> float:
    """Mean Euclidean distance over ordered pairs i != j of the rows `draw` of centred `features`."""
    part = features[draw]
    distance = np.sqrt(_squared_distances(part, part, sq[draw], sq[draw]))
    np.fill_diagonal(distance, 0.0)
    return distance.sum(dtype=np.float64) / max(len(draw) * (len(draw) - 1), 1)


def _sample_one_class(features, n: int, compactness: float, num_sampling: int, rng) -> np.ndarray:
    """Sorted positions (n,) into `features` of the most spread-out of `num_sampling` draws."""
    log_w = compactness_log_weights(features, compactness)
    # Gumbel top-n: the n largest log w_i + G_i are a draw of n rows without replacement,
    # each pick proportional to w_i among the rows left (Efraimidis-Spirakis); one
    # (num_sampling, N) matrix gives all repetitions at once.
    keys = log_w + rng.gumbel(size=(num_sampling, len(features)))
    draws = np.sort(np.argpartition(-keys, n - 1, axis=1)[:, :n], axis=1)
    # Distances among each draw's n rows only: (n, n) per draw instead of the class's
    # (N, N) matrix (881 MiB at N = 10,000 candidates).
    centred = _centred(features)
    sq = _row_sq(centred)
    spread = [_mean_pairwise_distance(centred, sq, draw) for draw in draws]
    return draws[int(np.argmax(spread))]


def diversity_sample(features, labels, n_per_class: int, compactness: float, num_sampling: int, rng) -> np.ndarray:
    """Select `n_per_class` rows per class, favouring rows near the class centre.

    features: (N, D) float, deep features; labels: (N,) int class ids.
    Per class (ascending id), `num_sampling` independent draws of `n_per_class` rows
    without replacement, with pick probabilities ∝ weight_i = 1 / (‖F_i − mean(F)‖^k + 1)
    over the class's rows (Eq. (1) of the paper, k = `compactness` >= 0; see
    `compactness_log_weights` for the reading of the formula); the draw with the largest
    mean pairwise Euclidean distance is kept. k = 0 is uniform; larger k keeps rows
    closer to the centre (the low-diversity variant: k = 10 audio, 20 text and image).
    Returns (n_classes * n_per_class,) int64 row indices, classes in ascending order,
    sorted within each class. Randomness is drawn from `rng`, class by class.
    """
    features = _as_features(features)
    labels = _as_labels(labels, len(features))
    if int(n_per_class) != n_per_class or n_per_class < 1:
        raise ValueError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    if not np.isfinite(compactness) or compactness < 0:
        raise ValueError(f"compactness must be a finite number >= 0, got {compactness!r}")
    if int(num_sampling) != num_sampling or num_sampling < 1:
        raise ValueError(f"num_sampling must be an integer >= 1, got {num_sampling!r}")
    classes, counts = np.unique(labels, return_counts=True)
    short = [f"class {c} has {n} rows" for c, n in zip(classes.tolist(), counts.tolist()) if n < n_per_class]
    if short:
        raise ValueError(f"n_per_class={n_per_class} rows are needed from every class, but {', '.join(short)}")
    chosen = []
    for c in classes:
        rows = np.flatnonzero(labels == c)
        block = features[rows].astype(np.float64)
        chosen.append(rows[_sample_one_class(block, int(n_per_class), compactness, int(num_sampling), rng)])
    return np.concatenate(chosen).astype(np.int64)


def _modality_matrices(features) -> list[np.ndarray]:
    """Each modality as a float (N, D_m) array; rows L2-normalised when there are several."""
    if isinstance(features, np.ndarray) and features.ndim == 2:
        raise ValueError("features must be a sequence of (N, D_m) arrays, one per modality: "
                         "wrap a single array in a list")
    mats = [_as_features(f, f"features[{m}]") for m, f in enumerate(features)]
    if not mats or len({len(m) for m in mats}) != 1:
        raise ValueError("features must be one or more arrays with the same number of rows, "
                         f"got shapes {[m.shape for m in mats]}")
    if len(mats) > 1:
        # Modalities live on different scales (BERT vs Wav2Vec 2.0 vs CNN features);
        # unit rows put them on one footing before their distances are averaged.
        mats = [m / np.maximum(np.sqrt(_row_sq(m))[:, None], 1e-12).astype(m.dtype) for m in mats]
    return mats


def _mean_distances(row_mats, col_mats, col_sq) -> np.ndarray:
    """(rows, N) Euclidean distances averaged over modalities."""
    total = None
    for rows, cols, sq in zip(row_mats, col_mats, col_sq):
        d = _squared_distances(rows, cols, _row_sq(rows), sq)
        np.sqrt(d, out=d)
        total = d if total is None else np.add(total, d, out=total)
    total /= len(row_mats)
    return total


def nearest_other_class(features: Sequence[np.ndarray], labels, n_neighbours: int = 5, rows=None) -> np.ndarray:
    """For each row, the other class whose `n_neighbours` nearest samples are closest on average.

    features: one (N, D_m) float array per modality. With one modality, distances are
    Euclidean in its own units; with several, each modality's rows are L2-normalised
    and the per-modality Euclidean distances averaged (range [0, 2]).
    labels: (N,) int class ids. rows: optional (R,) int row indices to answer for
    (default: all rows). For row i and each class c != labels[i], the score is the
    mean distance from i to its min(n_neighbours, |c|) nearest rows of class c (row i
    itself is never among them, being of its own class); the answer is the class with
    the smallest score (ties: smallest id). Returns (R,) or (N,) int64 class ids,
    never the row's own class. Computed in row chunks of about `_CHUNK_BYTES`.
    """
    mats = _modality_matrices(features)
    n = len(mats[0])
    labels = _as_labels(labels, n)
    rows = np.arange(n) if rows is None else np.asarray(rows)
    in_range = rows.size == 0 or (rows.ndim == 1 and 0 <= rows.min() and rows.max() < n)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or not in_range:
        raise ValueError(f"rows must be a 1-D array of integer row indices in [0, {n}), got {_describe(rows)}")
    if int(n_neighbours) != n_neighbours or n_neighbours < 1:
        raise ValueError(f"n_neighbours must be an integer >= 1, got {n_neighbours!r}")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f"label switching needs at least two classes, got {classes.tolist()}")
    # Columns ordered by class, so each class is one contiguous block to partition.
    order = np.argsort(labels, kind="stable")
    bounds = np.append(np.searchsorted(labels[order], classes), n)
    mats = [_centred(m) for m in mats]
    cols = [m[order] for m in mats]
    col_sq = [_row_sq(c) for c in cols]
    own = np.searchsorted(classes, labels[rows])
    out = np.empty(len(rows), dtype=np.int64)
    chunk = max(1, _CHUNK_BYTES // (np.dtype(_DTYPE).itemsize * n))
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        dist = _mean_distances([m[part] for m in mats], cols, col_sq)
        score = np.empty((len(classes), len(part)))
        for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            k = min(int(n_neighbours), hi - lo)
            score[j] = np.partition(dist[:, lo:hi], k - 1, axis=1)[:, :k].mean(axis=1, dtype=np.float64)
        score[own[start:start + chunk], np.arange(len(part))] = np.inf
        out[start:start + chunk] = classes[np.argmin(score, axis=0)]
    return out


def switch_labels(labels, features: Sequence[np.ndarray], p: float, rng, n_neighbours: int = 5):
    """The label-noise variant: switch each label with probability `p` to its nearest other class.

    labels: (N,) int; features: one (N, D_m) array per modality (see
    `nearest_other_class`); p in [0, 1]. Each row is selected independently
    (`rng.random(N) < p`, one draw per row in row order); a selected row gets
    `nearest_other_class` computed from the original labels, so it always changes class.
    Returns (new_labels (N,) same dtype as labels, switched (N,) bool).
    """
    labels = _as_labels(labels, len(labels))
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    switched = rng.random(len(labels)) < p
    new_labels = labels.copy()
    rows = np.flatnonzero(switched)
    if rows.size:
        new_labels[rows] = nearest_other_class(features, labels, n_neighbours, rows)
    return new_labels, switched


def conflict_plan(labels, ratio: float, rng, num_classes: int = 42):
    """The conflict variant: which rows get one modality from the next class, and from which row.

    labels: (N,) int in [0, num_classes); a row's position within its class is its rank
    among that class's rows in order of appearance. Per class c (ascending), m =
    round_half_up(ratio * count_c) positions are drawn without replacement among the
    positions that class (c + 1) % num_classes also has; each chosen row gets a modality
    drawn uniformly from MODALITIES and, as partner, the row at the same position of
    the next class. ratio in [0, 1]. Returns (modality (N,) int8, -1 for none, else an
    index into MODALITIES; partner (N,) int64, -1 for none, else a row index).
    """
    labels = np.asarray(labels)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio!r}")
    in_range = labels.size == 0 or (labels.ndim == 1 and 0 <= labels.min() and labels.max() < num_classes)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or not in_range:
        raise ValueError(f"labels must be a 1-D integer array with values in [0, {num_classes}), "
                         f"got {_describe(labels)}")
    modality = np.full(len(labels), -1, dtype=np.int8)
    partner = np.full(len(labels), -1, dtype=np.int64)
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    for c, rows in enumerate(members):
        if not rows.size:
            continue
        m = int(np.floor(ratio * len(rows) + 0.5))
        nxt = members[(c + 1) % num_classes]
        usable = min(len(rows), len(nxt))
        if m > usable:
            raise ValueError(f"class {c} needs {m} conflict partners but class {(c + 1) % num_classes} "
                             f"has only {len(nxt)} rows")
        positions = rng.choice(usable, size=m, replace=False)
        modality[rows[positions]] = rng.integers(0, len(MODALITIES), size=m)
        partner[rows[positions]] = nxt[positions]
    return modality, partner
