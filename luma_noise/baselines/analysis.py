"""Measures from per-example predictions (`predictions/*.npz`, the contract in docs/benchmark.md).

Reliability bins, selective prediction (risk against coverage and its area, AURC), split
conformal coverage and set size, and the conflict analysis, for the report; the scores
themselves are in `scoring` and `conformal`.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from .conformal import CONFIDENCE, coverage_and_size
from .scoring import risk_coverage


SPLITS = ("validation", "test", "ood")
# float32 probabilities of 42 classes sum to 1 within about 1e-6; 1e-3 also admits values rounded
# to 5 decimals, and still catches anything that is not a distribution
SUM_TOLERANCE = 1e-3


def load_predictions(path, budget=None) -> dict:
    """The arrays of one predictions npz, as a plain dict, read through `safe_files.load_npz`
    (a regular file, declared sizes checked before loading, no pickles). Raises BadInput."""
    from .results import read_predictions

    return read_predictions(path, budget=budget)


def _split_problems(pred: dict, split: str) -> tuple:
    """(problems, N) of one split's arrays: shapes, dtypes, lengths, finite values, labels in range."""
    problems, n, classes = [], None, None
    probs = pred.get(f"{split}_probs")
    if probs is not None:
        if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2 or probs.dtype.kind != "f":
            problems.append(f"{split}_probs: expected a 2-D (N, classes) float array, got shape {probs.shape} of {probs.dtype}")
        elif not np.isfinite(probs).all():
            problems.append(f"{split}_probs: {int((~np.isfinite(probs)).sum())} values are NaN or infinite")
        elif probs.min() < 0 or np.abs(probs.sum(axis=1) - 1).max() > SUM_TOLERANCE:
            row = int(np.argmax(np.abs(probs.sum(axis=1) - 1) + (probs.min(axis=1) < 0)))
            problems.append(f"{split}_probs: rows must be probabilities that sum to 1 (within {SUM_TOLERANCE}); "
                            f"row {row} sums to {float(probs[row].sum()):.6g} (smallest value {float(probs[row].min()):.6g})")
        if probs.ndim == 2:
            n, classes = probs.shape
    for kind, dtype_kinds, what in (("labels", "iu", "integer"), ("aleatoric", "f", "float"), ("epistemic", "f", "float")):
        values, key = pred.get(f"{split}_{kind}"), f"{split}_{kind}"
        if values is None:
            continue
        if values.ndim != 1 or values.shape[0] == 0 or values.dtype.kind not in dtype_kinds:
            problems.append(f"{key}: expected a non-empty 1-D {what} array, got shape {values.shape} of {values.dtype}")
            continue
        n = values.shape[0] if n is None else n
        if values.shape[0] != n:
            problems.append(f"{key}: {values.shape[0]} values, expected {n} (the split's other arrays)")
        elif what == "float" and not np.isfinite(values).all():
            problems.append(f"{key}: {int((~np.isfinite(values)).sum())} values are NaN or infinite")
        elif kind == "labels" and (values.min() < 0 or (split != "ood" and classes and values.max() >= classes)):
            top = "" if split == "ood" else f", {classes - 1}" if classes else ""
            problems.append(f"{key}: labels must be in [0{top or ', ...'}], got {int(values.min())}..{int(values.max())}")
    return problems, n


def check_predictions(pred: dict) -> list:
    """Every problem of one predictions dict (the README's contract), as 'array: problem' strings."""
    problems, sizes = [], {}
    for split in SPLITS:
        found, sizes[split] = _split_problems(pred, split)
        problems += found
    flags = pred.get("test_conflict_modality")
    if flags is not None:
        if flags.ndim != 1 or flags.dtype.kind != "U":
            problems.append(f"test_conflict_modality: expected a 1-D str array, got shape {flags.shape} of {flags.dtype}")
        elif sizes["test"] is not None and flags.shape[0] != sizes["test"]:
            problems.append(f"test_conflict_modality: {flags.shape[0]} values, expected {sizes['test']} (the test split's)")
        lacking = [k for k in ("test_aleatoric", "test_epistemic") if k not in pred]
        if lacking:
            problems.append(f"test_conflict_modality: needs {' and '.join(lacking)} beside it")
    return problems


def _conflict(pred: dict) -> dict:
    """Uncertainty of conflicted test examples against the others, and AUROC telling them apart."""
    conflicted = pred["test_conflict_modality"] != ""
    if conflicted.all() or not conflicted.any():
        return {}
    out = {}
    for kind in ("aleatoric", "epistemic"):
        values = pred[f"test_{kind}"]
        out[f"conflict_{kind}_conflicted"] = float(values[conflicted].mean())
        out[f"conflict_{kind}_other"] = float(values[~conflicted].mean())
        out[f"conflict_{kind}_auroc"] = float(roc_auc_score(conflicted, values))
    return out


def measures(pred: dict) -> dict:
    """Per-run measures from one predictions dict: AURC, conformal coverage and set size, conflict."""
    out = {}
    if "test_probs" in pred and "test_labels" in pred:
        correct = pred["test_probs"].argmax(axis=1) == pred["test_labels"]
        for kind in ("aleatoric", "epistemic"):
            if f"test_{kind}" in pred:
                out[f"aurc_{kind}"] = float(risk_coverage(pred[f"test_{kind}"], correct)[1].mean())
        if "validation_probs" in pred and "validation_labels" in pred:
            coverage, size = coverage_and_size(pred["validation_probs"], pred["validation_labels"],
                                               pred["test_probs"], pred["test_labels"], CONFIDENCE)
            out["conformal_coverage"], out["conformal_set_size"] = coverage, size
    if "test_conflict_modality" in pred:
        out.update(_conflict(pred))
    from .methods.evaluation import from_predictions  # AURC of H(p); AUROC, AUPR-In/Out, FPR@95 of every score

    out.update(from_predictions(pred))
    return out
