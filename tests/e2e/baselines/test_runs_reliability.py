"""`train` and `sweep` under kill -9, a second writer and careless inputs (issue 15, items 2-5, 8,
11, 12): killed runs resume to results equal to an uninterrupted run, a folder has one writer,
foreign folders and bad inputs are refused before anything is touched.

Kills are real: a child process runs the command through `tests/support/signal_at.py`, which sends
SIGKILL (or SIGSTOP) to the child itself at a named point of the real code path."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from luma_noise.baselines import sweep
from luma_noise.baselines.__main__ import main
from luma_noise.baselines.train import run_training

ROOT = Path(__file__).resolve().parents[3]
SUPPORT = ROOT / "tests" / "support"
RUN = "mcd-image-seed42"
# One MC-dropout model on the image modality, 2 epochs (2 steps each): dropout masks and softmax noise are
# drawn at every evaluation, which is what a resumed run must reproduce.
OPTIONS = ["--methods", "mcd", "--modalities", "image", "--max-epochs", "2", "--mc-samples", "3",
           "--batch-size", "64", "--device", "cpu", "--seeds", "42"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("reliability-cache"))


def _train_args(mirror, cache, out, *extra):
    return ["train", "clean", "--mirror", str(mirror[0]), "--cache-dir", cache, "--output-dir", str(out),
            *OPTIONS, *extra]


@pytest.fixture(scope="module")
def reference(mirror, cache, tmp_path_factory):
    """The uninterrupted run's folder."""
    out = tmp_path_factory.mktemp("reference") / "runs"
    assert main(_train_args(mirror, cache, out)) == 0
    return out


