"""`sweep`: every config and seed into runs/<folder>/seed-<n>/, finished runs skipped, an
interrupted run resumed, one progress display; first against a stand-in `run_training` that
follows the contract (fast, exact counts), then end to end with the real one on the fixture mirror."""

import argparse
import json

import pandas as pd
import pytest

from luma_noise.baselines import report, sweep


class Interrupted(Exception):
    pass


def _fake_training(calls):
    """A run_training that follows the contract: 2 epochs per model, resumable per model."""
    def run_training(config_name, output_dir, *, fields=None, mirror=None, methods=(), modalities=(),
                     seeds=(42,), progress=None, cache_dir=None, max_epochs=2, **_):
        from pathlib import Path

        from luma_noise.baselines import rundir
        from luma_noise.baselines.train import check_run
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / "run.json").exists():  # the contract: run.json records the options
            rundir.write_json(out / "run.json", check_run(config_name, out, fields=fields, mirror=mirror,
                                                          methods=methods, modalities=modalities, seeds=seeds,
                                                          max_epochs=max_epochs, **_)[0])
        results = []
        for method in methods:
            for modality in modalities:
                if method == "rcml" and modality != "multimodal":
                    continue
                name = f"{method}-{modality}-seed{seeds[0]}"
                if not (out / f"{name}.done").exists():
                    calls.append((config_name, name))
                    for epoch in range(1, max_epochs + 1):
                        progress({"run": name, "epoch": epoch, "max_epochs": max_epochs})
                    (out / f"{name}.done").write_text("")
                    progress({"finished": name})
                results.append({"method": method, "modality": modality, "seed": seeds[0], "accuracy": 0.5,
                                "aleatoric": 1.0, "epistemic": 0.5, "ood_auroc": 0.5})
        data = {"config": config_name, "fields": fields, "mode": "fixed", "results": results}
        (out / "results.json").write_text(json.dumps(data))
        return data
    return run_training


@pytest.fixture
def fake_train(monkeypatch):
    from luma_noise.baselines import train

    calls = []
    monkeypatch.setattr(train, "run_training", _fake_training(calls))
    return calls


OPTIONS = dict(methods=("mcd", "rcml"), modalities=("image", "multimodal"), max_epochs=2, show_progress=False)


def test_skips_finished_and_resumes_interrupted_runs(tmp_path, fake_train):
    configs, seeds = ["clean", "sample_noise:image"], [42, 43]

    def stop_at_second_run(event):  # killed after the first model of the second run finished
        if event.get("finished") == "mcd-image-seed42" and len(fake_train) == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        sweep.run_sweep(tmp_path, configs, seeds, on_event=stop_at_second_run, **OPTIONS)
    assert (tmp_path / "clean/seed-42/sweep.json").is_file()
    assert not (tmp_path / "sample_noise-image/seed-42/sweep.json").exists()
    del fake_train[:]
    summary = sweep.run_sweep(tmp_path, configs, seeds, **OPTIONS)
    assert summary["skipped"] == 1 and summary["trained"] == 3 and summary["runs"] == 4
    # resumed: the interrupted run trains only its two unfinished models; the finished run not at all
    assert [c for c in fake_train if c[0] == "sample_noise" and c[1].endswith("seed42")] == [
        ("sample_noise", "mcd-multimodal-seed42"), ("sample_noise", "rcml-multimodal-seed42")]
    assert ("clean", "mcd-image-seed42") not in fake_train
    done = json.loads((tmp_path / "sample_noise-image/seed-43/sweep.json").read_text())
    assert done["fields"] == {"audio_noise_ratio": 0.0, "text_noise_ratio": 0.0} and done["seed"] == 43
    del fake_train[:]
    assert sweep.run_sweep(tmp_path, configs, seeds, **OPTIONS)["trained"] == 0 and fake_train == []
    # a finished run asked for with other options is an error, not a silent mix
    with pytest.raises(ValueError, match="max_epochs"):
        sweep.run_sweep(tmp_path, configs, seeds, **{**OPTIONS, "max_epochs": 3})


