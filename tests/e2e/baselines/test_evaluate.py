"""`evaluate`: withheld modalities (dropped from the fusion, checked against the fusion computed by
hand) and test-time shift (splits built by the builder), on a tiny run trained on the fixture mirror."""

import json

import numpy as np
import pytest
import torch

from luma_noise.baselines import LumaModel, LumaModelConfig, losses, uncertainty, withhold
from luma_noise.baselines.__main__ import main


RUN_FIELDS = {"text_noises": ["KeyboardNoise", "SpellingNoise", "OCRNoise"]}  # no back-translation models


def _inputs(batch=4, text_dim=16):
    g = torch.Generator().manual_seed(0)
    return {"pixel_values": torch.rand(batch, 3, 32, 32, generator=g),
            "audio_features": torch.rand(batch, 1, 128, 128, generator=g),
            "text_embeddings": torch.rand(batch, text_dim, generator=g)}


def test_withholding_from_averaging_fusion_equals_the_remaining_views_fused_by_hand():
    torch.manual_seed(0)
    model = LumaModel(LumaModelConfig(method="de", ensemble_size=2, text_dim=16, softmax_samples=5)).eval()
    inputs = _inputs()
    with torch.no_grad():
        got = withhold.withheld(model, ("audio",))(**inputs).logits
        by_hand = torch.stack([torch.stack([member.branches[m](inputs[key])[0]
                                            for m, key in (("image", "pixel_values"), ("text", "text_embeddings"))]).mean(0)
                               for member in model.members]).mean(0)
        full = model(**inputs).logits
    torch.testing.assert_close(got, by_hand)
    assert not torch.allclose(got, full)  # the audio view did count before
    assert model.config.modalities == ["image", "audio", "text"]  # the trained model is untouched
    # the withheld branch is not run: without its input the model still predicts
    with torch.no_grad():
        withhold.withheld(model, ("audio",))(pixel_values=inputs["pixel_values"], text_embeddings=inputs["text_embeddings"])


def test_withholding_from_evidential_fusion_averages_the_remaining_evidence():
    torch.manual_seed(0)
    model = LumaModel(LumaModelConfig(method="rcml", text_dim=16)).eval()
    inputs = _inputs()
    with torch.no_grad():
        out = withhold.withheld(model, ("image", "text"))(**inputs)
        evidence = torch.nn.functional.softplus(model.members[0].branches["audio"](inputs["audio_features"])[0])
        probs, aleatoric, epistemic = uncertainty.dirichlet_uncertainty(losses.fuse_evidence([evidence]) + 1)
    torch.testing.assert_close(out.logits.exp(), probs)
    torch.testing.assert_close(out.epistemic, epistemic)
    with pytest.raises(ValueError, match="at least one must remain"):
        withhold.withheld(model, ("image", "audio", "text"))
    with pytest.raises(ValueError, match="expected modalities among"):
        withhold.parse("image+smell")


@pytest.fixture(scope="module")
def trained(mirror, tiny_bert, tmp_path_factory):
    """One tiny run of `clean`: DE image and multimodal, RCML multimodal (1 epoch, 2 members), with
    the text noises that need no models (so that `--shift text` runs offline)."""
    from luma_noise.baselines.train import run_training

    cache, out = tmp_path_factory.mktemp("eval-cache"), tmp_path_factory.mktemp("eval-run") / "clean"
    run_training("clean", out, fields=RUN_FIELDS, mirror=str(mirror[0]), methods=("de", "rcml"),
                 modalities=("image", "multimodal"),
                 text_model=tiny_bert, max_epochs=1, ensemble_size=2, mc_samples=2, batch_size=64, device="cpu",
                 cache_dir=str(cache), progress=lambda event: None)
    return out, str(cache)


