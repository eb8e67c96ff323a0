"""The `train` subcommand: train and evaluate every baseline of one LUMA config with the Trainer.

    python -m luma_noise.baselines train clean --output-dir runs/clean --max-epochs 20

For each method, modality and seed (a "run", named `<method>-<modality>-seed<s>`), the
stock `transformers.Trainer` trains a `LumaModel` on 80 % of `train` (seeded split),
validates on the other 20 % every epoch (Adam, ReduceLROnPlateau, early stopping on the
validation loss, best checkpoint kept), then the model is evaluated on validation, test
and ood. Output folder:

- results.json: config, fields, mode and one row of metrics per finished run;
- predictions/<run>.npz: per-example probabilities, labels and uncertainties;
- models/<run>/: the trained model (`LumaModel.from_pretrained`) and done.json;
- checkpoints/<run>/: the Trainer's checkpoints while a run trains (removed when done);
- train.log: one line per epoch and per finished run.

Finished runs are never retrained; an interrupted run resumes from its newest complete
checkpoint. run.json records every option that changes a result: a rerun with other options is
refused, naming them. One writer at a time (`rundir.FolderLock`); a non-empty folder without
run.json is refused untouched. Every bad input is named at once before any work (exit 2).
"""

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from . import rundir
from .collator import ALL_MODALITIES, LumaCollator, featurize_dataset
from .inputs import MODES
from .model import ENSEMBLE_TRAINING, METHODS

logger = logging.getLogger(__name__)
RUN_MODALITIES = ALL_MODALITIES + ("multimodal",)
# The reference's protocol (BASELINES.md §5).
LEARNING_RATE, PLATEAU_FACTOR, PLATEAU_PATIENCE, STOP_PATIENCE = 1e-2, 0.33, 5, 10


# Options of every run, with the paper's protocol as defaults (`sweep` passes the same ones on).
RUN_DEFAULTS = {
    "methods": METHODS, "modalities": RUN_MODALITIES, "mode": "fixed", "text_model": "bert-base-uncased",
    "max_epochs": 300, "ensemble_size": 10, "ensemble_training": "joint", "mc_samples": 100,
    "batch_size": 128, "device": "auto", "precision": "fp32", "dataloader_workers": 0, "val_mc_samples": None,
}
# MC dropout passes of the per-epoch validation loss in fixed mode (faithful: mc_samples, as the
# reference); the final evaluation always uses mc_samples. Chosen with benchmarks/bench_val_passes.py
# (docs/scaling.md): on the planted fixture mirror it moved the best epoch of T = 100 in 1 of 3 runs, by one.
VAL_MC_SAMPLES_FIXED = 10
PRECISIONS = ("fp32", "bf16")
# Options that change how fast a run goes, never its results: not in run.json nor sweep.json.
NOT_RECORDED = ("dataloader_workers",)


def add_run_options(group) -> None:
    """Add the run options (RUN_DEFAULTS) to an argparse parser or argument group."""
    from .methods.registry import BUILTIN

    group.add_argument("--methods", nargs="+", default=list(METHODS), metavar="METHOD",
                       help=f"{', '.join(BUILTIN)}, all (every one of them) or package.module:Class "
                            f"(docs/methods.md); default: the paper's {' '.join(METHODS)}")
    group.add_argument("--modalities", nargs="+", default=list(RUN_MODALITIES), metavar="MODALITY",
                       help=f"{', '.join(RUN_MODALITIES)} (= all three fused) or a fused subset such as image+text; "
                            "a method runs on those it accepts (RCML and the fusion methods on two or more)")
    group.add_argument("--mode", choices=MODES, default=RUN_DEFAULTS["mode"])
    group.add_argument("--text-model", default=RUN_DEFAULTS["text_model"], metavar="ID_OR_PATH")
    for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size"):
        group.add_argument(f"--{name.replace('_', '-')}", type=int, default=RUN_DEFAULTS[name])
    group.add_argument("--ensemble-training", choices=ENSEMBLE_TRAINING, default=RUN_DEFAULTS["ensemble_training"])
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default=RUN_DEFAULTS["device"])
    group.add_argument("--val-mc-samples", type=int, default=None, metavar="T",
                       help=f"MC dropout passes of the validation loss every epoch (default: {VAL_MC_SAMPLES_FIXED} "
                            "in fixed mode, --mc-samples in faithful mode); the final evaluation uses --mc-samples")
    group.add_argument("--precision", choices=PRECISIONS, default=RUN_DEFAULTS["precision"],
                       help="bf16: training and validation under bfloat16 autocast (weights and the final "
                            "evaluation stay float32; docs/scaling.md); default fp32")
    group.add_argument("--dataloader-workers", type=int, default=RUN_DEFAULTS["dataloader_workers"], metavar="N",
                       help="DataLoader worker processes of the Trainer (speed only; default 0: in-process)")


