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

Finished runs are never retrained; an interrupted run resumes from its last checkpoint.
"""

import argparse
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

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
    "batch_size": 128, "device": "auto",
}


def add_run_options(group) -> None:
    """Add the run options (RUN_DEFAULTS) to an argparse parser or argument group."""
    group.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    group.add_argument("--modalities", nargs="+", choices=RUN_MODALITIES, default=list(RUN_MODALITIES),
                       help="RCML runs on multimodal only")
    group.add_argument("--mode", choices=MODES, default=RUN_DEFAULTS["mode"])
    group.add_argument("--text-model", default=RUN_DEFAULTS["text_model"], metavar="ID_OR_PATH")
    for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size"):
        group.add_argument(f"--{name.replace('_', '-')}", type=int, default=RUN_DEFAULTS[name])
    group.add_argument("--ensemble-training", choices=ENSEMBLE_TRAINING, default=RUN_DEFAULTS["ensemble_training"])
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default=RUN_DEFAULTS["device"])


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
    """Entry point of `train`: returns 0 when every run finished."""
    results = run_training(
        args.config, args.output_dir, fields=dict(args.fields), mirror=args.mirror, seeds=args.seeds,
        cache_dir=args.cache_dir, **{name: getattr(args, name) for name in RUN_DEFAULTS})
    print(summary(results, args.output_dir))
    return 0


def summary(results: dict, output_dir) -> str:
    """A table of the finished runs, for the terminal."""
    lines = [f"{len(results['results'])} runs of {results['config']} ({results['mode']}) in {output_dir}/results.json",
             f"{'run':<28} {'acc':>6} {'ale':>6} {'epi':>6} {'auroc':>6} {'ece':>6} {'epochs':>6}"]
    for r in results["results"]:
        lines.append(f"{r['method'] + '-' + r['modality'] + '-seed' + str(r['seed']):<28} {r['accuracy']:6.3f} "
                     f"{r['aleatoric']:6.3f} {r['epistemic']:6.3f} {r['ood_auroc']:6.3f} {r['ece']:6.3f} "
                     f"{r.get('epochs', 0):6d}")
    return "\n".join(lines)


def plan_runs(methods, modalities, seeds) -> list:
    """(method, modality, seed) in training order; RCML only on multimodal."""
    return [(method, modality, seed) for seed in seeds for method in METHODS if method in methods
            for modality in RUN_MODALITIES if modality in modalities
            if method != "rcml" or modality == "multimodal"]


def run_name(method: str, modality: str, seed: int) -> str:
    return f"{method}-{modality}-seed{seed}"


def run_training(config_name: str, output_dir, *, fields=None, mirror=None, methods=METHODS,
                 modalities=RUN_MODALITIES, mode: str = "fixed", text_model: str = "bert-base-uncased",
                 max_epochs: int = 300, ensemble_size: int = 10, ensemble_training: str = "joint",
                 mc_samples: int = 100, seeds=(42,), device: str = "auto", progress=None, cache_dir=None,
                 batch_size: int = 128, max_steps: int | None = None, patience: int = STOP_PATIENCE) -> dict:
    """Train and evaluate every (method, modality, seed) of one config; returns results.json's content.

    fields: LumaConfig fields ({name: value}); mirror: upstream mirror; methods, modalities
    ("multimodal" = the three fused), seeds: what to run; mode: "fixed" or "faithful";
    text_model: BERT for text embeddings; max_epochs, patience (early stopping, epochs),
    batch_size, max_steps (overrides epochs; for smoke tests): training; ensemble_size,
    ensemble_training, mc_samples: methods; device: "auto", "cpu" or "cuda";
    progress(event) gets {"run", "epoch", "max_epochs", "loss", "eval_loss", "eval_accuracy",
    "best_loss", "learning_rate", "seconds_per_epoch"} every epoch and {"finished": run} per
    finished run (default: lines printed); everything also goes to output_dir/train.log.
    Finished runs in output_dir are kept, an interrupted run resumes.
    """
    output_dir = Path(output_dir)
    settings = _check_settings(locals())
    runs = plan_runs(methods, modalities, seeds)
    if not runs:
        raise ValueError(f"nothing to train: RCML runs on multimodal only, got methods {list(methods)} "
                         f"and modalities {list(modalities)}")
    fields = dict(fields or {})
    dataset, differing = _load(config_name, fields, mirror, cache_dir)
    header = {"config": config_name, "fields": differing, "mode": mode}
    _claim_output_dir(output_dir, {**header, "text_model": text_model})
    needed = sorted({m for _, modality, _ in runs for m in _modalities(modality)}, key=ALL_MODALITIES.index)
    collator = LumaCollator(text_model=text_model if "text" in needed else None, mode=mode, modalities=needed)
    data = {split: featurize_dataset(dataset[split], collator) for split in ("train", "test", "ood")}
    if mode == "faithful" and "audio" in needed:  # defect 7: what became of the clips the reference cannot batch
        from .inputs import long_clips

        header["faithful_audio"] = long_clips({s: dataset[s] for s in ("train", "test", "ood")})
    say = _reporter(output_dir, progress)
    for method, modality, seed in runs:
        name = run_name(method, modality, seed)
        if not (output_dir / "models" / name / "done.json").exists():
            _train_run(name, method, modality, seed, data, collator, output_dir, say, settings)
        say({"finished": name})
    return _write_results(output_dir, header, runs)


def _check_settings(values: dict) -> dict:
    """The training settings, validated all at once."""
    errors = []
    for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size", "patience"):
        if not isinstance(values[name], int) or values[name] < 1:
            errors.append(f"{name} must be an integer >= 1, got {values[name]!r}")
    for name, allowed in (("methods", METHODS), ("modalities", RUN_MODALITIES)):
        bad = [v for v in values[name] if v not in allowed]
        if bad or not values[name]:
            errors.append(f"{name} must be among {allowed}, got {list(values[name])!r}")
    choices = (("mode", MODES), ("ensemble_training", ENSEMBLE_TRAINING), ("device", ("auto", "cpu", "cuda")))
    for name, allowed in choices:
        if values[name] not in allowed:
            errors.append(f"{name} must be one of {allowed}, got {values[name]!r}")
    if not values["seeds"]:
        errors.append("seeds must name at least one seed")
    if values["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            errors.append("device 'cuda' asked for, but torch sees no CUDA device")
    if errors:
        raise ValueError("; ".join(errors))
    keys = ("mode", "text_model", "max_epochs", "ensemble_size", "ensemble_training", "mc_samples", "device",
            "batch_size", "max_steps", "patience")
    return {k: values[k] for k in keys}


def _modalities(run_modality: str) -> tuple:
    return ALL_MODALITIES if run_modality == "multimodal" else (run_modality,)


def _load(config_name, fields, mirror, cache_dir):
    """(DatasetDict, {field: value} differing from the named config's defaults); bad fields fail first."""
    import luma_noise
    from luma_noise.loader import builder_class

    extra = {"mirror": mirror} if mirror else {}
    chosen = builder_class()(config_name=config_name, cache_dir=cache_dir, **fields, **extra).config
    default = builder_class()(config_name=config_name, cache_dir=cache_dir).config
    differing = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen)
                 if f.name not in ("name", "mirror", "version", "data_dir", "data_files", "description")
                 and getattr(chosen, f.name) != getattr(default, f.name)}
    differing = json.loads(json.dumps(differing, default=str))
    return luma_noise.load(config_name, cache_dir=cache_dir, **fields, **extra), differing


