"""The variants that change which rows a split holds or which label an example carries (never a
row's content): one module per variant, applied to the split plans in `_split_generators`,
before any example is yielded.

Each module of this package is a variant if it defines (the protocol; see `diversity.py`):

    ORDER: int                 position among the variants (each sees the plans of those before)
    COLUMNS: {name: kind}      columns its examples get, on every split, when it is on
                               (kind "label": a class label; "string": a string or None)
    is_on(config) -> bool
    feature_modalities(config) -> tuple    modalities whose deep features it reads
    apply(plans, upstream, config, features) -> plans    new {split: SplitPlan}; never changes its input
    column_values(plan) -> {name: (N,) values}           one value per example of `plan`

Adding a variant is adding a module here (its config fields go on `LumaConfig`).
"""

import functools
import importlib
import pkgutil

from ..classes import MODALITIES
from ..plan import SplitPlan
from ..plan import ood_plan
from ..plan import published_plan

SPLITS = ("train", "test", "ood")


@functools.cache
def registry() -> tuple:
    """The variant modules of this package, in their ORDER."""
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    return tuple(sorted((m for m in modules if hasattr(m, "ORDER")), key=lambda m: m.ORDER))


def active(config) -> tuple:
    """The variant modules `config` turns on, in order."""
    return tuple(variant for variant in registry() if variant.is_on(config))


def plan_splits(upstream, config, features) -> dict:
    """{split: SplitPlan} of the config: the published splits (train, test) and the OOD draw, then
    every variant that is on, in order. A split a variant replaces (`REPLACES`) is not planned
    from the published rows first. features: a `FeatureSource`."""
    variants = active(config)
    replaced = {split for variant in variants for split in getattr(variant, "REPLACES", ())}
    plans = {split: published_plan(upstream, split, config.seed) for split in ("train", "test") if split not in replaced}
    plans["ood"] = ood_plan(upstream, config.seed)
    for variant in variants:
        plans = variant.apply(plans, upstream, config, features)
    return {split: plans[split] for split in SPLITS}


def feature_modalities(config) -> tuple:
    """Modalities whose deep features the config's variants read, in MODALITIES order."""
    needed = {m for variant in active(config) for m in variant.feature_modalities(config)}
    return tuple(m for m in MODALITIES if m in needed)


def extra_columns(config) -> dict:
    """{column: kind} the config's variants add to every example (see the protocol above)."""
    return {name: kind for variant in active(config) for name, kind in variant.COLUMNS.items()}


def column_values(plan: SplitPlan, config) -> dict:
    """{column: (N,) values} of `extra_columns(config)` for the examples of `plan`."""
    return {name: values for variant in active(config) for name, values in variant.column_values(plan).items()}
