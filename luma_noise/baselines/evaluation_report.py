"""The report's part for `evaluate`'s outputs: missing modalities and test-time shift curves.

Reads RUN_DIR/evaluations/{withhold,shift}/*.json of the run folders the report read (each file
through `safe_files.read_json`, every value checked, every problem listed), and gives the rows
for results.csv, the Markdown sections and the figures. Changes are against the same model's
full, uncorrupted input (its results.json row): accuracy, NLL and ECE as differences, the
uncertainty measures relative (0.25 = +25 %).
"""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..safe_files import BadInput, read_json
from .summary import model_order, variant_order

METRICS = ("accuracy", "nll", "ece", "aleatoric", "epistemic")
RELATIVE = ("aleatoric", "epistemic")
# the same measures on the (corrupted) ood split: mean uncertainty, and the OOD AUROC of the epistemic measure
OOD = ("ood_aleatoric", "ood_epistemic", "ood_auroc")
COLUMNS = ["variant", "method", "modality", "seed", "condition", "level", "strength", *METRICS, *OOD]
FULL = [f"full_{m}" for m in (*METRICS, *OOD)]


def read(runs: pd.DataFrame, preds=None) -> tuple:
    """({"withhold": frame, "shift": frame}, problems): every evaluation file of the runs' folders.

    Frames have COLUMNS (condition: the withheld views, or the shifted modality; level: the
    strength's index, 0 for withheld; strength: its label) plus the full-input values as
    `full_<metric>`; rows whose model is not in `runs` are ignored. preds ({runs index: arrays},
    as `report` reads them) gives the full-input ood means (`full_ood_aleatoric`, ...); without
    a model's predictions they are NaN (its shift curves on ood then start at level 1)."""
    frames, problems = {"withhold": [], "shift": []}, []
    if runs.empty:
        return {k: pd.DataFrame(columns=COLUMNS + FULL) for k in frames}, problems
    full = runs.set_index(["run_dir", "method", "modality", "seed"])
    index = dict(zip(full.index, runs.index))
    preds = preds or {}
    for run_dir in sorted(set(runs.run_dir)):
        for kind in frames:
            for path in sorted((Path(run_dir) / "evaluations" / kind).glob("*.json")):
                try:
                    row = read_json(path)
                except BadInput as err:
                    problems += err.problems
                    continue
                found = _problems(row, kind)
                problems += [f"{path}: {p}" for p in found]
                key = (run_dir, row.get("method"), row.get("modality"), row.get("seed")) if not found else None
                if key is None or key not in full.index:
                    continue
                reference, arrays = full.loc[key], preds.get(index[key], {})
                frames[kind].append({
                    "variant": reference["variant"], "method": key[1], "modality": key[2], "seed": key[3],
                    "condition": row["withheld"] if kind == "withhold" else row["shifted"],
                    "level": 0 if kind == "withhold" else row["level"] + 1,
                    "strength": row["withheld"] if kind == "withhold" else row["strength"],
                    **{m: math.nan if row[m] is None else float(row[m]) for m in METRICS},
                    **{m: _number(row.get(m)) for m in OOD},
                    **{f"full_{m}": float(reference[m]) for m in METRICS},
                    **{f"full_{m}": _mean(arrays.get(m)) for m in OOD[:2]},
                    "full_ood_auroc": _number(reference.get("ood_auroc"))})
    return {k: pd.DataFrame(v, columns=COLUMNS + FULL) for k, v in frames.items()}, problems


