"""Split conformal prediction sets from saved predictive probabilities, through `crepes`.

Non-conformity is the hinge score 1 − p(y) (crepes.extras.hinge); the threshold comes from the
calibration split (LUMA's validation split, exchangeable with test unless the test data shift).
Sets are unsmoothed, so coverage is at least the target on exchangeable data.
"""

import numpy as np
from crepes import ConformalClassifier
from crepes.extras import hinge

CONFIDENCE = 0.9  # target coverage of the conformal sets in the report


def prediction_sets(cal_probs, cal_labels, test_probs, confidence: float = 0.9) -> np.ndarray:
    """(N_test, C) bool: class k is in example i's set. Probabilities (N, C), labels in 0..C-1."""
    classes = np.arange(cal_probs.shape[1])
    conformal = ConformalClassifier().fit(hinge(cal_probs, classes, np.asarray(cal_labels)))
    return conformal.predict_set(hinge(test_probs), confidence=confidence, smoothing=False).astype(bool)


def coverage_and_size(cal_probs, cal_labels, test_probs, test_labels, confidence: float = 0.9) -> tuple:
    """(empirical coverage in [0, 1], mean set size in classes) of the sets on the test split."""
    sets = prediction_sets(cal_probs, cal_labels, test_probs, confidence)
    labels = np.asarray(test_labels)
    covered = sets[np.arange(len(labels)), labels]
    return float(covered.mean()), float(sets.sum(axis=1).mean())
