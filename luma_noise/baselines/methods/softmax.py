"""The deterministic softmax network and temperature scaling (METHODS.md §6).

Per modality logits z_v = Linear(F_v) (B, C); fused logits z = mean_v z_v (late fusion, as the
paper's MC dropout network, BASELINES.md §2); trained with cross-entropy on z. Predictive
distribution softmax(z / T), T = 1 unless fitted; total uncertainty H(p) only; OOD scores
"total" (entropy), "msp" (−max probability) and "energy" −logsumexp(z) (Liu et al. 2020, on the
raw logits whatever T).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .base import Method, Prediction, Step

# Bounds of the temperature search (T in [0.01, 100]): far beyond any fitted value.
LOG_T_BOUNDS = (math.log(1e-2), math.log(1e2))


def fit_temperature(logits, labels) -> float:
    """T* = argmin_T −mean_i log softmax(z_i / T)[y_i] (validation NLL), logits (N, C), labels (N,).

    The NLL is convex in 1/T, so its minimum is unique: a bounded Brent search on log T
    (scipy) to 1e-10 finds it (|T − T*| / T* far below 1e-4, the gpleiss LBFGS stops early).
    """
    from scipy.optimize import minimize_scalar

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    result = minimize_scalar(lambda log_t: F.cross_entropy(z / math.exp(log_t), y).item(), bounds=LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-10})
    return float(math.exp(result.x))


def scaled(prediction: Prediction, temperature: float) -> Prediction:
    """The prediction with probabilities softmax(logits / T); "total" and "msp" follow, other scores stay."""
    if temperature == 1.0 or prediction.logits is None:
        return prediction
    logits = prediction.logits / temperature
    kept = {k: v for k, v in prediction.scores.items() if k not in ("total", "msp", "epistemic")}
    return Prediction(probs=torch.softmax(logits, -1), logits=logits, aleatoric=prediction.aleatoric,
                      epistemic=prediction.epistemic, scores=kept)


class Softmax(Method):
    """Deterministic softmax network, one modality or the late fusion of several (no hyper-parameters)."""

    name, heads, views, logits_based, scores = "softmax", ("logits",), (1, 3), True, ("energy",)

    @dataclass
    class Config:
        pass

    @staticmethod
    def fused(views):
        return torch.stack([v["logits"] for v in views.values()]).mean(0)

    def loss(self, views, labels, step: Step):
        return F.cross_entropy(self.fused(views), labels)

    def predict(self, views, extra=None):
        logits = self.fused(views)
        return Prediction(probs=torch.softmax(logits, -1), logits=logits,
                          scores={"energy": -torch.logsumexp(logits, -1)})


class TemperatureScaled(Softmax):
    """The softmax network with its temperature fitted on the validation split after training."""

    name, temperature_scaling = "ts", True
