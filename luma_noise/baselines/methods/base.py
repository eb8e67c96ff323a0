"""The method protocol: what a method needs from the network, how it fuses, trains and predicts.

A method is a plain object built from its hyper-parameters (`Method.Config`, a dataclass
validated when it is built); the network around it is `MethodModel` (one trunk per modality,
the heads the method asks for, and the method's own extra modules), a `PreTrainedModel`
trained by the stock `Trainer`. In the spirit of torch-uncertainty's wrappers: the method
owns the loss and the predictive procedure, the model owns the parameters.

A method whose procedure runs the network several times (MC dropout's passes, a deep
ensemble's members) builds its own network instead (`Method.network`, kept as
`MethodModel.members`) and receives the model in `network_loss` and `network_evaluate`
rather than one pass's views.

Shapes: B examples, C classes, V views (modalities, in the order image, audio, text), F_v
features of view v. A view's outputs are a dict with "features" (B, F_v) and one (B, C)
tensor per head in `Method.heads`: "logits" (a linear head), "sigma" (softplus of a linear
head, ≥ 0) or "evidence" (softplus of a linear head, ≥ 0).
"""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import torch

HEADS = ("logits", "sigma", "evidence")


@dataclass
class Step:
    """What a loss may need besides the views and labels.

    epoch: the Trainer's epoch counted from 0 (fractional inside an epoch), `math.inf` for a
    validation loss (annealed weights at their final value); training: False for a
    validation loss (no history update); index: (B,) int64 stable dataset index of each
    training example (QMF), or None; extra: the method's own modules (`Method.build`).
    """

    epoch: float = 0.0
    training: bool = True
    index: Optional[torch.Tensor] = None
    extra: Optional[torch.nn.Module] = None


@dataclass
class Evaluation:
    """What `Method.network_evaluate` returns for a batch: the prediction; loss, the validation
    loss (None without labels); logits (B, C), the logits to report (MC dropout and the deep
    ensemble: the mean logits μ̄), or None for log probs; batch_loss (B, 2) or None (faithful MC
    dropout: [L/B, 1/B] on every row, so that `compute_metrics` averages per-batch losses plainly)."""

    prediction: "Prediction"
    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    batch_loss: Optional[torch.Tensor] = None


@dataclass
class Prediction:
    """Per-example output of a method's predictive procedure.

    probs (B, C): the predictive distribution; logits (B, C) or None: its logits when the
    method has them (temperature scaling divides them); aleatoric, epistemic (B,) or None
    (a method with a total uncertainty only leaves them None); total (B,): predictive
    entropy H(probs) in nats, filled in when None; scores: {name: (B,)} OOD scores, higher
    = more OOD ("epistemic", "total" and "msp" = −max probability are added when absent).
    """

    probs: torch.Tensor
    logits: Optional[torch.Tensor] = None
    aleatoric: Optional[torch.Tensor] = None
    epistemic: Optional[torch.Tensor] = None
    total: Optional[torch.Tensor] = None
    scores: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.total is None:
            self.total = entropy(self.probs)
        base = {"total": self.total, "msp": -self.probs.max(-1).values}
        if self.epistemic is not None:
            base["epistemic"] = self.epistemic
        self.scores = {**base, **self.scores}


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = −Σ_k p_k ln p_k over the last axis, in nats: (..., C) -> (...)."""
    return -torch.special.xlogy(probs, probs).sum(-1)


class Method:
    """Base class of every method; subclass it (see docs/methods.md for a complete example).

    Class attributes: name (registry name), heads (per-view outputs, among `HEADS`),
    views (min, max) number of modalities it accepts, scores (names of the OOD scores its
    `predict` returns, beside "total", "msp" and, if `has_epistemic`, "epistemic"),
    needs_index (the loss needs `Step.index`), logits_based (its prediction has logits, so
    temperature scaling applies), reference (one of the paper's baselines: `faithful` mode
    reproduces the reference code's defects, and tests with the last epoch's weights, defect 5).
    `Config`: a dataclass of hyper-parameters whose `__post_init__` raises ValueError naming
    every bad value.
    """

    name = "method"
    heads = ("logits",)
    views = (1, 3)
    scores = ()
    has_epistemic = False
    needs_index = False
    logits_based = False
    temperature_scaling = False
    reference = False

    @dataclass
    class Config:
        pass

    def __init__(self, **hyper):
        names = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(hyper) - names)
        if unknown:
            raise ValueError(f"{self.name}: unknown hyper-parameters {unknown}; accepted: {sorted(names)}")
        try:
            self.config = self.Config(**hyper)
        except ValueError as err:  # name the method whatever Config it shares
            raise ValueError(str(err) if f" {self.name} " in str(err) else f"{self.name}: {err}") from None

    def hyper_parameters(self) -> dict:
        return dataclasses.asdict(self.config)

    def score_names(self) -> tuple:
        return ("total", "msp") + (("epistemic",) if self.has_epistemic else ()) + tuple(self.scores)

    def build(self, features: dict, num_classes: int, num_examples: int) -> Optional[torch.nn.Module]:
        """Extra modules (trained with the network) or None. features: {modality: F_v}."""
        return None

    def loss(self, views: dict, labels: torch.Tensor, step: Step) -> torch.Tensor:
        """The training loss, a scalar. views: {modality: {head: (B, C), "features": (B, F_v)}}."""
        raise NotImplementedError

    def predict(self, views: dict, extra=None) -> Prediction:
        """The predictive procedure (no gradients needed) for a batch of views."""
        raise NotImplementedError

    def predictive(self, config) -> Optional[str]:
        """The name of the predictive distribution `probs` holds (recorded as results.json's
        "predictive" and in the predictions file), or None (not recorded)."""
        return None

    # A method with its own network (several passes or members) overrides the three below.
    def network(self, config) -> Optional[torch.nn.Module]:
        """The method's own network (kept as `MethodModel.members`), or None: one trunk per modality
        and the heads in `heads` (`MethodModel.views`). config: the `MethodConfig`."""
        return None

    def network_loss(self, model, inputs: dict, labels: torch.Tensor, step: Step) -> torch.Tensor:
        """The training loss of a method with its own network; inputs {input name: tensor}."""
        raise NotImplementedError

    def network_evaluate(self, model, inputs: dict, labels, generator: torch.Generator) -> Evaluation:
        """The predictive procedure and validation loss of a method with its own network; its
        random draws come from `generator` (dropout masks, noise samples)."""
        raise NotImplementedError


def check(errors: list, method: str) -> None:
    """Raise one ValueError listing every message in `errors` (for `Config.__post_init__`)."""
    if errors:
        raise ValueError(" ".join(["invalid", *([method] if method else []), "hyper-parameters: "]) + "; ".join(errors))


def annealing(epoch: float, anneal_epochs: int) -> float:
    """λ_t = min(1, t / anneal_epochs), t ≥ 0 the epoch counter (inf gives 1)."""
    return 1.0 if math.isinf(epoch) else min(1.0, max(0.0, float(epoch)) / anneal_epochs)
