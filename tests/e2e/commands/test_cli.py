"""The `luma` command: help, errors and exit status, `prepare` into load_dataset's cache, and its summary."""

import dataclasses
import os
import shutil
import subprocess
import sys

import datasets
import numpy as np
import pytest

from tests.support.cli_helpers import luma, model_sets
from tests.support.helpers import load
from luma_noise.builder import LumaConfig
from luma_noise.options import _BUILDER_FIELDS
from luma_noise.variant_summary import format_summary, mean_distance_to_centre, summarize
from luma_noise.fixtures.models import save_tiny_models

FIELDS = [f.name for f in dataclasses.fields(LumaConfig) if f.name not in _BUILDER_FIELDS]


def test_configs_lists_every_config_and_field_with_default_and_accepted_values():
    status, out, _ = luma("configs")
    assert status == 0
    for name in ("clean", "sample_noise", "low_diversity", "label_noise_0.3", "conflict"):
        assert f"  {name}: " in out
    for field in FIELDS:
        assert f"\n  {field}\n      default: " in out
    label_noise = out.split("\n  label_noise\n")[1].split("\n  ")[0:3]
    assert "default: 0.0" in label_noise[0] and "[0.0, 1.0]" in label_noise[1]
    text_noises = out.split("\n  text_noises\n")[1].split("\n  ")[1]
    assert "KeyboardNoise" in text_noises and "BackTranslationNoise" in text_noises  # from the validation itself


@pytest.mark.parametrize("command", ["prepare", "export"])
def test_help_names_the_fields(command):
    status, out, _ = luma(command, "--help")
    assert status == 0
    assert all(f"  {field} (default " in out for field in FIELDS) and "--set FIELD=VALUE" in out


def test_bad_fields_are_all_named_before_anything_is_built(mirror, tmp_path):
    status, _, err = luma("prepare", "clean", "--set", "seed=-1", "--set", "label_noise=3", "--set",
                          "text_noises=5", "--mirror", mirror[0], "--cache-dir", tmp_path / "cache")
    assert status == 2
    head, *lines = err.splitlines()
    assert head == "luma: error: bad config:" and len(lines) == 3  # the three bad fields, one line each
    by_field = {line.split("=")[0].strip(): line for line in lines}
    assert by_field["seed"].startswith("  seed=-1: expected an integer in [0,")
    assert by_field["label_noise"].startswith("  label_noise=3: expected a") and by_field["label_noise"].endswith("[0.0, 1.0]")
    assert by_field["text_noises"].startswith("  text_noises=5: expected a")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("argv, message", [
    (["prepare", "label_noise_1.0"], "unknown config 'label_noise_1.0'; the configs are: clean,"),
    (["prepare", "clean", "--set", "sed=3"], "unknown LUMA config field(s) ['sed']; the fields are:"),
    (["prepare", "clean", "--set", "seed"], "'seed': expected FIELD=VALUE"),
    (["export", "clean"], "the following arguments are required: --output-dir"),
    (["prepare", "clean", "--num-proc", "0"], "--num-proc=0: expected an integer >= 1"),
    (["nope"], "invalid choice: 'nope'"),
])
def test_usage_errors_exit_with_status_2(argv, message):
    status, _, err = luma(*argv)
    assert status == 2 and message in err


def test_prepare_fills_the_cache_load_dataset_reads(mirror, tmp_path):
    cache = tmp_path / "cache"
    status, out, err = luma("prepare", "clean", "--set", "seed=7", "--mirror", mirror[0], "--cache-dir", cache)
    assert status == 0, err
    arrow_files = sorted(cache.rglob("*.arrow"))
    built = load("clean", mirror=str(mirror[0]), cache_dir=str(cache), seed=7)
    assert sorted(cache.rglob("*.arrow")) == arrow_files  # found, not built again
    assert {f["filename"] for f in built["train"].cache_files} <= {str(p) for p in arrow_files}
    rows = {split: len(ds) for split, ds in built.items()}
    assert f"rows: train {rows['train']}, test {rows['test']}, ood {rows['ood']}" in out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("models"))


