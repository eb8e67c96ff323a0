"""Training losses (BASELINES.md §3-4): sampling softmax for MCD/DE, evidential for RCML.

Shapes: B examples, C classes, S noise samples. Labels are class ids in [0, C).
"""

import math

import torch
from torch.nn import functional as F


def sampling_softmax_loss(mu, sigma, labels, samples: int = 100, faithful: bool = False, generator=None):
    """VT&M's sampling-softmax loss, a scalar.

    mu, sigma: (B, C) logits and their standard deviations (σ >= 0). With ε_s ~ N(0, I),
    L = -mean_b log[(1/S) Σ_s softmax(μ_b + σ_b ⊙ ε_s)[y_b]], computed as a logsumexp over
    s of the log-softmax at y. `faithful=True` averages the cross-entropy over the noisy
    logits instead (the reference's defect 4): by Jensen's inequality noise never lowers
    that loss, so σ is driven to 0.
    """
    eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    log_probs = F.log_softmax(mu + sigma * eps, dim=-1)  # (S, B, C)
    at_label = log_probs.gather(-1, labels.view(1, -1, 1).expand(samples, -1, 1)).squeeze(-1)  # (S, B)
    if faithful:
        return -at_label.mean()
    return -(torch.logsumexp(at_label, dim=0) - math.log(samples)).mean()


def kl_dirichlet_uniform(alpha):
    """KL(Dir(α) ‖ Dir(1, ..., 1)) per row: alpha (B, C) > 0 -> (B,), in nats."""
    total = alpha.sum(-1)
    num_classes = alpha.shape[-1]
    return (torch.lgamma(total) - math.lgamma(num_classes) - torch.lgamma(alpha).sum(-1)
            + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(total)[:, None])).sum(-1))


def evidential_loss(alpha, labels, kl_weight: float):
    """Sensoy et al.'s digamma loss plus the weighted KL of the misleading evidence: (B,).

    alpha: (B, C) Dirichlet parameters (evidence + 1). L = Σ_k y_k (ψ(α_0) − ψ(α_k))
    + kl_weight · KL(Dir(α̃) ‖ Dir(1)), α̃ = y + (1 − y) ⊙ α.
    """
    onehot = F.one_hot(labels, alpha.shape[-1]).to(alpha.dtype)
    fit = (onehot * (torch.digamma(alpha.sum(-1, keepdim=True)) - torch.digamma(alpha))).sum(-1)
    return fit + kl_weight * kl_dirichlet_uniform(onehot + (1 - onehot) * alpha)


def fuse_evidence(evidences):
    """Average opinions in the given order: ((e_1 + e_2) / 2 + e_3) / 2 ... ; each (B, C)."""
    fused = evidences[0]
    for evidence in evidences[1:]:
        fused = (fused + evidence) / 2
    return fused


def conflict_loss(evidences):
    """RCML's conflict term, a scalar.

    Batch mean of Σ_i Σ_{j≠i} ½‖p_i − p_j‖₁ (1 − u_i)(1 − u_j) / (V − 1) over ordered pairs.

    evidences: V tensors (B, C); p_v = α_v / S_v, u_v = C / S_v. Zero for one view.
    """
    if len(evidences) < 2:
        return evidences[0].new_zeros(())
    alphas = torch.stack(evidences) + 1  # (V, B, C)
    strength = alphas.sum(-1, keepdim=True)
    probs, certainty = alphas / strength, 1 - alphas.shape[-1] / strength  # (V, B, C), (V, B, 1)
    distance = 0.5 * (probs[:, None] - probs[None]).abs().sum(-1)  # (V, V, B), zero on the diagonal
    weight = (certainty[:, None] * certainty[None]).squeeze(-1)
    return ((distance * weight).sum((0, 1)) / (len(evidences) - 1)).mean()


def reference_stacked_term(evidences, labels, kl_weight: float):
    """The reference's "fused" evidential term (defect 11), a scalar.

    It is computed on the stacked per-view evidence E (V, B, C), α = E + 1, with every sum
    that `evidential_loss` takes over classes running over the batch axis instead; the
    constant stays lnΓ(C). For each view v and class k: S = Σ_b α, A = Σ_b y (ψ(S) − ψ(α)),
    α̃ = y + (1 − y) α, S̃ = Σ_b α̃, K = lnΓ(S̃) − Σ_b lnΓ(α̃) − lnΓ(C) + Σ_b (α̃ − 1)(ψ(α̃) − ψ(S̃));
    the term is the mean over (v, k) of A + kl_weight · K. The fused evidence never enters
    it; it grows with the batch size and can be negative (`reference_values/README.md` §4).
    """
    alpha = torch.stack(evidences) + 1  # (V, B, C)
    onehot = F.one_hot(labels, alpha.shape[-1]).to(alpha.dtype)  # (B, C), broadcast over views
    fit = (onehot * (torch.digamma(alpha.sum(1, keepdim=True)) - torch.digamma(alpha))).sum(1)  # (V, C)
    tilde = onehot + (1 - onehot) * alpha
    total = tilde.sum(1, keepdim=True)
    kl = (torch.lgamma(total.squeeze(1)) - torch.lgamma(tilde).sum(1) - math.lgamma(alpha.shape[-1])
          + ((tilde - 1) * (torch.digamma(tilde) - torch.digamma(total))).sum(1))  # (V, C)
    return (fit + kl_weight * kl).mean()


def rcml_loss(evidences, labels, kl_weight: float, conflict_weight: float = 1.0, faithful: bool = False):
    """RCML's loss, a scalar: [L(α_fused) + Σ_v L(α_v)] / (V + 1), batch mean, + γ · conflict.

    evidences: V tensors (B, C) of non-negative evidence in fusion order (image, audio, text).
    faithful=True replaces L(α_fused) by the reference's `reference_stacked_term` (defect 11).
    """
    alphas = [e + 1 for e in evidences]
    views = [evidential_loss(a, labels, kl_weight).mean() for a in alphas]
    if faithful:
        first = reference_stacked_term(evidences, labels, kl_weight)
    else:
        first = evidential_loss(fuse_evidence(evidences) + 1, labels, kl_weight).mean()
    fit = (first + torch.stack(views).sum()) / (len(evidences) + 1)
    return fit + conflict_weight * conflict_loss(evidences)


def annealing_weight(epoch: float, anneal_epochs: int = 50) -> float:
    """λ_t = min(1, t / anneal_epochs), t the epoch counted from 0."""
    return min(1.0, max(0.0, float(epoch)) / anneal_epochs)
