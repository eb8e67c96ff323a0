"""`report` on hand-written run folders: tables against values computed by hand, every figure,
the per-example measures (AURC, conformal sets, conflict) and the error messages."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from luma_noise.baselines import conformal, runs, scoring
from tests.support.helpers import write_report

C = 42


def _predictions(folder, name, seed, conflict=False):
    """Synthetic per-example arrays: in-distribution test less uncertain than ood; with
    `conflict`, the first half of the test examples conflicted and twice as uncertain."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("validation", 300), ("test", 300), ("ood", 100)):
        labels = rng.integers(0, C, n) if split != "ood" else rng.integers(42, 50, n)
        logits = rng.normal(size=(n, C)) + 4.0 * (np.eye(C)[labels % C] if split != "ood" else 0)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        arrays[f"{split}_probs"] = probs.astype(np.float32)
        arrays[f"{split}_labels"] = labels.astype(np.int64)
        scale = 2.0 if split == "ood" else 1.0
        arrays[f"{split}_aleatoric"] = (scale * rng.uniform(0.5, 1.0, n)).astype(np.float32)
        arrays[f"{split}_epistemic"] = (scale * rng.uniform(0.5, 1.0, n)).astype(np.float32)
    if conflict:
        flag = np.array(["image"] * 150 + [""] * 150)
        arrays["test_conflict_modality"] = flag
        arrays["test_epistemic"][:150] += 1.0  # every conflicted example above every other
    (folder / "predictions").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "predictions" / f"{name}.npz", **arrays)
    return f"predictions/{name}.npz"


def _run(root, folder, config, seed, values, fields=None, predictions=True, conflict=False):
    """Write ROOT/FOLDER/results.json with one result per (method, modality) in `values`:
    {(method, modality): (accuracy, aleatoric, epistemic, ood_auroc)}."""
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    results = []
    for (method, modality), (acc, ale, epi, auroc) in values.items():
        name = f"{method}-{modality}-seed{seed}"
        row = {"method": method, "modality": modality, "seed": seed, "accuracy": acc,
               "aleatoric": ale, "epistemic": epi, "ood_auroc": auroc, "ece": 0.1, "nll": 1.0, "brier": 0.5}
        if predictions:
            row["predictions"] = _predictions(path, name, seed, conflict)
        results.append(row)
    (path / "results.json").write_text(json.dumps({"config": config, "fields": fields or {}, "mode": "fixed",
                                                   "luma_noise_version": "0.1.0", "results": results}))


MCD_IMAGE = ("mcd", "image")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    _run(root, "clean/seed-42", "clean", 42, {MCD_IMAGE: (0.8, 1.0, 0.5, 0.6), ("rcml", "multimodal"): (0.9, 2.0, 0.4, 0.9)})
    _run(root, "clean/seed-43", "clean", 43, {MCD_IMAGE: (0.9, 1.2, 0.7, 0.7), ("rcml", "multimodal"): (0.9, 2.0, 0.4, 0.9)})
    _run(root, "low_diversity/seed-42", "low_diversity", 42, {MCD_IMAGE: (0.7, 1.1, 0.5, 0.6)})
    _run(root, "low_diversity/seed-43", "low_diversity", 43, {MCD_IMAGE: (0.95, 1.5, 0.7, 0.6)})
    _run(root, "label_noise_0.1/seed-44", "label_noise_0.1", 44, {MCD_IMAGE: (0.7, 1.3, 0.6, 0.6)})
    _run(root, "conflict/seed-42", "conflict", 42, {MCD_IMAGE: (0.7, 1.0, 0.6, 0.6)}, conflict=True)
    _run(root, "sample_noise-image/seed-42", "sample_noise", 42, {MCD_IMAGE: (0.6, 1.5, 0.5, 0.6)},
         fields={"audio_noise_ratio": 0.0, "text_noise_ratio": 0.0, "mirror": "/m"})
    # a user's own method: results.json only, no predictions
    _run(root, "mine/clean", "clean", 42, {("mymethod", "multimodal"): (0.5, 0.1, 0.2, 0.8)}, predictions=False)
    return root


@pytest.fixture(scope="module")
def written(sweep_dir, tmp_path_factory):
    return write_report(sweep_dir, tmp_path_factory.mktemp("report"))


