"""Low diversity: the train split re-drawn per modality with compactness k (Eq. 1 of the paper).

The math is `sampling.diversity_sample`; this module picks the candidate rows and wires the draw
into the plans. A modality whose `<m>_compactness` is None keeps the published train rows.
"""

import numpy as np

from . import sampling
from ..classes import ID_CLASSES, MODALITIES
from ..plan import SplitPlan, Upstream, align
from ..rng import derive_rng

ORDER = 10
REPLACES = ("train",)  # the published train plan is not made first
COLUMNS = {}


def is_on(config) -> bool:
    return any(getattr(config, f"{m}_compactness") is not None for m in MODALITIES)


def feature_modalities(config) -> tuple:
    return tuple(m for m in MODALITIES if getattr(config, f"{m}_compactness") is not None)


def column_values(plan) -> dict:
    return {}


def apply(plans: dict, upstream: Upstream, config, features) -> dict:
    return {**plans, "train": train_plan(upstream, config, features)}


def pool(upstream: Upstream, modality: str, include_edm: bool) -> np.ndarray:
    """Candidate train rows of a modality: in-distribution rows not in the test split
    (images: the train frame, EDM images only when `include_edm`)."""
    labels = upstream.labels(modality, "train")
    keep = (labels >= 0) & (labels < len(ID_CLASSES))
    if modality == "image":
        if not include_edm:
            keep &= upstream.image_train.sources != "edm"
    else:
        keep[upstream.splits[f"{modality}_test"]] = False
    return np.flatnonzero(keep)


def train_plan(upstream: Upstream, config, features) -> SplitPlan:
    """The train split re-drawn per modality with compactness k (None: the published rows)."""
    published = upstream.splits
    per_class = len(published["audio_train_clean"]) // len(ID_CLASSES)
    pools = {}
    for modality in MODALITIES:
        k = getattr(config, f"{modality}_compactness")
        labels = upstream.labels(modality, "train")
        if k is None:
            rows = published[f"{modality}_train_clean"]
        else:
            candidates = pool(upstream, modality, include_edm=k > 0)
            feats = features(modality, "train", candidates)
            rng = derive_rng(config.seed, "diversity", modality)
            rows = candidates[sampling.diversity_sample(feats, labels[candidates], per_class, float(k),
                                                        config.num_sampling, rng)]
        pools[modality] = (rows, labels[rows])
    return align("train", pools, ID_CLASSES, config.seed)
