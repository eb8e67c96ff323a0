"""Measures from per-example predictions (`predictions/*.npz`, see the README's contract).

Reliability bins, selective prediction (risk against coverage and its area, AURC), split
conformal coverage and set size, and the conflict analysis. AURC and the bins are a few numpy
lines: scikit-learn has no multiclass reliability bins and no AURC, and torchmetrics returns
neither the bins nor the curve.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from .conformal import coverage_and_size

CONFIDENCE = 0.9  # target coverage of the conformal sets


def load_predictions(path) -> dict:
    """The arrays of one predictions npz, as a plain dict."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def reliability(probs, labels, bins: int = 15) -> tuple:
    """Equal-width confidence bins: (mean confidence, accuracy, count), each (bins,), NaN where empty."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins).astype(float)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct, bins) / count
    return mean_conf, accuracy, count


def risk_coverage(uncertainty, correct) -> tuple:
    """(coverage, risk), each (N,): keeping the k least uncertain examples, k = 1..N.

    coverage = k / N; risk = error rate among those kept. AURC is `risk.mean()`.
    """
    order = np.argsort(uncertainty, kind="stable")
    errors = np.cumsum(~np.asarray(correct)[order])
    kept = np.arange(1, len(order) + 1)
    return kept / len(order), errors / kept


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
