"""Conflict: in a `conflict_ratio` fraction of each test class's examples, one drawn modality is
replaced by the same-position example of the next class (the `conflict_modality` column).

The math is `sampling.conflict_plan`; this module applies it to the test plan, pairing by the
true labels (those label noise kept, when it is on too).
"""

import dataclasses

import numpy as np

from . import sampling
from ..classes import ID_CLASSES, MODALITIES
from ..rng import derive_rng

ORDER = 30
COLUMNS = {"conflict_modality": "string"}


def is_on(config) -> bool:
    return bool(config.conflict_ratio)


def feature_modalities(config) -> tuple:
    return ()


def column_values(plan) -> dict:
    return {"conflict_modality": [None] * len(plan) if plan.conflict_modality is None else plan.conflict_modality}


def apply(plans: dict, upstream, config, features) -> dict:
    plan = plans["test"]
    true_labels = plan.original_labels if plan.original_labels is not None else plan.labels
    rng = derive_rng(config.seed, "conflict", plan.split)
    modality, partner = sampling.conflict_plan(true_labels, config.conflict_ratio, rng, len(ID_CLASSES))
    rows = {}
    for index, name in enumerate(MODALITIES):
        chosen = np.flatnonzero(modality == index)
        rows[f"{name}_rows"] = plan.rows(name).copy()
        rows[f"{name}_rows"][chosen] = plan.rows(name)[partner[chosen]]
    conflicted = np.array([MODALITIES[m] if m >= 0 else None for m in modality], dtype=object)
    return {**plans, "test": dataclasses.replace(plan, conflict_modality=conflicted, **rows)}
