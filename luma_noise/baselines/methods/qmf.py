"""QMF, quality-aware multimodal fusion (Zhang et al. 2023; METHODS.md §4).

Per modality m, logits z_m = Linear(F_m) (B, C); weight w_m = 0.1 · logsumexp_k z_m,k (= −E_m / 10,
E the energy); fused logits z = Σ_m w_m z_m (weights not normalised). Loss:
Σ_m CE(z_m) + CE(z) + λ_rank Σ_m L_rank,m, where L_rank compares each example's weight with the
next example's in the batch, against the examples' cumulative past losses (the history h_m over
the N training examples, indexed by a stable dataset index).

Two official variants: "text-image" (default: weights detached in the fusion, λ_rank = 1, the
history is updated before the ranking term) and "rgbd" (weights not detached, λ_rank = 0.1,
ranking before the update). Where the official RGBD code divides 0 by 0 on its first step (an
all-zero history, a NaN loss), this port treats a constant history as "no ranking" (term 0).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from .base import Method, Prediction, Step, check

VARIANTS = ("text-image", "rgbd")


def qmf_weights(logits_views) -> list:
    """w_m = 0.1 · logsumexp(z_m) per modality: V tensors (B,)."""
    return [0.1 * torch.logsumexp(z, -1) for z in logits_views]


def qmf_fuse(logits_views, detach: bool = True) -> torch.Tensor:
    """Fused logits Σ_m w_m z_m (B, C); `detach` stops the gradient through the weights (text-image)."""
    weights = qmf_weights(logits_views)
    return sum((w.detach() if detach else w)[:, None] * z for w, z in zip(weights, logits_views))


def rank_loss(weight, history, index) -> torch.Tensor:
    """QMF's ranking term of one modality, a scalar.

    weight (B,): w_m; history (N,): cumulative past losses; index (B,): dataset indices. With ĥ the
    history min-max normalised over all N entries, each example b is paired with b' = b + 1 mod B:
    t = sign(ĥ_b − ĥ_b'), m = |ĥ_b − ĥ_b'|, L = mean_b max(0, t (w_b − w_b') − m). A constant
    history gives 0.
    """
    low = history.min()
    span = (history.max() - low).clamp_min(torch.finfo(history.dtype).tiny)  # constant: all 0 (no host sync)
    normalised = ((history - low) / span)[index]
    other = torch.roll(normalised, -1)
    target, margin = torch.sign(normalised - other), (normalised - other).abs()
    return torch.clamp(target * (weight - torch.roll(weight, -1)) - margin, min=0).mean()


def qmf_loss(logits_views, labels, history, index, variant: str = "text-image",
             rank_weight: Optional[float] = None) -> torch.Tensor:
    """QMF's training loss, a scalar; adds this batch's per-example CEs to `history` (V, N) in place."""
    rank_weight = (1.0 if variant == "text-image" else 0.1) if rank_weight is None else rank_weight
    weights = qmf_weights(logits_views)
    fused = qmf_fuse(logits_views, detach=variant == "text-image")
    per_example = [F.cross_entropy(z, labels, reduction="none") for z in logits_views]
    loss = sum(ce.mean() for ce in per_example) + F.cross_entropy(fused, labels)
    if variant == "text-image":
        _update(history, index, per_example)
    ranking = sum(rank_loss(w, h, index) for w, h in zip(weights, history))
    if variant == "rgbd":
        _update(history, index, per_example)
    return loss + rank_weight * ranking


def _update(history, index, per_example):
    with torch.no_grad():
        for h, ce in zip(history, per_example):
            h.index_add_(0, index, ce.detach().to(h.dtype))


class _History(nn.Module):
    """The per-modality cumulative losses (V, N), a buffer: saved with the model and in checkpoints."""

    def __init__(self, views: int, num_examples: int):
        super().__init__()
        self.register_buffer("history", torch.zeros(views, num_examples, dtype=torch.float64))


class QMF(Method):
    """Quality-aware multimodal fusion. Hyper-parameters: variant ("text-image" or "rgbd"),
    rank_weight (λ_rank; None: the variant's, 1 or 0.1). Total uncertainty only; OOD scores
    "energy" = −logsumexp(z) of the fused logits, besides "total" and "msp"."""

    name, heads, views, needs_index, logits_based, scores = "qmf", ("logits",), (2, 3), True, True, ("energy",)

    @dataclass
    class Config:
        variant: str = "text-image"
        rank_weight: Optional[float] = None

        def __post_init__(self):
            errors = []
            if self.variant not in VARIANTS:
                errors.append(f"variant must be one of {VARIANTS}, got {self.variant!r}")
            weight = self.rank_weight
            if weight is not None and not (isinstance(weight, (int, float)) and weight >= 0):
                errors.append(f"rank_weight must be null or a number >= 0, got {self.rank_weight!r}")
            check(errors, "qmf")

    def build(self, features, num_classes, num_examples):
        return _History(len(features), num_examples)

    def loss(self, views, labels, step: Step):
        logits = [v["logits"] for v in views.values()]
        if not step.training:  # validation: the cross-entropies, no history update
            fused = qmf_fuse(logits, detach=True)
            return sum(F.cross_entropy(z, labels) for z in logits) + F.cross_entropy(fused, labels)
        if step.index is None:
            raise ValueError("qmf needs a stable dataset index per training example (the `example_index` "
                             "column: see luma_noise.baselines.methods.with_example_index)")
        return qmf_loss(logits, labels, step.extra.history, step.index, self.config.variant, self.config.rank_weight)

    def predict(self, views, extra=None):
        fused = qmf_fuse([v["logits"] for v in views.values()])
        return Prediction(probs=torch.softmax(fused, -1), logits=fused, scores={"energy": -torch.logsumexp(fused, -1)})
