"""Predictive uncertainty (BASELINES.md §3-4): VT&M disentangling for MCD/DE, Dirichlet for RCML.

T passes (MC dropout) or members (deep ensemble), B examples, C classes, S noise samples.
Entropies are in nats: in [0, log C].
"""

import torch
from torch.nn import functional as F


def repeated_passes(net, inputs: dict, passes: int, max_rows: int):
    """`passes` stochastic forward passes of `net` (dropout on), vectorised.

    The batch is repeated along its first axis, so one call runs many passes with
    independent dropout masks; chunks keep each call at most `max_rows` rows (at least
    one pass). net(inputs) -> tuple of (B, C) tensors or None. Returns the same tuple of
    (T, B, C) tensors.
    """
    batch = next(iter(inputs.values())).shape[0]
    per_chunk = max(1, max_rows // batch)
    chunks = []
    for start in range(0, passes, per_chunk):
        t = min(per_chunk, passes - start)
        repeated = {k: v.repeat(t, *([1] * (v.ndim - 1))) for k, v in inputs.items()}
        chunks.append([None if o is None else o.view(t, batch, *o.shape[1:]) for o in net(repeated)])
    return tuple(None if parts[0] is None else torch.cat(parts) for parts in zip(*chunks))


def _entropy(probs):
    return -(probs * probs.clamp(min=1e-12).log()).sum(-1)


def _sampled_probs(mu, sigma, samples: int, class_dim: int, generator=None):
    """(1/S) Σ_s softmax(μ + σ ⊙ ε_s) over `class_dim` of the (S, B, C) samples: (B, C).

    One ε_s (S, 1, C) serves every example: each example's estimate is still unbiased,
    and it does not depend on which examples share its batch.
    """
    eps = torch.randn((samples, 1, mu.shape[-1]), generator=generator, device=mu.device, dtype=mu.dtype)
    return F.softmax(mu + sigma * eps, dim=class_dim).mean(0)


def vtm_sigmas(mu, sigma):
    """(μ̄, σ_ale, σ_epi), each (B, C), of T outputs mu, sigma (T, B, C).

    μ̄ = mean_t μ_t; σ_ale = mean_t σ_t; σ_epi = std_t μ_t, the population std, so it is
    exactly 0 when all passes or members agree.
    """
    return mu.mean(0), sigma.mean(0), mu.std(0, correction=0)


def disentangle(mu, sigma, samples: int = 100, faithful: bool = False, ensemble: bool = False, generator=None):
    """VT&M aleatoric/epistemic split of T outputs: mu, sigma (T, B, C) -> (probs, aleatoric, epistemic).

    With (μ̄, σ_ale, σ_epi) from `vtm_sigmas`: aleatoric = H((1/S) Σ_s softmax(μ̄ + σ_ale ε_s)),
    epistemic the same with σ_epi (so, when passes agree, the entropy of softmax(μ̄));
    probs = softmax(μ̄) (B, C); the uncertainties are (B,).

    faithful=True reproduces the reference's defects 1-3: the sampled softmax is
    normalised over the batch axis (so an example's entropy depends on its batch), σ_ale
    is exp(mean_t σ_t) (>= 1), and for an ensemble (`ensemble=True`) σ_ale comes from the
    third member's (index 2, else the last) batch-averaged logits instead of the σ heads.
    """
    mean, sigma_ale, sigma_epi = vtm_sigmas(mu, sigma)
    class_dim = -1
    if faithful:
        class_dim = 1  # the batch axis of (S, B, C): defect 1
        if ensemble:
            sigma_ale = mu[min(2, mu.shape[0] - 1)].mean(0, keepdim=True).expand_as(mean)  # defect 3
        sigma_ale = sigma_ale.exp()  # defect 2
    aleatoric = _entropy(_sampled_probs(mean, sigma_ale, samples, class_dim, generator))
    epistemic = _entropy(_sampled_probs(mean, sigma_epi, samples, class_dim, generator))
    return F.softmax(mean, dim=-1), aleatoric, epistemic


def dirichlet_uncertainty(alpha):
    """RCML's measures of a Dirichlet: alpha (B, C) -> (probs α/α₀, aleatoric, epistemic), (B, C), (B,), (B,).

    aleatoric = expected entropy −Σ_k (α_k/α₀)(ψ(α_k + 1) − ψ(α₀ + 1)), in [0, log C];
    epistemic = C / α₀, in (0, 1].
    """
    total = alpha.sum(-1, keepdim=True)
    probs = alpha / total
    aleatoric = -(probs * (torch.digamma(alpha + 1) - torch.digamma(total + 1))).sum(-1)
    return probs, aleatoric, alpha.shape[-1] / total.squeeze(-1)
