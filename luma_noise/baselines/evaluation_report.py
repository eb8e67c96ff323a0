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
COLUMNS = ["variant", "method", "modality", "seed", "condition", "level", "strength", *METRICS]


def read(runs: pd.DataFrame) -> tuple:
    """({"withhold": frame, "shift": frame}, problems): every evaluation file of the runs' folders.

    Frames have COLUMNS (condition: the withheld views, or the shifted modality; level: the
    strength's index, 0 for withheld; strength: its label) plus the full-input values as
    `full_<metric>`; rows whose model is not in `runs` are ignored."""
    frames, problems = {"withhold": [], "shift": []}, []
    if runs.empty:
        return {k: pd.DataFrame(columns=COLUMNS + [f"full_{m}" for m in METRICS]) for k in frames}, problems
    full = runs.set_index(["run_dir", "method", "modality", "seed"])
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
                reference = full.loc[key]
                frames[kind].append({
                    "variant": reference["variant"], "method": key[1], "modality": key[2], "seed": key[3],
                    "condition": row["withheld"] if kind == "withhold" else row["shifted"],
                    "level": 0 if kind == "withhold" else row["level"] + 1,
                    "strength": row["withheld"] if kind == "withhold" else row["strength"],
                    **{m: math.nan if row[m] is None else float(row[m]) for m in METRICS},
                    **{f"full_{m}": float(reference[m]) for m in METRICS}})
    return {k: pd.DataFrame(v, columns=COLUMNS + [f"full_{m}" for m in METRICS]) for k, v in frames.items()}, problems


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
    if metric in RELATIVE:
        return (frame[metric] - full) / full.where(full.abs() > 1e-12)
    return frame[metric] - full


def long_rows(frames: dict) -> pd.DataFrame:
    """results.csv rows: `withhold[<views>]_<metric>` and `..._change`, `shift[<strength>]_<metric>`."""
    rows = []
    for kind, frame in frames.items():
        for metric in METRICS:
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


def withhold_markdown(frame: pd.DataFrame, label, code) -> list:
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
    return lines


def shift_markdown(frame: pd.DataFrame, code, files) -> list:
    lines = ["## Test-time shift", ""]
    if frame.empty:
        return lines + ["Not measured: needs `python -m luma_noise.baselines evaluate RUN_DIR --shift image audio text all`.", ""]
    lines += ["Models trained on each variant, evaluated on its test split corrupted at increasing strength (level 0: "
              "as trained; image severities, audio background SNR in dB, text noise probability; `all`: every "
              "modality at once). Accuracy, ECE and both uncertainty measures against the level, one column per "
              "corrupted modality, mean ± std over seeds.", ""]
    for variant in variant_order(frame.variant):
        name = f"shift-{_slug(variant)}.png"
        if name in files:
            lines += [f"{code(variant)}:", "", f"![shift curves, {variant.replace(']', '')}]({name})", ""]
    return lines


def _slug(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", variant).strip("-")


def figures(frames: dict, label, out: Path) -> list:
    """withhold-<variant>.png (a panel per fused model) and shift-<variant>.png; returns the names."""
    from . import plots

    files = []
    withhold = frames["withhold"]
    for variant in variant_order(withhold.variant):
        mine = withhold[withhold.variant == variant]
        models = model_order(zip(mine.method, mine.modality))
        fig, axes = plots._grid(len(models), width=3.6, height=2.8)
        for ax, (method, modality) in zip(axes, models):
            model = mine[(mine.method == method) & (mine.modality == modality)]
            conditions = list(dict.fromkeys(model.condition))
            x = np.arange(len(conditions))
            for k, (metric, title) in enumerate((("accuracy", "Δ accuracy"), ("aleatoric", "Δ aleatoric (rel.)"),
                                                 ("epistemic", "Δ epistemic (rel.)"))):
                values = [_change(model[model.condition == c], metric) for c in conditions]
                means = [v.mean() for v in values]
                stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
                ax.bar(x + (k - 1) * 0.27, means, 0.27, yerr=stds, capsize=2, label=title)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(x, [f"−{c}" for c in conditions], rotation=30, fontsize=7)
            ax.set_title(f"{label(method, modality)}: views withheld".replace("$", r"\$"), fontsize=9)
            ax.legend(fontsize=6)
        name = f"withhold-{_slug(variant)}.png"
        plots._save(fig, out / name)
        files.append(name)
    shift = frames["shift"]
    for variant in variant_order(shift.variant):
        files.append(_shift_figure(shift[shift.variant == variant], label, out / f"shift-{_slug(variant)}.png"))
    return files


def _shift_figure(frame: pd.DataFrame, label, path: Path) -> str:
    from . import plots

    plt = plots.plt
    modalities = [m for m in ("image", "audio", "text", "all") if m in set(frame.condition)]
    metrics = ("accuracy", "ece", "aleatoric", "epistemic")
    fig, axes = plt.subplots(len(metrics), len(modalities), figsize=(3.4 * len(modalities), 2.4 * len(metrics)), squeeze=False)
    for col, modality in enumerate(modalities):
        part = frame[frame.condition == modality]
        ticks = ["as trained"] + list(part.sort_values("level").drop_duplicates("level").strength)
        for row, metric in enumerate(metrics):
            ax = axes[row, col]
            for method, model_modality in model_order(zip(part.method, part.modality)):
                model = part[(part.method == method) & (part.modality == model_modality)]
                start = model.drop_duplicates("seed")[f"full_{metric}"].to_numpy()
                levels = [start] + [model[model.level == k][metric].to_numpy() for k in range(1, len(ticks))]
                means = np.array([v.mean() if len(v) else np.nan for v in levels])
                stds = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in levels])
                x = np.arange(len(levels))
                ax.errorbar(x, means, yerr=stds, marker="o", ms=3, capsize=2,
                            label=label(method, model_modality).replace("$", r"\$"))
                ax.fill_between(x, means - stds, means + stds, alpha=0.12)
            ax.set_xticks(range(len(ticks)), [t.split("=")[-1] if "," not in t else f"L{i}" for i, t in enumerate(ticks)],
                          fontsize=7)
            ax.set_title(f"{modality} corrupted: {metric}", fontsize=9)
            if row == 0 and col == 0:
                ax.legend(fontsize=6)
    plots._save(fig, path)
    return path.name