def add_parser(subparsers):
    """Register `train` on an argparse `subparsers`; returns its parser."""
    from ..cli import parse_set

    p = subparsers.add_parser("train", help="train and evaluate the baselines on one config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="LUMA config name, e.g. clean, sample_noise, label_noise_0.3")
    p.add_argument("--set", dest="fields", action="append", type=parse_set, default=[], metavar="FIELD=VALUE",
                   help="LumaConfig field, value as JSON (plain text if not JSON); repeatable")
    p.add_argument("--mirror", help="local folder or http(s) URL of an upstream mirror")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--cache-dir", help="datasets cache (default: the datasets default)")
    add_run_options(p)
    return p


def run(args) -> int:
    """Entry point of `train`: 0 when every run finished, 2 (and the problems on stderr) for bad inputs."""
    try:
        results = run_training(
            args.config, args.output_dir, fields=dict(args.fields), mirror=args.mirror, seeds=args.seeds,
            cache_dir=args.cache_dir, **{name: getattr(args, name) for name in RUN_DEFAULTS})
    except ValueError as err:
        print(f"train: {err}", file=sys.stderr)
        return 2
    print(summary(results, args.output_dir))
    return 0


def summary(results: dict, output_dir) -> str:
    """A table of the finished runs, for the terminal."""
    lines = [f"{len(results['results'])} runs of {results['config']} ({results['mode']}) in {output_dir}/results.json",
             f"{'run':<28} {'acc':>6} {'ale':>6} {'epi':>6} {'auroc':>6} {'ece':>6} {'epochs':>6}"]
    for r in results["results"]:
        ale, epi = (f"{r[k]:6.3f}" if r.get(k) is not None else f"{'-':>6}" for k in ("aleatoric", "epistemic"))
        lines.append(f"{r['method'] + '-' + r['modality'] + '-seed' + str(r['seed']):<28} {r['accuracy']:6.3f} "
                     f"{ale} {epi} {r['ood_auroc']:6.3f} {r['ece']:6.3f} "
                     f"{r.get('epochs', 0):6d}")
    return "\n".join(lines)


def plan_runs(methods, modalities, seeds) -> list:
    """(method, modality, seed) in training order (the paper's methods, then the others as given; "all"
    = every built-in); each method on the modalities it accepts (RCML and fusion methods on 2 or more)."""
    from .methods.registry import accepts, expand

    methods = expand(methods)
    methods = [m for m in METHODS if m in methods] + [m for m in methods if m not in METHODS]
    modalities = [m for m in RUN_MODALITIES if m in modalities] + [m for m in modalities if m not in RUN_MODALITIES]
    return [(method, modality, seed) for seed in seeds for method in methods for modality in modalities
            if accepts(method, _modalities(modality))]


def run_name(method: str, modality: str, seed: int) -> str:
    from .methods.registry import run_label

    return f"{run_label(method)}-{modality}-seed{seed}"


def run_training(config_name: str, output_dir, *, fields=None, mirror=None, methods=METHODS,
                 modalities=RUN_MODALITIES, mode: str = "fixed", text_model: str = "bert-base-uncased",
                 max_epochs: int = 300, ensemble_size: int = 10, ensemble_training: str = "joint",
                 mc_samples: int = 100, seeds=(42,), device: str = "auto", progress=None, cache_dir=None,
                 batch_size: int = 128, max_steps: int | None = None, patience: int = STOP_PATIENCE,
                 precision: str = "fp32", dataloader_workers: int = 0, val_mc_samples: int | None = None) -> dict:
    """Train and evaluate every (method, modality, seed) of one config; returns results.json's content.

    fields: LumaConfig fields ({name: value}); mirror: upstream mirror; methods, modalities
    ("multimodal" = the three fused), seeds: what to run; mode: "fixed" or "faithful";
    text_model: BERT for text embeddings; max_epochs, patience (early stopping, epochs),
    batch_size, max_steps (overrides epochs; for smoke tests): training; ensemble_size,
    ensemble_training, mc_samples: methods; device: "auto", "cpu" or "cuda"; precision: "fp32"
    or "bf16" (autocast); val_mc_samples: MC dropout passes of the per-epoch validation (None: the
    mode's default, `validation_passes`); dataloader_workers: the Trainer's DataLoader processes (speed only);
    progress(event) gets {"run", "epoch", "max_epochs", "loss", "eval_loss", "eval_accuracy",
    "best_loss", "learning_rate", "seconds_per_epoch"} every epoch and {"finished": run} per
    finished run (default: lines printed); everything also goes to output_dir/train.log.
    Finished runs in output_dir are kept, an interrupted run resumes.
    """
    output_dir, fields = Path(output_dir), dict(fields or {})
    options = {k: v for k, v in locals().items() if k not in ("config_name", "output_dir", "progress")}
    record, problems = check_run(config_name, output_dir, **options)
    if problems:
        raise ValueError("\n".join(problems))
    settings = {**{k: options[k] for k in SETTINGS}, "val_mc_samples": record["val_mc_samples"]}
    runs = plan_runs(methods, modalities, seeds)
    header = {"config": config_name, "fields": record["fields"], "mode": mode}
    main, ranks = is_main_process(), _Ranks(cpu=record["device"] == "cpu")
    # under torchrun only rank 0 writes, so only it takes the folder's lock (the others only read)
    with rundir.FolderLock(output_dir) if main else contextlib.nullcontext():
        if main:
            _claim_output_dir(output_dir, record)
        say = _reporter(output_dir, progress) if main else (lambda event: None)
        if main:
            _remove_leftovers(output_dir, say)
        with ranks.main_first():  # rank 0 builds the caches, then the others read them
            collator, data = prepare_inputs(config_name, fields, mirror, cache_dir, mode, text_model, runs)
        if mode == "faithful" and "audio" in _needed_modalities(runs):  # defect 7: clips the reference cannot batch
            from .inputs import long_clips

            dataset = _load(config_name, fields, mirror, cache_dir)
            header["faithful_audio"] = long_clips({s: dataset[s] for s in ("train", "test", "ood")})
        for method, modality, seed in runs:
            name = run_name(method, modality, seed)
            if not (output_dir / "models" / name / "done.json").exists():
                _train_run(name, method, modality, seed, data, collator, output_dir, say, settings)
            say({"finished": name})
        results = _write_results(output_dir, header, runs) if main else None
        ranks.wait()
        return results if main else rundir.read_json(output_dir / "results.json")


def is_main_process() -> bool:
    """False in the processes of rank > 0 of a torchrun (multi-process data parallel) training:
    they train with rank 0 but write nothing (no log, checkpoint, model, prediction or result)."""
    return int(os.environ.get("RANK", "0")) == 0


class _Ranks:
    """Barriers between torchrun's processes (accelerate's PartialState, which the Trainer uses too);
    no-ops in a single process."""

    def __init__(self, cpu: bool):
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            self.state = PartialState(cpu=cpu)  # as TrainingArguments(use_cpu=...) makes it

    def main_first(self):
        return self.state.main_process_first() if self.state else contextlib.nullcontext()

    def wait(self) -> None:
        if self.state:
            self.state.wait_for_everyone()


def prepare_inputs(config_name, fields, mirror, cache_dir, mode, text_model, runs) -> tuple:
    """(collator, {split: featurised Dataset}) of one config for the planned runs: the dataset is
    built (or read from the datasets cache) and its model inputs computed once and cached on disk
    (`featurize_dataset`), so a later call with the same arguments only reads them (the Ray
    sweep calls this before its tasks start)."""
    dataset = _load(config_name, fields, mirror, cache_dir)
    needed = _needed_modalities(runs)
    collator = LumaCollator(text_model=text_model if "text" in needed else None, mode=mode, modalities=needed)
    return collator, {split: featurize_dataset(dataset[split], collator) for split in ("train", "test", "ood")}


# The keys of run_training's settings dict (what _train_run and _fit read).
SETTINGS = ("mode", "text_model", "max_epochs", "ensemble_size", "ensemble_training", "mc_samples", "device",
            "batch_size", "max_steps", "patience", "precision", "dataloader_workers", "val_mc_samples")
# How the run seed s is used; change it whenever that changes (it is part of run.json).
SEEDING = "split, initialisation and data order from s; independent member i from 100 s + i; evaluation " \
          "(dropout masks, softmax noise) from (s, 'evaluate', split)"


def check_run(config_name: str, output_dir, *, fields=None, mirror=None, seeds=(42,), cache_dir=None,
              max_steps=None, patience: int = STOP_PATIENCE, **options) -> tuple:
    """(run.json record, [problems]) of a `run_training` call, without loading any data.

    options: the RUN_DEFAULTS keywords (missing ones take their defaults). Problems name every
    bad setting, config field, text model and output folder at once; `sweep` uses this to
    check every run before the first one starts.
    """
    values = {**RUN_DEFAULTS, **options, "seeds": seeds, "max_steps": max_steps, "patience": patience}
    problems = _check_settings(values)
    choice_bad = any(p.startswith(("methods", "modalities")) for p in problems)
    runs = [] if choice_bad else plan_runs(values["methods"], values["modalities"], seeds)
    if not runs and not problems:
        problems.append(f"nothing to train: RCML runs on multimodal only, got methods {list(values['methods'])} "
                        f"and modalities {list(values['modalities'])}")
    differing = None
    try:
        differing = _differing_fields(config_name, dict(fields or {}), mirror, cache_dir)
    except (ValueError, TypeError) as err:
        problems.append(str(err))
    text_needed = "text" in _needed_modalities(runs)
    problems += _text_model_problems(values["text_model"], text_needed)
    record = _run_record(config_name, differing or {}, values)
    # with bad fields the record is not known, so run.json is not compared (the fields are named already)
    problems += rundir.output_problems(Path(output_dir), record if differing is not None else None)
    return record, problems


def _run_record(config_name: str, differing: dict, values: dict) -> dict:
    """run.json: every option that changes a result (not methods, modalities, seeds: they pick runs)."""
    text_model = values["text_model"]
    local = Path(text_model).expanduser().is_dir()
    device = values["device"]
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"config": config_name, "fields": differing, "mode": values["mode"], "text_model": text_model,
            "text_model_digest": rundir.model_folder_digest(Path(text_model).expanduser()) if local else None,
            "device": device, **{k: values[k] for k in ("max_epochs", "max_steps", "patience", "batch_size",
                                                         "ensemble_size", "ensemble_training", "mc_samples",
                                                         "precision")},
            "val_mc_samples": validation_passes(values),
            "seeding": SEEDING}


