"""The `train` command's path for method objects (every method but the paper's three).

Same protocol as the paper's baselines (`train.py`): the stock Trainer on 80 % of `train`
(seeded split), validation on the other 20 % every epoch (Adam, ReduceLROnPlateau, early
stopping on the validation loss, best checkpoint kept), then temperature scaling on that
validation split for methods that ask for it, then one evaluation (`evaluation.measures`) of
validation, test and ood, written to predictions/<run>.npz and models/<run>/done.json.
"""

import shutil
from pathlib import Path

from .. import rundir
from . import compute_metrics_for, fit_model_temperature, measures, predict
from .model import MethodConfig, MethodModel, with_example_index
from .registry import resolve


def train_method_run(name, method, modality, seed, data, collator, output_dir, say, settings):
    """Train (or resume), evaluate and save one run of a method object; done.json last."""
    import transformers

    from ..model import AnnealingCallback
    from ..train import _ProgressCallback, _best_epoch, _modalities, _training_arguments

    split = data["train"].train_test_split(test_size=0.2, seed=seed)
    train = with_example_index(split["train"]) if resolve(method).needs_index else split["train"]
    features = data["train"].features
    text_dim = features["text_embeddings"].length if "text_embeddings" in features else 768
    config = MethodConfig(method=method, modalities=_modalities(modality), mode=settings["mode"],
                          text_dim=int(text_dim), num_train_examples=len(train))
    checkpoints = output_dir / "checkpoints" / name
    transformers.set_seed(seed)
    model = MethodModel(config)
    trainer = transformers.Trainer(
        model=model, args=_training_arguments(checkpoints, seed, settings), train_dataset=train,
        eval_dataset=split["test"], data_collator=collator, compute_metrics=compute_metrics_for(model),
        callbacks=[AnnealingCallback(), transformers.EarlyStoppingCallback(settings["patience"]),
                   _ProgressCallback(name, say)])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    trainer.train(resume_from_checkpoint=rundir.resume_point(checkpoints, name, say))
    from ..train import is_main_process

    if not is_main_process():  # torchrun: rank 0 evaluates and saves
        return None
    if model.method.temperature_scaling:
        temperature = fit_model_temperature(model, split["test"], collator, settings["batch_size"])
        say({"run": name, "message": f"temperature {temperature:.4f} fitted on the validation split"})
    row = evaluate_run(model, method, modality, seed, split["test"], data, collator, output_dir, name,
                       settings["batch_size"])
    row.update({"epochs": int(round(trainer.state.epoch or 0)), "best_epoch": _best_epoch(trainer.state)})
    model.save_pretrained(output_dir / "models" / name)
    rundir.write_json(output_dir / "models" / name / "done.json", row)
    shutil.rmtree(checkpoints, ignore_errors=True)


def evaluate_run(model, method, modality, seed, validation, data, collator, output_dir, name, batch_size) -> dict:
    """results.json's row of one run (`evaluation.measures`); per-example arrays to predictions/<name>.npz."""
    arrays = {}
    for split, dataset in (("validation", validation), ("test", data["test"]), ("ood", data["ood"])):
        with rundir.seeded_torch(seed, "evaluate", split):  # the same numbers in a resumed run
            arrays[split] = predict(model, dataset, collator, batch_size)
    row = {"method": model.method.name, "method_spec": method, "modality": modality, "seed": seed,
           **measures(arrays["test"], arrays["ood"], arrays["validation"]),
           "calibration_temperature": float(model.config.calibration_temperature),
           "predictions": f"predictions/{name}.npz"}
    npz = {f"{split}_{key}": value for split, a in arrays.items() for key, value in a.items()
           if key != "conflict_modality" or split == "test"}
    rundir.write_npz(Path(output_dir) / "predictions" / f"{name}.npz", npz)
    return row
