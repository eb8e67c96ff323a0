"""The disentanglement scorecard: does each uncertainty measure move with the factor LUMA controls?

For each model (method, modality) and controlled factor, the relative change of the aleatoric
and of the epistemic measure, per seed, then its mean and 95 % t interval over seeds and a
verdict against the direction the LUMA paper expects (arXiv 2406.09864, Sections 3-4;
`shared/BASELINES.md` §7: label and sample noise are data (aleatoric) uncertainty, OOD classes
and reduced diversity are knowledge (epistemic) uncertainty). Both measures are shown for every
factor, so that a measure moving with the other kind's factor (leakage) is visible.

Factors and their per-seed effect (a relative change, 0.25 = +25 %):

- label noise: the least-squares slope of the measure over the label-noise proportion p
  (`clean` = 0, `label_noise_0.1` ... `0.5` of the same seed), times 0.5, over the seed's clean
  value: the fitted relative change from p = 0 to p = 0.5;
- sample noise (`sample_noise`, and `sample_noise:image` etc. for one modality), reduced
  diversity (`low_diversity`): (variant − clean) / clean, paired by seed (a seed without a
  clean run of the same seed is left out, not compared with another seed);
- OOD: within each clean run, mean over the `ood` split / mean over the test split − 1;
- conflict: within each `conflict` run, mean over the conflicted test examples / mean over the
  intact ones − 1.

Verdict, from the 95 % t interval over seeds (mean ± t(0.975, n−1)·s/√n): an interval above 0
"rises", below 0 "falls", else "no detectable change"; against the expectation that reads "as
expected" / "opposite", and for a measure the factor should not move (the other kind) "leakage:
rises" / "leakage: falls". With one seed there is no interval and no verdict.
"""

import math
import re
from collections import defaultdict

import numpy as np
import pandas as pd
from scipy import stats

from ..options import NAMED_CONFIGS
from .summary import model_order, reference_of

KINDS = ("aleatoric", "epistemic")
LEVEL = 0.95
ROUNDING = 1e-9  # relative changes this small are floating-point rounding (a fitted slope of a constant), not change
FULL_RANGE = 0.5  # label noise: the slope is reported as the relative change from p = 0 to p = 0.5
# factor -> {measure: +1 the factor should raise it, 0 it should not move it (disentangled), None: no
# expectation stated}. Source: the LUMA paper's framing (arXiv 2406.09864; BASELINES.md §7).
EXPECTED = {
    "label noise": {"aleatoric": +1, "epistemic": 0},
    "sample noise": {"aleatoric": +1, "epistemic": 0},
    "reduced diversity": {"aleatoric": 0, "epistemic": +1},
    "OOD": {"aleatoric": 0, "epistemic": +1},
    "conflict": {"aleatoric": None, "epistemic": None},
}
FACTOR_ORDER = tuple(EXPECTED)
MARKS = {"as expected": "✓", "opposite": "✗", "no detectable change": "○", "leakage: rises": "!",
         "leakage: falls": "!", "rises": "↑", "falls": "↓", "no verdict (one seed)": "?"}
# What enables each factor (for the report's line when it is absent).
NEEDS = {
    "label noise": "clean and label_noise_0.1 ... label_noise_0.5 runs of the same seeds",
    "sample noise": "clean and sample_noise (or sample_noise:image, :audio, :text) runs of the same seeds",
    "reduced diversity": "clean and low_diversity runs of the same seeds",
    "OOD": "clean runs with predictions (test and ood arrays)",
    "conflict": "conflict runs with predictions (test_conflict_modality)",
}
COLUMNS = ["factor", "variant", "method", "modality", "seed", "measure", "value"]


def _label_noise(variant: str):
    """(proportion, extra fields) of a label-noise variant such as `label_noise_0.3{...}`, else None."""
    base, brace, extra = variant.partition("{")
    config = NAMED_CONFIGS.get(base)
    if config is None or set(config) != {"label_noise"}:
        return None
    return float(config["label_noise"]), brace + extra


def _factor(variant: str):
    base = variant.split("{")[0]
    if base == "low_diversity":
        return "reduced diversity"
    if base.split(":")[0] == "sample_noise":
        return "sample noise"
    return None


def _relative(value, reference) -> float:
    return (value - reference) / reference if abs(reference) > 1e-12 else math.nan


def paired_effects(runs: pd.DataFrame) -> list:
    """Sample noise and reduced diversity: (variant − clean) / clean per seed, as COLUMNS rows."""
    rows, variants = [], set(runs.variant)
    by_key = runs.set_index(["variant", "method", "modality", "seed"])
    for run in runs.itertuples(index=False):
        factor, reference = _factor(run.variant), reference_of(run.variant, variants)
        key = (reference, run.method, run.modality, run.seed)
        if factor is None or reference is None or key not in by_key.index:
            continue
        clean = by_key.loc[key]
        for kind in KINDS:
            rows.append((factor, run.variant, run.method, run.modality, run.seed, kind,
                         _relative(getattr(run, kind), clean[kind])))
    return rows


