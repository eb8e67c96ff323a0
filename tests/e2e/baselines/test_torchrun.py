"""`train` under `torchrun --nproc_per_node 2` (gloo, CPU) on the fixture mirror: both processes
train the same model (same steps, same weights after every run) and log its loss unscaled, only
rank 0 writes outputs (one results.json, each log line once), metrics finite."""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SUPPORT = ROOT / "tests" / "support"


TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="no torchrun beside this Python (torch installs it)")
def test_torchrun_two_processes_train_and_only_rank_zero_writes(mirror, tmp_path):
    out, spy = tmp_path / "runs", tmp_path / "spy"
    spy.mkdir()
    command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", str(SUPPORT / "ddp_train.py"), str(spy), "train", "clean",
               "--mirror", str(mirror[0]), "--output-dir", str(out), "--methods", "mcd", "de", "--modalities",
               "image", "--max-epochs", "2", "--ensemble-size", "2", "--mc-samples", "2", "--batch-size", "16",
               "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            _, stderr = process.communicate(timeout=300)
        finally:  # torchrun and both workers, also on a timeout
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-3000:]
    ranks = [[json.loads(line) for line in (spy / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2  # both processes trained both models
    rows_train = round(0.8 * 126)  # the mirror's 126 train rows, 80 % trained on (seeded split)
    for zero, one in zip(*ranks):
        assert zero["world_size"] == one["world_size"] == 2
        # each process saw half the batches: steps per epoch of 2 x 16 rows
        assert zero["global_step"] == one["global_step"] == 2 * math.ceil(rows_train / (2 * 16))
        assert zero["checksum"] == pytest.approx(one["checksum"], rel=1e-6)  # DDP kept the replicas equal
        # the losses unscaled: near ln 42 = 3.7 for these barely trained 42-class models (one process:
        # train 4.7, validation 3.8); the Trainer scales a model's losses by the number of processes
        # when it takes loss kwargs (7.6 and 9.2 here before MethodModel.accepts_loss_kwargs)
        assert zero["eval_loss"] < 1.5 * math.log(42) and zero["train_loss"] < 1.5 * math.log(42), zero
    results = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["modality"]) for r in results["results"]] == [("mcd", "image"), ("de", "image")]
    for row in results["results"]:
        assert all(math.isfinite(row[k]) for k in ("accuracy", "nll", "ece", "brier", "aleatoric", "epistemic"))
    log = (out / "train.log").read_text()
    assert log.count("[mcd-image-seed42] finished") == 1 and log.count("[mcd-image-seed42] epoch 1/2") == 1
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["de-image-seed42.npz", "mcd-image-seed42.npz"]
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
    assert not (out / ".luma.lock").exists()
