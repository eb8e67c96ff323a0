"""The paper's networks (Figure 9; BASELINES.md §2): one trunk per modality, two heads.

Trunks map a modality's input to features F: image (B, 3, 32, 32) -> (B, 2304), audio
(B, 1, 128, 128) -> (B, 12544), text (B, D) -> (B, 256). Convolutions have no padding.
A `Branch` adds a logit head Linear(F -> C) and, for MCD/DE, a σ head Linear(F -> C) +
softplus (σ >= 0, a standard deviation in logit units). `FusionNet` runs one branch per
modality and averages logits and σ (late fusion). MC dropout computes each trunk's layers before
its first dropout once per batch (`FusionNet.prefixes`) and repeats only the rest per pass: they
are 40-48 % of a pass here (docs/performance.md).
"""

import torch
from torch import nn

from .collator import INPUT_NAMES


def image_trunk(p: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p), nn.Flatten())


def audio_trunk(p: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p), nn.Flatten())


def text_trunk(p: float, text_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(text_dim, 512), nn.ReLU(), nn.Dropout(p),
                         nn.Linear(512, 256), nn.ReLU(), nn.Dropout(p))


FEATURES = {"image": 2304, "audio": 12544, "text": 256}
# Floats of the largest activation per example, to size MC-dropout chunks.
ACTIVATION_FLOATS = {"image": 32 * 30 * 30, "audio": 32 * 124 * 124, "text": 512}


class Branch(nn.Module):
    """One modality: trunk, logit head and (if `sigma`) softplus σ head."""

    def __init__(self, modality: str, num_classes: int, dropout: float, sigma: bool, text_dim: int):
        super().__init__()
        self.trunk = text_trunk(dropout, text_dim) if modality == "text" else (
            image_trunk(dropout) if modality == "image" else audio_trunk(dropout))
        self.logits = nn.Linear(FEATURES[modality], num_classes)
        self.sigma = nn.Linear(FEATURES[modality], num_classes) if sigma else None

    @property
    def cut(self) -> int:
        """Index of the trunk's first dropout: the layers before it are deterministic."""
        return next(i for i, layer in enumerate(self.trunk) if isinstance(layer, nn.Dropout))

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk up to its first dropout (the same output in every MC-dropout pass)."""
        return self.trunk[:self.cut](x)

    def forward(self, x: torch.Tensor, after_prefix: bool = False):
        """-> (logits (B, C), σ (B, C) or None); after_prefix: `x` is `prefix`'s output."""
        features = self.trunk[self.cut:](x) if after_prefix else self.trunk(x)
        sigma = nn.functional.softplus(self.sigma(features)) if self.sigma is not None else None
        return self.logits(features), sigma


class FusionNet(nn.Module):
    """One branch per modality (in the order image, audio, text).

    forward(inputs) with inputs {input name: tensor} -> (logits (B, C), σ (B, C) or None,
    per-modality logits {modality: (B, C)}); logits and σ are the means over modalities.
    """

    def __init__(self, modalities, num_classes: int, dropout: float, sigma: bool, text_dim: int):
        super().__init__()
        self.modalities = tuple(modalities)
        self.branches = nn.ModuleDict({m: Branch(m, num_classes, dropout, sigma, text_dim) for m in self.modalities})

    def prefixes(self, inputs: dict) -> dict:
        """{input name: its branch's `prefix`}: computed once per batch for all MC-dropout passes."""
        return {INPUT_NAMES[m]: self.branches[m].prefix(inputs[INPUT_NAMES[m]]) for m in self.modalities}

    def forward(self, inputs: dict, after_prefix: bool = False):
        outputs = {m: self.branches[m](inputs[INPUT_NAMES[m]], after_prefix) for m in self.modalities}
        logits = torch.stack([o[0] for o in outputs.values()]).mean(0)
        sigmas = [o[1] for o in outputs.values()]
        sigma = None if sigmas[0] is None else torch.stack(sigmas).mean(0)
        return logits, sigma, {m: o[0] for m, o in outputs.items()}