def label_noise_slopes(runs: pd.DataFrame) -> list:
    """Label noise: per (model, seed), the relative fitted change from p = 0 to 0.5 (module doc).

    Needs the clean run of the seed and at least one label-noise run of that seed; the variant
    column is `label_noise` (plus the runs' extra fields, if any)."""
    points = defaultdict(list)  # (extra, method, modality, seed) -> [(p, aleatoric, epistemic)]
    for run in runs.itertuples(index=False):
        base, brace, extra = run.variant.partition("{")
        found = (0.0, brace + extra) if base == "clean" else _label_noise(run.variant)
        if found is not None:
            points[(found[1], run.method, run.modality, run.seed)].append((found[0], run.aleatoric, run.epistemic))
    rows = []
    for (extra, method, modality, seed), values in points.items():
        values.sort()
        proportions = np.array([v[0] for v in values])
        if proportions[0] != 0.0 or len(set(proportions)) < 2:
            continue
        for i, kind in enumerate(KINDS, start=1):
            measure = np.array([v[i] for v in values])
            slope = np.polyfit(proportions, measure, 1)[0]
            rows.append(("label noise", "label_noise" + extra, method, modality, seed, kind,
                         _relative(measure[0] + slope * FULL_RANGE, measure[0])))
    return rows


def example_effects(runs: pd.DataFrame, preds: dict) -> list:
    """OOD (clean runs: ood / test − 1) and conflict (conflict runs: conflicted / intact − 1) per
    seed, from the predictions. preds: {row index of `runs`: predictions dict}."""
    rows = []
    for index, run in zip(runs.index, runs.itertuples(index=False)):
        pred = preds.get(index)
        if pred is None:
            continue
        base = run.variant.split("{")[0]
        for kind in KINDS:
            test = pred.get(f"test_{kind}")
            if base == "clean" and test is not None and f"ood_{kind}" in pred:
                rows.append(("OOD", run.variant, run.method, run.modality, run.seed, kind,
                             _relative(float(pred[f"ood_{kind}"].mean()), float(test.mean()))))
            flags = pred.get("test_conflict_modality")
            if flags is not None and test is not None and (flags != "").any() and (flags == "").any():
                rows.append(("conflict", run.variant, run.method, run.modality, run.seed, kind,
                             _relative(float(test[flags != ""].mean()), float(test[flags == ""].mean()))))
    return rows


def effects(runs: pd.DataFrame, preds: dict) -> pd.DataFrame:
    """Every per-seed effect (COLUMNS), NaN effects (a clean value of 0) dropped."""
    rows = paired_effects(runs) + label_noise_slopes(runs) + example_effects(runs, preds)
    return pd.DataFrame(rows, columns=COLUMNS).dropna(subset=["value"])


def interval(values) -> tuple:
    """(mean, low, high) with the 95 % t interval over seeds; low = high = NaN for one seed."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + LEVEL / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def verdict(expected, low: float, high: float, n: int) -> str:
    """The verdict of one interval against the expected direction (+1, 0 or None), see module doc."""
    if n < 2:
        return "no verdict (one seed)"
    moved = +1 if low > ROUNDING else -1 if high < -ROUNDING else 0
    if moved == 0:
        return "no detectable change"
    if expected is None:
        return "rises" if moved > 0 else "falls"
    if expected == 0:
        return "leakage: rises" if moved > 0 else "leakage: falls"
    return "as expected" if moved == expected else "opposite"


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per (factor, variant, method, modality, measure): expected, n, mean, low, high, verdict."""
    out = []
    for key, group in per_seed.groupby(["factor", "variant", "method", "modality", "measure"], sort=False):
        mean, low, high = interval(group.value)
        expected = EXPECTED[key[0]][key[4]]
        out.append((*key, expected, len(group), mean, low, high, verdict(expected, low, high, len(group))))
    columns = ["factor", "variant", "method", "modality", "measure", "expected", "n", "mean", "low", "high", "verdict"]
    table = pd.DataFrame(out, columns=columns)
    if table.empty:
        return table
    order = {f: i for i, f in enumerate(FACTOR_ORDER)}
    return table.sort_values(["factor", "variant"], key=lambda c: c.map(order) if c.name == "factor" else c,
                             kind="stable").reset_index(drop=True)


def long_rows(per_seed: pd.DataFrame) -> pd.DataFrame:
    """results.csv rows: measure `scorecard_<factor>_<aleatoric|epistemic>` (factor in lower case, `_` for
    spaces), variant as measured (`label_noise` for the slope, the clean run's for OOD)."""
    measure = "scorecard_" + per_seed.factor.str.lower().str.replace(" ", "_") + "_" + per_seed.measure
    return per_seed.assign(measure=measure)[["variant", "method", "modality", "seed", "measure", "value"]]


