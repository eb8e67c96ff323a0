"""`luma demo` end to end, as a user runs it: a fresh process through the command line, offline,
with HOME and the temporary folder pointed at empty folders that must stay empty."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.support.cli_helpers import luma

STEPS = 7


def test_demo_runs_every_step_and_writes_what_it_promises(tmp_path):
    home, tmp, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "demo"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}  # the demo sets them
    env.update(HOME=str(home), TMPDIR=str(tmp))
    done = subprocess.run([sys.executable, "-m", "luma_noise.cli", "demo", "--output-dir", str(out), "--epochs", "1"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout
    for step in range(1, STEPS + 1):
        assert f"[{step}/{STEPS}]" in said
    assert said.count("a real run:") == STEPS and said.count("real command:") == STEPS
    for command in ("luma prepare clean", "luma prepare label_noise_0.3", "luma baselines sweep", "luma baselines report"):
        assert command in said
    assert "labels switched (train)" in said and "noise (test, text)" in said  # the variants' summaries
    assert "models [" in done.stderr  # the sweep bar, with its time left, on stderr

    written = json.loads((out / "demo.json").read_text())
    assert written["finished"] is True and written["epochs"] == 1
    assert f"The report: {written['report']}" in said
    for key in ("report", "results_csv"):
        assert Path(written[key]).is_file() and Path(written[key]).is_relative_to(out), key
    for path in written["report_files"]:
        assert Path(path).stat().st_size > 0, path
    report = Path(written["report"]).read_text()
    assert "MCD multimodal" in report and "RCML multimodal" in report and "`label_noise_0.3`" in report
    for path in written["results"]:
        results = json.loads(Path(path).read_text())
        assert sorted(r["method"] for r in results["results"]) == ["mcd", "rcml"]
        assert all(0 <= r["accuracy"] <= 1 and 0 <= r["ood_auroc"] <= 1 for r in results["results"])
    assert {"clean", "label_noise_0.3"} <= set(pd.read_csv(written["results_csv"]).variant)
    assert written["summaries"]["label_noise_0.3"]["labels_switched"]["train"] > 0
    assert (out / "mirror" / "manifest.json").is_file() and (out / "models" / "tiny-text" / "config.json").is_file()
    assert not any(home.iterdir()) and not any(tmp.iterdir())  # nothing outside the output folder


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    status, _, err = luma("demo", "--output-dir", tmp_path)
    assert status == 2 and "not empty" in err and "demo.json" in err
    status, _, err = luma("demo", "--output-dir", tmp_path / "new", "--epochs", "0")
    assert status == 2 and "--epochs=0" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "demo.json").write_text(json.dumps({"epochs": 1}))
    status, _, err = luma("demo", "--output-dir", earlier, "--epochs", "2")
    assert status == 2 and "--epochs 1" in err  # its finished runs were trained otherwise