def _number(value) -> float:
    """A finite float, or NaN for None, a missing key or anything else (the ood measures are optional)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan


def _mean(values) -> float:
    return float(np.mean(values)) if values is not None and len(values) else math.nan


def _problems(row, kind) -> list:
    if not isinstance(row, dict):
        return ["expected a JSON object"]
    keys = ("method", "modality", "seed", *METRICS) + (("withheld",) if kind == "withhold" else ("shifted", "level", "strength"))
    lacking = [k for k in keys if k not in row]
    if lacking:
        return [f"lacks {', '.join(lacking)}"]
    bad = [m for m in METRICS if not (row[m] is None and m in RELATIVE)  # null: the method has no such measure
           and (isinstance(row[m], bool) or not isinstance(row[m], (int, float)) or not math.isfinite(row[m]))]
    text = [k for k in ("method", "modality") + (("withheld",) if kind == "withhold" else ("shifted", "strength"))
            if not isinstance(row[k], str)]
    problems = [f"{m}: expected a finite number, got {row[m]!r}"[:120] for m in bad]
    problems += [f"{k}: expected a string" for k in text]
    if text:
        return problems
    # names that reach report.md, results.csv and file names: only what `evaluate` writes
    if kind == "withhold" and not re.fullmatch(r"(image|audio|text)(\+(image|audio|text)){0,2}", row["withheld"]):
        problems.append(f"withheld: expected views such as image or image+audio, got {row['withheld']!r}"[:120])
    if kind == "shift" and row["shifted"] not in ("image", "audio", "text", "all"):
        problems.append(f"shifted: expected image, audio, text or all, got {row['shifted']!r}"[:120])
    if kind == "shift" and not re.fullmatch(r"(image|audio|text)=[-+0-9.e]+(,(image|audio|text)=[-+0-9.e]+){0,2}", row["strength"]):
        problems.append(f"strength: expected e.g. image=3 or audio=-5, got {row['strength']!r}"[:120])
    if kind == "shift" and (isinstance(row["level"], bool) or not isinstance(row["level"], int) or row["level"] < 0):
        problems.append(f"level: expected an integer >= 0, got {row['level']!r}"[:120])
    if isinstance(row["seed"], bool) or not isinstance(row["seed"], int):
        problems.append("seed: expected an integer")
    return problems


def _change(frame: pd.DataFrame, metric: str) -> pd.Series:
    full = frame[f"full_{metric}"]
    if metric in RELATIVE or metric in OOD[:2]:
        return (frame[metric] - full) / full.where(full.abs() > 1e-12)
    return frame[metric] - full


def long_rows(frames: dict) -> pd.DataFrame:
    """results.csv rows: `withhold[<views>]_<metric>` and `..._change`, `shift[<strength>]_<metric>`
    (metrics: METRICS and the ood measures OOD)."""
    rows = []
    for kind, frame in frames.items():
        for metric in (*METRICS, *OOD):
            for suffix, values in (("", frame[metric]), ("_change", _change(frame, metric))):
                rows.append(pd.DataFrame({
                    "variant": frame.variant, "method": frame.method, "modality": frame.modality, "seed": frame.seed,
                    "measure": f"{kind}[" + frame.strength + f"]_{metric}{suffix}", "value": values}))
    return pd.concat(rows, ignore_index=True).dropna(subset=["value"]) if rows else pd.DataFrame()


def _stat(values, decimals: int = 3) -> str:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return "—"  # the method has no such measure
    text = f"{values.mean():+.{decimals}f}"
    return text + (f" ± {values.std(ddof=1):.{decimals}f}" if len(values) > 1 else "")


def withhold_markdown(frame: pd.DataFrame, label, code, files=()) -> list:
    lines = ["## Missing modality at test time", ""]
    if frame.empty:
        return lines + ["Not measured: needs `python -m luma_noise.baselines evaluate RUN_DIR --withhold image audio text "
                        "image+audio image+text audio+text` on runs with multimodal models.", ""]
    lines += ["Each fused model with the listed views dropped from its fusion (MCD/DE: mean of the remaining views' "
              "logits and σ; RCML: average of the remaining views' evidence; a registered "
              "method: its own fusion of the remaining views; nothing is fed zeros). Values: the "
              "change against the full input, mean ± std over seeds (accuracy, NLL, ECE: differences; "
              "uncertainty: relative). Absolute values per seed are in results.csv.", ""]
    for variant in variant_order(frame.variant):
        mine = frame[frame.variant == variant]
        lines += [f"{code(variant)}:", "", "| model | withheld | seeds | accuracy | NLL | ECE | aleatoric | epistemic |",
                  "|---|---|---|---|---|---|---|---|"]
        for method, modality in model_order(zip(mine.method, mine.modality)):
            model = mine[(mine.method == method) & (mine.modality == modality)]
            for condition, group in model.groupby("condition", sort=False):
                cells = [(_stat(_change(group, m) * 100, 1) + " %").replace("— %", "—") if m in RELATIVE
                         else _stat(_change(group, m)) for m in METRICS]
                lines.append(f"| {label(method, modality)} | {condition} | {group.seed.nunique()} | " + " | ".join(cells) + " |")
        lines.append("")
    for method, modality in model_order(zip(frame.method, frame.modality)):
        name = f"withhold-{_slug(method)}.png"
        if name in files:
            lines += [f"![{label(method, modality)}: views withheld]({name})", ""]
    return lines


def shift_markdown(frame: pd.DataFrame, code, files) -> list:
    lines = ["## Test-time shift", ""]
    if frame.empty:
        return lines + ["Not measured: needs `python -m luma_noise.baselines evaluate RUN_DIR --shift image audio text all`.", ""]
    lines += ["Models trained on each variant, evaluated on its test split corrupted at increasing strength (level 0: "
              "as trained; image severities, audio background SNR in dB, text noise probability; `all`: every "
              "modality at once). One figure per method: accuracy, ECE, both uncertainty measures (solid: test, "
              "dashed: the ood split, corrupted alike) and the OOD AUROC against the level, one column per "
              "corrupted modality, a line per model, mean ± std over seeds.", ""]
    for variant in variant_order(frame.variant):
        mine = frame[frame.variant == variant]
        names = [(method, f"shift-{_slug(variant)}-{_slug(method)}.png") for method in _methods(mine)]
        lines += [f"{code(variant)}:", ""] + [f"![shift curves, {variant.replace(']', '')}, {method.replace(']', '')}]({name})"
                                              for method, name in names if name in files] + [""]
    return lines


def _methods(frame: pd.DataFrame) -> list:
    return list(dict.fromkeys(method for method, _ in model_order(zip(frame.method, frame.modality))))


def _slug(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", variant).strip("-")


def figures(frames: dict, label, out: Path) -> list:
    """withhold-<method>.png, a figure per fused method (a panel per measure, a bar per variant),
    and shift-<variant>-<method>.png, a figure per method and variant; returns the file names."""
    files = []
    withhold = frames["withhold"]
    for method in _methods(withhold):
        files.append(_withhold_figure(withhold[withhold.method == method], label, out / f"withhold-{_slug(method)}.png"))
    shift = frames["shift"]
    for variant in variant_order(shift.variant):
        mine = shift[shift.variant == variant]
        for method in _methods(mine):
            files.append(_shift_figure(mine[mine.method == method], label,
                                       out / f"shift-{_slug(variant)}-{_slug(method)}.png"))
    return files


WITHHOLD_PANELS = (("accuracy", "Δ accuracy"), ("nll", "Δ NLL"), ("ece", "Δ ECE"),
                   ("aleatoric", "Δ aleatoric (relative)"), ("epistemic", "Δ epistemic (relative)"))


def _withhold_figure(frame: pd.DataFrame, label, path: Path) -> str:
    """One fused method: a panel per measure's change against the full input, x = the withheld
    views, a bar per variant (mean over seeds, error bar = std)."""
    from . import plots

    variants = variant_order(frame.variant)
    conditions = list(dict.fromkeys(frame.condition))
    x, width = np.arange(len(conditions)), 0.8 / len(variants)
    fig, axes = plots._grid(len(WITHHOLD_PANELS), width=3.6, height=2.8)
    method, modality = model_order(zip(frame.method, frame.modality))[0]
    for ax, (metric, title) in zip(axes, WITHHOLD_PANELS):
        for k, variant in enumerate(variants):
            values = [_change(frame[(frame.variant == variant) & (frame.condition == c)], metric).dropna() for c in conditions]
            means = [v.mean() if len(v) else np.nan for v in values]
            stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
            ax.bar(x + (k - (len(variants) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
                   label=variant.replace("$", r"\$"))
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"−{c}" for c in conditions], rotation=30, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{label(method, modality)}: views withheld at test time".replace("$", r"\$"), fontsize=10)
    plots._save(fig, path)
    return path.name


# rows of a shift figure: (title, [(frame column, split)])
SHIFT_PANELS = (("accuracy", [("accuracy", "test")]), ("ECE", [("ece", "test")]),
                ("aleatoric", [("aleatoric", "test"), ("ood_aleatoric", "ood")]),
                ("epistemic", [("epistemic", "test"), ("ood_epistemic", "ood")]),
                ("OOD AUROC (epistemic)", [("ood_auroc", "test vs ood")]))


def _shift_figure(frame: pd.DataFrame, label, path: Path) -> str:
    """One method of one variant: a row per SHIFT_PANELS entry, a column per corrupted modality,
    a line per model (solid: the test split, dashed: ood), mean ± std over seeds; level 0 is the
    model as trained on its uncorrupted splits."""
    from . import plots

    plt = plots.plt
    modalities = [m for m in ("image", "audio", "text", "all") if m in set(frame.condition)]
    fig, axes = plt.subplots(len(SHIFT_PANELS), len(modalities), figsize=(3.4 * len(modalities), 2.3 * len(SHIFT_PANELS)),
                             squeeze=False)
    for col, modality in enumerate(modalities):
        part = frame[frame.condition == modality]
        ticks = ["as trained"] + list(part.sort_values("level").drop_duplicates("level").strength)
        for row, (title, series) in enumerate(SHIFT_PANELS):
            ax = axes[row, col]
            for n, (method, model_modality) in enumerate(model_order(zip(part.method, part.modality))):
                model = part[part.modality == model_modality]
                for column, split in series:
                    start = model.drop_duplicates("seed")[f"full_{column}"].to_numpy()
                    levels = [start] + [model[model.level == k][column].to_numpy() for k in range(1, len(ticks))]
                    levels = [v[np.isfinite(v)] for v in levels]
                    means = np.array([v.mean() if len(v) else np.nan for v in levels])
                    stds = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in levels])
                    x = np.arange(len(levels))
                    name = label(method, model_modality).replace("$", r"\$")
                    ax.errorbar(x, means, yerr=stds, marker="o", ms=3, capsize=2, color=f"C{n}",
                                ls="--" if split == "ood" else "-", label=f"{name} ({split})")
                    ax.fill_between(x, means - stds, means + stds, alpha=0.12, color=f"C{n}")
            ax.set_xticks(range(len(ticks)), [t.split("=")[-1] if "," not in t else f"L{i}" for i, t in enumerate(ticks)],
                          fontsize=7)
            ax.set_title(f"{modality} corrupted: {title}", fontsize=9)
            if col == 0:
                ax.legend(fontsize=6)
    plots._save(fig, path)
    return path.name