def test_relative_changes_and_mean_std_by_hand(written):
    table = pd.read_csv(written / "results.csv")
    ld = table[(table.variant == "low_diversity") & (table.method == "mcd") & (table.modality == "image")]
    ale = ld[ld.measure == "aleatoric_rel_change"].set_index("seed").value
    # paired by seed: (1.1 - 1.0) / 1.0 and (1.5 - 1.2) / 1.2
    assert ale[42] == pytest.approx(0.1) and ale[43] == pytest.approx(0.25)
    acc = ld[ld.measure == "accuracy_change"].set_index("seed").value
    assert acc[42] == pytest.approx(-0.1) and acc[43] == pytest.approx(0.05)
    assert ld[ld.measure == "aleatoric_rel_change"].paper.iloc[0] == pytest.approx(-0.1573)
    text = (written / "report.md").read_text()
    # mean 0.175, sample std 0.15 / sqrt(2) = 0.106; paper -15.73 %; difference +33.2 points
    assert "| MCD image | 2 | +17.5 ± 10.6 % | -15.7 % | +33.2 pt |" in text
    # accuracy change: mean -0.025, std 0.106; paper +0.058; difference -0.083
    assert "-0.025 ± 0.106 | +0.058 | -0.083 |" in text
    # clean absolute: aleatoric (1.0, 1.2) -> 1.100 ± 0.141 beside the paper's 1.00
    assert "| MCD image | 2 | 1.100 ± 0.141 | 1.000 | +0.100 |" in text
    # a variant seed without a clean seed partner is compared with the clean mean: (1.3 - 1.1) / 1.1
    ln = table[(table.variant == "label_noise_0.1") & (table.measure == "aleatoric_rel_change")]
    assert ln.value.iloc[0] == pytest.approx(0.2 / 1.1)


def test_user_method_and_variants(written):
    text = (written / "report.md").read_text()
    assert "| mymethod multimodal |" in text
    assert "mymethod-multimodal-seed42" in text.split("## Missing predictions")[1]
    assert "`sample_noise:image`" in text and "Per-modality sample noise" in text
    table = pd.read_csv(written / "results.csv")
    assert set(table.variant) == {"clean", "low_diversity", "label_noise_0.1", "conflict", "sample_noise:image"}


def test_every_figure_is_written(written):
    names = ["figure10.png"] + [f"{kind}-{variant}.png" for kind in ("reliability", "epistemic", "selective")
                                for variant in ("clean", "low_diversity", "label_noise_0.1", "conflict", "sample_noise-image")]
    for name in names:
        with Image.open(written / name) as image:
            assert image.size[0] > 100 and image.size[1] > 100
        assert f"({name})" in (written / "report.md").read_text()


def test_conflict_and_conformal_measures(written):
    table = pd.read_csv(written / "results.csv")
    conflict = table[(table.variant == "conflict")].set_index("measure").value
    assert conflict["conflict_epistemic_auroc"] == pytest.approx(1.0)
    assert conflict["conflict_epistemic_conflicted"] > conflict["conflict_epistemic_other"] + 0.9
    coverage = table[table.measure == "conformal_coverage"].value
    assert len(coverage) == 9 and coverage.between(0.8, 1.0).all()
    assert "### Conflict (`conflict`)" in (written / "report.md").read_text()


def test_aurc_and_reliability_by_hand():
    # kept in order 0.1, 0.2, 0.3, 0.4: correct, correct, correct, wrong
    coverage, risk = scoring.risk_coverage(np.array([0.1, 0.4, 0.2, 0.3]), np.array([True, False, True, True]))
    assert list(coverage) == [0.25, 0.5, 0.75, 1.0] and list(risk) == [0, 0, 0, 0.25]
    assert risk.mean() == pytest.approx(0.0625)
    probs = np.array([[0.95, 0.05], [0.92, 0.08], [0.55, 0.45]])
    conf, acc, count = scoring.reliability(probs, np.array([0, 1, 0]), bins=10)
    assert count[9] == 2 and acc[9] == 0.5 and conf[9] == pytest.approx(0.935)
    assert count[5] == 1 and acc[5] == 1.0 and np.isnan(acc[0])


def test_conformal_coverage_within_binomial_error():
    rng = np.random.default_rng(0)
    n_cal, n_test, classes = 2000, 5000, 10
    probs = rng.dirichlet(np.full(classes, 0.5), size=n_cal + n_test)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    cov, size = conformal.coverage_and_size(probs[:n_cal], labels[:n_cal], probs[n_cal:], labels[n_cal:], 0.9)
    # coverage given the calibration set varies with sd sqrt(0.09 / n_cal), the test draw adds 0.09 / n_test
    sd = math.sqrt(0.9 * 0.1 / n_cal + 0.9 * 0.1 / n_test)
    assert abs(cov - 0.9) < 3 * sd
    assert 1 < size < classes


def test_variant_names_round_trip():
    config, fields, folder = runs.parse_variant("sample_noise:image+text")
    assert (config, fields, folder) == ("sample_noise", {"audio_noise_ratio": 0.0}, "sample_noise-image+text")
    assert runs.variant_of(config, fields) == "sample_noise:image+text"
    assert runs.variant_of("label_noise_0.3", {"image_severity": 2}) == 'label_noise_0.3{image_severity=2}'
    with pytest.raises(ValueError, match="only for sample_noise"):
        runs.parse_variant("clean:image")
    with pytest.raises(ValueError, match="unknown config 'noisy'"):
        runs.parse_variant("noisy")


def test_bad_results_files_are_all_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps({"config": "clean", "results": [{"method": "mcd"}]}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text("{not json")
    with pytest.raises(ValueError) as err:
        runs.load_runs([tmp_path])
    message = str(err.value)
    assert "a/results.json: results[0] lacks modality, seed, accuracy" in message and "b/results.json" in message
