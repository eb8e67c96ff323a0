"""Uncertainty methods as plug-ins: one protocol, a registry, one model, one evaluation path.

    from luma_noise.baselines.methods import MethodConfig, MethodModel
    model = MethodModel(MethodConfig(method="tmc", modalities=("image", "text")))
    # train with the stock Trainer (collator: LumaCollator), then
    report = evaluate(model, test, ood=ood, collator=collator)

Built-in methods (`registry.BUILTIN`): the paper's "mcd", "de", "rcml" (`mcd.py`, `de.py`,
`rcml.py`: their own network of `networks.FusionNet` members), "softmax", "ts" (softmax with
temperature scaling), "edl", "tmc", "etmc", "dbf", "qmf". A user's method: subclass `Method` and
name it "package.module:Class" (docs/methods.md). Every method trains and is evaluated through
`runner` (the `train` command's one path).
"""

from .base import Method, Prediction, Step, entropy
from .evaluation import compute_metrics_for, measures, predict
from .model import MethodConfig, MethodModel, MethodOutput, with_example_index
from .registry import BUILTIN, PAPER, expand, resolve
from .softmax import fit_temperature


def evaluate(model, dataset, ood=None, collator=None, validation=None, batch_size: int = 128, device=None,
             return_predictions: bool = False) -> dict:
    """Every measure (`evaluation.measures`) of a trained MethodModel on `dataset`, `ood`, `validation`."""
    from ..collator import LumaCollator

    if collator is None:
        collator = LumaCollator(mode=model.config.mode, modalities=model.config.modalities)
    arrays = {name: predict(model, data, collator, batch_size, device)
              for name, data in (("test", dataset), ("ood", ood), ("validation", validation)) if data is not None}
    report = measures(arrays["test"], arrays.get("ood"), arrays.get("validation"))
    if return_predictions:
        report["predictions"] = arrays
    return report


def fit_model_temperature(model, dataset, collator, batch_size: int = 128) -> float:
    """Fit T on `dataset` (the validation split) from the model's fused logits at T = 1; sets and returns it."""
    model.config.calibration_temperature = 1.0
    arrays = predict(model, dataset, collator, batch_size)
    model.config.calibration_temperature = fit_temperature(_log(arrays["probs"]), arrays["labels"])
    return model.config.calibration_temperature


def _log(probs):
    import numpy as np

    return np.log(np.clip(np.asarray(probs, np.float64), 1e-30, None))


__all__ = ["Method", "Prediction", "Step", "entropy", "MethodConfig", "MethodModel", "MethodOutput", "BUILTIN",
           "PAPER", "expand", "resolve", "measures", "predict", "evaluate", "compute_metrics_for",
           "with_example_index", "fit_temperature", "fit_model_temperature"]