def _child(point: str, sig: str, argv, wait: bool = True):
    """Run the command in a child process that signals itself at `point` (see signal_at.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(SUPPORT)])}
    command = [sys.executable, str(SUPPORT / "signal_at.py"), point, sig, "--", *argv]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _wait_until_stopped(process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.2)
    raise TimeoutError("the child did not reach its stop point")


def assert_same_results(out: Path, reference: Path) -> None:
    """Every result row and every per-example array equal to the uninterrupted run's (exactly:
    the same seeds on the same CPU give the same bits)."""
    rows, expected = (json.loads((d / "results.json").read_text())["results"] for d in (out, reference))
    assert rows == expected
    with np.load(out / "predictions" / f"{RUN}.npz") as got, np.load(reference / "predictions" / f"{RUN}.npz") as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _temporaries(out: Path) -> list:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp"))


# -- item 2: resume from the newest complete checkpoint ---------------------------------------------------

def test_kill_while_a_checkpoint_is_written_resumes_from_the_newest_complete_one(mirror, cache, reference,
                                                                                 tmp_path, capsys):
    out = tmp_path / "runs"
    killed = _child("checkpoint:2", "KILL", _train_args(mirror, cache, out))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    torn = sorted((out / "checkpoints" / RUN).iterdir())[-1]
    assert not (torn / "trainer_state.json").exists() and (torn / "model.safetensors").exists()

    assert main(_train_args(mirror, cache, out)) == 0
    log = (out / "train.log").read_text()
    assert f"skipping {torn.name}: trainer_state.json is missing" in log
    assert "resuming from checkpoint-" in log and f"resuming from {torn.name}" not in log
    assert_same_results(out, reference)


def test_a_torn_file_in_the_last_checkpoint_is_skipped(mirror, cache, reference, tmp_path):
    """Killed after its last checkpoint while the predictions were renamed into place; then a file
    of the newest checkpoint is cut to half (a torn write the Trainer did not notice)."""
    from luma_noise.baselines.rundir import checkpoint_problem

    out = tmp_path / "runs"
    killed = _child(f"rename:{RUN}.npz", "KILL", _train_args(mirror, cache, out))
    assert killed.returncode == -signal.SIGKILL
    assert any(p.name.endswith(".tmp") for p in (out / "predictions").iterdir())
    newest = max((out / "checkpoints" / RUN).iterdir(), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoint_problem(newest) is None
    for name in ("config.json", "trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt",
                 "rng_state.pth"):  # every file the Trainer reads to resume is checked
        copy = shutil.copytree(newest, tmp_path / "copies" / name)
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[:len(data) // 2])
        assert checkpoint_problem(copy).startswith(f"{name} is "), name
    data = (newest / "optimizer.pt").read_bytes()
    (newest / "optimizer.pt").write_bytes(data[:len(data) // 2])

    assert main(_train_args(mirror, cache, out)) == 0
    log = (out / "train.log").read_text()
    assert f"skipping {newest.name}: optimizer.pt is torn" in log
    assert_same_results(out, reference)
    assert _temporaries(out) == []  # the killed write's temporary file is gone


# -- item 4 (and 12): killed before the done marker: evaluated again, with the same numbers -----------------

def test_kill_before_the_done_marker_reevaluates_to_the_same_results(mirror, cache, reference, tmp_path):
    out = tmp_path / "runs"
    killed = _child("rename:done.json", "KILL", _train_args(mirror, cache, out))
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "models" / RUN / "done.json").exists() and _temporaries(out)

    assert main(_train_args(mirror, cache, out)) == 0
    assert_same_results(out, reference)
    assert _temporaries(out) == [] and not (out / "checkpoints" / RUN).exists()


def test_checkpoints_left_after_the_done_marker_are_removed(mirror, cache, reference, tmp_path):
    out = tmp_path / "runs"
    killed = _child("renamed:done.json", "KILL", _train_args(mirror, cache, out))
    assert killed.returncode == -signal.SIGKILL
    assert (out / "models" / RUN / "done.json").exists() and (out / "checkpoints" / RUN).is_dir()

    assert main(_train_args(mirror, cache, out)) == 0
    assert not (out / "checkpoints" / RUN).exists()
    assert "epoch" not in (out / "train.log").read_text().split("removed the checkpoints")[1]  # not retrained
    assert_same_results(out, reference)


# -- item 5: one writer per folder; a dead writer's lock is taken over -----------------------------------------

def test_a_second_writer_is_refused_and_a_dead_writers_lock_taken_over(mirror, cache, reference, tmp_path, capsys):
    root = tmp_path / "runs"
    sweep_args = ["sweep", "--configs", "clean", "--mirror", str(mirror[0]), "--cache-dir", cache,
                  "--output-dir", str(root), *OPTIONS]
    first = _child("epoch:1", "STOP", sweep_args, wait=False)
    try:
        _wait_until_stopped(first)
        holder = f"pid {first.pid} on host {socket.gethostname()!r}"
        assert main(sweep_args) == 2  # a second sweep on the same root
        assert holder in capsys.readouterr().err
        run_dir = root / "clean" / "seed-42"
        assert main(["train", "clean", "--mirror", str(mirror[0]), "--cache-dir", cache,
                     "--output-dir", str(run_dir), *OPTIONS]) == 2  # a train into the sweep's run folder
        assert holder in capsys.readouterr().err
        first.kill()  # kill -9: its locks stay behind as files
        first.wait()
        assert (root / ".luma.lock").exists() and (run_dir / ".luma.lock").exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.stdout.close()

    assert main(sweep_args) == 0
    assert_same_results(run_dir, reference)
    assert not (root / ".luma.lock").exists() and not (run_dir / ".luma.lock").exists()


def test_a_lock_taken_on_another_host_is_not_taken_over(mirror, cache, reference, tmp_path, capsys, no_build):
    """This host cannot tell whether a process on another host lives: refused, the file kept."""
    out = tmp_path / "runs"
    shutil.copytree(reference, out)
    record = {"pid": 1, "host": "elsewhere", "since": "2026-01-01 00:00:00 +0000", "command": "train"}
    (out / ".luma.lock").write_text(json.dumps(record))
    assert main(_train_args(mirror, cache, out)) == 2
    err = capsys.readouterr().err
    assert "locked by pid 1 on host 'elsewhere'" in err and f"remove {out / '.luma.lock'}" in err
    assert json.loads((out / ".luma.lock").read_text()) == record


# -- item 3: every option that changes a result is recorded; a mismatch is refused ------------------------------

def test_rerun_with_other_options_is_refused_naming_them(reference, mirror, cache, tmp_path, capsys):
    out = tmp_path / "runs"
    shutil.copytree(reference, out)
    before = (out / "results.json").read_bytes()
    assert main(_train_args(mirror, cache, out, "--max-epochs", "3", "--mc-samples", "4")) == 2
    err = capsys.readouterr().err
    assert "max_epochs: 2 there, 3 asked" in err and "mc_samples: 3 there, 4 asked" in err
    assert "batch_size" not in err and "Traceback" not in err
    assert (out / "results.json").read_bytes() == before


def test_interrupted_sweep_resumed_with_other_options_is_refused(reference, mirror, cache, tmp_path):
    """A run folder without sweep.json is what an interrupted sweep leaves."""
    root = tmp_path / "runs"
    shutil.copytree(reference, root / "clean" / "seed-42")
    options = dict(mirror=str(mirror[0]), cache_dir=cache, methods=("mcd",), modalities=("image",), max_epochs=2,
                   mc_samples=3, batch_size=64, device="cpu", show_progress=False)
    with pytest.raises(ValueError, match=r"ensemble_size: 10 there, 5 asked.*max_epochs: 2 there, 4 asked"):
        sweep.run_sweep(root, ["clean"], [42], **{**options, "max_epochs": 4, "ensemble_size": 5})
    assert not (root / "clean" / "seed-42" / "sweep.json").exists()
    # with the options it was made with, it is finished without training, and sweep.json says so
    summary = sweep.run_sweep(root, ["clean"], [42], **options)
    assert summary["trained"] == 1
    assert json.loads((root / "clean" / "seed-42" / "sweep.json").read_text())["max_epochs"] == 2
    assert_same_results(root / "clean" / "seed-42", reference)


def test_empty_sweep_json_is_named(tmp_path):
    (tmp_path / "clean" / "seed-42").mkdir(parents=True)
    (tmp_path / "clean" / "seed-42" / "sweep.json").write_text("")
    with pytest.raises(ValueError, match=r"clean/seed-42/sweep.json is not valid JSON"):
        sweep.run_sweep(tmp_path, ["clean"], [42], show_progress=False)


# -- items 8, 11, 12: refused before anything is touched ---------------------------------------------------------

@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if the dataset is loaded (the checks must come first)."""
    import luma_noise

    def load(*args, **kwargs):
        raise AssertionError("the dataset was loaded before the inputs were checked")

    monkeypatch.setattr(luma_noise, "load", load)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_train_refuses_a_folder_that_is_not_a_run_folder(mirror, cache, tmp_path, capsys, no_build):
    out = tmp_path / "results"
    (out / "checkpoints" / RUN).mkdir(parents=True)
    (out / "checkpoints" / RUN / "notes.txt").write_text("mine")
    (out / "models" / "other").mkdir(parents=True)
    (out / "models" / "other" / "done.json").write_text('{"accuracy": 1}')
    (out / "results.json").write_text('{"someone": "else"}')
    before = _snapshot(out)
    assert main(_train_args(mirror, cache, out)) == 2
    err = capsys.readouterr().err
    assert f"{out} is not empty (checkpoints, models, results.json) and has no run.json" in err
    assert _snapshot(out) == before


