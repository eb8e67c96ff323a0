"""benchmarks/gpu_check.py: without CUDA it says so and exits 0 having run nothing; its
`--device cpu --quick` dry run goes through every section and writes the table as JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_check.py"


def _run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the no-GPU path does not apply")
def test_without_a_gpu_it_says_so_and_exits_cleanly(tmp_path):
    done = _run(cwd=tmp_path)
    assert done.returncode == 0 and "no GPU" in done.stdout and "--device cpu --quick" in done.stdout
    assert not list(tmp_path.iterdir())  # nothing run, nothing written


def test_quick_cpu_dry_run_goes_through_every_section(tmp_path):
    done = _run("--device", "cpu", "--quick", "--json", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / "out.json").read_text())
    sections = [row["section"] for row in table["rows"]]
    assert set(sections) == {"agreement", "throughput", "protocol"} and all(row["ok"] for row in table["rows"])
    # the CPU against itself: the agreement is exact
    assert all(" vs " in row["value"] for row in table["rows"] if row["section"] == "agreement")
    rates = {row["run"]: row["examples_per_second"] for row in table["rows"] if row["section"] == "throughput"}
    assert len(rates) == 12 and all(rate > 0 for rate in rates.values())  # 3 runs x fp32/bf16 x both layouts
    assert {"mcd-image fp32", "mcd-image fp32+channels_last", "mcd-text bf16+channels_last",
            "qmf-image+text bf16"} <= set(rates)  # QMF: the example index its loss needs
    assert any(row["run"].endswith("T=100 evaluation") and row["loop_over_vectorised"] > 0 for row in table["rows"])
    assert "section" in done.stdout and "agreement" in done.stdout


def test_full_throughput_covers_every_registered_method():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_check

    from luma_noise.baselines.methods import registry

    runs = gpu_check.throughput_runs(quick=False)
    assert runs[:9] == gpu_check.RUNS and {method for method, _ in runs} == set(registry.BUILTIN)
    assert ("edl", "image") in runs and ("qmf", "multimodal") in runs
