"""OOD detection measures of one score (METHODS.md §8), through scikit-learn.

A score s is an OOD score: higher means more likely out of distribution (uncertainties such
as vacuity, entropy or energy; for a confidence c such as the maximum probability, s = −c).
is_ood: 1 for OOD examples, 0 for in-distribution test examples.

- auroc: area under the ROC curve of (is_ood, s), ties counted one half; 0.5 is chance;
- aupr_in: average precision with ID as the positive class and −s as its score;
- aupr_out: average precision with OOD as the positive class and s as its score;
  (average precision Σ_n (R_n − R_{n−1}) P_n, as torchmetrics' BinaryAveragePrecision, not
  OpenOOD's trapezoid, which differs by about 3e-3);
- fpr95: OpenOOD v1.5's definition, OOD positive: the fraction of ID examples at or above the
  first threshold (from high to low) at which at least 95 % of the OOD examples are.
"""

import numpy as np

OOD_MEASURES = ("auroc", "aupr_in", "aupr_out", "fpr95")


def ood_measures(score_id, score_ood, recall: float = 0.95) -> dict:
    """{auroc, aupr_in, aupr_out, fpr95} of an OOD score on ID examples (N,) and OOD examples (M,)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    scores = np.concatenate([np.asarray(score_id, np.float64), np.asarray(score_ood, np.float64)])
    is_ood = np.concatenate([np.zeros(len(score_id), int), np.ones(len(score_ood), int)])
    if not np.isfinite(scores).all():
        raise ValueError(f"OOD scores must be finite, got {int((~np.isfinite(scores)).sum())} non-finite values")
    fpr, tpr, _ = roc_curve(is_ood, scores)
    return {"auroc": float(roc_auc_score(is_ood, scores)),
            "aupr_in": float(average_precision_score(1 - is_ood, -scores)),
            "aupr_out": float(average_precision_score(is_ood, scores)),
            "fpr95": float(fpr[np.argmax(tpr >= recall)])}