def test_train_names_every_bad_input_at_once_with_exit_2(mirror, cache, tmp_path, capsys, no_build):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    status = main(["train", "clean", "--mirror", str(mirror[0]), "--cache-dir", cache, "--output-dir",
                   str(not_a_folder), "--text-model", str(tmp_path / "no-such-bert"), "--max-epochs", "0",
                   "--seeds", "1", "1", "--ensemble-size", "1", "--mc-samples", "1", "--set", "no_such_field=1"])
    assert status == 2
    err = capsys.readouterr().err
    for expected in ("max_epochs must be an integer >= 1", "seeds must be distinct, got [1, 1]",
                     "ensemble_size 1 leaves de's epistemic uncertainty at 0", "mc_samples 1 leaves mcd's",
                     "no_such_field", f"--text-model {tmp_path / 'no-such-bert'}: no such folder",
                     f"--output-dir {not_a_folder} is a file"):
        assert expected in err
    assert "Traceback" not in err and not err.startswith("train: Traceback")
    # a folder where nothing can be written (a read-only file system, even for root)
    assert main(_train_args(mirror, cache, "/proc/luma-runs")) == 2
    assert "--output-dir /proc/luma-runs: cannot write in /proc" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(_train_args(mirror, cache, locked / "runs")) == 2
        assert f"cannot write in {locked}" in capsys.readouterr().err


def test_sweep_refuses_duplicate_seeds_and_one_member_ensembles(tmp_path, capsys):
    parser_args = ["sweep", "--output-dir", str(tmp_path / "runs"), "--configs", "clean", "--seeds", "42", "42"]
    assert main(parser_args) == 2
    assert "--seeds must be distinct, got [42, 42]" in capsys.readouterr().err
    assert main(["sweep", "--output-dir", str(tmp_path / "runs"), "--configs", "clean", "--ensemble-size", "1"]) == 2
    assert "ensemble_size 1 leaves de's epistemic uncertainty at 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_text_embeddings_follow_the_model_files_not_the_path(mirror, cache, tiny_bert, tmp_path, monkeypatch):
    """Weights replaced in place: the embeddings are computed again, and the old run folder
    (which recorded the old model's digest) refuses to be continued with the new one."""
    from luma_noise.fixtures.models import _save_text

    from luma_noise.baselines.collator import LumaCollator

    bert = tmp_path / "bert"
    shutil.copytree(tiny_bert, bert)
    featurized, featurize = [], LumaCollator.featurize
    monkeypatch.setattr(LumaCollator, "featurize", lambda self, batch, *a: featurized.append(len(batch["label"]))
                        or featurize(self, batch, *a))
    options = dict(mirror=str(mirror[0]), cache_dir=cache, methods=("mcd",), modalities=("text",),
                   text_model=str(bert), max_epochs=1, mc_samples=2, batch_size=64, device="cpu",
                   progress=lambda event: None)
    first = run_training("clean", tmp_path / "first", **options)
    assert featurized
    import torch

    with torch.random.fork_rng():  # other weights, same file names and sizes
        torch.manual_seed(1)
        _save_text(bert)
    del featurized[:]
    second = run_training("clean", tmp_path / "second", **options)
    assert featurized, "the old model's embeddings were reused"
    assert first["results"][0]["accuracy"] != second["results"][0]["accuracy"] or \
        first["results"][0]["epistemic"] != second["results"][0]["epistemic"]
    with pytest.raises(ValueError, match="text_model_digest"):
        run_training("clean", tmp_path / "first", **options)
