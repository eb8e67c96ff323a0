"""MC dropout (Gal & Ghahramani 2016) with VT&M's sampling softmax: the paper's `mcd` (BASELINES.md §2-3).

One network (`networks.FusionNet`); dropout stays on at evaluation, where T = `mc_samples` passes
are taken in vectorised calls (the batch repeated, at most `mc_chunk_floats` floats of the largest
activation per call); the layers before each trunk's first dropout run once per batch, not per
pass (their output is the same in every pass; the dropout masks are drawn exactly as before).
While the Trainer validates, `MethodModel.validation_passes` passes (when set) replace T; the final
evaluation uses T. The dropout masks come from the evaluation generator: torch's dropout draws
from the global generator, so the passes run inside `torch.random.fork_rng()` seeded from it (the
global state is left as it was).
"""

from dataclasses import dataclass

import torch

from .. import uncertainty
from ..networks import ACTIVATION_FLOATS
from .base import check
from .sampling import SamplingSoftmax, positive_ints


class MCDropout(SamplingSoftmax):
    """MC dropout: T stochastic passes of one sampling-softmax network."""

    name = "mcd"

    @dataclass
    class Config:
        """mc_samples: dropout passes at evaluation (T); softmax_samples: noise samples of the sampling
        softmax (S); mc_chunk_floats: floats of the largest activation per vectorised call (4 M floats,
        16 MB, fits CPU caches: larger calls made the convolutions slower here, benchmarks/bench_baselines.py;
        raise it on a GPU)."""

        mc_samples: int = 100
        softmax_samples: int = 100
        mc_chunk_floats: int = 2 ** 22

        def __post_init__(self):
            check(positive_ints(self, ("mc_samples", "softmax_samples", "mc_chunk_floats")), "mcd")

    def passes(self, model, inputs, generator) -> tuple:
        net = model.members[0]
        per_row = sum(ACTIVATION_FLOATS[m] for m in model.config.modalities)
        net.train()  # dropout stays on: MC dropout
        seed = int(torch.randint(2 ** 62, (), generator=generator, device=generator.device))
        try:  # dropout draws from the global generator: seed it from `generator` inside a fork
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                mu, sigma, _ = uncertainty.repeated_passes(lambda x: net(x, after_prefix=True)[:2] + (None,),
                                                           net.prefixes(inputs),
                                                           model.validation_passes or self.config.mc_samples,
                                                           max(1, self.config.mc_chunk_floats // per_row))
        finally:
            net.train(model.training)
        return mu, sigma

    def faithful_loss(self, mu, sigma, labels, generator):
        """Once on (μ̄, mean σ) (defect 12)."""
        return self.vtm_loss(mu.mean(0), sigma.mean(0), labels, True, generator)

    def batch_loss(self, loss, labels, faithful: bool):
        """Faithful: [L/B, 1/B] on every row, so that the epoch's validation loss is the plain mean of
        the per-batch losses, as the reference's (`metrics.compute_metrics`)."""
        if not faithful or labels is None:
            return None
        return torch.stack([loss, loss.new_ones(())]).expand(len(labels), 2) / len(labels)