def test_summary_of_a_diversity_draw_with_every_label_switched(mirror, models, tmp_path):
    """low_diversity with label_noise=1.0: every train and test label switched, and the draw's
    features read back from the cache the draw filled (keys as the builder's: none extracted)."""
    status, out, err = luma("prepare", "low_diversity", "--set", "label_noise=1.0", *model_sets(models, str(tmp_path / "f")),
                            "--mirror", mirror[0], "--cache-dir", tmp_path / "cache")
    assert status == 0, err
    built = load("low_diversity", mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"), label_noise=1.0,
                 feature_cache_dir=str(tmp_path / "f"), **{f"{m}_feature_model": p for m, p in models.items()})
    for split in ("train", "test"):
        n = len(built[split])
        assert f"labels switched ({split}): {n} of {n} (100.0 %)" in out
    assert "labels switched (ood)" in out  # ood keeps its labels: 0 switched
    for modality in ("image", "audio", "text"):
        line = next(x for x in out.splitlines() if x.startswith(f"diversity ({modality},"))
        assert "(feature units; 0 rows' features not in the cache were extracted)" in line


def test_summary_figures_on_known_columns():
    noise = lambda image, text: {"image": image and {"name": image, "params": "{}"}, "audio": None,  # noqa: E731
                                 "text": text and {"name": text, "params": "{}"}}
    split = datasets.Dataset.from_dict({
        "label": [1, 2, 3, 4], "original_label": [1, 5, 3, 6],
        "noise": [noise("fog", None), noise("fog", "OCRNoise"), noise("snow", None), noise(None, None)],
        "conflict_modality": [None, "audio", "audio", "text"],
    })
    summary = summarize(datasets.DatasetDict({"test": split}))
    assert summary["rows"] == {"test": 4} and summary["labels_switched"] == {"test": 2}
    assert summary["noise"]["test"] == {"image": {"fog": 2, "snow": 1}, "audio": {}, "text": {"OCRNoise": 1}}
    assert summary["conflict"] == {"test": {"audio": 2, "text": 1}}
    text = format_summary(summary)
    assert "labels switched (test): 2 of 4 (50.0 %)" in text and "conflicted (test): 3 of 4 (75.0 %): audio 2, text 1" in text
    assert "noise (test, image): 3 of 4 noised (75.0 %): fog 2, snow 1" in text


def test_mean_distance_to_centre():
    features = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 14.0]])
    assert mean_distance_to_centre(features, np.array([0, 0, 1, 1])) == pytest.approx((1 + 1 + 2 + 2) / 4)


def test_baselines_are_mounted():
    status, out, _ = luma("baselines", "--help")
    assert status == 0 and all(name in out for name in ("train", "sweep", "report"))


def test_missing_baselines_give_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "luma_noise.baselines.__main__", None)  # import fails
    status, _, err = luma("baselines", "train", "clean")
    assert status == 1 and "the baselines commands are not available" in err


def test_installed_entry_point(mirror, tmp_path):
    """The `luma` script pip installs (pyproject [project.scripts]): success 0, bad config 2."""
    command = shutil.which("luma")
    assert command, "the luma command is not installed: pip install -e ."
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([command, "export", "clean", "--mirror", str(mirror[0]), "--cache-dir", str(tmp_path / "cache"),
                           "--output-dir", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "exported clean: 3 Parquet shard(s)" in done.stdout and (tmp_path / "out" / "README.md").exists()
    failed = subprocess.run([command, "prepare", "clean", "--set", "label_noise=2"], env=env, capture_output=True, text=True)
    assert failed.returncode == 2 and "label_noise=2: expected a" in failed.stderr and "[0.0, 1.0]" in failed.stderr


def test_a_failed_build_exits_with_status_1(mirror, tmp_path):
    broken = tmp_path / "mirror"
    shutil.copytree(mirror[0], broken)
    next((broken / "luma" / "audio").rglob("*.wav")).unlink()
    status, out, err = luma("prepare", "clean", "--mirror", broken, "--cache-dir", tmp_path / "cache")
    assert status == 1 and "UnreadableFileError" in err and "cannot be read (missing)" in err and "rows:" not in out
