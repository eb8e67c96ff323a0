"""Time LUMA's vectorised sampling against straightforward per-row versions.

    python benchmarks/bench_sampling.py            # naive timed on a subset, extrapolated
    python benchmarks/bench_sampling.py --full     # naive timed on everything (minutes)
    python benchmarks/bench_sampling.py --modalities 3

The per-row functions below are written as a naive implementation would be (one
Python iteration per row, distances recomputed per row), but draw their random
numbers in the same order as `luma_noise.variants.sampling`, so the tests use them as an
oracle: on the same inputs and seed both must return identical results.
"""

import argparse
import time
import tracemalloc

import numpy as np

from luma_noise.variants.sampling import diversity_sample, switch_labels


def naive_nearest_other_class(features, labels, n_neighbours=5, rows=None):
    """Per-row reference for `nearest_other_class`."""
    mats = [np.asarray(f, dtype=np.float64) for f in features]
    if len(mats) > 1:
        mats = [m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12) for m in mats]
    labels = np.asarray(labels)
    rows = range(len(labels)) if rows is None else rows
    out = []
    for i in rows:
        dist = sum(np.linalg.norm(m - m[i], axis=1) for m in mats) / len(mats)
        best, best_score = None, np.inf
        for c in np.unique(labels):
            if c == labels[i]:
                continue
            score = np.sort(dist[labels == c])[:n_neighbours].mean()
            if score < best_score:
                best, best_score = c, score
        out.append(best)
    return np.array(out, dtype=np.int64)


def naive_switch_labels(labels, features, p, rng, n_neighbours=5):
    """Per-row reference for `switch_labels`."""
    labels = np.asarray(labels)
    new_labels, switched = labels.copy(), np.zeros(len(labels), dtype=bool)
    for i in range(len(labels)):
        if rng.random() < p:
            switched[i] = True
            new_labels[i] = naive_nearest_other_class(features, labels, n_neighbours, [i])[0]
    return new_labels, switched


def naive_diversity_sample(features, labels, n_per_class, compactness, num_sampling, rng):
    """Per-row reference for `diversity_sample` (same Gumbel top-n draws, row by row)."""
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    chosen = []
    for c in np.unique(labels):
        x = features[labels == c]
        rows = np.flatnonzero(labels == c)
        centre = x.mean(axis=0)
        weights = [1.0 / (np.linalg.norm(row - centre) ** compactness + 1.0) for row in x]
        draws = []
        for _ in range(num_sampling):
            keys = [np.log(w) + rng.gumbel() for w in weights]
            draws.append(np.sort(np.argsort(keys)[::-1][:n_per_class]))
        spreads = []
        for draw in draws:
            total = sum(np.linalg.norm(x[draw] - x[i], axis=1).sum() for i in draw)
            spreads.append(total / max(n_per_class * (n_per_class - 1), 1))
        chosen.append(rows[draws[int(np.argmax(spreads))]])
    return np.concatenate(chosen).astype(np.int64)


def shuffled_labels(n_classes, per_class, seed):
    """(n_classes * per_class,) class ids in random order."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(n_classes), per_class))


def clustered_features(labels, dim, seed):
    """(len(labels), dim) float32: one Gaussian cluster per class, centres spread 3x the noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(labels.max() + 1, dim))
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32)


def _timed(fn, *args):
    """(wall seconds, result); prints CPU seconds too, since the machine may be shared."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  {fn.__name__}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    return wall, result


def bench_switch(args):
    labels = shuffled_labels(42, 500, seed=0)
    mats = [clustered_features(labels, 1024, seed=m) for m in range(args.modalities)]
    fast, (fast_labels, switched) = _timed(switch_labels, labels, mats, 0.3, np.random.default_rng(1))
    rows = np.flatnonzero(switched)
    subset = rows if args.full else rows[: args.naive_rows]
    slow, slow_labels = _timed(naive_nearest_other_class, mats, labels, 5, subset)
    assert np.array_equal(slow_labels, fast_labels[subset]), "vectorised and per-row label switching disagree"
    slow *= len(rows) / len(subset)
    how = "measured" if args.full else f"extrapolated from {len(subset)} rows"
    print(f"label switching, 21,000 rows x 1,024 dims x {args.modalities} modality(ies), p=0.3 ({len(rows)} switched):")
    print(f"  vectorised {fast:.2f} s, per-row {slow:.1f} s ({how}), ratio {slow / fast:.0f}x")


def bench_diversity(args):
    labels = shuffled_labels(42, 1300, seed=2)
    feats = clustered_features(labels, 1024, seed=2)
    fast, chosen = _timed(diversity_sample, feats, labels, 500, 20.0, 10, np.random.default_rng(3))
    n_classes = 42 if args.full else args.naive_classes
    keep = labels < n_classes
    slow, slow_chosen = _timed(naive_diversity_sample, feats[keep], labels[keep], 500, 20.0, 10,
                               np.random.default_rng(3))
    assert np.array_equal(np.flatnonzero(keep)[slow_chosen], chosen[: len(slow_chosen)]), "diversity samplers disagree"
    slow *= 42 / n_classes
    how = "measured" if args.full else f"extrapolated from {n_classes} classes"
    print("diversity sampling, 42 classes x 1,300 rows x 1,024 dims -> 500 each, k=20, num_sampling=10:")
    print(f"  vectorised {fast:.2f} s, per-row {slow:.1f} s ({how}), ratio {slow / fast:.0f}x")


def bench_diversity_memory(args):
    """Peak memory (tracemalloc: numpy buffers included) of diversity sampling in one big class."""
    labels = np.zeros(10_000, dtype=np.int64)
    feats = clustered_features(labels, 1024, seed=4)
    tracemalloc.start()
    _timed(diversity_sample, feats, labels, 500, 10.0, 10, np.random.default_rng(5))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"diversity sampling, one class of 10,000 x 1,024 float32 -> 500, k=10, 10 draws: "
          f"peak {peak / 2**20:.0f} MiB allocated (features {feats.nbytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="time the per-row versions on all rows (several minutes)")
    parser.add_argument("--modalities", type=int, default=1, help="feature arrays for label switching (default 1)")
    parser.add_argument("--naive-rows", type=int, default=200, help="switched rows the per-row version times")
    parser.add_argument("--naive-classes", type=int, default=2, help="classes the per-row diversity sampler times")
    args = parser.parse_args()
    bench_switch(args)
    bench_diversity(args)
    bench_diversity_memory(args)
