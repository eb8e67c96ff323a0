"""The sampling-softmax network of MC dropout and the deep ensemble (BASELINES.md §2-3).

Each member is the paper's network (`networks.FusionNet`: one trunk per modality with a logit
head and a σ head, softplus; logits and σ averaged over the modalities). Training loss: VT&M's
sampling softmax on each member's (μ, σ), the members' mean. Prediction, from T outputs
(μ_t, σ_t) of shape (T, B, C), dropout passes or members (`passes`): the VT&M split
(`uncertainty.disentangle`) into aleatoric and epistemic entropies, and the predictive
distribution `uncertainty.predictive_probs` (fixed) or softmax(μ̄) (faithful, the reference's).
Evaluation loss (the Trainer's validation): fixed, the mean over the T outputs of the sampling
softmax loss on the predictive distribution's own draws; faithful, the reference's.
Faithful mode reproduces the reference's defects 1-4 and 12 (docs/faithful.md).
"""

import torch
from torch import nn

from .. import losses, uncertainty
from ..networks import FusionNet
from .base import Evaluation, Method, Prediction


def positive_ints(config, names) -> list:
    """Messages for the fields of `config` among `names` that are not integers >= 1."""
    return [f"{name} must be an integer >= 1, got {getattr(config, name)!r}" for name in names
            if not isinstance(getattr(config, name), int) or isinstance(getattr(config, name), bool)
            or getattr(config, name) < 1]


class SamplingSoftmax(Method):
    """Base of `MCDropout` and `DeepEnsemble`: subclasses give `num_members` and `passes`."""

    heads, views, has_epistemic, reference = ("logits", "sigma"), (1, 3), True, True
    ensemble = False  # faithful: σ_ale from member 1's logits (defect 3)

    @property
    def num_members(self) -> int:
        return 1

    def network(self, config) -> nn.ModuleList:
        return nn.ModuleList(FusionNet(config.modalities, config.num_classes, config.dropout, True, config.text_dim)
                             for _ in range(self.num_members))

    def predictive(self, config) -> str:
        """"sampling-softmax-mean" (fixed: mean over passes and noise samples of softmax(μ_t + σ_t ⊙ ε_s))
        or "softmax-of-mean-logits" (faithful, the reference's)."""
        return "softmax-of-mean-logits" if config.mode == "faithful" else "sampling-softmax-mean"

    def vtm_loss(self, mu, sigma, labels, faithful: bool, generator=None):
        return losses.sampling_softmax_loss(mu, sigma, labels, self.config.softmax_samples, faithful=faithful,
                                            generator=generator)

    def network_loss(self, model, inputs, labels, step):
        """The members' mean loss (Adam trains as on the reference's sum)."""
        outputs = [member(inputs) for member in model.members]
        faithful = model.config.mode == "faithful"
        return torch.stack([self.vtm_loss(mu, sigma, labels, faithful) for mu, sigma, _ in outputs]).mean()

    def passes(self, model, inputs, generator) -> tuple:
        """(μ, σ), each (T, B, C): the T dropout passes or members."""
        raise NotImplementedError

    def faithful_loss(self, mu, sigma, labels, generator):
        """The reference's validation loss of the T outputs (T, B, C): the members' sum of their
        losses (defect 12)."""
        return torch.stack([self.vtm_loss(m, s, labels, True, generator) for m, s in zip(mu, sigma)]).sum()

    def network_evaluate(self, model, inputs, labels, generator) -> Evaluation:
        """Fixed: the loss is the mean of the per-pass (per-member) losses, on the predictive
        distribution's own noise draws (`uncertainty.predictive_and_loss`)."""
        mu, sigma = self.passes(model, inputs, generator)
        faithful, samples = model.config.mode == "faithful", self.config.softmax_samples
        mean_probs, aleatoric, epistemic = uncertainty.disentangle(
            mu, sigma, samples, faithful=faithful, ensemble=self.ensemble, generator=generator)
        if faithful:
            probs, loss = mean_probs, None if labels is None else self.faithful_loss(mu, sigma, labels, generator)
        else:
            probs, loss = uncertainty.predictive_and_loss(mu, sigma, labels, samples, generator,
                                                          self.config.mc_chunk_floats)
        return Evaluation(Prediction(probs=probs, aleatoric=aleatoric, epistemic=epistemic), loss=loss,
                          logits=mu.mean(0), batch_loss=self.batch_loss(loss, labels, faithful))

    def batch_loss(self, loss, labels, faithful: bool):
        return None
