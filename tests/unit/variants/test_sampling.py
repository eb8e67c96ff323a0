"""Tests for luma_noise.variants.sampling: properties on constructed features, and the per-row oracle."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luma_noise.variants import sampling
from luma_noise.classes import MODALITIES
from luma_noise.variants.sampling import (
    compactness_log_weights,
    conflict_plan,
    diversity_sample,
    nearest_other_class,
    switch_labels,
)

_BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_sampling.py"
_spec = importlib.util.spec_from_file_location("bench_sampling", _BENCH)
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)

seeds = st.integers(0, 2**32 - 1)
fast = settings(max_examples=25, deadline=None)


def _binomial_ok(count, n, p, sigmas=5.0):
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p)) + 1


def _clusters(rng, n_classes, per_class, dim, spread=3.0):
    labels = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    centres = rng.normal(0.0, spread, size=(n_classes, dim))
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def _mean_pairwise(x):
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return d.sum() / (len(x) * (len(x) - 1))


# ---------------------------------------------------------------- diversity


def test_weights_follow_eq1():
    x = np.array([[0.0], [2.0], [-2.0], [0.5], [-0.5]])  # centre 0: distances 0, 2, 2, 0.5, 0.5
    d = np.abs(x[:, 0])
    for k in (0.0, 1.0, 3.0, 20.0):
        w = np.exp(compactness_log_weights(x, k))
        expected = 1.0 / (d**k + 1.0)  # Eq. (1); only proportions matter
        np.testing.assert_allclose(w / w.sum(), expected / expected.sum())
    far = np.array([[0.0], [1e4], [-1e4]])
    assert np.isfinite(compactness_log_weights(far, 200.0)).all()


@fast
@given(seeds)
def test_k0_draws_every_row_equally_often(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 3)) * rng.uniform(0.1, 10, size=(12, 1))  # very unequal distances
    labels = np.zeros(12, dtype=int)
    counts = np.zeros(12)
    draws = 600
    for _ in range(draws):
        counts[diversity_sample(x, labels, 4, 0.0, 1, rng)] += 1
    assert all(_binomial_ok(c, draws, 4 / 12) for c in counts), counts


@fast
@given(seeds)
def test_larger_k_stays_closer_to_the_centre(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 8))  # distances to the centre around sqrt(8) > 1
    labels = np.zeros(300, dtype=int)
    centre_distance = np.linalg.norm(x - x.mean(axis=0), axis=1)
    means = [centre_distance[diversity_sample(x, labels, 60, k, 1, rng)].mean() for k in (0, 5, 20)]
    assert means[0] > means[1] > means[2], means


@fast
@given(seeds, st.sampled_from([0.0, 1.5, 5.0, 20.0]), st.integers(1, 8), st.integers(1, 5))
def test_diversity_matches_per_row_oracle(seed, k, n_per_class, num_sampling):
    rng = np.random.default_rng(seed)
    x, labels = _clusters(rng, 3, 10, 5)
    fast_rows = diversity_sample(x, labels, n_per_class, k, num_sampling, np.random.default_rng(seed))
    slow_rows = naive.naive_diversity_sample(x, labels, n_per_class, k, num_sampling, np.random.default_rng(seed))
    np.testing.assert_array_equal(fast_rows, slow_rows)


def test_diversity_output_order_and_counts():
    rng = np.random.default_rng(0)
    x, labels = _clusters(rng, 4, 20, 3)
    rows = diversity_sample(x, labels, 5, 10.0, 3, rng)
    assert rows.shape == (20,) and len(set(rows.tolist())) == 20
    np.testing.assert_array_equal(labels[rows], np.repeat(np.arange(4), 5))
    for c in range(4):
        assert np.all(np.diff(rows[c * 5:(c + 1) * 5]) > 0)


@fast
@given(seeds)
def test_more_repetitions_never_reduce_spread(seed):
    # The first of num_sampling draws uses the same random numbers as a single draw.
    rng = np.random.default_rng(seed)
    x, labels = rng.normal(size=(40, 4)), np.zeros(40, dtype=int)
    one = diversity_sample(x, labels, 10, 5.0, 1, np.random.default_rng(seed))
    best = diversity_sample(x, labels, 10, 5.0, 10, np.random.default_rng(seed))
    assert _mean_pairwise(x[best]) >= _mean_pairwise(x[one]) - 1e-6


@pytest.mark.parametrize("kwargs, message", [
    ({"n_per_class": 6}, "class 1 has 5 rows"),
    ({"compactness": -1.0}, "compactness"),
    ({"num_sampling": 0}, "num_sampling"),
    ({"n_per_class": 0}, "n_per_class"),
])
def test_diversity_rejects_bad_arguments(kwargs, message):
    x = np.zeros((11, 2))
    labels = np.array([0] * 6 + [1] * 5)
    args = {"n_per_class": 2, "compactness": 1.0, "num_sampling": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        diversity_sample(x, labels, rng=np.random.default_rng(0), **args)


# ---------------------------------------------------------------- label switching


def test_nearest_other_class_on_a_line():
    # Classes 0, 1, 2 around x = 0, 1 and 10: 0 <-> 1 are each other's nearest, 2 -> 1.
    rng = np.random.default_rng(0)
    centres = np.array([0.0, 1.0, 10.0])
    labels = np.repeat([0, 1, 2], 6)
    x = (centres[labels] + rng.uniform(-0.1, 0.1, size=18))[:, None]
    np.testing.assert_array_equal(nearest_other_class([x], labels), np.repeat([1, 0, 1], 6))


def test_the_mean_of_n_neighbours_decides_not_the_single_nearest():
    # Class 1 has one point right next to the query but the rest far; class 2 has
    # five points at a moderate distance. With 5 neighbours class 2 wins, with 1 class 1.
    x = np.array([[0.0], [0.01], [5.0], [5.0], [5.0], [5.0], [1.0], [1.0], [1.0], [1.0], [1.0]])
    labels = np.array([0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    assert nearest_other_class([x], labels, n_neighbours=5, rows=[0])[0] == 2
    assert nearest_other_class([x], labels, n_neighbours=1, rows=[0])[0] == 1


def test_modalities_are_normalised_and_averaged():
    # Modality A (unit vectors) puts row 0 next to class 1; modality B, next to class 2
    # but by a smaller margin. Scaling rows of one modality must not matter.
    a = np.array([[1.0, 0.0], [0.9, 0.1], [0.9, 0.1], [0.0, 1.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [0.6, 0.4], [0.6, 0.4], [0.7, 0.3], [0.7, 0.3]])
    labels = np.array([0, 1, 1, 2, 2])
    assert nearest_other_class([a, b], labels, n_neighbours=2, rows=[0])[0] == 1
    assert nearest_other_class([b], labels, n_neighbours=2, rows=[0])[0] == 2
    scaled = b * np.array([[100.0], [0.1], [3.0], [7.0], [0.5]])
    assert nearest_other_class([a, scaled], labels, n_neighbours=2, rows=[0])[0] == 1


@fast
@given(seeds, st.floats(0.0, 1.0), st.integers(1, 3))
def test_switch_labels_matches_per_row_oracle(seed, p, n_modalities):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=60)
    labels[:5] = np.arange(5)
    features = [rng.normal(size=(60, d)) * rng.uniform(0.5, 5) for d in (6, 3, 9)[:n_modalities]]
    new, switched = switch_labels(labels, features, p, np.random.default_rng(seed))
    new_slow, switched_slow = naive.naive_switch_labels(labels, features, p, np.random.default_rng(seed))
    np.testing.assert_array_equal(switched, switched_slow)
    np.testing.assert_array_equal(new, new_slow)


@fast
@given(seeds, st.floats(0.0, 1.0))
def test_switch_labels_switches_about_p_and_never_to_the_same_class(seed, p):
    rng = np.random.default_rng(seed)
    x, labels = _clusters(rng, 6, 150, 4)
    new, switched = switch_labels(labels, [x], p, rng)
    assert _binomial_ok(switched.sum(), len(labels), p)
    assert np.all(new[switched] != labels[switched])
    np.testing.assert_array_equal(new[~switched], labels[~switched])
    assert new.dtype == labels.dtype


def test_chunks_give_the_same_answer_and_bound_memory(monkeypatch):
    rng = np.random.default_rng(1)
    x, labels = _clusters(rng, 4, 50, 8)
    whole = nearest_other_class([x], labels)
    shapes = []
    original = sampling._mean_distances

    def spy(rows, cols, sq):
        out = original(rows, cols, sq)
        shapes.append(out.shape)
        return out

    monkeypatch.setattr(sampling, "_CHUNK_BYTES", 4 * 200 * 7)  # 7 float32 rows of 200 columns
    monkeypatch.setattr(sampling, "_mean_distances", spy)
    np.testing.assert_array_equal(nearest_other_class([x], labels), whole)
    assert max(s[0] for s in shapes) == 7 and sum(s[0] for s in shapes) == 200


def test_switch_labels_edge_cases():
    rng = np.random.default_rng(0)
    x, labels = _clusters(rng, 3, 10, 2)
    assert not switch_labels(labels, [x], 0.0, rng)[1].any()
    assert switch_labels(labels, [x], 1.0, rng)[1].all()
    with pytest.raises(ValueError, match="p must be"):
        switch_labels(labels, [x], 1.5, rng)
    with pytest.raises(ValueError, match="at least two classes"):
        nearest_other_class([x], np.zeros(30, dtype=int))
    with pytest.raises(ValueError, match="sequence of"):
        nearest_other_class(x, labels)
    with pytest.raises(ValueError, match="same number of rows"):
        nearest_other_class([x, x[:5]], labels)


# ---------------------------------------------------------------- conflict


@fast
@given(seeds, st.floats(0.0, 1.0), st.integers(2, 6), st.integers(1, 12))
def test_conflict_plan_counts_and_partners(seed, ratio, num_classes, per_class):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    modality, partner = conflict_plan(labels, ratio, rng, num_classes=num_classes)
    assert modality.dtype == np.int8 and modality.shape == partner.shape == labels.shape
    chosen = partner >= 0
    np.testing.assert_array_equal(chosen, modality >= 0)
    assert set(modality[chosen].tolist()) <= set(range(len(MODALITIES)))
    position = np.empty(len(labels), dtype=int)
    for c in range(num_classes):
        rows = np.flatnonzero(labels == c)
        position[rows] = np.arange(len(rows))
        assert chosen[rows].sum() == int(np.floor(ratio * per_class + 0.5))
    np.testing.assert_array_equal(labels[partner[chosen]], (labels[chosen] + 1) % num_classes)
    np.testing.assert_array_equal(position[partner[chosen]], position[chosen])


def test_conflict_modalities_are_uniform():
    labels = np.repeat(np.arange(42), 300)
    modality, _ = conflict_plan(labels, 0.4, np.random.default_rng(7))
    counts = np.bincount(modality[modality >= 0], minlength=3)
    assert counts.sum() == 42 * 120
    assert all(_binomial_ok(c, counts.sum(), 1 / 3) for c in counts), counts


def test_conflict_plan_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="ratio"):
        conflict_plan(np.zeros(4, dtype=int), 1.2, rng)
    with pytest.raises(ValueError, match=r"\[0, 42\)"):
        conflict_plan(np.array([0, 42]), 0.5, rng)
    with pytest.raises(ValueError, match="class 1 has only 1 rows"):
        conflict_plan(np.array([0, 0, 0, 1]), 1.0, rng, num_classes=2)
