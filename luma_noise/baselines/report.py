"""`report`: the paper's Tables 1-3 and Figure 10 from any set of run folders, and what uncertainty
benchmarks report beyond the paper (calibration, selective prediction, conformal sets, conflict,
per-modality sample noise).

    python -m luma_noise.baselines report runs/ --output-dir report/

Writes OUT/report.md, OUT/results.csv (every per-seed number in long form), OUT/figure10.png
and, per variant with predictions, OUT/reliability-<variant>.png, OUT/epistemic-<variant>.png
and OUT/selective-<variant>.png (one panel per model).

The run folders may be shared, so nothing read is trusted: every results.json and predictions
file is read and checked (`runs.read_runs`, `analysis.check_predictions`, `safe_files`) before
anything is written, and every problem is listed at once (exit status 2). Names taken from the
files (methods, variants) are escaped in report.md (HTML entities and Markdown backslashes, code
spans fenced longer than any backticks inside) and in the figure titles (matplotlib's `$`); in
results.csv a text cell starting with =, +, -, @, tab or carriage return gets a leading
apostrophe, so that a spreadsheet shows it as text instead of evaluating it as a formula.

Longer than 300 lines because it lays out every section of report.md and results.csv in the
order a reader sees them; the measures themselves live in analysis, scoring, leaderboard and
scorecard.
"""

