"""Evidential methods (METHODS.md §0-3, §5): unimodal EDL, TMC, ETMC and DBF.

Per view v: evidence e_v = softplus(Linear(F_v)) ≥ 0, α_v = e_v + 1, S_v = Σ_k α_v,k. Loss
terms are Sensoy et al.'s digamma loss with the annealed KL of the misleading evidence
(`losses.evidential_loss`), λ_t = min(1, t / T_ann) with t the Trainer's epoch counted from
0 (as the paper's RCML, BASELINES.md §4; TMC and DBF count from 1). Read-outs of the fused
Dirichlet: probabilities α/S, epistemic vacuity K/S, aleatoric expected entropy
(`uncertainty.dirichlet_uncertainty`), plus the mutual information as the "mutual_info" score.
Shapes: (B, C) per view, B examples, C = K classes.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import losses, uncertainty
from .base import Method, Prediction, Step, annealing, check, entropy


def ds_combine(evidences) -> torch.Tensor:
    """TMC's reduced Dempster-Shafer combination of V opinions, in product form: fused evidence (B, C).

    1 + e_fused,k / K = Π_v (1 + e_v,k / K) (METHODS.md §1: equal to the pairwise rule chained
    in any order); computed as K · expm1(Σ_v log1p(e_v / K)) so that large evidence is exact.
    """
    num_classes = evidences[0].shape[-1]
    return num_classes * torch.expm1(sum(torch.log1p(e / num_classes) for e in evidences))


def ds_combine_pair(alpha1, alpha2) -> torch.Tensor:
    """The official pairwise rule on two Dirichlets (B, C) -> fused α (B, C), via beliefs and conflict."""
    num_classes = alpha1.shape[-1]
    s1, s2 = alpha1.sum(-1, keepdim=True), alpha2.sum(-1, keepdim=True)
    b1, b2, u1, u2 = (alpha1 - 1) / s1, (alpha2 - 1) / s2, num_classes / s1, num_classes / s2
    conflict = b1.sum(-1, keepdim=True) * b2.sum(-1, keepdim=True) - (b1 * b2).sum(-1, keepdim=True)
    belief = (b1 * b2 + b1 * u2 + b2 * u1) / (1 - conflict)
    strength = num_classes / (u1 * u2 / (1 - conflict))
    return belief * strength + 1


def dbf_fuse(evidences, flambda: float = 1.0, self_term: bool = True, eps: float = 1e-6):
    """DBF's discounted belief fusion: (fused evidence (B, C), discount η (B, V)).

    DC_ij = ½‖p_i − p_j‖₁ (1 − u_i)(1 − u_j); η_i = Π_j (1 − (DC_ij + eps)^λ)^(1/λ), the product
    over every j (the official code, self_term=True) or j ≠ i; b'_i = η_i b_i,
    u'_i = η_i u_i + 1 − η_i, e'_i = K b'_i / (u'_i + eps); e_fused = mean_i e'_i.
    """
    evidence = torch.stack(evidences, 1)  # (B, V, C)
    num_classes = evidence.shape[-1]
    strength = (evidence + 1).sum(-1, keepdim=True)
    probs, belief, vacuity = (evidence + 1) / strength, evidence / strength, num_classes / strength
    distance = 0.5 * (probs[:, :, None] - probs[:, None]).abs().sum(-1)  # (B, V, V)
    certainty = (1 - vacuity).squeeze(-1)
    conflict = distance * certainty[:, :, None] * certainty[:, None]
    factors = (1 - (conflict + eps) ** flambda) ** (1 / flambda)
    if not self_term:
        factors = factors.masked_fill(torch.eye(evidence.shape[1], dtype=torch.bool, device=evidence.device), 1.0)
    discount = factors.prod(-1)  # (B, V)
    belief, vacuity = discount[..., None] * belief, discount[..., None] * vacuity + 1 - discount[..., None]
    return (num_classes * belief / (vacuity + eps)).mean(1), discount


def edl_terms(alphas, labels, kl_weight: float) -> torch.Tensor:
    """Batch means of the EDL loss of each α in `alphas`: (len(alphas),)."""
    return torch.stack([losses.evidential_loss(a, labels, kl_weight).mean() for a in alphas])


def dirichlet_prediction(alpha) -> Prediction:
    """Read-outs of a fused Dirichlet α (B, C): probabilities, aleatoric, epistemic, mutual information."""
    probs, aleatoric, epistemic = uncertainty.dirichlet_uncertainty(alpha)
    total = entropy(probs)
    return Prediction(probs=probs, aleatoric=aleatoric, epistemic=epistemic, total=total,
                      scores={"mutual_info": total - aleatoric})


def _view_evidence(views) -> list:
    return [v["evidence"] for v in views.values()]


def _check_anneal(value, errors):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        errors.append(f"anneal_epochs must be an integer >= 1, got {value!r}")


@dataclass
class AnnealedConfig:
    """Hyper-parameters of an evidential method whose only one is the KL annealing length (epochs)."""

    anneal_epochs: int = 50

    def __post_init__(self):
        errors = []
        _check_anneal(self.anneal_epochs, errors)
        check(errors, "")


class EDL(Method):
    """Unimodal evidential deep learning (Sensoy et al. 2018, Eq. 4 loss; METHODS.md §5): one view."""

    name, heads, views, has_epistemic, scores = "edl", ("evidence",), (1, 1), True, ("mutual_info",)

    Config = AnnealedConfig

    def loss(self, views, labels, step: Step):
        alpha = _view_evidence(views)[0] + 1
        return edl_terms([alpha], labels, annealing(step.epoch, self.config.anneal_epochs)).sum()

    def predict(self, views, extra=None):
        return dirichlet_prediction(_view_evidence(views)[0] + 1)


class TMC(Method):
    """Trusted multi-view classification (Han et al. 2021; METHODS.md §1): Dempster-Shafer fusion.

    Loss: mean over the batch of Σ_v L_EDL(α_v) + L_EDL(α_fused), a plain sum of V + 1 terms.
    """

    name, heads, views, has_epistemic, scores = "tmc", ("evidence",), (2, 3), True, ("mutual_info",)

    Config = AnnealedConfig

    def evidences(self, views, extra=None) -> list:
        return _view_evidence(views)

    def loss(self, views, labels, step: Step):
        evidences = self.evidences(views, step.extra)
        alphas = [e + 1 for e in evidences] + [ds_combine(evidences) + 1]
        return edl_terms(alphas, labels, annealing(step.epoch, self.config.anneal_epochs)).sum()

    def predict(self, views, extra=None):
        return dirichlet_prediction(ds_combine(self.evidences(views, extra)) + 1)


class ETMC(TMC):
    """TMC plus a pseudo-view (Han et al. 2022; METHODS.md §2): evidence from the concatenated
    trunk features (not detached: it trains every trunk), fused with the views by TMC's rule.
    Loss: the sum of the batch means of the V views, the pseudo-view and the fusion."""

    name = "etmc"

    @dataclass
    class Config(AnnealedConfig):
        anneal_epochs: int = 10  # the official ETMC's

    def build(self, features, num_classes, num_examples):
        return nn.ModuleDict({"pseudo": nn.Linear(sum(features.values()), num_classes)})

    def evidences(self, views, extra=None) -> list:
        concat = torch.cat([v["features"] for v in views.values()], -1)
        return _view_evidence(views) + [F.softplus(extra["pseudo"](concat))]


class DBF(Method):
    """Discounted belief fusion (Bezirganyan et al. 2025; METHODS.md §3).

    Hyper-parameters: flambda (λ > 0 of the discount), self_term (the official product over
    every view j, including j = i; False: j ≠ i), gamma (weight of the conflict loss),
    anneal_epochs. Loss (RCML's): [L̄(α_fused) + Σ_v L̄(α_v)] / (V + 1) + γ · conflict.
    """

    name, heads, views, has_epistemic, scores = "dbf", ("evidence",), (2, 3), True, ("mutual_info",)

    @dataclass
    class Config:
        flambda: float = 1.0
        self_term: bool = True
        gamma: float = 1.0
        anneal_epochs: int = 50

        def __post_init__(self):
            errors = []
            _check_anneal(self.anneal_epochs, errors)
            if not isinstance(self.flambda, (int, float)) or not self.flambda > 0:
                errors.append(f"flambda must be a number > 0, got {self.flambda!r}")
            if not isinstance(self.gamma, (int, float)) or not self.gamma >= 0:
                errors.append(f"gamma must be a number >= 0, got {self.gamma!r}")
            if not isinstance(self.self_term, bool):
                errors.append(f"self_term must be true or false, got {self.self_term!r}")
            check(errors, "dbf")

    def fused(self, evidences):
        return dbf_fuse(evidences, self.config.flambda, self.config.self_term)[0]

    def loss(self, views, labels, step: Step):
        evidences = _view_evidence(views)
        alphas = [self.fused(evidences) + 1] + [e + 1 for e in evidences]
        fit = edl_terms(alphas, labels, annealing(step.epoch, self.config.anneal_epochs)).mean()
        return fit + self.config.gamma * losses.conflict_loss(evidences)

    def predict(self, views, extra=None):
        return dirichlet_prediction(self.fused(_view_evidence(views)) + 1)
