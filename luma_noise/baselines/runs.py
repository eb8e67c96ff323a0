"""Run folders: reading `results.json` files and naming the variant each run measured.

A run folder holds `results.json` (the contract in docs/benchmark.md) and,
optionally, `predictions/<method>-<modality>-seed<seed>.npz`. A *variant* is the config name
plus every field that changes the data: `sample_noise` with only some modalities noised is
`sample_noise:image` (or `sample_noise:image+audio`), any other field is appended as
`config{field=value,...}`. Fields that only say where the data or feature models come from
(`PROVENANCE_FIELDS`) are not part of the name.

Run folders may be shared: results.json is read through `luma_noise.safe_files` (a regular file,
at most 16 MiB), every entry is checked (types, finite values in range) and a `predictions` path
must stay inside its run folder; every problem of every file is reported at once.
"""

import json
import math
import unicodedata
from pathlib import Path

import pandas as pd

from ..classes import MODALITIES
from ..config_fields import NOT_IN_NAME
from ..options import NAMED_CONFIGS, variant_fields
from ..safe_files import BadInput, confined
from .results import METRICS, OPTIONAL_METRICS, RANGES, REQUIRED, read_results, row_problems  # noqa: F401 (re-exported)

PROVENANCE_FIELDS = NOT_IN_NAME  # provenance and location fields (luma_noise.config_fields)
MAX_METHOD_CHARS = 100
MODEL_MODALITIES = (*MODALITIES, "multimodal")


def parse_variant(spec: str) -> tuple:
    """`CONFIG[:MODALITY[+MODALITY]]` -> (config, fields, folder name).

    `sample_noise:image` is `sample_noise` with the other modalities' `*_noise_ratio` set to 0;
    its folder is `sample_noise-image` (no colon: folder names must work on every OS).
    Raises ValueError naming what is accepted.
    """
    config, _, only = spec.partition(":")
    if config not in NAMED_CONFIGS:
        raise ValueError(f"unknown config {config!r} in {spec!r}; the configs are: {', '.join(NAMED_CONFIGS)}")
    if not only:
        return config, {}, config
    noised = only.split("+")
    if config != "sample_noise" or not set(noised) <= set(MODALITIES) or len(set(noised)) != len(noised):
        raise ValueError(f"{spec!r}: a modality suffix is only for sample_noise, as "
                         f"sample_noise:M or sample_noise:M+M with M in {', '.join(MODALITIES)}")
    fields = {f"{m}_noise_ratio": 0.0 for m in MODALITIES if m not in noised}
    return config, fields, f"{config}-{'+'.join(noised)}"


def variant_of(config: str, fields: dict) -> str:
    """The variant name of a run from its results.json `config` and `fields` (see module doc): made
    from `options.variant_fields`, as the export name is, so a field at the named config's value
    (its default included) or a provenance or location field does not make another variant."""
    fields = variant_fields(config, fields)
    name = config
    ratios = {m: fields.pop(f"{m}_noise_ratio") for m in MODALITIES if f"{m}_noise_ratio" in fields}
    if config == "sample_noise" and ratios and all(r == 0 for r in ratios.values()) and len(ratios) < 3:
        name += ":" + "+".join(m for m in MODALITIES if m not in ratios)
    else:
        fields.update({f"{m}_noise_ratio": r for m, r in ratios.items()})
    if fields:
        name += "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(fields.items())) + "}"
    return name


def label_noise_of(config: str, fields: dict):
    """The label-noise proportion of a run whose only change from `clean` is label noise, else None."""
    variant = variant_of(config, fields)
    if variant == "clean":
        return 0.0
    if variant in NAMED_CONFIGS and set(NAMED_CONFIGS[variant]) == {"label_noise"}:
        return float(NAMED_CONFIGS[variant]["label_noise"])
    return None


def find_results(paths) -> list:
    """Every results.json in or under `paths` (folders or results.json files), sorted, deduplicated.

    Their folders are resolved, not the files themselves: a results.json that is a link (or a FIFO,
    or a device) is refused when it is read."""
    found, missing = set(), []
    for path in map(Path, paths):
        if path.name == "results.json" and (path.is_file() or path.is_symlink()):
            found.add(path.parent.resolve() / path.name)
        elif path.is_dir():
            found.update(p.parent.resolve() / p.name for p in path.rglob("results.json"))
        else:
            missing.append(str(path))
    if missing:
        raise ValueError(f"not a run folder or results.json: {', '.join(missing)}")
    if not found:
        raise ValueError(f"no results.json in or under {', '.join(map(str, paths))}")
    return sorted(found)


