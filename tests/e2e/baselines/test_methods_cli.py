"""`train --methods ...` with method objects: names, module:Class (the docs' example), fused subsets,
results.json, predictions and the report's results.csv."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from luma_noise.baselines.__main__ import main
from luma_noise.baselines.methods import MethodModel, registry
from luma_noise.baselines.train import RUN_DEFAULTS, plan_runs, run_training

DOCS = Path(__file__).resolve().parents[3] / "docs" / "methods.md"


@pytest.fixture
def docs_example(tmp_path, monkeypatch):
    """The docs page's example method, saved as the module `my_methods` on sys.path."""
    block = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    assert len(block.splitlines()) < 60
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_methods.py").write_text(block)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "my_methods", raising=False)
    return "my_methods:SmoothedSoftmax"


def test_default_plan_is_the_papers_and_all_is_every_builtin():
    runs = plan_runs(RUN_DEFAULTS["methods"], RUN_DEFAULTS["modalities"], [42])
    assert [(m, mod) for m, mod, _ in runs] == [(m, mod) for m in ("mcd", "de") for mod in
                                                ("image", "audio", "text", "multimodal")] + [("rcml", "multimodal")]
    everything = plan_runs(["all"], ["image", "image+text"], [1])
    assert {m for m, _, _ in everything} == set(registry.BUILTIN)
    assert ("edl", "image", 1) in everything and ("edl", "image+text", 1) not in everything
    assert ("tmc", "image+text", 1) in everything and ("tmc", "image", 1) not in everything


def test_bad_methods_and_modalities_are_named_before_anything_is_read(tmp_path):
    with pytest.raises(ValueError) as err:
        run_training("clean", tmp_path, methods=["tmc", "nope", "os:path"], modalities=["image+image", "text+image"],
                     mirror=str(tmp_path / "no-mirror"))
    message = str(err.value)
    assert "unknown method 'nope'" in message and "'os:path' is not a subclass" in message
    assert "image+image" in message and "text+image" in message
    assert not (tmp_path / "run.json").exists()


def test_train_command_runs_method_objects_and_a_users_class(mirror, tiny_bert, tmp_path, docs_example, capsys):
    out = tmp_path / "runs"
    status = main(["train", "clean", "--mirror", str(mirror[0]), "--output-dir", str(out),
                   "--methods", "tmc", "qmf", docs_example, "rcml", "--modalities", "image", "image+text",
                   "--text-model", tiny_bert, "--max-epochs", "1", "--batch-size", "64", "--device", "cpu",
                   "--cache-dir", str(tmp_path / "cache")])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    paper = results["results"].pop(0)  # the paper's RCML, first as in the paper's protocol
    assert (paper["method"], paper["modality"]) == ("rcml", "image+text")
    assert paper["ood_epistemic_auroc"] == pytest.approx(paper["ood_auroc"])  # every score of it measured too
    assert {"ood_msp_fpr95", "ood_total_aupr_in", "aurc_total"} <= set(paper)
    assert [(r["method"], r["modality"]) for r in results["results"]] == [
        ("tmc", "image+text"), ("qmf", "image+text"), ("smoothed_softmax", "image"),
        ("smoothed_softmax", "image+text")]
    for row in results["results"]:
        scores = {"tmc": ("total", "msp", "epistemic", "mutual_info"), "qmf": ("total", "msp", "energy"),
                  "smoothed_softmax": ("total", "msp", "energy")}[row["method"]]
        for score in scores:
            for measure in ("auroc", "aupr_in", "aupr_out", "fpr95"):
                assert 0 <= row[f"ood_{score}_{measure}"] <= 1
        assert (row["epistemic"] is None) == (row["method"] != "tmc")
        with np.load(out / row["predictions"]) as arrays:
            assert arrays["test_probs"].shape == (len(arrays["test_labels"]), 42)
            assert np.mean(arrays["test_probs"].argmax(1) == arrays["test_labels"]) == pytest.approx(row["accuracy"])
    user = next(r for r in results["results"] if r["method"] == "smoothed_softmax")
    assert user["method_spec"] == docs_example and user["calibration_temperature"] != 1.0  # T fitted
    model = MethodModel.from_pretrained(out / "models" / "smoothed_softmax-image-seed42")
    assert model.config.method == docs_example and model.config.calibration_temperature == user["calibration_temperature"]
    assert "5 runs of clean" in capsys.readouterr().out
    # the report reads these runs: every OOD measure of every score in results.csv
    assert main(["report", str(out), "--output-dir", str(tmp_path / "report")]) == 0
    long = pd.read_csv(tmp_path / "report" / "results.csv")
    qmf = long[(long.method == "qmf") & (long.modality == "image+text")].set_index("measure")["value"]
    assert qmf["ood_energy_fpr95"] == pytest.approx(results["results"][1]["ood_energy_fpr95"], rel=1e-6)
    rcml = long[long.method == "rcml"].set_index("measure")["value"]
    assert rcml["ood_epistemic_aupr_out"] == pytest.approx(paper["ood_epistemic_aupr_out"], rel=1e-6)
    assert {"ood_msp_aupr_in", "ood_total_aupr_out", "aurc_total", "conformal_set_size"} <= set(qmf.index)
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert len(board) == 5 and {"accuracy_mean", "ood_energy_auroc_ci95_high", "seeds"} <= set(board.columns)
    assert "## Leaderboard" in (tmp_path / "report" / "report.md").read_text()


