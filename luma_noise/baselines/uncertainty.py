"""Predictive uncertainty (BASELINES.md §3-4): VT&M disentangling for MCD/DE, Dirichlet for RCML.

T passes (MC dropout) or members (deep ensemble), B examples, C classes, S noise samples.
Entropies are in nats: in [0, log C].
"""

import math

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


def _reference_entropy(probs):
    """The reference's −Σ_c p ln(p + 1e-6): the 1e-6 sits inside the log."""
    return -(probs * (probs + 1e-6).log()).sum(-1)


def _sampled_probs(mu, sigma, samples: int, class_dim: int, generator=None):
    """(1/S) Σ_s softmax(μ + σ ⊙ ε_s) over `class_dim` of the (S, B, C) samples: (B, C).

    One ε_s (S, 1, C) serves every example: each example's estimate is still unbiased,
    and it does not depend on which examples share its batch. The baselines use class_dim
    -1 (classes); the reference's batch-axis sampler is `_reference_sampled_probs`.
    """
    eps = torch.randn((samples, 1, mu.shape[-1]), generator=generator, device=mu.device, dtype=mu.dtype)
    return F.softmax(mu + sigma * eps, dim=class_dim).mean(0)


def _reference_sampled_probs(mu, sigma, samples: int, generator=None):
    """The reference's sampler (defect 1): (1/S) Σ_s softmax over the BATCH axis, (..., B, C).

    mu, sigma (..., B, C); leading axes are independent calls. ε (..., B, C, S) is drawn
    independently per example, class and sample; each class column of the result sums to 1
    over the batch, a row does not. A draw shared by the batch would cancel under this
    softmax whenever σ is equal across examples.
    """
    eps = torch.randn((*mu.shape, samples), generator=generator, device=mu.device, dtype=mu.dtype)
    return F.softmax(mu[..., None] + sigma[..., None] * eps, dim=-3).mean(-1)


def vtm_sigmas(mu, sigma, correction: int = 0):
    """(μ̄, σ_ale, σ_epi), each (B, C), of T outputs mu, sigma (T, B, C).

    μ̄ = mean_t μ_t; σ_ale = mean_t σ_t; σ_epi = std_t μ_t with divisor T − correction:
    by default the population std, exactly 0 when all passes or members agree; the
    reference's `torch.std` is the sample std, correction=1 (defect 12).
    """
    return mu.mean(0), sigma.mean(0), mu.std(0, correction=correction)


def reference_ensemble_log_sigma(mu):
    """DE's σ_ale before exponentiation in the reference (defect 3): mu (M, ..., B, C) -> (..., B, C).

    The σ heads are ignored: the log-std is the batch mean of the logits of member index 1
    (the second member; the only one for a one-member ensemble), the same for every example.
    """
    return mu[min(1, mu.shape[0] - 1)].mean(-2, keepdim=True).expand(mu.shape[1:])


def disentangle(mu, sigma, samples: int = 100, faithful: bool = False, ensemble: bool = False, generator=None):
    """VT&M aleatoric/epistemic split of T outputs: mu, sigma (T, B, C) -> (probs, aleatoric, epistemic).

    With (μ̄, σ_ale, σ_epi) from `vtm_sigmas`: aleatoric = H((1/S) Σ_s softmax(μ̄ + σ_ale ε_s)),
    epistemic the same with σ_epi (so, when passes agree, the entropy of softmax(μ̄));
    probs = softmax(μ̄) (B, C); the uncertainties are (B,).

    faithful=True reproduces the reference (`reference_values/README.md` §1-3): the sampled
    softmax is normalised over the batch axis with noise drawn per example, class and sample
    (defect 1, so an example's entropy depends on its batch; mu, sigma may then be
    (T, ..., B, C), the extra axes being independent calls), σ_ale is exp(mean_t σ_t) >= 1
    (defect 2), for an ensemble (`ensemble=True`) σ_ale comes from member 1's batch-averaged
    logits instead of the σ heads (defect 3), σ_epi is the sample std (defect 12), and the
    entropy is −Σ p ln(p + 1e-6). Aleatoric and epistemic get independent noise draws.
    """
    if not faithful:
        mean, sigma_ale, sigma_epi = vtm_sigmas(mu, sigma)
        aleatoric = _entropy(_sampled_probs(mean, sigma_ale, samples, -1, generator))
        epistemic = _entropy(_sampled_probs(mean, sigma_epi, samples, -1, generator))
        return F.softmax(mean, dim=-1), aleatoric, epistemic
    mean, log_sigma_ale, sigma_epi = vtm_sigmas(mu, sigma, correction=1)
    if ensemble:
        log_sigma_ale = reference_ensemble_log_sigma(mu)
    aleatoric = _reference_entropy(_reference_sampled_probs(mean, log_sigma_ale.exp(), samples, generator))
    epistemic = _reference_entropy(_reference_sampled_probs(mean, sigma_epi, samples, generator))
    return F.softmax(mean, dim=-1), aleatoric, epistemic


