"""`train` options of the method objects: --method-option (validated by the method's Config before
anything trains, recorded in run.json and in the saved model) and --streaming (the same numbers as
the prepared dataset)."""

import json

import pytest

from luma_noise.baselines.__main__ import main
from luma_noise.baselines.methods import MethodModel


@pytest.fixture(scope="module")
def luma_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("options-cache"))


def _args(mirror, cache, out, *extra):
    return ["train", "clean", "--mirror", str(mirror[0]), "--output-dir", str(out), "--max-epochs", "1",
            "--batch-size", "64", "--device", "cpu", "--cache-dir", cache, *extra]


def test_method_options_reach_the_method_and_are_recorded(mirror, luma_cache, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(_args(mirror, luma_cache, out, "--methods", "tmc", "--modalities", "image+audio",
                      "--method-option", "tmc.anneal_epochs=20")) == 0
    assert json.loads((out / "run.json").read_text())["method_options"] == {"tmc": {"anneal_epochs": 20}}
    model = MethodModel.from_pretrained(out / "models" / "tmc-image+audio-seed42")
    assert model.config.method_config == {"anneal_epochs": 20} and model.method.config.anneal_epochs == 20
    # another value is another experiment: the folder refuses it, naming the option
    assert main(_args(mirror, luma_cache, out, "--methods", "tmc", "--modalities", "image+audio",
                      "--method-option", "tmc.anneal_epochs=30")) == 2
    assert "method_options" in capsys.readouterr().err


def test_bad_method_options_are_named_at_once_before_anything_runs(mirror, luma_cache, tmp_path, capsys):
    out = tmp_path / "runs"
    status = main(_args(mirror, luma_cache, out, "--methods", "tmc", "de", "--modalities", "image+audio",
                        "--method-option", "tmc.anneal_epochs=0", "--method-option", "de.nope=1",
                        "--method-option", "qmf.variant=rgbd"))
    assert status == 2
    err = capsys.readouterr().err
    for expected in ("anneal_epochs", "unknown hyper-parameters ['nope']", "method option for 'qmf'"):
        assert expected in err, expected
    assert not out.exists()
    with pytest.raises(SystemExit):  # not METHOD.NAME=VALUE: argparse says so
        main(_args(mirror, luma_cache, out, "--method-option", "anneal_epochs=20"))
    assert "expected METHOD.NAME=VALUE" in capsys.readouterr().err


def test_streaming_train_gives_the_prepared_numbers(mirror, luma_cache, tmp_path):
    """--streaming reads the config as a stream (nothing prepared); the training split is the same
    rows in the same order, the inputs the same functions of them: the same results."""
    rows = {}
    for name, extra in (("prepared", ()), ("streaming", ("--streaming",))):
        out = tmp_path / name
        assert main(_args(mirror, luma_cache, out, "--methods", "softmax", "mcd", "--modalities", "image",
                          "--mc-samples", "2", *extra)) == 0
        rows[name] = [{k: v for k, v in r.items() if k != "predictions"}
                      for r in json.loads((out / "results.json").read_text())["results"]]
    assert [r["method"] for r in rows["streaming"]] == ["mcd", "softmax"]
    assert rows["streaming"] == rows["prepared"]


def test_run_settings_name_every_problem_when_built():
    from luma_noise.baselines.settings import RunSettings, SettingsError
    from luma_noise.baselines.train import check_run

    with pytest.raises(SettingsError) as err:
        RunSettings(methods=("tmc", "de"), modalities=("image+image",), max_epochs=0, mode="exact",
                    ensemble_size=1, method_options={"tmc": {"anneal_epochs": -1}, "qmf": {"variant": "rgbd"}})
    problems = err.value.problems
    for expected in ("max_epochs must be an integer >= 1", "mode must be one of", "modalities must be among",
                     "ensemble_size 1 leaves de's epistemic", "anneal_epochs", "method option for 'qmf'"):
        assert any(expected in p for p in problems), expected
    settings = RunSettings(methods=("mcd", "de", "tmc"), mc_samples=3, method_options={"de": {"batched": "never"}})
    assert settings.hyper_parameters("mcd") == {"mc_samples": 3}
    assert settings.hyper_parameters("de") == {"ensemble_size": 10, "ensemble_training": "joint", "batched": "never"}
    assert settings.hyper_parameters("tmc") == {} and settings.validation_passes == 3  # min(4, mc_samples)
    # run_training's keywords are the settings' fields: another one is named, with the accepted ones
    _, problems = check_run("clean", "/nonexistent/out", max_epoch=3)
    assert any("unknown options ['max_epoch']" in p for p in problems)