def test_evaluate_command_withholds_shifts_and_resumes(trained, mirror, tmp_path, capsys, monkeypatch):
    from luma_noise.baselines import MethodModel

    run_dir, cache = trained
    argv = ["evaluate", str(run_dir), "--withhold", "audio", "image+text", "--shift", "image",
            "--image-severities", "5", "--mirror", str(mirror[0]), "--cache-dir", cache, "--device", "cpu"]
    layouts, lay_out = [], MethodModel.use_memory_format
    monkeypatch.setattr(MethodModel, "use_memory_format", lambda self, f: layouts.append(f) or lay_out(self, f))
    assert main(argv) == 0
    # every model evaluated in its run's layout (run.json: channels_last, train's default)
    assert json.loads((run_dir / "run.json").read_text())["memory_format"] == "channels_last"
    assert len(layouts) == 7 and set(layouts) == {"channels_last"}
    withheld = sorted(p.name for p in (run_dir / "evaluations" / "withhold").glob("*.json"))
    assert withheld == ["de-multimodal-seed42--audio.json", "de-multimodal-seed42--image+text.json",
                        "rcml-multimodal-seed42--audio.json", "rcml-multimodal-seed42--image+text.json"]
    shifted = sorted(p.name for p in (run_dir / "evaluations" / "shift").glob("*.json"))
    assert len(shifted) == 3 and "de-image-seed42--image=5.json" in shifted
    row = json.loads((run_dir / "evaluations" / "withhold" / "rcml-multimodal-seed42--image+text.json").read_text())
    assert row["withheld"] == "image+text" and 0 <= row["accuracy"] <= 1 and row["nll"] > 0
    assert "7 evaluations (0 already done)" in capsys.readouterr().out
    # resumed: nothing is evaluated again, files untouched
    before = {p: p.stat().st_mtime_ns for p in (run_dir / "evaluations").rglob("*.json")}
    assert main(argv) == 0
    assert "0 evaluations (7 already done)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "evaluations").rglob("*.json")} == before


def test_shifted_split_is_the_builders_test_split_of_that_config(trained, mirror, tmp_path):
    """The shift evaluation's numbers equal an evaluation on `luma_noise.load` of the config with
    image noise on the test split only, built from scratch in another cache; its train split is
    the clean one byte for byte, its test split is not."""
    import luma_noise
    from luma_noise.baselines import LumaCollator, rundir
    from luma_noise.baselines.metrics import classification_metrics, predict
    from luma_noise.baselines.evaluations import shift_fields

    run_dir, cache = trained
    row = json.loads((run_dir / "evaluations" / "shift" / "de-image-seed42--image=5.json").read_text())
    fields = shift_fields("image", 5)
    assert row["fields"] == fields
    shifted = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=str(tmp_path / "a"), **RUN_FIELDS, **fields)
    clean = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache, **RUN_FIELDS)  # the run's own
    assert shifted["train"]["image"] == clean["train"]["image"]
    assert shifted["test"]["image"] != clean["test"]["image"]
    model = LumaModel.from_pretrained(run_dir / "models" / "de-image-seed42").eval()
    purpose = (42, "evaluate", "shift", "image=5", "test")  # the evaluation noise `evaluate` draws
    with rundir.seeded_torch(*purpose):
        arrays = predict(model, shifted["test"], LumaCollator(text_model=None, modalities=("image",)), 128,
                         generator=rundir.torch_generator(*purpose))
    again = classification_metrics(arrays["probs"], arrays["labels"], arrays["aleatoric"], arrays["epistemic"])
    assert row["accuracy"] == pytest.approx(again["accuracy"]) and row["nll"] == pytest.approx(again["nll"], rel=1e-5)
    assert np.isfinite(row["epistemic"])