def _claim_output_dir(output_dir: Path, header: dict) -> None:
    """Record what output_dir holds; refuse to mix runs of another config, fields, mode or text model."""
    marker = output_dir / "run.json"
    if marker.exists():
        held = json.loads(marker.read_text())
        if held != header:
            raise ValueError(f"{output_dir} holds runs of {held}, not {header}: choose another --output-dir")
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_json(marker, header)


def _write_json(path: Path, content) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=1)
    os.replace(tmp, path)


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

    split = data["train"].train_test_split(test_size=0.2, seed=seed)
    model_config = _model_config(method, modality, data["train"], settings)
    model_config["eval_seed"] = seed  # evaluation noise (dropout masks, ε) derived from the run's seed
    if method == "de" and settings["ensemble_training"] == "independent":
        members = [_fit_member(name, i, model_config, seed, split, collator, output_dir, say, settings)
                   for i in range(settings["ensemble_size"])]
        model, epochs = LumaModel.from_members(members), None
    else:
        model, epochs = _fit(name, model_config, seed, split, collator, output_dir, say, settings)
    row = _evaluate_run(model, method, modality, seed, split["test"], data, collator, output_dir, name, settings)
    row.update(epochs or {})
    model.save_pretrained(output_dir / "models" / name)
    _write_json(output_dir / "models" / name / "done.json", row)
    shutil.rmtree(output_dir / "checkpoints" / name, ignore_errors=True)