def predictive_probs(mu, sigma, samples: int = 100, generator=None, max_floats: int = 2 ** 22):
    """The sampling-softmax model's predictive distribution, (B, C), rows summing to 1.

    p = (1/(T S)) Σ_t Σ_s softmax(μ_t + σ_t ⊙ ε_s) over classes, for T outputs mu, sigma
    (T, B, C) (dropout passes or members) and S noise draws ε_s (1, 1, C), each shared by the
    passes and the examples (so an example's p does not depend on its batch). Passes are
    taken in chunks of at most `max_floats` / 4 floats of (S, t, B, C).
    """
    return predictive_and_loss(mu, sigma, None, samples, generator, max_floats)[0]


def predictive_and_loss(mu, sigma, labels, samples: int = 100, generator=None, max_floats: int = 2 ** 22):
    """(`predictive_probs`, loss) from one set of draws ε_s; loss None without labels (B,).

    loss = −mean_{t,b} log[(1/S) Σ_s softmax(μ_tb + σ_tb ⊙ ε_s)[y_b]]: the mean over the passes of
    VT&M's sampling-softmax loss (`losses.sampling_softmax_loss`), on the predictive's own draws,
    which every pass and example share (common random numbers: each example's loss has the same
    distribution, does not depend on its batch, and costs no draws or softmax of its own).
    """
    eps = torch.randn((samples, 1, 1, mu.shape[-1]), generator=generator, device=mu.device, dtype=mu.dtype)
    # chunks of max_floats / 4 floats: with the whole budget per (S, t, B, C) temporary (the log-softmax,
    # then its exponent in place), T = 100 passes took 2.4x as long on this project's CPU
    step = max(1, max_floats // (4 * samples * mu[0].numel()))
    total, at_label = torch.zeros_like(mu[0]), []
    for start in range(0, mu.shape[0], step):
        chunk = slice(start, start + step)
        log_probs = F.log_softmax(torch.addcmul(mu[chunk], sigma[chunk], eps), dim=-1)  # (S, t, B, C)
        if labels is not None:
            index = labels.view(1, 1, -1, 1).expand(*log_probs.shape[:3], 1)
            at_label.append(log_probs.gather(-1, index).squeeze(-1))  # (S, t, B)
        total += log_probs.exp_().sum((0, 1))
    probs = total / (samples * mu.shape[0])
    if labels is None:
        return probs, None
    return probs, -(torch.logsumexp(torch.cat(at_label, 1), dim=0) - math.log(samples)).mean()


def dirichlet_uncertainty(alpha):
    """RCML's measures of a Dirichlet: alpha (B, C) -> (probs α/α₀, aleatoric, epistemic), (B, C), (B,), (B,).

    aleatoric = expected entropy −Σ_k (α_k/α₀)(ψ(α_k + 1) − ψ(α₀ + 1)), in [0, log C];
    epistemic = C / α₀, in (0, 1].
    """
    total = alpha.sum(-1, keepdim=True)
    probs = alpha / total
    aleatoric = -(probs * (torch.digamma(alpha + 1) - torch.digamma(total + 1))).sum(-1)
    return probs, aleatoric, alpha.shape[-1] / total.squeeze(-1)