def test_text_shift_through_the_command_is_the_builders_noised_test_split(trained, mirror, tiny_bert, tmp_path):
    """`evaluate --shift text` on the fixture mirror: the corrupted split is the builder's test split
    of the run's config with text noise on test only (built again in another cache: its texts differ
    from the clean ones, its train split does not), re-embedded by the run's text model, and the
    fused model's numbers equal an evaluation of that split done here by hand."""
    import luma_noise
    from luma_noise.baselines import LumaCollator, rundir
    from luma_noise.baselines.evaluations import shift_fields
    from luma_noise.baselines.metrics import classification_metrics, predict

    run_dir, cache = trained
    assert main(["evaluate", str(run_dir), "--shift", "text", "--text-probabilities", "1", "--mirror", str(mirror[0]),
                 "--cache-dir", cache, "--device", "cpu"]) == 0
    names = sorted(p.name for p in (run_dir / "evaluations" / "shift").glob("*--text=1.json"))
    assert names == ["de-image-seed42--text=1.json", "de-multimodal-seed42--text=1.json",
                     "rcml-multimodal-seed42--text=1.json"]
    row = json.loads((run_dir / "evaluations" / "shift" / "de-multimodal-seed42--text=1.json").read_text())
    fields = shift_fields("text", 1.0)
    assert row["fields"] == fields and row["shifted"] == "text" and row["strength"] == "text=1"
    shifted = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=str(tmp_path / "b"), **RUN_FIELDS, **fields)
    clean = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache, **RUN_FIELDS)
    assert shifted["train"]["text"] == clean["train"]["text"]
    changed = sum(a != b for a, b in zip(shifted["test"]["text"], clean["test"]["text"]))
    assert changed > len(clean["test"]) // 2  # probability 1: (nearly) every text noised
    assert shifted["test"]["image"] == clean["test"]["image"]  # only the text is corrupted
    model = LumaModel.from_pretrained(run_dir / "models" / "de-multimodal-seed42").eval()
    purpose = (42, "evaluate", "shift", "text=1", "test")
    collator = LumaCollator(text_model=tiny_bert, modalities=("image", "audio", "text"))
    with rundir.seeded_torch(*purpose):
        arrays = predict(model, shifted["test"], collator, 128, generator=rundir.torch_generator(*purpose))
    again = classification_metrics(arrays["probs"], arrays["labels"], arrays["aleatoric"], arrays["epistemic"])
    assert row["accuracy"] == pytest.approx(again["accuracy"]) and row["nll"] == pytest.approx(again["nll"], rel=1e-5)
    # the image model sees no text: its numbers are those of the clean test split (same evaluation noise)
    image_row = json.loads((run_dir / "evaluations" / "shift" / "de-image-seed42--text=1.json").read_text())
    image_model = LumaModel.from_pretrained(run_dir / "models" / "de-image-seed42").eval()
    with rundir.seeded_torch(*purpose):
        arrays = predict(image_model, clean["test"], LumaCollator(text_model=None, modalities=("image",)), 128,
                         generator=rundir.torch_generator(*purpose))
    assert image_row["nll"] == pytest.approx(classification_metrics(arrays["probs"], arrays["labels"], arrays["aleatoric"],
                                                              arrays["epistemic"])["nll"], rel=1e-5)


def _spy_figures(monkeypatch) -> dict:
    """{file name: [(panel title, [(series label, y values)])]} of every figure the report saves."""
    from matplotlib.container import BarContainer

    from luma_noise.baselines import plots

    saved, save = {}, plots._save

    def spy(fig, path):
        def series(ax):  # bars (their heights) and error-bar lines (their y values), by label
            return [(c.get_label(), [bar.get_height() for bar in c] if isinstance(c, BarContainer) else c.lines[0].get_ydata())
                    for c in ax.containers if isinstance(c, BarContainer) or c.lines[0] is not None]
        saved[path.name] = [(ax.get_title(), series(ax), [t.get_text() for t in ax.get_xticklabels()])
                            for ax in fig.axes if ax.get_visible()]
        save(fig, path)
    monkeypatch.setattr(plots, "_save", spy)
    return saved


