"""Label noise: each train and test example's label switched with probability `label_noise` to
its nearest other class (distances over `label_noise_modality`'s deep features).

The math is `sampling.switch_labels`; this module gathers the features and makes the new plans,
which keep the true labels as `original_labels` (the `original_label` column).
"""

import dataclasses

from . import sampling
from ..classes import MODALITIES
from ..rng import derive_rng

ORDER = 20
COLUMNS = {"original_label": "label"}
_SPLITS = ("train", "test")


def is_on(config) -> bool:
    return bool(config.label_noise)


def feature_modalities(config) -> tuple:
    return MODALITIES if config.label_noise_modality == "all" else (config.label_noise_modality,)


def column_values(plan) -> dict:
    return {"original_label": plan.labels if plan.original_labels is None else plan.original_labels}


def apply(plans: dict, upstream, config, features) -> dict:
    """Features are gathered modality by modality over both splits, so each model is loaded once
    even though only one is kept in memory at a time."""
    feats = {split: [] for split in _SPLITS}
    for modality in feature_modalities(config):
        for split in _SPLITS:
            frame = "test" if split == "test" else "train"
            feats[split].append(features(modality, frame, plans[split].rows(modality)))
    switched = {}
    for split in _SPLITS:
        plan = plans[split]
        rng = derive_rng(config.seed, "label-noise", split)
        new_labels, _ = sampling.switch_labels(plan.labels, feats[split], config.label_noise, rng,
                                               config.label_noise_neighbours)
        switched[split] = dataclasses.replace(plan, labels=new_labels, original_labels=plan.labels)
    return {**plans, **switched}
