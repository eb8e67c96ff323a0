"""The disentanglement scorecard on hand-written run folders whose effects are known: as expected,
opposite, no detectable change, leakage, one seed; through `report` (report.md, results.csv,
scorecard.csv, scorecard.png)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from luma_noise.baselines import report, scorecard
from tests.support.helpers import write_report

MODEL = ("mcd", "image")
CLEAN = {42: (1.0, 0.5), 43: (1.2, 0.6), 44: (0.8, 0.4)}  # seed -> (aleatoric, epistemic)
T = 4.302652729911275  # t(0.975, 2 degrees of freedom), from a table


def _write(root, folder, config, seed, aleatoric, epistemic, fields=None, arrays=None):
    """ROOT/FOLDER/results.json with one mcd-image model, and its predictions if `arrays`."""
    path = root / folder
    path.mkdir(parents=True)
    row = {"method": "mcd", "modality": "image", "seed": seed, "accuracy": 0.5, "aleatoric": aleatoric,
           "epistemic": epistemic, "ood_auroc": 0.5}
    if arrays:
        (path / "predictions").mkdir()
        np.savez(path / "predictions" / "p.npz", **{k: np.asarray(v, dtype=np.float32) if k != "test_conflict_modality"
                                                    else np.asarray(v) for k, v in arrays.items()})
        row["predictions"] = "predictions/p.npz"
    (path / "results.json").write_text(json.dumps({"config": config, "fields": fields or {}, "results": [row]}))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed, (ale, epi) in CLEAN.items():
        # OOD: epistemic 1.5 × the test split's (+50 %), aleatoric the same on both splits
        _write(root, f"clean/seed-{seed}", "clean", seed, ale, epi, arrays={
            "test_aleatoric": [ale] * 4, "ood_aleatoric": [ale] * 3,
            "test_epistemic": [epi] * 4, "ood_epistemic": [1.5 * epi] * 3})
        # label noise: aleatoric = clean × (1 + k p), k = 1.8, 2.0, 2.2: effect k × 0.5 = 0.9, 1.0, 1.1
        k = {42: 1.8, 43: 2.0, 44: 2.2}[seed]
        for p in (0.2, 0.4):
            _write(root, f"label_noise_{p}/seed-{seed}", f"label_noise_{p}", seed, ale * (1 + k * p), epi)
        # reduced diversity: epistemic falls by 25, 30, 35 % (opposite); aleatoric +10, -10, 0 % (no change)
        _write(root, f"low_diversity/seed-{seed}", "low_diversity", seed,
               ale * {42: 1.1, 43: 0.9, 44: 1.0}[seed], epi * {42: 0.75, 43: 0.7, 44: 0.65}[seed])
        # image noise alone: aleatoric +50, +60, +40 % (as expected), epistemic +20, +25, +15 % (leakage)
        _write(root, f"sample_noise-image/seed-{seed}", "sample_noise", seed,
               ale * {42: 1.5, 43: 1.6, 44: 1.4}[seed], epi * {42: 1.2, 43: 1.25, 44: 1.15}[seed],
               fields={"audio_noise_ratio": 0.0, "text_noise_ratio": 0.0})
    # all modalities noised: one seed only
    _write(root, "sample_noise/seed-42", "sample_noise", 42, 2.0, 0.5)
    # conflict: conflicted examples twice as uncertain (aleatoric), epistemic unchanged; two seeds
    for seed in (42, 43):
        _write(root, f"conflict/seed-{seed}", "conflict", seed, 1.0, 0.5, arrays={
            "test_aleatoric": [2.0, 2.0, 1.0, 1.0], "test_epistemic": [0.5] * 4,
            "test_conflict_modality": ["audio", "text", "", ""]})
    return root


@pytest.fixture(scope="module")
def written(runs_dir, tmp_path_factory):
    return write_report(runs_dir, tmp_path_factory.mktemp("report"))


def _card(written):
    table = pd.read_csv(written / "scorecard.csv")
    return {(r["factor"], r["variant"], r["measure"]): r for r in table.to_dict("records")}


def test_effects_intervals_and_verdicts(written):
    card = _card(written)
    label = card[("label noise", "label_noise", "aleatoric")]
    # per seed 0.9, 1.0, 1.1: mean 1.0, sample std 0.1, half width t · 0.1 / √3
    assert label["n"] == 3 and label["mean"] == pytest.approx(1.0)
    assert label["low"] == pytest.approx(1.0 - T * 0.1 / math.sqrt(3)) and label["high"] == pytest.approx(1.0 + T * 0.1 / math.sqrt(3))
    assert label["verdict"] == "as expected"
    assert card[("label noise", "label_noise", "epistemic")]["verdict"] == "no detectable change"
    assert card[("reduced diversity", "low_diversity", "epistemic")]["verdict"] == "opposite"
    assert card[("reduced diversity", "low_diversity", "epistemic")]["mean"] == pytest.approx(-0.3)
    assert card[("reduced diversity", "low_diversity", "aleatoric")]["verdict"] == "no detectable change"
    assert card[("sample noise", "sample_noise:image", "aleatoric")]["verdict"] == "as expected"
    assert card[("sample noise", "sample_noise:image", "epistemic")]["verdict"] == "leakage: rises"
    one = card[("sample noise", "sample_noise", "aleatoric")]
    assert one["n"] == 1 and one["mean"] == pytest.approx(1.0) and one["verdict"] == "no verdict (one seed)"
    assert math.isnan(one["low"]) and math.isnan(one["high"])
    assert card[("OOD", "clean", "epistemic")]["mean"] == pytest.approx(0.5)
    assert card[("OOD", "clean", "epistemic")]["verdict"] == "as expected"
    assert card[("OOD", "clean", "aleatoric")]["verdict"] == "no detectable change"
    assert card[("conflict", "conflict", "aleatoric")]["mean"] == pytest.approx(1.0)
    assert card[("conflict", "conflict", "aleatoric")]["verdict"] == "rises"


def test_report_table_csv_rows_and_figure(written):
    text = (written / "report.md").read_text()
    section = text.split("## Disentanglement scorecard")[1].split("## Missing modality")[0]
    assert "Not measured" not in section and "![scorecard](scorecard.png)" in section
    assert ("| sample noise | `sample_noise` | 1 | ↑ | +100.0 % (no interval with one seed) | ? no verdict (one seed) | "
            "unchanged | +0.0 % (no interval with one seed) | ? no verdict (one seed) |") in section
    half = 100 * T * 0.1 / math.sqrt(3)
    assert f"| label noise | `label_noise` | 3 | ↑ | +100.0 % [{100 - half:+.1f}, {100 + half:+.1f}] | ✓ as expected |" in section
    assert "✗ opposite" in section and "! leakage: rises" in section
    table = pd.read_csv(written / "results.csv")
    rows = table[table.measure == "scorecard_label_noise_aleatoric"].set_index("seed").value
    assert rows.to_dict() == pytest.approx({42: 0.9, 43: 1.0, 44: 1.1})
    assert table[table.measure == "scorecard_ood_epistemic"].variant.unique().tolist() == ["clean"]
    with Image.open(written / "scorecard.png") as image:
        assert image.size[0] > 150 and image.size[1] > 150


def test_report_says_which_runs_would_enable_it(runs_dir, tmp_path):
    out = tmp_path / "report"
    report.write_report([runs_dir / "low_diversity", runs_dir / "clean"], out)
    section = (out / "report.md").read_text().split("## Disentanglement scorecard")[1].split("## Files")[0]
    assert "Not measured, label noise: needs clean and label_noise_0.1" in section
    assert "Not measured, conflict: needs conflict runs" in section
    assert "Not measured, reduced diversity" not in section and "Not measured, OOD" not in section
    # unpaired seeds are left out rather than compared across seeds
    only_43 = tmp_path / "report43"
    report.write_report([runs_dir / "low_diversity" / "seed-42", runs_dir / "clean" / "seed-43"], only_43)
    assert "Not measured, reduced diversity" in (only_43 / "report.md").read_text()


def test_verdict_rules():
    assert scorecard.verdict(+1, 0.1, 0.3, 3) == "as expected"
    assert scorecard.verdict(+1, -0.3, -0.1, 3) == "opposite"
    assert scorecard.verdict(+1, -0.1, 0.3, 3) == "no detectable change"
    assert scorecard.verdict(0, -0.3, -0.1, 3) == "leakage: falls"
    assert scorecard.verdict(None, 0.1, 0.2, 2) == "rises"
    assert scorecard.verdict(+1, math.nan, math.nan, 1) == "no verdict (one seed)"
    mean, low, high = scorecard.interval([0.2])
    assert mean == 0.2 and math.isnan(low) and math.isnan(high)