def _expected_text(expected) -> str:
    return {1: "↑", 0: "unchanged", None: "none stated"}[expected]


def _change_text(row) -> str:
    text = f"{row['mean'] * 100:+.1f} %"
    if row["n"] < 2:
        return text + " (no interval with one seed)"
    return text + f" [{row['low'] * 100:+.1f}, {row['high'] * 100:+.1f}]"


def markdown(table: pd.DataFrame, label, code) -> list:
    """report.md lines: the expectations, then one table per model. label(method, modality) and
    code(variant) format names for Markdown (the report's escaping)."""
    present = set(table.factor)
    lines = ["## Disentanglement scorecard", "",
             "Does each measure move with the factor LUMA controls? Expected, as the LUMA paper frames its "
             "variants (arXiv 2406.09864; `BASELINES.md` §7): label and sample noise raise aleatoric "
             "uncertainty, OOD classes and reduced diversity raise epistemic uncertainty; the other measure "
             "should not move (if it does: *leakage*). The paper states no direction for conflict. Change: "
             "relative, mean over seeds with its 95 % t interval; label noise: the fitted change from "
             "p = 0 to 0.5 (slope × 0.5 / clean); sample noise and reduced diversity: against `clean`, "
             "paired by seed; OOD: ood split against test, within each clean run; conflict: conflicted "
             "against intact test examples, within each conflict run. Verdict from the interval: "
             "✓ as expected, ✗ opposite, ○ no detectable change, ! leakage, ↑/↓ rises/falls (no "
             "expectation), ? one seed.", ""]
    lines += [f"Not measured, {factor}: needs {NEEDS[factor]}." for factor in FACTOR_ORDER if factor not in present]
    if len(present) < len(FACTOR_ORDER):
        lines.append("")
    if table.empty:
        return lines
    lines += ["![scorecard](scorecard.png)", ""]
    index = {tuple(k): r for k, r in zip(table[["factor", "variant", "method", "modality", "measure"]].values,
                                         table.to_dict("records"))}
    for method, modality in model_order(zip(table.method, table.modality)):
        lines += [f"### {label(method, modality)}", "",
                  "| factor | variant | seeds | aleatoric: expected | change | verdict | epistemic: expected | change | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        mine = table[(table.method == method) & (table.modality == modality)]
        for factor, variant in dict.fromkeys(zip(mine.factor, mine.variant)):
            cells, seeds = [], set()
            for kind in KINDS:
                row = index.get((factor, variant, method, modality, kind))
                if row is None:
                    cells += [_expected_text(EXPECTED[factor][kind]), "—", "—"]
                    continue
                seeds.add(int(row["n"]))
                cells += [_expected_text(EXPECTED[factor][kind]), _change_text(row),
                          f"{MARKS[row['verdict']]} {row['verdict']}"]
            variant_cell = re.sub(r"(?<!\\)\|", r"\\|", code(variant))  # a | would end the cell even in a code span (GFM)
            lines.append(f"| {factor} | {variant_cell} | {'/'.join(map(str, sorted(seeds)))} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def figure(table: pd.DataFrame, label, path) -> None:
    """Rows: factor (variant) × measure; columns: models; colour: mean relative change (signed,
    clipped at ±100 %); each cell marked with its verdict (MARKS) and the change in percent."""
    from . import plots

    plt = plots.plt
    models = model_order(zip(table.method, table.modality))
    rows = [(f, v, k) for f, v in dict.fromkeys(zip(table.factor, table.variant)) for k in KINDS]
    values = np.full((len(rows), len(models)), np.nan)
    marks = np.full(values.shape, "", dtype=object)
    for r in table.itertuples(index=False):
        i, j = rows.index((r.factor, r.variant, r.measure)), models.index((r.method, r.modality))
        values[i, j], marks[i, j] = r.mean, f"{MARKS[r.verdict]} {r.mean * 100:+.0f}%"
    limit = min(1.0, np.nanmax(np.abs(values))) or 1.0
    fig, ax = plt.subplots(figsize=(max(6.5, 4.0 + 0.9 * len(models)), 1.4 + 0.3 * len(rows)))
    image = ax.imshow(np.clip(values, -limit, limit), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), text in np.ndenumerate(marks):
        dark = abs(values[i, j]) > 0.6 * limit  # white text on the saturated cells
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(models)), [label(*m).replace("$", r"\$") for m in models], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{f} ({v.replace('$', chr(92) + '$')}): {k[:3]}" for f, v, k in rows], fontsize=7)
    fig.colorbar(image, ax=ax, label=f"relative change (clipped at ±{limit:.0%})", format=lambda x, _: f"{x:+.0%}")
    ax.set_title("disentanglement scorecard\n✓ as expected  ✗ opposite  ○ no detectable change  ! leakage  "
                 "↑↓ rises/falls  ? one seed", fontsize=8)
    plots._save(fig, path)
