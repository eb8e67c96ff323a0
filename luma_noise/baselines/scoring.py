"""Scores of per-example predictions, shared by every evaluation path: accuracy, calibration, OOD
AUROC, reliability bins and risk against coverage (numpy arrays in, floats or arrays out).

The leaf of the measures: `methods.evaluation`, `metrics` and `analysis` build on it. AURC and the
bins are a few numpy lines: scikit-learn has no multiclass reliability bins and no AURC, and
torchmetrics returns neither the bins nor the curve.
"""

import numpy as np
import torch


def classification_metrics(probs, labels, aleatoric, epistemic) -> dict:
    """accuracy, aleatoric, epistemic, ece, nll, brier of in-distribution predictions (numpy arrays)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    num_classes = probs.shape[1]
    at_label = probs[np.arange(len(labels)), labels]
    onehot = np.eye(num_classes)[labels]
    ece = multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(labels), num_classes=num_classes,
                                       n_bins=15, norm="l1")
    return {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "aleatoric": float(np.mean(aleatoric)),
        "epistemic": float(np.mean(epistemic)),
        "ece": float(ece),
        "nll": float(-np.log(np.clip(at_label, 1e-12, None)).mean()),
        "brier": float(((probs - onehot) ** 2).sum(1).mean()),
    }


def ood_auroc(epistemic_test, epistemic_ood) -> float:
    """AUROC of the epistemic uncertainty separating OOD (positive) from test examples."""
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([epistemic_test, epistemic_ood])
    targets = np.concatenate([np.zeros(len(epistemic_test)), np.ones(len(epistemic_ood))])
    return float(roc_auc_score(targets, scores))


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
