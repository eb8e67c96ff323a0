"""The leaderboard: one row per (variant, method, modality), every measure as mean, std and 95 % interval.

Built from the report's long form (results.csv: variant, method, modality, seed, measure, value).
Per measure: n seeds, mean, sample std (ddof 1) and the two-sided 95 % Student-t interval of the
mean, mean ± t(0.975, n − 1) · std / √n (NaN for one seed). Written as leaderboard.csv, one
column per (measure, statistic), so any measure sorts it; report.md shows the main columns.
"""

import numpy as np
import pandas as pd

from .markdown import md_code, md_text

# (measure, title, higher is better) shown in report.md, in this order
SHOWN = (("accuracy", "accuracy", True), ("nll", "NLL", False), ("ece", "ECE", False), ("brier", "Brier", False),
         ("aurc_total", "AURC (H)", False), ("ood_auroc", "OOD AUROC", True), ("ood_total_fpr95", "FPR@95 (H)", False),
         ("conformal_set_size", "set size", False))


def leaderboard(long: pd.DataFrame) -> pd.DataFrame:
    """Wide table: variant, method, modality, seeds, then <measure>_{mean,std,ci95_low,ci95_high}."""
    from scipy.stats import t

    keys = ["variant", "method", "modality"]
    stats = long.dropna(subset=["value"]).groupby(keys + ["measure"])["value"].agg(
        n="count", mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t.ppf(0.975, stats["n"] - 1) * stats["std"] / np.sqrt(stats["n"])
    stats["ci95_low"], stats["ci95_high"] = stats["mean"] - half, stats["mean"] + half
    wide = stats.set_index(keys + ["measure"])[["mean", "std", "ci95_low", "ci95_high"]].unstack("measure")
    wide.columns = [f"{measure}_{stat}" for stat, measure in wide.columns]
    wide = wide[sorted(wide.columns)]
    seeds = long.groupby(keys)["seed"].nunique().rename("seeds")
    board = wide.join(seeds).reset_index()
    order = ["accuracy_mean"] if "accuracy_mean" in board else []
    return board.sort_values(["variant"] + order, ascending=[True] + [False] * len(order), kind="stable")[
        keys + ["seeds"] + [c for c in board.columns if c not in keys + ["seeds"]]]


def _cell(row, measure) -> str:
    mean = row.get(f"{measure}_mean", np.nan)
    if pd.isna(mean):
        return "—"
    std, low, high = (row.get(f"{measure}_{s}", np.nan) for s in ("std", "ci95_low", "ci95_high"))
    if pd.isna(std):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {std:.3f} [{low:.3f}, {high:.3f}]"


def markdown(board: pd.DataFrame) -> list:
    """report.md's leaderboard section: one table per variant, best accuracy first."""
    text = ["## Leaderboard", "",
            "Every trained model, per variant, best accuracy first: mean ± std over seeds [95 % Student-t interval "
            "of the mean]. H is the predictive entropy (every method has it); OOD AUROC is of the epistemic "
            "uncertainty, or of H for a method without one. All measures, sortable: [leaderboard.csv](leaderboard.csv).",
            ""]
    shown = [(m, title) for m, title, _ in SHOWN if f"{m}_mean" in board]
    for variant, rows in board.groupby("variant", sort=False):
        text += [f"### {md_code(variant)}", "", "| model | seeds | " + " | ".join(t for _, t in shown) + " |",
                 "|---|---|" + "---|" * len(shown)]
        for row in rows.to_dict("records"):
            cells = [_cell(row, m) for m, _ in shown]
            text.append(f"| {md_text(row['method'])} {md_text(row['modality'])} | {row['seeds']} | " + " | ".join(cells) + " |")
        text.append("")
    return text
