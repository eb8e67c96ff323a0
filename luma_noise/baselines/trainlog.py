"""The `train` command's bookkeeping in its output folder: claiming it (run.json), removing what
killed runs left, and reporting progress (train.log and the terminal or a `progress` callback)."""

import time
from pathlib import Path

from . import rundir


def claim_output_dir(output_dir: Path, record: dict) -> None:
    """Write run.json (under the folder's lock); refuse if it changed since `check_run` read it."""
    problems = rundir.output_problems(output_dir, record)
    if problems:
        raise ValueError("\n".join(problems))
    if not (output_dir / "run.json").exists():
        rundir.write_json(output_dir / "run.json", record)


def remove_leftovers(output_dir: Path, say) -> None:
    """Delete what killed runs left (see `rundir.remove_leftovers`), saying what."""
    for run, message in rundir.remove_leftovers(output_dir):
        say({"run": run, "message": message})


def reporter(output_dir: Path, progress):
    """say(event): append a line to train.log, and print it or pass the event to `progress`."""
    log = output_dir / "train.log"

    def say(event: dict) -> None:
        line = describe(event)
        with open(log, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        if progress is None:
            print(line, flush=True)
        elif "message" not in event:  # `progress` gets epoch and finished events only
            progress(event)

    return say


def describe(event: dict) -> str:
    if "finished" in event:
        return f"[{event['finished']}] finished"
    if "message" in event:
        return f"[{event['run']}] {event['message']}"
    e = event
    left = (e["max_epochs"] - e["epoch"]) * e["seconds_per_epoch"]
    return (f"[{e['run']}] epoch {e['epoch']}/{e['max_epochs']}  train loss {e['loss']:.4f}"
            f"  val loss {e['eval_loss']:.4f} (best {e['best_loss']:.4f})  val acc {e['eval_accuracy']:.3f}"
            f"  lr {e['learning_rate']:.2g}  {e['seconds_per_epoch']:.1f} s/epoch, at most {left / 60:.1f} min left")
