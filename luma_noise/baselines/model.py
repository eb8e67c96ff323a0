"""Deprecated names of the paper's baselines, and the Trainer callback of annealed losses.

MC dropout, the deep ensemble and RCML are method objects (`methods/mcd.py`, `de.py`,
`rcml.py`) of the one model class, `methods.MethodModel` with its config `methods.MethodConfig`.
`LumaModelConfig` and `LumaModel` remain as thin deprecated aliases (`methods.model`): they build
the same `MethodConfig`/`MethodModel` (method "mcd" by default; hyper-parameters as keywords,
`LumaModelConfig(method="de", ensemble_size=3)`) and load the models saved under those names.
"""

from transformers import TrainerCallback

from .methods.de import ENSEMBLE_TRAINING  # noqa: F401 (re-exported)
from .methods.model import LumaModel, LumaModelConfig, MethodOutput
from .methods.registry import PAPER

METHODS = PAPER  # the paper's three, the default of `train` and `sweep`
LumaOutput = MethodOutput

__all__ = ["AnnealingCallback", "LumaModel", "LumaModelConfig", "LumaOutput", "METHODS", "ENSEMBLE_TRAINING"]


class AnnealingCallback(TrainerCallback):
    """Tell the model the Trainer's epoch at every epoch start (annealed KL weights: RCML, EDL, TMC, ...)."""

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            model.annealing_epoch = float(state.epoch or 0.0)
