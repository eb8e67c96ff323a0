"""`evaluate` (this module is not named evaluate.py: that would shadow `baselines.evaluate`, the
function): test-time evaluations of the models a run folder already holds, without retraining.

    python -m luma_noise.baselines evaluate runs/clean/seed-42 --withhold image audio text image+audio
    python -m luma_noise.baselines evaluate runs/clean/seed-42 --shift image audio text all [--mirror M]

- `--withhold SPEC ...`: every fused (multimodal) model with the views of SPEC dropped from its
  fusion (`withhold.withheld`; `image+audio` withholds two), on the run's test and ood splits.
- `--shift MODALITY ...`: every model on the run's test and ood splits corrupted at increasing
  strength (image severities, audio background SNRs, text noise probabilities; `all`: every
  modality at once, level by level). A corrupted split is the test (or ood) split of the run's
  own config with that noise and `<m>_noise_train=False` (`shift_fields`), built by the LUMA
  builder itself (so it is that config's split, byte for byte) and cached by `datasets`.

Each result is one JSON file, RUN_DIR/evaluations/<kind>/<model>--<condition>.json (written
atomically): accuracy, NLL, ECE, Brier, mean aleatoric and epistemic uncertainty, OOD AUROC.
An evaluation whose file exists is skipped, so an interrupted command resumes; one progress bar
shows what is done and the time left. `report` shows them when present.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import rundir, withhold as withholding

# Default strengths per modality: (config field(s), levels). "all" takes level i of each.
SHIFT_LEVELS = {
    "image": (1, 2, 3, 4, 5),          # image_severity, of the run's image_severity_tables
    "audio": (20.0, 10.0, 5.0, 0.0, -5.0),  # background SNR in dB (min = max)
    "text": (0.1, 0.25, 0.5, 0.75, 1.0),    # text_noise_ratio: probability that a text is noised
}
SHIFT_CHOICES = (*SHIFT_LEVELS, "all")
KINDS = ("withhold", "shift")


def add_parser(subparsers):
    """Register `evaluate` on an argparse subparsers object (used by `luma baselines` too)."""
    parser = subparsers.add_parser("evaluate", help="withheld modalities and test-time shift on trained runs",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="train output folders (with run.json)")
    parser.add_argument("--withhold", nargs="+", default=[], metavar="MODALITY[+MODALITY]",
                        help="views to drop from each fused model's fusion, e.g. image audio text image+audio")
    parser.add_argument("--shift", nargs="+", default=[], choices=SHIFT_CHOICES,
                        help="modalities to corrupt at test time, one at a time (all: together)")
    parser.add_argument("--image-severities", nargs="+", type=int, default=list(SHIFT_LEVELS["image"]))
    parser.add_argument("--audio-snrs", nargs="+", type=float, default=list(SHIFT_LEVELS["audio"]), metavar="DB")
    parser.add_argument("--text-probabilities", nargs="+", type=float, default=list(SHIFT_LEVELS["text"]))
    parser.add_argument("--mirror", help="the mirror the runs were trained from (default: the run's sweep.json)")
    parser.add_argument("--cache-dir", help="datasets cache (default: the datasets default)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    levels = {"image": args.image_severities, "audio": args.audio_snrs, "text": args.text_probabilities}
    try:
        done = evaluate_runs(args.run_dirs, withhold=args.withhold, shift=args.shift, levels=levels, mirror=args.mirror,
                             cache_dir=args.cache_dir, batch_size=args.batch_size, device=args.device)
    except ValueError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    print(f"evaluate: {done['evaluated']} evaluations ({done['skipped']} already done) in {done['seconds'] / 60:.1f} min")
    return 0


def shift_conditions(shift, levels) -> list:
    """[(modality or "all", strength index, strength label, {field: value})] for `--shift`."""
    out = []
    for modality in shift:
        count = min(len(levels[m]) for m in SHIFT_LEVELS) if modality == "all" else len(levels[modality])
        for i in range(count):
            fields, labels = {}, []
            for m in (SHIFT_LEVELS if modality == "all" else (modality,)):
                fields.update(shift_fields(m, levels[m][i]))
                labels.append(f"{m}={levels[m][i]:g}")
            out.append((modality, i, ",".join(labels), fields))
    return out


def shift_fields(modality: str, strength) -> dict:
    """The config fields that noise `modality`'s test and ood splits at `strength`, train untouched."""
    fields = {f"{modality}_noise_ratio": 1.0, f"{modality}_noise_train": False, f"{modality}_noise_test": True}
    if modality == "image":
        fields["image_severity"] = int(strength)
    elif modality == "audio":
        fields.update(audio_min_snr_db=float(strength), audio_max_snr_db=float(strength))
    else:
        fields["text_noise_ratio"] = float(strength)
    return fields


