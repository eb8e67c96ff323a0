"""`python -m luma_noise.baselines train`: results.json, predictions, models, resuming."""

import json

import numpy as np
import pytest
import torch

from luma_noise.baselines import LumaModel
from luma_noise.baselines.__main__ import main
from luma_noise.baselines.train import run_training

ROW_KEYS = {"method", "modality", "seed", "accuracy", "aleatoric", "epistemic", "ood_auroc", "ece", "nll", "brier",
            "predictions"}


@pytest.fixture(scope="module")
def luma_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cli-cache"))


def test_train_command_writes_results_predictions_and_models(mirror, tiny_bert, luma_cache, tmp_path, capsys,
                                                             monkeypatch):
    from luma_noise.baselines.collator import BatchReader

    reads, read = [], BatchReader.__getitems__
    monkeypatch.setattr(BatchReader, "__getitems__", lambda self, indices: reads.append(self.table.column_names)
                        or read(self, indices))
    out = tmp_path / "runs"
    status = main(["train", "clean", "--set", "seed=7", "--mirror", str(mirror[0]), "--output-dir", str(out),
                   "--methods", "mcd", "de", "--modalities", "image", "text", "--text-model", tiny_bert,
                   "--max-epochs", "2", "--ensemble-size", "2", "--mc-samples", "3", "--batch-size", "64",
                   "--device", "cpu", "--cache-dir", luma_cache])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"] == "clean" and results["fields"] == {"seed": 7} and results["mode"] == "fixed"
    assert [(r["method"], r["modality"]) for r in results["results"]] == [
        ("mcd", "image"), ("mcd", "text"), ("de", "image"), ("de", "text")]
    for row in results["results"]:
        assert set(row) >= ROW_KEYS and row["seed"] == 42 and 1 <= row["best_epoch"] <= row["epochs"] <= 2
        with np.load(out / row["predictions"]) as arrays:
            for split in ("validation", "test", "ood"):
                n = len(arrays[f"{split}_labels"])
                assert arrays[f"{split}_probs"].shape == (n, 42) and arrays[f"{split}_probs"].dtype == np.float32
                assert arrays[f"{split}_labels"].dtype == np.int64
                assert arrays[f"{split}_aleatoric"].shape == arrays[f"{split}_epistemic"].shape == (n,)
            assert (arrays["ood_labels"] >= 42).all() and (arrays["test_labels"] < 42).all()
            assert "test_conflict_modality" not in arrays
            assert np.mean(arrays["test_probs"].argmax(1) == arrays["test_labels"]) == pytest.approx(row["accuracy"])
    model = LumaModel.from_pretrained(out / "models" / "de-text-seed42")
    assert model.config.method == "de" and len(model.members) == 2
    log = (out / "train.log").read_text()
    assert "[mcd-image-seed42] epoch 1/2" in log and "[de-text-seed42] finished" in log
    assert "4 runs of clean" in capsys.readouterr().out
    assert not (out / "checkpoints" / "mcd-image-seed42").exists()
    # the Trainer read its batches a batch at a time, each run's inputs only (collator.BatchReader)
    assert {tuple(names) for names in reads} == {("label", "pixel_values"), ("label", "text_embeddings")}


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_without_retraining_finished_runs(mirror, tiny_bert, luma_cache, tmp_path):
    out = tmp_path / "runs"
    kwargs = dict(mirror=str(mirror[0]), methods=("mcd", "de"), modalities=("image",), text_model=tiny_bert,
                  max_epochs=3, ensemble_size=2, mc_samples=3, batch_size=64, device="cpu", cache_dir=luma_cache)

    def interrupt(event):
        if event.get("run") == "de-image-seed42" and event.get("epoch") == 2:
            raise Interrupt  # after epoch 1's checkpoint, before epoch 2's

    with pytest.raises(Interrupt):
        run_training("clean", out, progress=interrupt, **kwargs)
    assert (out / "models" / "mcd-image-seed42" / "done.json").exists()
    assert not (out / "models" / "de-image-seed42").exists()
    finished_at = (out / "models" / "mcd-image-seed42" / "done.json").stat().st_mtime_ns

    events = []
    results = run_training("clean", out, progress=events.append, **kwargs)
    assert [e for e in events if e.get("run") == "mcd-image-seed42"] == []  # not trained again
    resumed = [e["epoch"] for e in events if e.get("run") == "de-image-seed42"]
    assert resumed[0] == 2 and resumed[-1] <= 3
    assert "[de-image-seed42] resuming from checkpoint" in (out / "train.log").read_text()
    assert (out / "models" / "mcd-image-seed42" / "done.json").stat().st_mtime_ns == finished_at
    assert [r["method"] for r in results["results"]] == ["mcd", "de"]
    assert {"finished": "de-image-seed42"} in events


def test_bad_settings_fail_before_anything_is_loaded(tmp_path):
    with pytest.raises(ValueError) as err:
        run_training("clean", tmp_path / "runs", methods=("mcd", "svm"), max_epochs=0, mode="exact")
    for name in ("methods", "max_epochs", "mode"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="RCML runs on multimodal only"):
        run_training("clean", tmp_path / "runs", methods=("rcml",), modalities=("image",))
    with pytest.raises(ValueError, match="no_such_field"):
        run_training("clean", tmp_path / "runs", fields={"no_such_field": 1})
    assert not (tmp_path / "runs").exists()


def test_faithful_mode_and_independent_ensembles_run_end_to_end(mirror, tiny_bert, luma_cache, tmp_path):
    common = dict(mirror=str(mirror[0]), modalities=("text",), text_model=tiny_bert, max_epochs=2, ensemble_size=2,
                  mc_samples=3, batch_size=64, device="cpu", cache_dir=luma_cache, progress=lambda event: None)
    faithful = run_training("clean", tmp_path / "faithful", methods=("mcd",), mode="faithful", **common)
    assert faithful["mode"] == "faithful" and faithful["results"][0]["epochs"] == 2
    assert LumaModel.from_pretrained(tmp_path / "faithful" / "models" / "mcd-text-seed42").config.mode == "faithful"
    independent = run_training("clean", tmp_path / "independent", methods=("de",), ensemble_training="independent",
                               **common)
    folder = tmp_path / "independent" / "models" / "de-text-seed42"
    model = LumaModel.from_pretrained(folder)
    assert model.config.method_config["ensemble_training"] == "independent" and len(model.members) == 2
    assert (folder / "member0" / "config.json").exists() and (folder / "member1" / "config.json").exists()
    first, second = (LumaModel.from_pretrained(folder / f"member{i}") for i in range(2))
    for name, value in model.members[1].state_dict().items():
        assert torch.equal(value, second.members[0].state_dict()[name])
    assert not torch.equal(first.members[0].state_dict()["branches.text.logits.weight"],
                           second.members[0].state_dict()["branches.text.logits.weight"])
    assert independent["results"][0]["method"] == "de"