def _fit_member(name, index, model_config, seed, split, collator, output_dir, say, settings):
    """Member `index` of an independently trained ensemble (own seed, data order and stopping),
    kept in models/<name>/member<index>/ so that a resumed run does not train it again."""
    from .model import LumaModel

    folder = output_dir / "models" / name / f"member{index}"
    if (folder / "config.json").exists():
        return LumaModel.from_pretrained(folder)
    member_config = {**model_config, "ensemble_size": 1, "ensemble_training": "independent"}
    model, _ = _fit(f"{name}-member{index}", member_config, seed * 100 + index, split, collator, output_dir, say,
                    settings)
    model.save_pretrained(folder)
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
    from transformers.trainer_utils import get_last_checkpoint

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
    last = get_last_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if last:
        say({"run": name, "message": f"resuming from {Path(last).name}"})
    trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    if settings["mode"] == "faithful":  # defect 5: the last epoch's weights, not the best checkpoint
        model = LumaModel.from_pretrained(get_last_checkpoint(checkpoints))
    best_epoch = _best_epoch(state)
    return model, {"epochs": int(round(state.epoch or 0)), "best_epoch": best_epoch}


def _best_epoch(state):
    for entry in state.log_history:
        if entry.get("eval_loss") == state.best_metric and "epoch" in entry:
            return int(round(entry["epoch"]))
    return None


def _training_arguments(checkpoints: Path, seed: int, settings: dict):
    import torch
    import transformers

    limit = {"max_steps": settings["max_steps"]} if settings["max_steps"] else {}
    return transformers.TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=settings["batch_size"], num_train_epochs=settings["max_epochs"], **limit,
        learning_rate=LEARNING_RATE, weight_decay=0.0, optim="adamw_torch", max_grad_norm=0.0, warmup_steps=0,
        lr_scheduler_type="reduce_lr_on_plateau",
        lr_scheduler_kwargs={"factor": PLATEAU_FACTOR, "patience": PLATEAU_PATIENCE},
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=False,
        seed=seed, data_seed=seed, report_to="none", disable_tqdm=True, remove_unused_columns=False,
        use_cpu=settings["device"] == "cpu", dataloader_num_workers=0,
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
    arrays = {split: predict(model, dataset, collator, settings["batch_size"])
              for split, dataset in (("validation", validation), ("test", data["test"]), ("ood", data["ood"]))}
    test = arrays["test"]
    row = {"method": method, "modality": modality, "seed": seed, "predictive": model.predictive,
           **classification_metrics(test["probs"], test["labels"], test["aleatoric"], test["epistemic"]),
           "ood_auroc": ood_auroc(test["epistemic"], arrays["ood"]["epistemic"]),
           "predictions": f"predictions/{name}.npz"}
    npz = {f"{split}_{key}": value for split, a in arrays.items() for key, value in a.items()
           if key != "conflict_modality"}
    if "conflict_modality" in test:
        npz["test_conflict_modality"] = test["conflict_modality"]
    npz["predictive"] = np.array(model.predictive)  # which distribution the *_probs hold
    (output_dir / "predictions").mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output_dir / "predictions", suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **npz)
    os.replace(tmp, output_dir / "predictions" / f"{name}.npz")
    return row


def _write_results(output_dir: Path, header: dict, runs) -> dict:
    """results.json from every finished run in output_dir (planned runs first, in plan order)."""
    import luma_noise

    done = {p.parent.name: json.loads(p.read_text()) for p in (output_dir / "models").glob("*/done.json")}
    order = [run_name(*r) for r in runs]
    names = [n for n in order if n in done] + sorted(n for n in done if n not in order)
    results = {**header, "luma_noise_version": luma_noise.__version__, "results": [done[n] for n in names]}
    _write_json(output_dir / "results.json", results)
    return results