def test_leaderboard_has_mean_std_and_a_student_t_interval_per_model():
    from scipy.stats import t

    from luma_noise.baselines.leaderboard import leaderboard, markdown

    values = {("tmc", "image+text"): [0.5, 0.6, 0.7], ("qmf", "image+text"): [0.8, 0.9, 0.7]}
    long = pd.DataFrame([{"variant": "clean", "method": m, "modality": mod, "seed": s, "measure": "accuracy", "value": v}
                         for (m, mod), vs in values.items() for s, v in enumerate(vs)]
                        + [{"variant": "clean", "method": "tmc", "modality": "image+text", "seed": 0,
                            "measure": "ood_auroc", "value": 0.6}])
    board = leaderboard(long)
    assert list(board.method) == ["qmf", "tmc"]  # best accuracy first
    tmc = board[board.method == "tmc"].iloc[0]
    half = t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert tmc.seeds == 3 and tmc.accuracy_mean == pytest.approx(0.6) and tmc.accuracy_std == pytest.approx(0.1)
    assert (tmc.accuracy_ci95_low, tmc.accuracy_ci95_high) == pytest.approx((0.6 - half, 0.6 + half))
    assert np.isnan(tmc.ood_auroc_std) and np.isnan(tmc.ood_auroc_ci95_low)  # one seed: no spread
    text = "\n".join(markdown(board))
    # names are escaped for Markdown (`+` shows as itself): markdown.md_text
    assert f"| tmc image\\+text | 3 | 0.600 ± 0.100 [{0.6 - half:.3f}, {0.6 + half:.3f}] |" in text


def test_the_methods_package_ships_in_the_wheel():
    import tomllib

    root = Path(__file__).resolve().parents[3]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "luma_noise").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_paper_methods_are_method_objects_of_the_one_model():
    from luma_noise.baselines import LumaModel, LumaModelConfig, MethodConfig, MethodModel

    for name, members in (("mcd", 1), ("de", 3), ("rcml", 1)):
        model = MethodModel(MethodConfig(method=name, method_config={"ensemble_size": 3} if name == "de" else {},
                                         modalities=("image", "text"), text_dim=8))
        assert isinstance(model.method, registry.resolve(name)) and len(model.members) == members
        assert model.method.reference and not hasattr(model, "trunks")
    # the deprecated names build the same classes (hyper-parameters as keywords)
    legacy = LumaModel(LumaModelConfig(method="de", ensemble_size=3, modalities=("text",), text_dim=8))
    assert isinstance(legacy, MethodModel) and legacy.config.method_config == {"ensemble_size": 3}
    assert registry.expand(["rcml", "all", "tmc"])[:4] == ["rcml", "mcd", "de", "softmax"]


def test_a_subclass_changes_a_default_and_is_found_by_module_and_class(tmp_path, monkeypatch):
    (tmp_path / "my_variants.py").write_text(
        "from dataclasses import dataclass\n"
        "from luma_noise.baselines.methods.evidential import DBF\n\n\n"
        "class DBFNoSelf(DBF):\n"
        "    name = 'dbf_no_self'\n\n"
        "    @dataclass\n"
        "    class Config(DBF.Config):\n"
        "        self_term: bool = False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = registry.resolve("my_variants:DBFNoSelf")
    assert cls().config.self_term is False and cls().config.flambda == 1.0
    assert registry.run_label("my_variants:DBFNoSelf") == "dbf_no_self"
    with pytest.raises(ValueError, match="flambda"):
        cls(flambda=-1)


def test_sweep_and_train_parse_any_method_and_fused_subset():
    import argparse

    from luma_noise.baselines.__main__ import mount

    parser = argparse.ArgumentParser()
    mount(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", "--output-dir", "x", "--methods", "all", "pkg.mod:Cls",
                              "--modalities", "image+text", "multimodal"])
    assert args.methods == ["all", "pkg.mod:Cls"] and args.modalities == ["image+text", "multimodal"]
    assert parser.parse_args(["train", "clean", "--output-dir", "x"]).methods == ["mcd", "de", "rcml"]