import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, conformal, evaluation_report, leaderboard, plots, scorecard, scoring
from .markdown import md_code, md_text
from ..variant_summary import describe_images
from .paper import PAPER_VARIANTS
from ..safe_files import BadInput, Budget, output_folder_problems
from .runs import label_noise_of, read_runs
from .summary import METHOD_ORDER, model_order, per_seed, summarise, variant_order, with_paper

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets evaluate (OWASP's CSV injection list)
FORMATS = {  # measure -> how a value prints: (scale, decimals, signed, unit)
    "accuracy": (1, 3, False, ""), "aleatoric": (1, 3, False, ""), "epistemic": (1, 3, False, ""),
    "ood_auroc": (1, 3, False, ""), "accuracy_change": (1, 3, True, ""),
    "aleatoric_rel_change": (100, 1, True, " %"), "epistemic_rel_change": (100, 1, True, " %"),
}


def add_parser(subparsers):
    """Register `report` on an argparse subparsers object (used by `luma baselines` too)."""
    parser = subparsers.add_parser("report", help="Tables 1-3, Figure 10 and more from run folders",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (with results.json) or folders holding them, e.g. runs/")
    parser.add_argument("--output-dir", required=True, help="folder for report.md, results.csv and the figures")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    try:
        written = write_report(args.runs, args.output_dir)
    except ValueError as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    print(f"report: {written['runs']} trained models from {written['folders']} run folders -> "
          f"{Path(args.output_dir) / 'report.md'} ({len(written['files'])} files)")
    return 0


def write_report(paths, output_dir) -> dict:
    """Read the runs under `paths`, write every output into `output_dir`; returns what was written.

    Raises BadInput (a ValueError) listing every problem of every input before writing anything."""
    out = Path(output_dir)
    runs, problems = read_runs(paths)
    preds, missing, bad = _read_predictions(runs) if not runs.empty else ({}, [], [])
    problems += bad
    evaluations, bad = evaluation_report.read(runs, preds)
    problems += bad
    problems += output_folder_problems(out)
    if problems:
        raise BadInput(problems, "bad run folders")
    out.mkdir(parents=True, exist_ok=True)
    example_rows, figure_data = _per_example(runs, preds)
    card = scorecard.effects(runs, preds)
    long = pd.concat([per_seed(runs), pd.DataFrame(example_rows, columns=["variant", "method", "modality", "seed", "measure", "value"]),
                      scorecard.long_rows(card), evaluation_report.long_rows(evaluations)], ignore_index=True)
    long = with_paper(long).sort_values(["variant", "method", "modality", "measure", "seed"], kind="stable")
    _csv_safe(long).to_csv(out / "results.csv", index=False)
    summary = summarise(long)
    board = leaderboard.leaderboard(long[~long.measure.str.startswith(("scorecard_", "withhold[", "shift["))])
    board.to_csv(out / "leaderboard.csv", index=False)
    files = ["report.md", "results.csv", "leaderboard.csv"]
    if _figure10(long, out / "figure10.png"):
        files.append("figure10.png")
    files += _model_figures(figure_data, out)
    files += _scorecard_files(card, out)
    files += evaluation_report.figures(evaluations, _label, out)
    card_lines = scorecard.markdown(scorecard.summarise(card), lambda *model: md_text(_label(*model)), md_code)
    card_lines += evaluation_report.withhold_markdown(evaluations["withhold"], lambda *m: md_text(_label(*m)), md_code,
                                                      files)
    card_lines += evaluation_report.shift_markdown(evaluations["shift"], md_code, files)
    (out / "report.md").write_text(_markdown(runs, preds, summary, files, missing, card_lines)
                                   + "\n".join(leaderboard.markdown(board)))
    return {"runs": len(runs), "folders": runs.run_dir.nunique(), "files": files}


def _read_predictions(runs) -> tuple:
    """({row index: arrays}, missing models, problems): every predictions file read and checked,
    within one `Budget` of memory. A file that does not exist is listed as missing, not refused."""
    from tqdm.auto import tqdm

    preds, missing, problems, budget = {}, [], [], Budget()
    rows = tqdm(zip(runs.index, runs.itertuples(index=False)), total=len(runs), desc="reading predictions",
                unit="model", leave=False, disable=None)  # a bar with the time left, on a terminal only
    for index, run in rows:
        if not isinstance(run.predictions, str) or not os.path.lexists(run.predictions):
            missing.append(f"{run.variant} {run.method}-{run.modality}-seed{run.seed}")
            continue
        try:
            pred = analysis.load_predictions(run.predictions, budget)
        except BadInput as err:
            problems += err.problems
            continue
        found = analysis.check_predictions(pred)
        problems += [f"{run.predictions}: {problem}" for problem in found]
        if not found:
            preds[index] = pred
    return preds, missing, problems


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell that a spreadsheet would read as a formula prefixed with an apostrophe."""
    def safe(value):
        return "'" + value if isinstance(value, str) and value[:1] in FORMULA_STARTS else value
    return frame.assign(**{c: frame[c].map(safe) for c in frame.columns if frame[c].dtype == object})


def _per_example(runs, preds) -> tuple:
    """Measures from every predictions file, and the pooled arrays the per-model figures need."""
    rows, figure_data = [], defaultdict(lambda: defaultdict(list))
    for index, run in zip(runs.index, runs.itertuples(index=False)):
        if index not in preds:
            continue
        pred = preds[index]
        for measure, value in analysis.measures(pred).items():
            rows.append({"variant": run.variant, "method": run.method, "modality": run.modality,
                         "seed": run.seed, "measure": measure, "value": value})
        pooled = figure_data[run.variant][(run.method, run.modality)]
        pooled.append(pred)
    return rows, figure_data


def _cat(preds, key):
    return np.concatenate([p[key] for p in preds]) if all(key in p for p in preds) else None


def _slug(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", variant).strip("-")


def _label(method: str, modality: str) -> str:
    return f"{method.upper() if method in METHOD_ORDER else method} {modality}"


def _model_figures(figure_data, out: Path) -> list:
    """Reliability, epistemic test-vs-ood and selective prediction figures per variant (seeds pooled)."""
    files = []
    for variant in variant_order(figure_data):
        models = model_order(figure_data[variant])
        reliability, epistemic, selective = [], [], []
        for model in models:
            preds, title = figure_data[variant][model], _label(*model).replace("$", r"\$")
            probs, labels = _cat(preds, "test_probs"), _cat(preds, "test_labels")
            if probs is None or labels is None:
                continue
            reliability.append((title, *scoring.reliability(probs, labels)))
            correct = probs.argmax(axis=1) == labels
            curves = {k: scoring.risk_coverage(_cat(preds, f"test_{k}"), correct)
                      for k in ("aleatoric", "epistemic", "total") if _cat(preds, f"test_{k}") is not None}
            selective.append((title, curves))
            test_epi, ood_epi = _cat(preds, "test_epistemic"), _cat(preds, "ood_epistemic")
            if test_epi is not None and ood_epi is not None:
                epistemic.append((title, test_epi, ood_epi))
        for kind, entries, draw in (("reliability", reliability, plots.reliability_grid),
                                    ("epistemic", epistemic, plots.epistemic_grid),
                                    ("selective", selective, plots.selective_grid)):
            if entries:
                name = f"{kind}-{_slug(variant)}.png"
                draw(entries, out / name)
                files.append(name)
    return files


def _figure10(long, path) -> bool:
    """Figure 10 from the clean and label_noise_* runs; False when there are none."""
    points = defaultdict(lambda: defaultdict(list))
    rows = long[long.measure.isin(["aleatoric", "epistemic"])]
    for (variant, method, modality, measure), group in rows.groupby(["variant", "method", "modality", "measure"]):
        proportion = label_noise_of(variant, {})
        if proportion is not None:
            # the method names a panel title: a `$` would start matplotlib's mathtext
            points[(method.replace("$", r"\$"), modality)][measure].append((proportion, group.value.to_numpy()))
    if not points:
        return False
    for series in points.values():
        for measure in series:
            series[measure].sort(key=lambda item: item[0])
    plots.figure10({m: points[m] for m in model_order(points)}, path)
    return True


def _number(value, measure, signed=None) -> str:
    scale, decimals, is_signed, unit = FORMATS.get(measure, (1, 3, False, ""))
    sign = "+" if (is_signed if signed is None else signed) else ""
    value = round(value * scale, decimals) + 0.0  # no "-0.0"
    return f"{value:{sign}.{decimals}f}{unit}"


def _cell(row, measure) -> str:
    if row is None:
        return "—"
    unit = FORMATS.get(measure, (1, 3, False, ""))[3]
    text = _number(row["mean"], measure).removesuffix(unit)
    if not np.isnan(row["std"]):
        text += f" ± {_number(row['std'], measure, signed=False).removesuffix(unit)}"
    return text + unit


def _table(summary, columns) -> list:
    """Markdown rows. columns: [(header, measure, variant)]; a column with any paper value gets
    'paper' and 'Δ' (ours − paper) columns beside it."""
    index = {tuple(k): r for k, r in zip(summary[["variant", "method", "modality", "measure"]].values,
                                         summary.to_dict("records"))}
    columns = [c for c in columns if any(k[0] == c[2] and k[3] == c[1] for k in index)]
    if not columns:
        return []
    with_paper = [any(k[0] == v and k[3] == m and not np.isnan(r["paper"]) for k, r in index.items())
                  for _, m, v in columns]
    header = ["model", "seeds"]
    for (title, _, _), paper in zip(columns, with_paper):
        title = re.sub(r"(?<!\\)\|", r"\\|", title)  # a | in a code span would still end the cell (GFM)
        header += [title, "paper", "Δ"] if paper else [title]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    models = model_order((k[1], k[2]) for k in index if any(k[0] == v and k[3] == m for _, m, v in columns))
    for method, modality in models:
        cells, seeds = [], set()
        for (_, measure, variant), paper in zip(columns, with_paper):
            row = index.get((variant, method, modality, measure))
            seeds.add(int(row["n"]) if row else 0)
            cells.append(_cell(row, measure))
            if paper:
                has = row is not None and not np.isnan(row["paper"])
                cells += [_number(row["paper"], measure) if has else "—",
                          _number(row["diff"], measure, signed=True).replace(" %", " pt") if has else "—"]
        lines.append("| " + " | ".join([md_text(_label(method, modality)), "/".join(map(str, sorted(seeds - {0})))] + cells) + " |")
    return lines + [""]


def _scorecard_files(card, out: Path) -> list:
    """scorecard.csv (mean, 95 % interval, verdict per model, factor and measure) and scorecard.png,
    when any factor could be measured."""
    table = scorecard.summarise(card)
    if table.empty:
        return []
    _csv_safe(table).to_csv(out / "scorecard.csv", index=False)
    scorecard.figure(table, _label, out / "scorecard.png")
    return ["scorecard.csv", "scorecard.png"]


def _markdown(runs, preds, summary, files, missing, extra=()) -> str:
    variants = variant_order(runs.variant)
    cleans = [v for v in variants if v.split("{")[0] == "clean"]  # e.g. clean{reference_effective=true}
    changed = [v for v in variants if v not in cleans]
    first = runs.drop_duplicates("variant").set_index("variant")
    seeds = runs.groupby("variant").seed.nunique()
    text = ["# LUMA baselines report", "",
            f"{len(runs)} trained models from {runs.run_dir.nunique()} run folders; variants: "
            + ", ".join(f"{md_code(v)} ({seeds[v]} seed{'s' if seeds[v] > 1 else ''})" for v in variants) + ".", "",
            "Values are mean ± standard deviation over seeds (sample std, ddof 1; none for one seed). "
            "*paper* is the published value (LUMA paper, real data, reference code, one seed) and "
            "Δ = ours − paper (percentage points, pt, for relative changes). Changes are against `clean`, "
            "paired by seed. The paper's label-noise column is compared with `label_noise_0.3` "
            f"(the reference tool's default proportion); its variant columns map as {PAPER_VARIANTS}.", "",
            "Data (the paper's numbers come from images as the reference tool effectively built them, "
            "docs/reference_data.md): " + "; ".join(
                f"{md_code(v)}: {describe_images(first.config[v], json.loads(first.fields[v]))}" for v in variants) + ".", ""]
    text += ["## Table 1: aleatoric and epistemic uncertainty", "", "Clean data, absolute (entropy, nats; RCML: expected entropy and K/α₀):", ""]
    text += _table(summary, [(m + ("" if v == "clean" else " " + md_code(v)), m, v) for v in cleans for m in ("aleatoric", "epistemic")])
    for variant in changed:
        lines = _table(summary, [("aleatoric change", "aleatoric_rel_change", variant),
                                 ("epistemic change", "epistemic_rel_change", variant)])
        if lines:
            text += [f"Relative change under {md_code(variant)}:", ""] + lines
    text += ["## Table 2: OOD detection (AUROC of epistemic uncertainty, test = 0, ood = 1)", ""]
    text += _table(summary, [(md_code(v), "ood_auroc", v) for v in variants])
    text += ["## Table 3: accuracy and its change against clean", ""]
    text += _table(summary, [(md_code(v), "accuracy", v) for v in cleans] + [(md_code(v), "accuracy_change", v) for v in changed])
    text += _beyond(summary, variants, files, _predictive_note(runs, preds))
    text += list(extra)
    text += ["## Files", ""] + [f"- [{f}]({f})" for f in files] + [""]
    if missing:
        text += ["## Missing predictions", "", "No per-example figures or measures for: " + ", ".join(map(md_text, missing)) + ".", ""]
    return "\n".join(text)


def _predictive_note(runs, preds) -> str:
    """Which predictive distribution each model's probabilities are (the `predictive` entry of its
    predictions file, read and checked by `_read_predictions`), for the columns computed from them."""
    kinds = defaultdict(set)
    for index, run in zip(runs.index, runs.itertuples(index=False)):
        if index in preds:
            kind = preds[index].get("predictive")
            kinds[str(kind) if kind is not None and kind.ndim == 0 else "unstated"].add((run.method, run.modality))
    return "; ".join(f"{md_code(kind)} for " + ", ".join(md_text(_label(*m)) for m in model_order(models))
                     for kind, models in sorted(kinds.items()))


def _beyond(summary, variants, files, predictive="") -> list:
    text = []
    if "figure10.png" in files:
        text += ["## Figure 10: uncertainty against the label-noise proportion", "",
                 "![figure 10](figure10.png)", ""]
    text += ["## Beyond the paper", "", "### Calibration and selective prediction (`clean`)", "",
             "ECE, NLL and Brier score as the training command measured them; AURC is the area under the "
             "risk-coverage curve when the most uncertain test examples (by aleatoric or epistemic uncertainty) "
             "are rejected first (lower is better).", ""]
    if predictive:  # ECE, NLL, Brier, reliability and conformal sets all use these probabilities
        text += [f"Predictive distribution behind ECE, NLL, Brier, the reliability diagrams and the conformal sets: "
                 f"{predictive}.", ""]
    measures = [("ECE", "ece"), ("NLL", "nll"), ("Brier", "brier"), ("AURC (aleatoric)", "aurc_aleatoric"),
                ("AURC (epistemic)", "aurc_epistemic")]
    text += _table(summary, [(title, m, "clean") for title, m in measures])
    for variant in variants:
        figs = [f"{k}-{_slug(variant)}.png" for k in ("reliability", "epistemic", "selective")]
        if any(f in files for f in figs):
            text += [f"Figures for {md_code(variant)}: " + ", ".join(f"[{f.split('-')[0]}]({f})" for f in figs if f in files), ""]
    if "clean" in variants and "reliability-clean.png" in files:
        text += ["![reliability, clean](reliability-clean.png)", "", "![epistemic test vs ood, clean](epistemic-clean.png)", "",
                 "![selective prediction, clean](selective-clean.png)", ""]
    text += ["### Split conformal prediction sets", "",
             f"Calibrated on each run's validation predictions (hinge score 1 − p(y), `crepes`), target coverage "
             f"{conformal.CONFIDENCE:.0%}: empirical test coverage, then mean set size (classes).", ""]
    text += _table(summary, [(f"{md_code(v)} coverage", "conformal_coverage", v) for v in variants])
    text += _table(summary, [(f"{md_code(v)} set size", "conformal_set_size", v) for v in variants])
    conflict = [v for v in variants if (summary.variant.eq(v) & summary.measure.str.startswith("conflict_")).any()]
    for variant in conflict:
        text += [f"### Conflict ({md_code(variant)}): conflicted test examples against the others", "",
                 "Mean uncertainty of the test examples with one modality from another class, of the others, and the "
                 "AUROC of the uncertainty telling them apart (0.5: the method does not notice the conflict).", ""]
        text += _table(summary, [(f"{k} {part}", f"conflict_{k}_{part}", variant)
                                 for k in ("aleatoric", "epistemic") for part in ("conflicted", "other", "auroc")])
    per_modality = [v for v in variants if v.startswith("sample_noise:")]
    if per_modality:
        text += ["### Per-modality sample noise: relative change against clean", ""]
        text += _table(summary, [(f"{md_code(v)} {k[:3]}", f"{k}_rel_change", v) for v in per_modality for k in ("aleatoric", "epistemic")])
    return text
