"""The one home of a run folder's result files: `results.json` and `predictions/<run>.npz`.

`train` writes through `write_predictions`, `write_run_row` and `write_results`; `runs`, the report,
the leaderboard and the evaluations read through `read_results` and `read_predictions`. The field
lists of a results.json row live here (the contract in docs/benchmark.md):

- `REQUIRED`: method, modality, seed and the metrics `METRICS` (aleatoric and epistemic may be null
  for a method with a total uncertainty only, which then has a number `total`);
- `OPTIONAL_METRICS`: ece, nll, brier; `RANGES`: the accepted [low, high] of each metric;
- every other key (the OOD measures `ood_<score>_<measure>`, `aurc_<uncertainty>`, conformal
  coverage and set size, `predictive`, `epochs`, `best_epoch`, ...) is kept as written.

A predictions file holds `<split>_<array>` for the splits validation, test and ood (arrays of
`methods.predict`: probs (N, C), labels, total, aleatoric, epistemic, score_<name> (N,)), and
`predictive`, a 0-d string naming the distribution in probs when the method names it.
"""

import json
import math
from pathlib import Path

import numpy as np

from ..atomic import write_json, write_npz

METRICS = ("accuracy", "aleatoric", "epistemic", "ood_auroc")  # required in every result
OPTIONAL_METRICS = ("ece", "nll", "brier")
REQUIRED = ("method", "modality", "seed", *METRICS)
RANGES = {"accuracy": (0, 1), "ood_auroc": (0, 1), "ece": (0, 1), "nll": (0, math.inf), "brier": (0, 2),
          "aleatoric": (-math.inf, math.inf), "epistemic": (-math.inf, math.inf)}  # metric -> accepted [low, high]
SPLITS = ("validation", "test", "ood")
RESULTS, PREDICTIONS, MODELS, DONE = "results.json", "predictions", "models", "done.json"


def predictions_path(name: str) -> str:
    """The predictions file of run `name`, relative to the run folder (results.json's `predictions`)."""
    return f"{PREDICTIONS}/{name}.npz"


def write_predictions(output_dir, name: str, arrays: dict, predictive=None) -> str:
    """Write {split: per-example arrays} of run `name` (conflict_modality of the test split only);
    returns its path relative to `output_dir`."""
    npz = {f"{split}_{key}": value for split, a in arrays.items() for key, value in a.items()
           if key != "conflict_modality" or split == "test"}
    if predictive is not None:
        npz["predictive"] = np.array(predictive)  # which distribution the *_probs hold
    write_npz(Path(output_dir) / predictions_path(name), npz)
    return predictions_path(name)


def read_predictions(path, budget=None) -> dict:
    """{"<split>_<array>": array, "predictive": 0-d str array (if recorded)} of one predictions file,
    read through `safe_files.load_npz` (a regular file, declared sizes checked before loading, no
    pickles; `budget` bounds the bytes of several files). Raises BadInput."""
    from ..safe_files import load_npz

    return load_npz(path, budget=budget)


def split_arrays(pred: dict, split: str) -> dict:
    """The arrays of one split of a predictions file's content, without the split prefix."""
    return {k[len(split) + 1:]: v for k, v in pred.items() if k.startswith(split + "_")}


def write_run_row(output_dir, name: str, row: dict) -> None:
    """A finished run's results.json row, in models/<name>/done.json (written last: it marks the run done)."""
    write_json(Path(output_dir) / MODELS / name / DONE, row)


def write_results(output_dir, header: dict, order) -> dict:
    """results.json from every finished run in output_dir (the runs named in `order` first, in
    that order, then the others by name); returns its content."""
    import luma_noise

    output_dir = Path(output_dir)
    done = finished_rows(output_dir)
    names = [n for n in order if n in done] + sorted(n for n in done if n not in order)
    results = {**header, "luma_noise_version": luma_noise.__version__, "results": [done[n] for n in names]}
    write_json(output_dir / RESULTS, results)
    return results


def finished_rows(output_dir) -> dict:
    """{run name: results.json row} of every finished run in a `train` folder (models/<name>/done.json),
    by name."""
    from .rundir import read_json

    return {p.parent.name: read_json(p) for p in sorted((Path(output_dir) / MODELS).glob(f"*/{DONE}"))}


def read_results(path):
    """The content of one results.json read defensively (`safe_files.read_json`: a regular file,
    at most 16 MiB); BadInput naming the file otherwise. `runs.read_runs` checks its entries."""
    from ..safe_files import read_json

    return read_json(Path(path))


def row_problems(row: dict) -> list:
    """What is wrong with the metrics of one results.json row: 'key: problem' strings."""
    problems = []
    total_only = _is_number(row.get("total"))  # a method with one uncertainty (QMF, softmax): no split
    for key in METRICS + OPTIONAL_METRICS:
        value = row.get(key)
        if value is None and (key in OPTIONAL_METRICS or (total_only and key in ("aleatoric", "epistemic"))):
            continue
        low, high = RANGES[key]
        if value is None:
            problems.append(f"{key}: required, got null")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: expected a number, got {show(value)}")
        elif not math.isfinite(value):
            problems.append(f"{key}: expected a finite number, got {value}")
        elif not low <= value <= high:
            problems.append(f"{key}: {value} is outside [{low}, {high}]")
    return problems


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def show(value) -> str:
    return json.dumps(value)[:80] if not isinstance(value, float) else repr(value)