def _check(path: Path, data) -> list:
    """Every problem of one results.json, as messages naming the file and the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("config"), str) or not isinstance(data.get("results"), list):
        return [f"{path}: expected an object with a string 'config' and a list 'results'"]
    problems = []
    if not isinstance(data.get("fields") or {}, dict):
        problems.append(f"{path}: fields: expected an object of config fields, got {_show(data['fields'])}")
    for i, row in enumerate(data["results"]):
        lacking = [k for k in REQUIRED if not isinstance(row, dict) or k not in row]
        if lacking:
            problems.append(f"{path}: results[{i}] lacks {', '.join(lacking)}")
            continue
        problems += [f"{path}: results[{i}].{problem}" for problem in _entry_problems(row)]
    return problems


def _fused_subset(modality: str) -> bool:
    """'image+text' and the like: two or more distinct modalities joined by '+'."""
    parts = modality.split("+")
    return len(parts) > 1 and len(set(parts)) == len(parts) and set(parts) <= set(MODALITIES)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value) -> str:
    return json.dumps(value)[:80] if not isinstance(value, float) else repr(value)


def _entry_problems(row: dict) -> list:
    """What is wrong with one entry of `results`: 'key: problem' strings."""
    problems = []
    method = row["method"]
    if not isinstance(method, str) or not method.strip() or len(method) > MAX_METHOD_CHARS:
        problems.append(f"method: expected a non-empty name of at most {MAX_METHOD_CHARS} characters, got {_show(method)}")
    elif any(unicodedata.category(c) == "Cc" for c in method):
        problems.append(f"method: {_show(method)} holds control characters (newline, tab, ...)")
    modality = row["modality"]
    if modality not in MODEL_MODALITIES and not (isinstance(modality, str) and _fused_subset(modality)):
        problems.append(f"modality: {_show(modality)} is not one of {', '.join(MODEL_MODALITIES)} "
                        "or a fused subset such as image+text")
    if isinstance(row["seed"], bool) or not isinstance(row["seed"], int):
        problems.append(f"seed: expected an integer, got {_show(row['seed'])}")
    problems += row_problems(row)
    if row.get("predictions") is not None and (not isinstance(row["predictions"], str) or not row["predictions"]):
        problems.append(f"predictions: expected a path relative to the run folder, got {_show(row['predictions'])}")
    return problems


def _predictions_path(path: Path, i: int, row: dict):
    """The resolved predictions path of results[i] (None if it has none); BadInput if it leaves the run folder."""
    if not row.get("predictions"):
        return None
    return str(confined(path.parent, row["predictions"], f"{path}: results[{i}].predictions"))


def read_runs(paths) -> tuple:
    """(frame, problems): the models of every well-formed results.json under `paths` (see
    `load_runs`) and every problem found in the others, each naming its file and entry."""
    rows, problems = [], []
    for path in find_results(paths):
        try:
            data = read_results(path)
        except BadInput as err:
            problems += err.problems
            continue
        found = _check(path, data)
        for i, row in enumerate(data["results"] if not found else []):
            try:
                row["predictions"] = _predictions_path(path, i, row)
            except BadInput as err:
                found += err.problems
        problems += found
        if found:
            continue
        fields = data.get("fields") or {}
        for row in data["results"]:
            rows.append({
                "run_dir": str(path.parent), "config": data["config"],
                "fields": json.dumps(fields, sort_keys=True), "variant": variant_of(data["config"], fields),
                "method": row["method"], "modality": row["modality"], "seed": row["seed"],
                **{k: float(row[k]) if row.get(k) is not None else float("nan") for k in METRICS + OPTIONAL_METRICS},
                "predictions": row["predictions"],
            })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        keys = ["variant", "method", "modality", "seed"]
        twice = frame[frame.duplicated(keys, keep=False)]
        for key, group in twice.groupby(keys):
            problems.append(f"{'/'.join(map(str, key))} is reported by {', '.join(sorted(set(group.run_dir)))}")
    return frame, problems


def load_runs(paths) -> pd.DataFrame:
    """One row per trained model of every run found under `paths`.

    Columns: run_dir, config, fields (JSON text), variant, method, modality, seed, the metrics
    (`METRICS`, `OPTIONAL_METRICS` as NaN when absent) and predictions (resolved absolute path
    inside the run folder, or None). Raises BadInput (a ValueError) listing every malformed
    file and entry and every model reported twice.
    """
    frame, problems = read_runs(paths)
    if problems:
        raise BadInput(problems, "bad run folders")
    return frame