def _header(run_dir: Path) -> dict:
    """run.json (config, fields, mode, text_model) and the mirror of sweep.json, if any."""
    try:
        header = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{run_dir}: not a train output folder (run.json: {err})")
    sweep = run_dir / "sweep.json"
    header["mirror"] = json.loads(sweep.read_text()).get("mirror") if sweep.is_file() else None
    return header


def _models(run_dir: Path) -> list:
    """[(name, method, modality, seed)] of the finished models (models/<name>/done.json)."""
    from .results import finished_rows

    return [(name, row["method"], row["modality"], row["seed"]) for name, row in finished_rows(run_dir).items()]


def _tasks(run_dir, models, withhold, conditions) -> list:
    """[(kind, model name, method, modality, seed, condition label, payload, output path)]."""
    tasks = []  # condition by condition, so that each corrupted split is built and featurised once
    for spec in withhold:
        for name, method, modality, seed in models:
            if modality == "multimodal":
                tasks.append(("withhold", name, method, modality, seed, withholding.name(spec), spec,
                              run_dir / "evaluations" / "withhold" / f"{name}--{withholding.name(spec)}.json"))
    for shifted, index, label, fields in conditions:
        for name, method, modality, seed in models:
            tasks.append(("shift", name, method, modality, seed, label, (shifted, index, fields),
                          run_dir / "evaluations" / "shift" / f"{name}--{label}.json"))
    return tasks


def evaluate_runs(run_dirs, withhold=(), shift=(), levels=None, mirror=None, cache_dir=None, batch_size=128,
                  device=None, show_progress=True) -> dict:
    """Every evaluation of every run folder not done yet; returns {"evaluated", "skipped", "seconds"}."""
    from tqdm.auto import tqdm

    levels = {**SHIFT_LEVELS, **(levels or {})}
    problems, specs = [], []
    for spec in withhold:
        try:
            specs.append(withholding.parse(spec))
        except ValueError as err:
            problems.append(str(err))
    problems += [f"--shift {m!r}: expected one of {', '.join(SHIFT_CHOICES)}" for m in shift if m not in SHIFT_CHOICES]
    problems += [f"--image-severities: {s} is not in 1..5" for s in levels["image"] if s not in (1, 2, 3, 4, 5)]
    problems += [f"--text-probabilities: {p} is not in [0, 1]" for p in levels["text"] if not 0 <= p <= 1]
    runs = []
    for run_dir in map(Path, run_dirs):
        try:
            header, models = _header(run_dir), _models(run_dir)
            used = {m for _, _, modality, _ in models for m in ((modality,) if modality != "multimodal" else SHIFT_LEVELS)}
            runs.append((run_dir, {**header, "modalities": [m for m in SHIFT_LEVELS if m in used]}, models))
        except ValueError as err:
            problems.append(str(err))
    if not specs and not shift:
        problems.append("nothing to evaluate: give --withhold and/or --shift")
    if problems:
        raise ValueError("\n".join(problems))
    conditions = shift_conditions(shift, levels)
    plan = [(run_dir, header, task) for run_dir, header, models in runs
            for task in _tasks(run_dir, models, specs, conditions)]
    todo = [p for p in plan if not p[2][-1].exists()]
    start = time.monotonic()
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), unit="evaluation", disable=not show_progress,
               desc="evaluate", bar_format="{desc} |{bar}| {n}/{total} evaluations [{elapsed}<{remaining}]")
    context = _Context(mirror, cache_dir, batch_size, device)
    with bar:
        for run_dir, header, task in todo:
            bar.set_description_str(f"evaluate {run_dir.name} {task[1]} {task[0]} {task[5]}")
            _write_json(task[-1], context.evaluate(run_dir, header, task))
            bar.update(1)
    return {"evaluated": len(todo), "skipped": len(plan) - len(todo), "seconds": time.monotonic() - start}


