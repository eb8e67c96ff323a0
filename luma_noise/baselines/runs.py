"""Run folders: reading `results.json` files and naming the variant each run measured.

A run folder holds `results.json` (the contract in the README, "Reproducing the paper") and,
optionally, `predictions/<method>-<modality>-seed<seed>.npz`. A *variant* is the config name
plus every field that changes the data: `sample_noise` with only some modalities noised is
`sample_noise:image` (or `sample_noise:image+audio`), any other field is appended as
`config{field=value,...}`. Fields that only say where the data or feature models come from
(`PROVENANCE_FIELDS`) are not part of the name.
"""

import json
from pathlib import Path

import pandas as pd

from ..classes import MODALITIES
from ..options import NAMED_CONFIGS

PROVENANCE_FIELDS = {"mirror", "luma_revision", "feature_cache_dir", "feature_revision",
                     *(f"{m}_{part}" for m in ("image", "audio", "text") for part in ("feature_model", "feature_revision"))}
METRICS = ("accuracy", "aleatoric", "epistemic", "ood_auroc")  # required in every result
OPTIONAL_METRICS = ("ece", "nll", "brier")
MODEL_MODALITIES = (*MODALITIES, "multimodal")
_MISSING = object()


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
    """The variant name of a run from its results.json `config` and `fields` (see module doc)."""
    fields = {k: v for k, v in (fields or {}).items() if k not in PROVENANCE_FIELDS}
    defaults = NAMED_CONFIGS.get(config, {})
    fields = {k: v for k, v in fields.items() if defaults.get(k, _MISSING) != v}
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
    """Every results.json in or under `paths` (folders or results.json files), sorted, deduplicated."""
    found, missing = set(), []
    for path in map(Path, paths):
        if path.is_file() and path.name == "results.json":
            found.add(path.resolve())
        elif path.is_dir():
            found.update(p.resolve() for p in path.rglob("results.json"))
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
    for i, row in enumerate(data["results"]):
        need = ("method", "modality", "seed", *METRICS)
        lacking = [k for k in need if not isinstance(row, dict) or k not in row]
        if lacking:
            problems.append(f"{path}: results[{i}] lacks {', '.join(lacking)}")
        elif row["modality"] not in MODEL_MODALITIES and not set(str(row["modality"]).split("+")) <= set(MODALITIES):
            problems.append(f"{path}: results[{i}] modality {row['modality']!r} is not one of {MODEL_MODALITIES} "
                            f"or a fused subset such as image+text")
    return problems


def load_runs(paths) -> pd.DataFrame:
    """One row per trained model of every run found under `paths`.

    Columns: run_dir, config, fields (JSON text), variant, method, modality, seed, the metrics
    (`METRICS`, `OPTIONAL_METRICS` as NaN when absent) and predictions (absolute path or None).
    Raises ValueError listing every malformed file and every model reported twice.
    """
    rows, problems = [], []
    for path in find_results(paths):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            problems.append(f"{path}: {err}")
            continue
        found = _check(path, data)
        problems += found
        if found:
            continue
        fields = data.get("fields") or {}
        for row in data["results"]:
            rows.append({
                "run_dir": str(path.parent), "config": data["config"],
                "fields": json.dumps(fields, sort_keys=True), "variant": variant_of(data["config"], fields),
                "method": str(row["method"]), "modality": row["modality"], "seed": int(row["seed"]),
                **{k: float(row[k]) if row.get(k) is not None else float("nan") for k in METRICS + OPTIONAL_METRICS},
                "predictions": str(path.parent / row["predictions"]) if row.get("predictions") else None,
            })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        keys = ["variant", "method", "modality", "seed"]
        twice = frame[frame.duplicated(keys, keep=False)]
        for key, group in twice.groupby(keys):
            problems.append(f"{'/'.join(map(str, key))} is reported by {', '.join(sorted(set(group.run_dir)))}")
    if problems:
        raise ValueError("bad run folders:\n  " + "\n  ".join(problems))
    return frame
