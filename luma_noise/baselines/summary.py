"""Per-seed measures in long form and their mean ± std over seeds, beside the paper's values.

Changes are against `clean` (with the same extra fields if such a run exists), paired by
seed (variant seed s minus clean seed s); a variant seed without a clean run of the same seed
is compared with the mean of the clean seeds. Standard deviations are sample standard
deviations over seeds (ddof = 1; NaN for one seed).
"""

import numpy as np
import pandas as pd

from ..options import NAMED_CONFIGS
from .paper import paper_value
from .runs import METRICS, OPTIONAL_METRICS

KEYS = ["variant", "method", "modality", "seed"]
METHOD_ORDER = ("mcd", "de", "rcml")
MODALITY_ORDER = ("image", "audio", "text", "multimodal")
CHANGES = {"accuracy_change": ("accuracy", False), "aleatoric_rel_change": ("aleatoric", True),
           "epistemic_rel_change": ("epistemic", True)}  # measure -> (metric, relative)


def variant_order(variants) -> list:
    """clean, the named configs in their order (each followed by its per-modality forms), then the rest."""
    named = list(NAMED_CONFIGS)

    def key(v):
        base = v.split(":")[0].split("{")[0]
        return (named.index(base) if base in named else len(named), v != base, v)
    return sorted(set(variants), key=key)


def model_order(models) -> list:
    """(method, modality) pairs: the paper's methods first, then any user method, by name."""
    def key(m):
        method, modality = m
        return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method,
                MODALITY_ORDER.index(modality) if modality in MODALITY_ORDER else len(MODALITY_ORDER), modality)
    return sorted(set(models), key=key)


def per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """Long form (variant, method, modality, seed, measure, value) of the metrics and the changes."""
    metrics = [m for m in METRICS + OPTIONAL_METRICS if runs[m].notna().any()]
    long = runs.melt(id_vars=KEYS, value_vars=metrics, var_name="measure").dropna(subset=["value"])
    variants = set(runs.variant)
    references = {v: reference_of(v, variants) for v in variants}
    by_seed = {r: runs[runs.variant == r].set_index(["method", "modality", "seed"])
               for r in set(references.values()) - {None}}
    means = {r: frame.groupby(level=["method", "modality"])[list(METRICS)].mean() for r, frame in by_seed.items()}
    changes = []
    for row in runs.itertuples(index=False):
        model, reference = (row.method, row.modality), references[row.variant]
        if reference is None or model not in means[reference].index:
            continue
        clean = by_seed[reference]
        ref = clean.loc[(*model, row.seed)] if (*model, row.seed) in clean.index else means[reference].loc[model]
        for measure, (metric, relative) in CHANGES.items():
            value = getattr(row, metric) - ref[metric]
            changes.append({**{k: getattr(row, k) for k in KEYS}, "measure": measure,
                            "value": value / ref[metric] if relative else value})
    return pd.concat([long, pd.DataFrame(changes, columns=[*KEYS, "measure", "value"])], ignore_index=True)


def reference_of(variant: str, variants) -> "str | None":
    """The clean variant a variant's changes are measured against: `clean` with the same extra
    fields (`clean{image_severity=2}` for `label_noise_0.3{image_severity=2}`) if present, else
    `clean`; None for a clean variant itself or when no clean run exists."""
    base, brace, extra = variant.partition("{")
    if base == "clean":
        return None
    for candidate in ("clean" + brace + extra, "clean"):
        if candidate in variants:
            return candidate
    return None


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof 1), n over seeds per (variant, method, modality, measure), with paper and diff."""
    grouped = long.groupby(["variant", "method", "modality", "measure"])["value"]
    table = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="count").reset_index()
    table["paper"] = [paper_value(r.measure, r.variant, r.method, r.modality) for r in table.itertuples()]
    table["paper"] = table["paper"].astype(float)
    table["diff"] = table["mean"] - table["paper"]
    return table


def with_paper(long: pd.DataFrame) -> pd.DataFrame:
    """The per-seed long form with the paper's value of each measure beside it (NaN where none)."""
    paper = [paper_value(r.measure, r.variant, r.method, r.modality) for r in long.itertuples()]
    return long.assign(paper=pd.Series(paper, index=long.index, dtype=float))
