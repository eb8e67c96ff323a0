"""The one training and evaluation path of a run, for every method (the paper's three included).

The paper's protocol (BASELINES.md §5): the Trainer (`trainer.LumaTrainer`) on 80 % of `train`
(seeded split), validation on the other 20 % every epoch (Adam, ReduceLROnPlateau, early
stopping on the validation loss, best checkpoint kept; faithful mode keeps the paper's methods'
last epoch, defect 5), then temperature scaling on that validation split for methods that ask for it, then
one evaluation (`evaluation.measures`) of validation, test and ood with evaluation noise seeded
per (seed, "evaluate", split), written through `results` to predictions/<run>.npz and
models/<run>/done.json. A deep ensemble with `ensemble_training="independent"` trains its
members one by one (member i from seed 100 s + i, each saved in models/<run>/member<i>/ so a
resumed run does not train it again), then combines them.

Under torchrun every process trains; only rank 0 (`is_main_process`) evaluates and writes.
"""

import contextlib
import copy
import os
import shutil
import time
from pathlib import Path

from dataclasses import dataclass
from typing import Callable

import numpy as np
from transformers import TrainerCallback

from .. import results, rundir
from ..collator import batch_reader, text_dim_of
from ..settings import LEARNING_RATE, PLATEAU_FACTOR, PLATEAU_PATIENCE, modalities_of
from .evaluation import compute_metrics_for, measures, predict
from .model import MethodConfig, MethodModel, with_example_index


def is_main_process() -> bool:
    """False in the processes of rank > 0 of a torchrun (multi-process data parallel) training:
    they train with rank 0 but write nothing (no log, checkpoint, model, prediction or result)."""
    return int(os.environ.get("RANK", "0")) == 0


class Ranks:
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


@dataclass(frozen=True)
class Job:
    """What every run of one `train` call shares: the output folder, {split: featurised dataset}
    ("train", "test", "ood"), the collator, `say(event)` (progress and train.log) and the
    `settings.RunSettings`."""

    output_dir: Path
    data: dict
    collator: object
    say: Callable
    settings: object


def train_run(name, method, modality, seed, job: Job) -> None:
    """Train (or resume), evaluate and save one run; writes models/<name>/done.json last."""
    from . import fit_model_temperature

    split = job.data["train"].train_test_split(test_size=0.2, seed=seed)
    config = model_config(method, modality, seed, split["train"], job)
    if getattr(config.build_method(), "trained_apart", False):
        members = [_fit_member(name, i, config, seed, split, job) for i in range(config.method_config["ensemble_size"])]
        model, epochs = members[0].method.combine(members), {}
    else:
        model, epochs = fit(name, config, seed, split, job)
    if not is_main_process():  # rank 0 evaluates and saves
        return
    if model.method.temperature_scaling:
        temperature = fit_model_temperature(model, split["test"], job.collator, job.settings.batch_size)
        job.say({"run": name, "message": f"temperature {temperature:.4f} fitted on the validation split"})
    row = evaluate_run(model, name, method, modality, seed, split["test"], job)
    row.update(epochs)
    model.save_pretrained(job.output_dir / results.MODELS / name)
    results.write_run_row(job.output_dir, name, row)
    shutil.rmtree(job.output_dir / "checkpoints" / name, ignore_errors=True)


def model_config(method, modality, seed, train_split, job: Job) -> MethodConfig:
    """The MethodConfig of a run: the method's hyper-parameters from the settings, evaluation noise
    from the run's seed, the text embeddings' size and the training split's size."""
    return MethodConfig(method=method, method_config=job.settings.hyper_parameters(method),
                        modalities=modalities_of(modality), mode=job.settings.mode, text_dim=_text_dim(job),
                        num_train_examples=len(train_split), eval_seed=seed)


def _text_dim(job: Job) -> int:
    """Size of the text embeddings: the featurised column's, else the text model's hidden size
    (rows read as a stream are featurised per batch), else 768 (no text)."""
    features = job.data["train"].features
    if "text_embeddings" in features:
        return int(features["text_embeddings"].length)
    return text_dim_of(job.collator) or 768