def _check_settings(values: dict) -> list:
    """Every problem of the training settings."""
    errors = []
    for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size", "patience"):
        if not isinstance(values[name], int) or values[name] < 1:
            errors.append(f"{name} must be an integer >= 1, got {values[name]!r}")
    if values["val_mc_samples"] is not None and (not isinstance(values["val_mc_samples"], int)
                                                 or values["val_mc_samples"] < 1):
        errors.append(f"val_mc_samples must be an integer >= 1 or None, got {values['val_mc_samples']!r}")
    if not isinstance(values["dataloader_workers"], int) or values["dataloader_workers"] < 0:
        errors.append(f"dataloader_workers must be an integer >= 0, got {values['dataloader_workers']!r}")
    errors += _precision_problems(values["precision"], values["device"])
    from .methods.registry import check_methods, expand

    method_problems = check_methods(values["methods"])
    errors += [f"methods: {problem}" for problem in method_problems]
    # one member or one dropout pass: the epistemic spread is 0 by construction, the measure means nothing
    chosen = [] if method_problems else expand(values["methods"])
    for name, method in (("ensemble_size", "de"), ("mc_samples", "mcd")):
        if values[name] == 1 and method in chosen:
            errors.append(f"{name} 1 leaves {method}'s epistemic uncertainty at 0 by construction: use >= 2")
    bad = [v for v in values["modalities"] if not _valid_modality(v)]
    if bad or not values["modalities"]:
        errors.append(f"modalities must be among {RUN_MODALITIES} or fused subsets such as image+text, "
                      f"got {list(values['modalities'])!r}")
    choices = (("mode", MODES), ("ensemble_training", ENSEMBLE_TRAINING), ("device", ("auto", "cpu", "cuda")))
    for name, allowed in choices:
        if values[name] not in allowed:
            errors.append(f"{name} must be one of {allowed}, got {values[name]!r}")
    if not values["seeds"]:
        errors.append("seeds must name at least one seed")
    elif len(set(values["seeds"])) != len(values["seeds"]):
        errors.append(f"seeds must be distinct, got {list(values['seeds'])}")
    if values["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            errors.append("device 'cuda' asked for, but torch sees no CUDA device")
    return errors


def validation_passes(values: dict):
    """MC dropout passes of the per-epoch validation: val_mc_samples if given, else mc_samples in
    faithful mode (the reference validates with all T) and min(VAL_MC_SAMPLES_FIXED, mc_samples) in fixed."""
    if values.get("val_mc_samples") is not None:
        return values["val_mc_samples"]
    mc = values["mc_samples"]
    return mc if values["mode"] == "faithful" or not isinstance(mc, int) else min(VAL_MC_SAMPLES_FIXED, mc)


def _precision_problems(precision, device) -> list:
    """Why `precision` cannot run on `device` ("auto" resolved as the run will): bf16 needs a CUDA
    device that supports it, or a CPU with native bfloat16 (oneDNN: AVX512-BF16 or AMX)."""
    if precision not in PRECISIONS:
        return [f"precision must be one of {PRECISIONS}, got {precision!r}"]
    if precision == "fp32":
        return []
    import torch

    if device != "cpu" and torch.cuda.is_available():
        ok, where = torch.cuda.is_bf16_supported(), "this CUDA device"
    else:
        ok, where = bf16_cpu_supported(), "this CPU (no AVX512-BF16 or AMX)"
    return [] if ok else [f"precision bf16 is not supported by {where}: use --precision fp32"]


def bf16_cpu_supported() -> bool:
    """True if this CPU computes bfloat16 natively (oneDNN's check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _modalities(run_modality: str) -> tuple:
    return ALL_MODALITIES if run_modality == "multimodal" else tuple(run_modality.split("+"))


def _valid_modality(run_modality) -> bool:
    """"multimodal", one modality, or distinct modalities joined by + in the order image, audio, text."""
    parts = run_modality.split("+") if isinstance(run_modality, str) else []
    return run_modality == "multimodal" or (
        bool(parts) and len(set(parts)) == len(parts) and all(p in ALL_MODALITIES for p in parts)
        and parts == sorted(parts, key=ALL_MODALITIES.index) and len(parts) < len(ALL_MODALITIES))


def _needed_modalities(runs) -> list:
    """The modalities the planned runs read, in canonical order."""
    return sorted({m for _, modality, _ in runs for m in _modalities(modality)}, key=ALL_MODALITIES.index)


def _differing_fields(config_name, fields, mirror, cache_dir) -> dict:
    """{field: value} of the chosen config differing from the named config's defaults (JSON values);
    ValueError or TypeError for a bad name or value. Loads no data."""
    from luma_noise.loader import builder_class

    extra = {"mirror": mirror} if mirror else {}
    chosen = builder_class()(config_name=config_name, cache_dir=cache_dir, **fields, **extra).config
    default = builder_class()(config_name=config_name, cache_dir=cache_dir).config
    differing = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen)
                 if f.name not in ("name", "mirror", "version", "data_dir", "data_files", "description")
                 and getattr(chosen, f.name) != getattr(default, f.name)}
    return json.loads(json.dumps(differing, default=str))


def _load(config_name, fields, mirror, cache_dir):
    """The DatasetDict of the config (built or read from the cache)."""
    import luma_noise

    extra = {"mirror": mirror} if mirror else {}
    return luma_noise.load(config_name, cache_dir=cache_dir, **fields, **extra)


def _text_model_problems(text_model: str, needed: bool) -> list:
    """Why `text_model` cannot be loaded (checked only when a run reads text): neither a model
    folder nor a well-formed Hub id. Whether a Hub id exists is left to the download."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    path = Path(text_model).expanduser()
    if not needed or (path / "config.json").is_file():
        return []
    if path.is_dir():
        return [f"--text-model {text_model}: a folder without config.json, not a saved model"]
    if path.exists():
        return [f"--text-model {text_model}: a file, not a model folder or a Hub id"]
    try:
        validate_repo_id(text_model)
    except HFValidationError:
        return [f"--text-model {text_model}: no such folder, and not a Hub model id (name or namespace/name)"]
    return []


def _claim_output_dir(output_dir: Path, record: dict) -> None:
    """Write run.json (under the folder's lock); refuse if it changed since `check_run` read it."""
    problems = rundir.output_problems(output_dir, record)
    if problems:
        raise ValueError("\n".join(problems))
    if not (output_dir / "run.json").exists():
        rundir.write_json(output_dir / "run.json", record)


def _remove_leftovers(output_dir: Path, say) -> None:
    """Delete what killed runs left (see `rundir.remove_leftovers`), saying what."""
    for run, message in rundir.remove_leftovers(output_dir):
        say({"run": run, "message": message})


def _reporter(output_dir: Path, progress):
    """say(event): append a line to train.log, and print it or pass the event to `progress`."""
    log = output_dir / "train.log"

    def say(event: dict) -> None:
        line = _describe(event)
        with open(log, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        if progress is None:
            print(line, flush=True)
        elif "message" not in event:  # `progress` gets epoch and finished events only
            progress(event)

    return say


def _describe(event: dict) -> str:
    if "finished" in event:
        return f"[{event['finished']}] finished"
    if "message" in event:
        return f"[{event['run']}] {event['message']}"
    e = event
    left = (e["max_epochs"] - e["epoch"]) * e["seconds_per_epoch"]
    return (f"[{e['run']}] epoch {e['epoch']}/{e['max_epochs']}  train loss {e['loss']:.4f}"
            f"  val loss {e['eval_loss']:.4f} (best {e['best_loss']:.4f})  val acc {e['eval_accuracy']:.3f}"
            f"  lr {e['learning_rate']:.2g}  {e['seconds_per_epoch']:.1f} s/epoch, at most {left / 60:.1f} min left")


def _train_run(name, method, modality, seed, data, collator, output_dir, say, settings):
    """Train (or resume), evaluate and save one run; writes models/<name>/done.json last."""
    from .model import LumaModel

    if method not in METHODS:  # a method object (luma_noise.baselines.methods): its own path
        from .methods.runner import train_method_run

        return train_method_run(name, method, modality, seed, data, collator, output_dir, say, settings)
    split = data["train"].train_test_split(test_size=0.2, seed=seed)
    model_config = _model_config(method, modality, data["train"], settings)
    model_config["eval_seed"] = seed  # evaluation noise (dropout masks, ε) derived from the run's seed
    if method == "de" and settings["ensemble_training"] == "independent":
        members = [_fit_member(name, i, model_config, seed, split, collator, output_dir, say, settings)
                   for i in range(settings["ensemble_size"])]
        model, epochs = LumaModel.from_members(members), None
    else:
        model, epochs = _fit(name, model_config, seed, split, collator, output_dir, say, settings)
    if not is_main_process():  # rank 0 evaluates and saves
        return None
    row = _evaluate_run(model, method, modality, seed, split["test"], data, collator, output_dir, name, settings)
    row.update(epochs or {})
    model.save_pretrained(output_dir / "models" / name)
    rundir.write_json(output_dir / "models" / name / "done.json", row)
    shutil.rmtree(output_dir / "checkpoints" / name, ignore_errors=True)


def _fit_member(name, index, model_config, seed, split, collator, output_dir, say, settings):
    """Member `index` of an independently trained ensemble (own seed, data order and stopping),
    kept in models/<name>/member<index>/ so that a resumed run does not train it again."""
    from .model import LumaModel

    folder = output_dir / "models" / name / f"member{index}"
    if folder.is_dir():  # saved whole: written aside, then renamed into place
        return LumaModel.from_pretrained(folder)
    member_config = {**model_config, "ensemble_size": 1, "ensemble_training": "independent"}
    model, _ = _fit(f"{name}-member{index}", member_config, seed * 100 + index, split, collator, output_dir, say,
                    settings)
    if not is_main_process():
        return model
    partial = folder.with_name(f"{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    os.replace(partial, folder)
    shutil.rmtree(output_dir / "checkpoints" / f"{name}-member{index}", ignore_errors=True)
    return model


def _model_config(method, modality, train, settings) -> dict:
    features = train.features
    text_dim = features["text_embeddings"].length if "text_embeddings" in features else 768
    return {"method": method, "modalities": list(_modalities(modality)), "mode": settings["mode"],
            "ensemble_size": settings["ensemble_size"], "ensemble_training": settings["ensemble_training"],
            "mc_samples": settings["mc_samples"], "text_dim": int(text_dim)}


def _fit(name, model_config, seed, split, collator, output_dir, say, settings):
    """Train one LumaModel with the Trainer (resuming a checkpoint); -> (model, {"epochs", "best_epoch"})."""
    import transformers

    from .metrics import compute_metrics
    from .model import AnnealingCallback, LumaModel, LumaModelConfig

    checkpoints = output_dir / "checkpoints" / name
    transformers.set_seed(seed)
    model = LumaModel(LumaModelConfig(**model_config))
    trainer = transformers.Trainer(
        model=model, args=_training_arguments(checkpoints, seed, settings), train_dataset=split["train"],
        eval_dataset=split["test"], data_collator=collator, compute_metrics=compute_metrics,
        callbacks=[AnnealingCallback(), transformers.EarlyStoppingCallback(settings["patience"]),
                   _ProgressCallback(name, say)])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    model.validation_passes = settings["val_mc_samples"]
    trainer.train(resume_from_checkpoint=rundir.resume_point(checkpoints, name, say))
    model.validation_passes = None  # the final evaluation: mc_samples passes
    state = trainer.state
    if settings["mode"] == "faithful":  # defect 5: the last epoch's weights, not the best checkpoint
        model = LumaModel.from_pretrained(rundir.newest_complete_checkpoint(checkpoints)[0])
    best_epoch = _best_epoch(state)
    return model, {"epochs": int(round(state.epoch or 0)), "best_epoch": best_epoch}


def _best_epoch(state):
    for entry in state.log_history:
        if entry.get("eval_loss") == state.best_metric and "epoch" in entry:
            return int(round(entry["epoch"]))
    return None


def _training_arguments(checkpoints: Path, seed: int, settings: dict):
    # fused AdamW: one kernel per step instead of six passes over every parameter (on this CPU the
    # optimiser took 20-30 % of an MLP step; same update up to float rounding)
    import torch
    import transformers

    limit = {"max_steps": settings["max_steps"]} if settings["max_steps"] else {}
    return transformers.TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=settings["batch_size"], num_train_epochs=settings["max_epochs"], **limit,
        learning_rate=LEARNING_RATE, weight_decay=0.0, optim="adamw_torch_fused", max_grad_norm=0.0, warmup_steps=0,
        lr_scheduler_type="reduce_lr_on_plateau",
        lr_scheduler_kwargs={"factor": PLATEAU_FACTOR, "patience": PLATEAU_PATIENCE},
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=False,
        seed=seed, data_seed=seed, report_to="none", disable_tqdm=True, remove_unused_columns=False,
        use_cpu=settings["device"] == "cpu", dataloader_num_workers=settings["dataloader_workers"],
        bf16=settings["precision"] == "bf16",
        dataloader_pin_memory=settings["device"] != "cpu" and torch.cuda.is_available())


class _ProgressCallback(TrainerCallback):
    """Report every evaluation (epoch) of run `name` through `say`."""

    def __init__(self, name: str, say):
        self.name, self.say, self.started = name, say, time.perf_counter()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        train = next((e for e in reversed(state.log_history) if "loss" in e), {})
        best = state.best_metric if state.best_metric is not None else np.inf
        self.say({"run": self.name, "epoch": int(round(state.epoch or 0)), "max_epochs": int(args.num_train_epochs),
                  "loss": train.get("loss", float("nan")), "eval_loss": metrics["eval_loss"],
                  "eval_accuracy": metrics.get("eval_accuracy", float("nan")),
                  "best_loss": min(best, metrics["eval_loss"]),
                  "learning_rate": train.get("learning_rate", args.learning_rate),
                  "seconds_per_epoch": time.perf_counter() - self.started})


def _evaluate_run(model, method, modality, seed, validation, data, collator, output_dir, name, settings) -> dict:
    """Metrics of a trained run on test and ood; per-example arrays to predictions/<name>.npz."""
    from .metrics import classification_metrics, ood_auroc, predict

    model.eval()
    arrays = {}
    for split, dataset in (("validation", validation), ("test", data["test"]), ("ood", data["ood"])):
        generator = rundir.torch_generator(seed, "evaluate", split, device=next(model.parameters()).device)
        with rundir.seeded_torch(seed, "evaluate", split):  # the same numbers in a resumed run
            arrays[split] = predict(model, dataset, collator, settings["batch_size"], generator=generator)
    test = arrays["test"]
    row = {"method": method, "modality": modality, "seed": seed, "predictive": model.predictive,
           **classification_metrics(test["probs"], test["labels"], test["aleatoric"], test["epistemic"]),
           "ood_auroc": ood_auroc(test["epistemic"], arrays["ood"]["epistemic"]),
           "predictions": f"predictions/{name}.npz"}
    from .methods.evaluation import from_predictions  # AURC of H(p); the OOD measures of every score

    row.update(from_predictions({f"{s}_{k}": v for s, a in arrays.items() for k, v in a.items()}))
    npz = {f"{split}_{key}": value for split, a in arrays.items() for key, value in a.items()
           if key != "conflict_modality"}
    if "conflict_modality" in test:
        npz["test_conflict_modality"] = test["conflict_modality"]
    npz["predictive"] = np.array(model.predictive)  # which distribution the *_probs hold
    rundir.write_npz(output_dir / "predictions" / f"{name}.npz", npz)
    return row


def _write_results(output_dir: Path, header: dict, runs) -> dict:
    """results.json from every finished run in output_dir (planned runs first, in plan order)."""
    import luma_noise

    done = {p.parent.name: rundir.read_json(p) for p in (output_dir / "models").glob("*/done.json")}
    order = [run_name(*r) for r in runs]
    names = [n for n in order if n in done] + sorted(n for n in done if n not in order)
    results = {**header, "luma_noise_version": luma_noise.__version__, "results": [done[n] for n in names]}
    rundir.write_json(output_dir / "results.json", results)
    return results