def test_command_line_progress_and_report(tmp_path, fake_train, capsys):
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    sweep.add_parser(subparsers)
    report.add_parser(subparsers)
    args = parser.parse_args(["sweep", "--output-dir", str(tmp_path / "runs"), "--configs", "clean", "conflict",
                              "--seeds", "1", "--methods", "mcd", "--modalities", "image", "--max-epochs", "2",
                              "--set", "image_severity=2"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "2 runs (0 already finished, 2 trained)" in captured.out
    assert "sweep 2/2 runs" in captured.err and "sweep 1/2 runs, conflict/seed-1 mcd-image-seed1 epoch 2/2" in captured.err
    assert json.loads((tmp_path / "runs/conflict/seed-1/results.json").read_text())["fields"] == {"image_severity": 2}
    args = parser.parse_args(["report", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "report")])
    assert args.func(args) == 0
    assert "`conflict{image_severity=2}`" in (tmp_path / "report/report.md").read_text()
    table = pd.read_csv(tmp_path / "report/results.csv")  # changes against clean{image_severity=2}
    change = table[(table.variant == "conflict{image_severity=2}") & (table.measure == "aleatoric_rel_change")]
    assert change.value.tolist() == [0.0]


def test_bad_configs_and_fields_all_named_before_training(tmp_path, fake_train, capsys):
    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers())
    args = parser.parse_args(["sweep", "--output-dir", str(tmp_path), "--configs", "clean", "noisy", "conflict:image",
                              "--set", "colour=1"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "unknown config 'noisy'" in err and "'conflict:image'" in err and "['colour']" in err
    assert fake_train == [] and not any(tmp_path.iterdir())


def test_tiny_sweep_end_to_end_on_the_fixture_mirror(tmp_path, mirror, cache_dir, tiny_bert, monkeypatch):
    """Two configs x two seeds with the real run_training: killed in the second run, resumed,
    then skipped; model inputs computed once per config; the report reads the result."""
    from luma_noise.baselines.collator import LumaCollator

    featurized, featurize = [], LumaCollator.featurize
    monkeypatch.setattr(LumaCollator, "featurize", lambda self, batch, *a: featurized.append(len(batch["label"]))
                        or featurize(self, batch, *a))
    runs_dir = tmp_path / "runs"
    options = dict(mirror=str(mirror[0]), cache_dir=cache_dir, methods=("mcd", "de"), modalities=("text",),
                   text_model=tiny_bert, max_epochs=1, ensemble_size=2, mc_samples=2, batch_size=32,
                   device="cpu", show_progress=False)
    finished = []

    def kill_in_second_run(event):  # run order: clean/seed-42, conflict/seed-42, ...; 2 models a run
        if "finished" in event:
            finished.append(event["finished"])
            if len(finished) == 3:
                raise Interrupted

    with pytest.raises(Interrupted):
        sweep.run_sweep(runs_dir, ["clean", "conflict"], [42, 43], on_event=kill_in_second_run, **options)
    assert (runs_dir / "clean/seed-42/sweep.json").is_file() and not (runs_dir / "conflict/seed-42/sweep.json").exists()
    first_call = sum(featurized)  # clean and conflict, each featurised once
    events = []
    summary = sweep.run_sweep(runs_dir, ["clean", "conflict"], [42, 43], on_event=events.append, **options)
    assert (summary["skipped"], summary["trained"]) == (1, 3)
    # the model finished before the kill is not trained again
    assert not [e for e in events if e.get("run") == finished[-1] and "epoch" in e]
    for folder in ("clean/seed-42", "clean/seed-43", "conflict/seed-42", "conflict/seed-43"):
        results = json.loads((runs_dir / folder / "results.json").read_text())["results"]
        assert sorted((r["method"], r["modality"]) for r in results) == [("de", "text"), ("mcd", "text")]
        assert all(0 <= r["accuracy"] <= 1 and r["aleatoric"] >= 0 for r in results)
    assert sweep.run_sweep(runs_dir, ["clean", "conflict"], [42, 43], **options)["trained"] == 0
    assert first_call > 0 and sum(featurized) == first_call  # seed 43 and the resumed run reuse the inputs
    out = tmp_path / "report"
    report.write_report([runs_dir], out)
    table = pd.read_csv(out / "results.csv")
    assert set(table[table.measure == "conflict_epistemic_auroc"].variant) == {"conflict"}
    assert (out / "selective-conflict.png").is_file() and (out / "figure10.png").is_file()