class _Context:
    """Datasets, collators and models, loaded once and reused across evaluations."""

    def __init__(self, mirror, cache_dir, batch_size, device):
        self.mirror, self.cache_dir, self.batch_size, self.device = mirror, cache_dir, batch_size, device
        self.data, self.models = {}, {}

    def splits(self, header, extra_fields):
        """(test, ood) featurised for every modality, of the run's config plus `extra_fields`."""
        from .collator import LumaCollator, featurize_dataset
        from .train import _load

        fields = {**header["fields"], **extra_fields}
        key = json.dumps([header["config"], fields, header["mode"], header["text_model"], header["modalities"],
                          self.mirror or header["mirror"]], sort_keys=True)
        if key not in self.data:
            dataset = _load(header["config"], fields, self.mirror or header["mirror"], self.cache_dir)
            text_model = header["text_model"] if "text" in header["modalities"] else None
            collator = LumaCollator(text_model=text_model, mode=header["mode"], modalities=header["modalities"])
            self.data = {key: (collator, featurize_dataset(dataset["test"], collator),
                               featurize_dataset(dataset["ood"], collator))}  # one config held at a time
        return self.data[key]

    def model(self, run_dir, name):
        from transformers import AutoModel

        from .methods import MethodModel

        path = str(run_dir / "models" / name)
        if path not in self.models:
            model = AutoModel.from_pretrained(path)  # registered with AutoModel on import (old LumaModel files too)
            if not isinstance(model, MethodModel):
                raise ValueError(f"{path}: a {type(model).__name__}, not a MethodModel")
            self.models = {path: model.to(self.device) if self.device else model}
        return self.models[path]

    def evaluate(self, run_dir, header, task) -> dict:
        from .metrics import classification_metrics, ood_auroc, predict

        kind, name, method, modality, seed, label, payload, _ = task
        # the run's layout (not recorded: contiguous), so that the dropout masks are drawn as the run drew them
        model = self.model(run_dir, name).use_memory_format(header.get("memory_format", "contiguous"))
        if kind == "withhold":
            collator, test, ood = self.splits(header, {})
            model = withholding.withheld(model, payload)
            extra = {"withheld": label}
        else:
            shifted, index, fields = payload
            collator, test, ood = self.splits(header, fields)
            extra = {"shifted": shifted, "level": index, "strength": label, "fields": fields}
        model.eval()
        arrays = {}
        for split, data in (("test", test), ("ood", ood)):
            # evaluation noise (dropout masks, softmax samples) seeded per (seed, evaluation, split), as train's
            with rundir.seeded_torch(seed, "evaluate", kind, label, split):
                generator = rundir.torch_generator(seed, "evaluate", kind, label, split,
                                                   device=next(model.parameters()).device)
                arrays[split] = predict(model, data, collator, self.batch_size, self.device, generator=generator)
        t = arrays["test"]
        row = {"method": method, "modality": modality, "seed": seed, **extra,
               **classification_metrics(t["probs"], t["labels"], t["aleatoric"], t["epistemic"]),
               "ood_aleatoric": float(arrays["ood"]["aleatoric"].mean()),
               "ood_epistemic": float(arrays["ood"]["epistemic"].mean())}
        finite = np.isfinite(t["epistemic"]).all() and np.isfinite(arrays["ood"]["epistemic"]).all()
        row["ood_auroc"] = ood_auroc(t["epistemic"], arrays["ood"]["epistemic"]) if finite else None
        # a method without a measure gives NaN: null in JSON, not a number
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()}


def _write_json(path: Path, content) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=1)
    os.replace(tmp, path)
