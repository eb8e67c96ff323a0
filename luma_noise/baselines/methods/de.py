"""The deep ensemble (Lakshminarayanan et al. 2017) with VT&M's sampling softmax: the paper's `de`
(BASELINES.md §2-3, §5).

M = `ensemble_size` members, each the paper's network (`networks.FusionNet`), dropout off at
evaluation. `ensemble_training` "joint" (the reference): one model trained on the members' mean
loss (same batches and stopping epoch; diversity only from initialisation); "independent": each
member trained apart as a one-member ensemble (own seed, data order and early stopping), then
combined (`DeepEnsemble.combine`). At evaluation (dropout off) the members of an image or text
network run in one batched call (`batched_members`: parameters stacked with
`torch.func.stack_module_state`, one `vmap`), which gives each member's own outputs to float32
rounding (tests/unit/baselines/methods/test_paper.py) and was faster than one call per member here
(benchmarks/bench_ensemble.py, 10 members, batch 128: 1.32x for text, 1.14x for image); with the
audio network it was 5x slower (its activations for all members at once: 0.18x at batch 16), so
those members run one by one. Training always calls the members one by one (under vmap their
dropout masks would differ from the loop's).
"""

import copy
from dataclasses import dataclass

import torch

from .base import check
from .sampling import SamplingSoftmax, positive_ints

ENSEMBLE_TRAINING = ("joint", "independent")
BATCHED = ("auto", "always", "never")


class DeepEnsemble(SamplingSoftmax):
    """A deep ensemble of M sampling-softmax networks."""

    name, ensemble = "de", True

    @dataclass
    class Config:
        """ensemble_size: members (M); ensemble_training: "joint" or "independent" (module doc);
        softmax_samples: noise samples of the sampling softmax (S); mc_chunk_floats: floats per
        chunk of the predictive distribution's (S, t, B, C) samples; batched: the members at
        evaluation in one vmapped call ("always"), one call each ("never") or "auto" (batched
        unless the network has the audio trunk: the faster of the two here, module doc)."""

        ensemble_size: int = 10
        ensemble_training: str = "joint"
        softmax_samples: int = 100
        mc_chunk_floats: int = 2 ** 22
        batched: str = "auto"

        def __post_init__(self):
            errors = positive_ints(self, ("ensemble_size", "softmax_samples", "mc_chunk_floats"))
            if self.ensemble_training not in ENSEMBLE_TRAINING:
                errors.append(f"ensemble_training must be one of {ENSEMBLE_TRAINING}, got {self.ensemble_training!r}")
            if self.batched not in BATCHED:
                errors.append(f"batched must be one of {BATCHED}, got {self.batched!r}")
            check(errors, "de")

    @property
    def num_members(self) -> int:
        return self.config.ensemble_size

    @property
    def trained_apart(self) -> bool:
        """Whether the members are trained one by one and then combined (`combine`)."""
        return self.config.ensemble_training == "independent"

    def passes(self, model, inputs, generator) -> tuple:
        """(μ, σ), each (M, B, C): every member's outputs (dropout off)."""
        batched = {"always": True, "never": False}.get(self.config.batched, "audio" not in model.config.modalities)
        if batched and len(model.members) > 1 and not model.training:
            return batched_members(model.members, inputs)
        outputs = [member(inputs)[:2] for member in model.members]
        return torch.stack([o[0] for o in outputs]), torch.stack([o[1] for o in outputs])

    @staticmethod
    def combine(models):
        """One ensemble of the one-member models `models` trained apart (their weights copied)."""
        config = copy.deepcopy(models[0].config)
        config.method_config = {**config.method_config, "ensemble_size": len(models),
                                "ensemble_training": "independent"}
        ensemble = type(models[0])(config)
        for member, model in zip(ensemble.members, models):
            member.load_state_dict(model.members[0].state_dict())
        return ensemble


def batched_members(members, inputs) -> tuple:
    """Every member's (μ, σ) in one call: (M, B, C) each.

    The members' parameters and buffers are stacked (`torch.func.stack_module_state`) and one
    member's forward is `vmap`ped over them (`torch.func.functional_call`), so each kernel runs once
    over all members. Dropout must be off (eval mode): vmap refuses random draws."""
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(list(members))

    def one(p, b):
        return functional_call(members[0], (p, b), (inputs,))[:2]

    return vmap(one, randomness="error")(params, buffers)