def _fit_member(name, index, config, seed, split, job: Job):
    """Member `index` of an independently trained ensemble (own seed, data order and stopping),
    kept in models/<name>/member<index>/ so that a resumed run does not train it again."""
    folder = job.output_dir / results.MODELS / name / f"member{index}"
    if folder.is_dir():  # saved whole: written aside, then renamed into place
        return MethodModel.from_pretrained(folder).use_memory_format(job.settings.memory_format)
    member = copy.deepcopy(config)
    member.method_config = {**config.method_config, "ensemble_size": 1}
    model, _ = fit(f"{name}-member{index}", member, seed * 100 + index, split, job)
    if not is_main_process():
        return model
    partial = folder.with_name(f"{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    os.replace(partial, folder)
    shutil.rmtree(job.output_dir / "checkpoints" / f"{name}-member{index}", ignore_errors=True)
    return model


def fit(name, config, seed, split, job: Job) -> tuple:
    """Train one MethodModel with the Trainer (resuming a checkpoint); -> (model, {"epochs", "best_epoch"})."""
    import transformers

    from ..model import AnnealingCallback
    from .trainer import LumaTrainer  # imports the Trainer's module: not at the command's start

    settings, checkpoints = job.settings, job.output_dir / "checkpoints" / name
    transformers.set_seed(seed)
    model = MethodModel(config).use_memory_format(settings.memory_format)
    train = with_example_index(split["train"]) if model.method.needs_index else split["train"]
    # the same rows and batches as the datasets, gathered a batch at a time (collator.BatchReader)
    train, validation = (batch_reader(rows, config.modalities) for rows in (train, split["test"]))
    trainer = LumaTrainer(
        model=model, args=training_arguments(checkpoints, seed, settings), train_dataset=train,
        eval_dataset=validation, data_collator=job.collator, compute_metrics=compute_metrics_for(model),
        callbacks=[AnnealingCallback(), transformers.EarlyStoppingCallback(settings.patience),
                   ProgressCallback(name, job.say)])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    model.validation_passes = settings.validation_passes
    trainer.train(resume_from_checkpoint=rundir.resume_point(checkpoints, name, job.say))
    model.validation_passes = None  # the final evaluation: mc_samples passes
    state = trainer.state
    if settings.mode == "faithful" and model.method.reference:  # defect 5: the last epoch's weights
        model = MethodModel.from_pretrained(rundir.newest_complete_checkpoint(checkpoints)[0]).use_memory_format(
            settings.memory_format)
    return model, {"epochs": int(round(state.epoch or 0)), "best_epoch": best_epoch(state)}


def best_epoch(state):
    for entry in state.log_history:
        if entry.get("eval_loss") == state.best_metric and "epoch" in entry:
            return int(round(entry["epoch"]))
    return None


def training_arguments(checkpoints: Path, seed: int, settings):
    """The Trainer's arguments of the paper's protocol (BASELINES.md §5) for `settings` (a RunSettings).

    Fused AdamW: one kernel per step instead of six passes over every parameter (on this CPU the
    optimiser took 20-30 % of an MLP step; the same update up to float rounding). No NaN filter on
    the logged loss: its check of every step's loss waits for the GPU (and a NaN loss should show)."""
    import torch
    import transformers

    limit = {"max_steps": settings.max_steps} if settings.max_steps else {}
    return transformers.TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size, num_train_epochs=settings.max_epochs, **limit,
        learning_rate=LEARNING_RATE, weight_decay=0.0, optim="adamw_torch_fused", max_grad_norm=0.0, warmup_steps=0,
        lr_scheduler_type="reduce_lr_on_plateau",
        lr_scheduler_kwargs={"factor": PLATEAU_FACTOR, "patience": PLATEAU_PATIENCE},
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=False,
        seed=seed, data_seed=seed, report_to="none", logging_nan_inf_filter=False, disable_tqdm=True,
        remove_unused_columns=False, use_cpu=settings.device == "cpu",
        dataloader_num_workers=settings.dataloader_workers, bf16=settings.precision == "bf16",
        dataloader_pin_memory=settings.device != "cpu" and torch.cuda.is_available())


class ProgressCallback(TrainerCallback):
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


def evaluate_run(model, name, method, modality, seed, validation, job: Job) -> dict:
    """results.json's row of one run (`evaluation.measures`); per-example arrays to predictions/<name>.npz."""
    arrays, batch_size = {}, job.settings.batch_size
    for split, dataset in (("validation", validation), ("test", job.data["test"]), ("ood", job.data["ood"])):
        generator = rundir.torch_generator(seed, "evaluate", split, device=next(model.parameters()).device)
        with rundir.seeded_torch(seed, "evaluate", split):  # the same numbers in a resumed run
            arrays[split] = predict(model, dataset, job.collator, batch_size, generator=generator)
    predictive = model.predictive
    return {"method": model.method.name, "method_spec": method, "modality": modality, "seed": seed,
            **({"predictive": predictive} if predictive else {}),
            **measures(arrays["test"], arrays["ood"], arrays["validation"]),
            "calibration_temperature": float(model.config.calibration_temperature),
            "predictions": results.write_predictions(job.output_dir, name, arrays, predictive)}