def test_report_shows_missing_modality_and_shift_curves(trained, mirror, tmp_path, monkeypatch):
    import pandas as pd
    from PIL import Image

    from luma_noise.baselines import evaluation_report, report

    run_dir, cache = trained
    if not (run_dir / "evaluations" / "withhold").exists():  # this test alone: evaluate first
        assert main(["evaluate", str(run_dir), "--withhold", "audio", "image+text", "--shift", "image",
                     "--image-severities", "5", "--mirror", str(mirror[0]), "--cache-dir", cache]) == 0
    out, saved = tmp_path / "report", _spy_figures(monkeypatch)
    report.write_report([run_dir], out)
    text = (out / "report.md").read_text()
    section = text.split("## Missing modality at test time")[1].split("## Test-time shift")[0]
    assert "| RCML multimodal | image+text | 1 |" in section and "| DE multimodal | audio | 1 |" in section
    # a figure per fused method, linked from its section
    assert "(withhold-de.png)" in section and "(withhold-rcml.png)" in section
    table = pd.read_csv(out / "results.csv")
    variant = table.variant.iloc[0]  # clean{text_noises=[...]}: the run's fields name it
    shift_de, shift_rcml = (f"shift-{evaluation_report._slug(variant)}-{m}.png" for m in ("de", "rcml"))
    assert f", de]({shift_de})" in text and f", rcml]({shift_rcml})" in text
    for name in ("withhold-de.png", "withhold-rcml.png", shift_de, shift_rcml):
        with Image.open(out / name) as image:
            assert image.size[0] > 200 and image.size[1] > 200
    results = {(r["method"], r["modality"]): r for r in json.loads((run_dir / "results.json").read_text())["results"]}
    row = json.loads((run_dir / "evaluations" / "withhold" / "de-multimodal-seed42--audio.json").read_text())
    change = table[(table.measure == "withhold[audio]_accuracy_change") & (table.method == "de")].value
    assert change.iloc[0] == pytest.approx(row["accuracy"] - results[("de", "multimodal")]["accuracy"])
    assert (table.measure == "shift[image=5]_ece").sum() == 3
    assert (table.measure == "shift[image=5]_ood_epistemic").sum() == 3

    # the withhold figure: one panel per measure, x = the withheld views, a bar series per variant
    panels = saved["withhold-de.png"]
    assert [title for title, _, _ in panels] == ["Δ accuracy", "Δ NLL", "Δ ECE", "Δ aleatoric (relative)",
                                                 "Δ epistemic (relative)"]
    title, series, ticks = panels[0]
    assert ticks == ["−audio", "−image+text"] and [name for name, _ in series] == [variant]
    assert series[0][1][0] == pytest.approx(row["accuracy"] - results[("de", "multimodal")]["accuracy"])
    # the shift figure: test (solid) and ood (dashed) series per model, and the OOD AUROC, for each corrupted modality
    panels = {title: dict(series) for title, series, _ in saved[shift_de]}
    assert set(panels) >= {"image corrupted: accuracy", "image corrupted: ECE", "image corrupted: aleatoric",
                           "image corrupted: epistemic", "image corrupted: OOD AUROC (epistemic)"}
    epistemic = panels["image corrupted: epistemic"]
    assert set(epistemic) == {"DE image (test)", "DE image (ood)", "DE multimodal (test)", "DE multimodal (ood)"}
    shifted = json.loads((run_dir / "evaluations" / "shift" / "de-multimodal-seed42--image=5.json").read_text())
    as_trained = np.load(run_dir / "predictions" / "de-multimodal-seed42.npz")["ood_epistemic"].mean()
    assert list(epistemic["DE multimodal (ood)"]) == pytest.approx([as_trained, shifted["ood_epistemic"]])
    assert list(epistemic["DE multimodal (test)"]) == pytest.approx([results[("de", "multimodal")]["epistemic"],
                                                                     shifted["epistemic"]])
    auroc = panels["image corrupted: OOD AUROC (epistemic)"]["DE multimodal (test vs ood)"]
    assert list(auroc) == pytest.approx([results[("de", "multimodal")]["ood_auroc"], shifted["ood_auroc"]])


def test_sweep_evaluates_every_run_with_withheld_views_and_names_bad_ones_first(tmp_path, monkeypatch, capsys):
    import argparse

    from tests.e2e.baselines.test_sweep import _fake_training

    from luma_noise.baselines import evaluations, sweep, train

    trained, evaluated = [], []
    monkeypatch.setattr(train, "run_training", _fake_training(trained))
    monkeypatch.setattr(evaluations, "evaluate_runs", lambda folders, **kw: evaluated.append((folders, kw)))
    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers())
    base = ["sweep", "--output-dir", str(tmp_path), "--configs", "clean", "conflict", "--seeds", "1",
            "--methods", "mcd", "--modalities", "multimodal", "--max-epochs", "1"]
    args = parser.parse_args(base + ["--withhold", "audio", "smell"])
    assert args.func(args) == 2 and "'smell'" in capsys.readouterr().err
    assert trained == [] and evaluated == []
    args = parser.parse_args(base + ["--withhold", "audio", "image+text"])
    assert args.func(args) == 0
    assert evaluated == [([str(tmp_path / "clean/seed-1"), str(tmp_path / "conflict/seed-1")],
                          {"withhold": ["audio", "image+text"], "mirror": None, "cache_dir": None,
                           "batch_size": 128, "device": None})]


def test_withholding_from_a_registered_method_fuses_the_remaining_views_with_its_own_fusion():
    from luma_noise.baselines.methods import MethodConfig, MethodModel

    torch.manual_seed(0)
    model = MethodModel(MethodConfig(method="tmc", modalities=("image", "audio", "text"), text_dim=16)).eval()
    inputs = _inputs()
    with torch.no_grad():
        out = withhold.withheld(model, ("audio",))(**inputs)
        views = {m: v for m, v in model.views(inputs).items() if m != "audio"}
        by_hand = model.method.predict(views, model.extra)
    torch.testing.assert_close(out.logits.exp(), by_hand.probs.clamp(min=1e-30))
    assert model.config.modalities == ["image", "audio", "text"]
