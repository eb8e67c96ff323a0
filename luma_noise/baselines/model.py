"""`LumaModelConfig` and `LumaModel`: the baselines as `transformers` models.

A `LumaModel` holds `members` (1 for MCD and RCML, `ensemble_size` for DE), each a
`FusionNet` over the configured modalities. `forward` takes named tensors and `labels`
and returns a `LumaOutput`, so the stock `Trainer`, `save_pretrained` and
`from_pretrained` work unchanged. In training mode it returns the training loss; in
eval mode it runs the method's predictive procedure (T dropout passes, the ensemble's
members, or the Dirichlet) and also returns per-example uncertainties.
"""

import copy
from dataclasses import dataclass
from typing import Optional

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel, TrainerCallback
from transformers.utils import ModelOutput

from . import losses, uncertainty
from .collator import INPUT_NAMES, check_modalities
from .inputs import MODES
from .networks import ACTIVATION_FLOATS, FusionNet

METHODS = ("mcd", "de", "rcml")
ENSEMBLE_TRAINING = ("joint", "independent")


class LumaModelConfig(PretrainedConfig):
    """Hyper-parameters of a LUMA baseline.

    method: "mcd" (MC dropout), "de" (deep ensemble) or "rcml"; modalities: any of
    "image", "audio", "text" (several = late fusion); mode: "fixed" (correct) or
    "faithful" (the reference's defects 1-5, 11, 12, BASELINES.md §6; docs/faithful.md); num_classes: 42
    in-distribution classes; dropout: p of every dropout layer; ensemble_size: DE members
    (M); ensemble_training: "joint" (one model, summed loss: the reference) or
    "independent" (members trained apart and combined, `LumaModel.from_members`);
    mc_samples: dropout passes at evaluation (T); softmax_samples: noise samples of the
    sampling softmax (S); text_dim: size of the text embeddings (768 for bert-base);
    kl_anneal_epochs: RCML's KL weight is min(1, epoch / kl_anneal_epochs);
    conflict_weight: RCML's γ; mc_chunk_floats: floats of the largest activation per
    vectorised MC-dropout call. The default (4 M floats, 16 MB) fits CPU caches: on a CPU,
    larger calls made the convolutions slower (benchmarks/bench_baselines.py); raise it on
    a GPU, where larger calls fill the device. eval_seed: seed of the evaluation noise
    (dropout masks of MC dropout, the sampling softmax's ε) when `forward` gets no
    generator: every evaluation call then draws the same noise, so predictions are a
    function of the weights, the inputs and this seed (`train` sets it to the run's seed).
    """

    model_type = "luma_baseline"

    def __init__(self, method: str = "mcd", modalities=("image", "audio", "text"), mode: str = "fixed",
                 num_classes: int = 42, dropout: float = 0.3, ensemble_size: int = 10,
                 ensemble_training: str = "joint", mc_samples: int = 100, softmax_samples: int = 100,
                 text_dim: int = 768, kl_anneal_epochs: int = 50, conflict_weight: float = 1.0,
                 mc_chunk_floats: int = 2 ** 22, eval_seed: int = 0, **kwargs):
        self.method, self.mode, self.ensemble_training = method, mode, ensemble_training
        self.modalities = list(modalities) if not isinstance(modalities, str) else [modalities]
        self.num_classes, self.dropout, self.ensemble_size = num_classes, dropout, ensemble_size
        self.mc_samples, self.softmax_samples, self.text_dim = mc_samples, softmax_samples, text_dim
        self.kl_anneal_epochs, self.conflict_weight = kl_anneal_epochs, conflict_weight
        self.mc_chunk_floats, self.eval_seed = mc_chunk_floats, eval_seed
        self._check()
        self.modalities = list(check_modalities(self.modalities))
        super().__init__(**kwargs)

    def _check(self) -> None:
        errors = []
        for field, allowed in (("method", METHODS), ("mode", MODES), ("ensemble_training", ENSEMBLE_TRAINING)):
            if getattr(self, field) not in allowed:
                errors.append(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        if not self.modalities or any(m not in INPUT_NAMES for m in self.modalities):
            errors.append(f"modalities must be among {tuple(INPUT_NAMES)}, got {self.modalities!r}")
        for field in ("num_classes", "ensemble_size", "mc_samples", "softmax_samples", "text_dim",
                      "kl_anneal_epochs", "mc_chunk_floats"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                errors.append(f"{field} must be an integer >= 1, got {value!r}")
        if not isinstance(self.eval_seed, int) or isinstance(self.eval_seed, bool) or self.eval_seed < 0:
            errors.append(f"eval_seed must be an integer >= 0, got {self.eval_seed!r}")
        if not 0 <= self.dropout < 1:
            errors.append(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.conflict_weight < 0:
            errors.append(f"conflict_weight must be >= 0, got {self.conflict_weight!r}")
        if errors:
            raise ValueError("invalid LumaModelConfig: " + "; ".join(errors))

    @property
    def num_members(self) -> int:
        return self.ensemble_size if self.method == "de" else 1


@dataclass
class LumaOutput(ModelOutput):
    """loss: scalar; logits (B, C): the mean logits (RCML: log α/α₀). In eval mode only:
    aleatoric, epistemic (B,) (see `uncertainty`); probs (B, C), the predictive distribution
    named by `LumaModel.predictive`; batch_loss (B, 2), only for faithful MC dropout with
    labels: [L/B, 1/B] on every row, so that `compute_metrics` averages the per-batch
    validation losses plainly, as the reference does."""

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    aleatoric: Optional[torch.FloatTensor] = None
    epistemic: Optional[torch.FloatTensor] = None
    probs: Optional[torch.FloatTensor] = None
    batch_loss: Optional[torch.FloatTensor] = None


class LumaModel(PreTrainedModel):
    """MC dropout, deep ensemble or RCML over LUMA's modalities (see `LumaModelConfig`).

    forward(pixel_values (B, 3, 32, 32), audio_features (B, 1, 128, 128), text_embeddings
    (B, D), labels (B,)) -> LumaOutput; only the configured modalities are needed. RCML's
    KL weight follows `annealing_epoch`, which `AnnealingCallback` sets from the Trainer.
    """

    config_class = LumaModelConfig
    base_model_prefix = "luma"
    main_input_name = "labels"

    def __init__(self, config: LumaModelConfig):
        super().__init__(config)
        sigma = config.method != "rcml"
        self.members = torch.nn.ModuleList(
            FusionNet(config.modalities, config.num_classes, config.dropout, sigma, config.text_dim)
            for _ in range(config.num_members))
        self.annealing_epoch = 0.0
        self.validation_passes = None  # MC dropout passes while the Trainer validates (train.py); None: mc_samples
        self.post_init()

    def _init_weights(self, module):
        """Keep PyTorch's default initialisation of every layer (what the reference uses)."""

    @classmethod
    def from_members(cls, models) -> "LumaModel":
        """A deep ensemble of single-member DE models trained apart (ensemble_training "independent")."""
        config = copy.deepcopy(models[0].config)
        config.ensemble_size, config.ensemble_training = len(models), "independent"
        ensemble = cls(config)
        for member, model in zip(ensemble.members, models):
            member.load_state_dict(model.members[0].state_dict())
        return ensemble

    @property
    def predictive(self) -> str:
        """Which predictive distribution `probs` holds: "sampling-softmax-mean" (fixed MCD/DE:
        mean over passes or members and noise samples of softmax(μ_t + σ_t ⊙ ε_s)),
        "softmax-of-mean-logits" (faithful MCD/DE, the reference's) or "dirichlet-mean" (RCML)."""
        if self.config.method == "rcml":
            return "dirichlet-mean"
        return "softmax-of-mean-logits" if self.config.mode == "faithful" else "sampling-softmax-mean"

    def forward(self, pixel_values=None, audio_features=None, text_embeddings=None, labels=None, generator=None,
                **unused):
        given = {"pixel_values": pixel_values, "audio_features": audio_features, "text_embeddings": text_embeddings}
        inputs = {INPUT_NAMES[m]: given[INPUT_NAMES[m]] for m in self.config.modalities}
        missing = [name for name, value in inputs.items() if value is None]
        if missing:
            raise ValueError(f"this {self.config.method} model of {self.config.modalities} needs {missing}")
        if self.training:
            return self._train_step(inputs, labels)
        if generator is None:  # the same evaluation noise at every call (see LumaModelConfig.eval_seed)
            device = next(iter(inputs.values())).device
            generator = torch.Generator(device=device).manual_seed(self.config.eval_seed)
        return self._predict(inputs, labels, generator)

    def _train_step(self, inputs, labels):
        outputs = [member(inputs) for member in self.members]
        logits = torch.stack([o[0] for o in outputs]).mean(0)
        if labels is None:
            return LumaOutput(logits=logits)
        if self.config.method == "rcml":
            kl_weight = losses.annealing_weight(self.annealing_epoch, self.config.kl_anneal_epochs)
            loss = self._rcml_loss(outputs[0], labels, kl_weight)
        else:  # the members' mean: Adam trains as on the reference's sum
            loss = torch.stack([self._vtm_loss(mu, sigma, labels) for mu, sigma, _ in outputs]).mean()
        return LumaOutput(loss=loss, logits=logits)

    def _vtm_loss(self, mu, sigma, labels, generator=None):
        return losses.sampling_softmax_loss(mu, sigma, labels, self.config.softmax_samples,
                                            faithful=self.config.mode == "faithful", generator=generator)

    def _rcml_loss(self, output, labels, kl_weight):
        evidences = [torch.nn.functional.softplus(logits) for logits in output[2].values()]
        return losses.rcml_loss(evidences, labels, kl_weight, self.config.conflict_weight,
                                faithful=self.config.mode == "faithful")

    def _passes(self, inputs, generator):
        """(μ, σ) of shape (T, B, C): dropout passes (MCD) or members (DE)."""
        if self.config.method == "de":
            outputs = [member(inputs)[:2] for member in self.members]
            return torch.stack([o[0] for o in outputs]), torch.stack([o[1] for o in outputs])
        net = self.members[0]
        per_row = sum(ACTIVATION_FLOATS[m] for m in self.config.modalities)
        net.train()  # dropout stays on: MC dropout
        seed = int(torch.randint(2 ** 62, (), generator=generator, device=generator.device))
        try:  # dropout draws from the global generator: seed it from `generator` inside a fork
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                mu, sigma, _ = uncertainty.repeated_passes(lambda x: net(x)[:2] + (None,), inputs,
                                                           self.validation_passes or self.config.mc_samples,
                                                           max(1, self.config.mc_chunk_floats // per_row))
        finally:
            net.train(self.training)
        return mu, sigma

    def _predict(self, inputs, labels, generator):
        if self.config.method == "rcml":
            output = self.members[0](inputs)
            evidences = [torch.nn.functional.softplus(logits) for logits in output[2].values()]
            probs, aleatoric, epistemic = uncertainty.dirichlet_uncertainty(losses.fuse_evidence(evidences) + 1)
            # λ = 1: a validation loss that does not move with annealing (defect 9)
            loss = None if labels is None else self._rcml_loss(output, labels, 1.0)
            return LumaOutput(loss=loss, logits=probs.log(), aleatoric=aleatoric, epistemic=epistemic, probs=probs)
        mu, sigma = self._passes(inputs, generator)
        faithful = self.config.mode == "faithful"
        mean_probs, aleatoric, epistemic = uncertainty.disentangle(
            mu, sigma, self.config.softmax_samples, faithful=faithful, ensemble=self.config.method == "de",
            generator=generator)
        probs = mean_probs if faithful else uncertainty.predictive_probs(
            mu, sigma, self.config.softmax_samples, generator, self.config.mc_chunk_floats)
        loss, batch_loss = self._validation_loss(mu, sigma, labels, generator), None
        if faithful and self.config.method == "mcd" and labels is not None:
            batch_loss = torch.stack([loss, loss.new_ones(())]).expand(len(labels), 2) / len(labels)
        return LumaOutput(loss=loss, logits=mu.mean(0), aleatoric=aleatoric, epistemic=epistemic, probs=probs,
                          batch_loss=batch_loss)

    def _validation_loss(self, mu, sigma, labels, generator):
        """Sampling-softmax loss of the T outputs (T, B, C): the mean of the per-pass or per-member
        losses; faithful: MC dropout's once on (μ̄, mean σ), DE's the members' sum (defect 12)."""
        if labels is None:
            return None
        if self.config.mode == "faithful" and self.config.method == "mcd":
            return self._vtm_loss(mu.mean(0), sigma.mean(0), labels, generator)
        per_pass = torch.stack([self._vtm_loss(m, s, labels, generator) for m, s in zip(mu, sigma)])
        return per_pass.sum() if self.config.mode == "faithful" else per_pass.mean()


class AnnealingCallback(TrainerCallback):
    """Tell the model the Trainer's epoch at every epoch start (RCML's KL annealing)."""

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            model.annealing_epoch = float(state.epoch or 0.0)


# `AutoConfig`/`AutoModel.from_pretrained` on a saved baseline once this module is imported.
AutoConfig.register(LumaModelConfig.model_type, LumaModelConfig)
AutoModel.register(LumaModelConfig, LumaModel)
