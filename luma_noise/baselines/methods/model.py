"""`MethodConfig` and `MethodModel`: any registered method as one `transformers` model.

The model owns the parameters: one trunk per modality (the paper's, `networks.py`), one
linear head per output the method asks for (`Method.heads`; "sigma" and "evidence" go
through softplus) and the method's extra modules (`Method.build`: ETMC's pseudo-view head,
QMF's loss history); or, for a method with its own network (`Method.network`: MC dropout,
the deep ensemble and RCML, the paper's `networks.FusionNet` members), that network as
`members`. The method owns the loss and the predictive procedure. `forward` returns a
`MethodOutput`, so the stock `Trainer`, `save_pretrained` and `from_pretrained` work unchanged.

`LumaModelConfig` and `LumaModel`, the names of the paper's baselines before they became
methods, are kept as deprecated aliases of `MethodConfig` and `MethodModel`: models saved
under them load (`MethodModel.from_pretrained`; a hyper-parameter passed as a keyword, as
`ensemble_size=3`, goes into `method_config`).
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from ..collator import INPUT_NAMES, check_modalities
from ..inputs import MODES
from ..networks import FEATURES, audio_trunk, image_trunk, text_trunk
from .base import Step
from .registry import resolve
from .softmax import scaled


class MethodConfig(PretrainedConfig):
    """Hyper-parameters of a method model, validated when built (every bad value in one ValueError).

    method: a registry name ("tmc") or "package.module:Class"; method_config: the method's own
    hyper-parameters ({name: value}, its `Method.Config`); modalities: any of "image", "audio",
    "text" (several = fusion), within the method's number of views; mode: "fixed" or
    "faithful" audio inputs; num_classes: 42; dropout: p of the trunks' dropout layers (off at
    evaluation); text_dim: size of the text embeddings; num_train_examples: N, the size of
    the training set (methods with a per-example history, QMF); calibration_temperature: T > 0
    dividing the fused logits at prediction (1; set by temperature scaling); eval_seed: seed of
    the evaluation noise (MC dropout's masks, the sampling softmax's ε) when `forward` gets no
    generator: every evaluation call then draws the same noise, so predictions are a function of
    the weights, the inputs and this seed (`train` sets it to the run's seed).

    A keyword naming a field of the method's `Config` (`MethodConfig(method="de",
    ensemble_size=3)`) goes into `method_config`; so do the hyper-parameters of the paper's
    baselines saved by `LumaModelConfig` (those that do not apply to the method are dropped).
    """

    model_type = "luma_method"

    def __init__(self, method: str = "softmax", method_config: Optional[dict] = None,
                 modalities=("image", "audio", "text"), mode: str = "fixed", num_classes: int = 42,
                 dropout: float = 0.3, text_dim: int = 768, num_train_examples: int = 0,
                 calibration_temperature: float = 1.0, eval_seed: int = 0, **kwargs):
        self.method, self.method_config = method, {**_hyper_keywords(method, kwargs), **dict(method_config or {})}
        self.modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        self.mode, self.num_classes, self.dropout, self.text_dim = mode, num_classes, dropout, text_dim
        self.num_train_examples, self.calibration_temperature = num_train_examples, calibration_temperature
        self.eval_seed = eval_seed
        self._check()
        self.modalities = list(check_modalities(self.modalities))
        super().__init__(**kwargs)

    def _check(self) -> None:
        errors = []
        try:
            method = self.build_method()
        except ValueError as err:
            errors.append(str(err))
            method = None
        try:
            count = len(check_modalities(self.modalities))
            if method is not None and not method.views[0] <= count <= method.views[1]:
                errors.append(f"{self.method} fuses {method.views[0]} to {method.views[1]} modalities, "
                              f"got {self.modalities!r}")
        except ValueError as err:
            errors.append(str(err))
        if self.mode not in MODES:
            errors.append(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("num_classes", "text_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                errors.append(f"{name} must be an integer >= 1, got {value!r}")
        least = 1 if method is not None and method.needs_index else 0
        if not isinstance(self.num_train_examples, int) or self.num_train_examples < least:
            errors.append(f"num_train_examples must be the training set's size (>= 1 for {self.method}), "
                          f"got {self.num_train_examples!r}")
        if not 0 <= self.dropout < 1:
            errors.append(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.calibration_temperature, (int, float)) and self.calibration_temperature > 0):
            errors.append(f"calibration_temperature must be a number > 0, got {self.calibration_temperature!r}")
        if not isinstance(self.eval_seed, int) or isinstance(self.eval_seed, bool) or self.eval_seed < 0:
            errors.append(f"eval_seed must be an integer >= 0, got {self.eval_seed!r}")
        if errors:
            raise ValueError("invalid MethodConfig: " + "; ".join(errors))

    def build_method(self):
        """The method object (its hyper-parameters validated)."""
        return resolve(self.method)(**self.method_config)


# The hyper-parameters `LumaModelConfig` had as keywords (saved in its config.json).
LEGACY_KEYWORDS = ("ensemble_size", "ensemble_training", "mc_samples", "softmax_samples", "kl_anneal_epochs",
                   "conflict_weight", "mc_chunk_floats")


def _hyper_keywords(method, kwargs: dict) -> dict:
    """Pop from `kwargs` the keywords that are the method's hyper-parameters (and the legacy
    ones, dropped where they do not apply); {name: value} of the former."""
    try:
        names = {f.name for f in dataclasses.fields(resolve(method).Config)}
    except (ValueError, TypeError):  # an unknown method is reported by _check
        names = set()
    hyper = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    for name in LEGACY_KEYWORDS:
        kwargs.pop(name, None)
    return hyper


@dataclass
class MethodOutput(ModelOutput):
    """loss: scalar; in eval mode also, per example: logits (B, C) = log of the predictive
    distribution (MC dropout and the deep ensemble: the mean logits μ̄); total, aleatoric,
    epistemic (B,) (NaN where the method has no such split); scores (B, S): OOD scores in the
    order of `Method.score_names()` (higher = more OOD); probs (B, C): the predictive
    distribution; batch_loss (B, 2) or None (`base.Evaluation`)."""

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    total: Optional[torch.FloatTensor] = None
    aleatoric: Optional[torch.FloatTensor] = None
    epistemic: Optional[torch.FloatTensor] = None
    scores: Optional[torch.FloatTensor] = None
    probs: Optional[torch.FloatTensor] = None
    batch_loss: Optional[torch.FloatTensor] = None


def _trunk(modality: str, dropout: float, text_dim: int) -> nn.Module:
    if modality == "text":
        return text_trunk(dropout, text_dim)
    return image_trunk(dropout) if modality == "image" else audio_trunk(dropout)


class MethodModel(PreTrainedModel):
    """A registered method over LUMA's modalities (see `MethodConfig`).

    forward(pixel_values (B, 3, 32, 32), audio_features (B, 1, 128, 128), text_embeddings (B, D),
    labels (B,), example_index (B,)) -> MethodOutput; only the configured modalities are needed,
    example_index only by methods with `needs_index`. Annealed loss weights follow
    `annealing_epoch`, which `AnnealingCallback` sets from the Trainer.
    """

    config_class = MethodConfig
    base_model_prefix = "luma_method"
    main_input_name = "labels"
    # forward's losses are means over the batch: without this the Trainer (which sees **unused) counts
    # the labels of every batch and scales the train and eval losses by the number of processes
    accepts_loss_kwargs = False

    def __init__(self, config: MethodConfig):
        super().__init__(config)
        self.method = config.build_method()
        c = config.num_classes
        self.members = self.method.network(config)
        if self.members is None:
            self.trunks = nn.ModuleDict({m: _trunk(m, config.dropout, config.text_dim) for m in config.modalities})
            self.heads = nn.ModuleDict({m: nn.ModuleDict({h: nn.Linear(FEATURES[m], c) for h in self.method.heads})
                                        for m in config.modalities})
        self.extra = self.method.build({m: FEATURES[m] for m in config.modalities}, c, config.num_train_examples)
        self.annealing_epoch = 0.0
        self.validation_passes = None  # MC dropout passes while the Trainer validates (runner); None: mc_samples
        self.post_init()

    @property
    def predictive(self):
        """The name of the predictive distribution `probs` holds (`Method.predictive`), or None."""
        return self.method.predictive(self.config)

    def _init_weights(self, module):
        """Keep PyTorch's default initialisation of every layer (as `LumaModel`)."""

    def use_memory_format(self, memory_format: str) -> "MethodModel":
        """Lay the convolutions' weights out as "channels_last" or "contiguous" (settings.MEMORY_FORMATS;
        their outputs follow the weights); returns self. Call it before an optimiser holds state."""
        self.to(memory_format=torch.channels_last if memory_format == "channels_last" else torch.contiguous_format)
        return self

    def views(self, inputs: dict) -> dict:
        """{modality: {"features": (B, F), head: (B, C)}} of the network on named inputs."""
        out = {}
        for m in self.config.modalities:
            features = self.trunks[m](inputs[INPUT_NAMES[m]])
            heads = {h: layer(features) for h, layer in self.heads[m].items()}
            out[m] = {"features": features, **{h: nn.functional.softplus(v) if h != "logits" else v
                                               for h, v in heads.items()}}
        return out

    def forward(self, pixel_values=None, audio_features=None, text_embeddings=None, labels=None, example_index=None,
                generator=None, **unused):
        given = {"pixel_values": pixel_values, "audio_features": audio_features, "text_embeddings": text_embeddings}
        inputs = {INPUT_NAMES[m]: given[INPUT_NAMES[m]] for m in self.config.modalities}
        missing = [name for name, value in inputs.items() if value is None]
        if missing:
            raise ValueError(f"this {self.config.method} model of {self.config.modalities} needs {missing}")
        if self.members is not None:
            return self._network_forward(inputs, labels, example_index, generator)
        views = self.views(inputs)
        if self.training:
            step = Step(self.annealing_epoch, True, example_index, self.extra)
            return MethodOutput(loss=self.method.loss(views, labels, step))
        pred = scaled(self.method.predict(views, self.extra), float(self.config.calibration_temperature))
        loss = None
        if labels is not None and bool((labels < self.config.num_classes).all()):
            loss = self.method.loss(views, labels, Step(math.inf, False, example_index, self.extra))
        return self._output(pred, loss, None, None)

    def _network_forward(self, inputs, labels, example_index, generator):
        """forward of a method with its own network (`Method.network_loss`, `network_evaluate`)."""
        if self.training:
            step = Step(self.annealing_epoch, True, example_index, self.extra)
            return MethodOutput(loss=None if labels is None else self.method.network_loss(self, inputs, labels, step))
        if generator is None:  # the same evaluation noise at every call (MethodConfig.eval_seed)
            device = next(iter(inputs.values())).device
            generator = torch.Generator(device=device).manual_seed(self.config.eval_seed)
        result = self.method.network_evaluate(self, inputs, labels, generator)
        return self._output(result.prediction, result.loss, result.logits, result.batch_loss)

    def _output(self, pred, loss, logits, batch_loss) -> MethodOutput:
        nan = torch.full_like(pred.total, float("nan"))
        lacking = [name for name in self.method.score_names() if name not in pred.scores]
        if lacking:
            raise ValueError(f"{self.config.method}.predict returned no OOD scores {lacking} (its `scores`)")
        scores = torch.stack([pred.scores[name] for name in self.method.score_names()], -1)
        return MethodOutput(loss=loss, logits=pred.probs.clamp(min=1e-30).log() if logits is None else logits,
                            total=pred.total, aleatoric=nan if pred.aleatoric is None else pred.aleatoric,
                            epistemic=nan if pred.epistemic is None else pred.epistemic, scores=scores,
                            probs=pred.probs, batch_loss=batch_loss)


def with_example_index(dataset):
    """`dataset` with an int64 `example_index` column 0..N-1 (the stable index QMF's history needs).

    A prepared Dataset gets the row number; a streaming IterableDataset the position in the
    stream (stable as long as the stream is not shuffled).
    """
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(lambda row, i: {"example_index": i}, with_indices=True)
    return dataset.add_column("example_index", np.arange(len(dataset), dtype=np.int64))


class LumaModelConfig(MethodConfig):
    """Deprecated: the paper's baselines' config before they became methods; `MethodConfig` with
    method "mcd" by default, reading the config.json files it saved (model type "luma_baseline")."""

    model_type = "luma_baseline"

    def __init__(self, method: str = "mcd", **kwargs):
        super().__init__(method=method, **kwargs)


class LumaModel(MethodModel):
    """Deprecated: `MethodModel` of a `LumaModelConfig` (loads the models the paper's baselines saved)."""

    config_class = LumaModelConfig

    @classmethod
    def from_members(cls, models):
        """A deep ensemble of one-member models trained apart (`DeepEnsemble.combine`)."""
        from .de import DeepEnsemble

        return DeepEnsemble.combine(models)


AutoConfig.register(MethodConfig.model_type, MethodConfig)
AutoModel.register(MethodConfig, MethodModel)
AutoConfig.register(LumaModelConfig.model_type, LumaModelConfig)
AutoModel.register(LumaModelConfig, LumaModel)
