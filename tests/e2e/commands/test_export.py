"""`luma export`: Parquet folders that `load_dataset` reads back as the builder's rows, features and bytes."""

import json

import datasets
import pytest
import yaml

from tests.support.cli_helpers import TEXT_NOISES_WITHOUT_MODELS, luma, model_sets
from tests.support.helpers import load
from luma_noise import __version__
from luma_noise.variant import Variant
from luma_noise.fixtures.models import save_tiny_models

# name in the export folder -> (named config, --set arguments); label noise gets tiny models
EXPORTS = {
    "clean": ("clean", []),
    "sample_noise": ("sample_noise", ["--set", f"text_noises={TEXT_NOISES_WITHOUT_MODELS}"]),
    "label_noise_0.3": ("label_noise_0.3", None),
}


@pytest.fixture(scope="module")
def exported(mirror, tmp_path_factory):
    """One export folder holding the three configs, exported one after the other, and the cache."""
    work = tmp_path_factory.mktemp("export")
    models = save_tiny_models(work / "models")
    common = ["--mirror", mirror[0], "--cache-dir", work / "cache"]
    out, calls = work / "out", {}
    for name, (config, sets) in EXPORTS.items():
        sets = sets if sets is not None else model_sets(models, str(work / "features"))
        status, stdout, stderr = luma("export", config, *sets, *common, "--name", name, "--output-dir", out)
        assert status == 0, stderr
        calls[name] = (config, sets, stdout)
        if name == "clean":  # the README as it was before other configs were added
            first_card = (out / "README.md").read_text()
    return {"out": out, "cache": work / "cache", "calls": calls, "first_card": first_card, "models": models,
            "work": work}


def _fields(sets: list) -> dict:
    pairs = [item.split("=", 1) for item in sets[1::2]]
    return {k: (json.loads(v) if v.startswith("[") else v) for k, v in pairs}


def _builder_output(exported, mirror, name):
    config, sets, _ = exported["calls"][name]
    return load(config, mirror=str(mirror[0]), cache_dir=str(exported["cache"]), **_fields(sets))


@pytest.mark.parametrize("name", list(EXPORTS))
def test_exported_folder_loads_as_the_builders_rows_features_and_bytes(exported, mirror, name, tmp_path):
    again = datasets.load_dataset(str(exported["out"]), name, cache_dir=str(tmp_path / "read"))
    built = _builder_output(exported, mirror, name)
    assert list(again) == list(built) == ["train", "test", "ood"]
    for split in built:
        assert again[split].features == built[split].features
        # Arrow tables: every column, image PNG and wav bytes included, row for row
        assert again[split].with_format("arrow")[:].equals(built[split].with_format("arrow")[:]), split
    assert {"noise", "original_label"} & set(built["train"].column_names) or name == "clean"


def test_exports_coexist_in_one_folder(exported):
    header = yaml.safe_load((exported["out"] / "README.md").read_text().split("---")[1])
    configs = {c["config_name"]: c for c in header["configs"]}
    assert sorted(configs) == sorted(EXPORTS)
    assert configs["clean"]["data_files"] == [{"split": s, "path": f"clean/{s}-*"} for s in ("train", "test", "ood")]
    infos = {i["config_name"]: i for i in header["dataset_info"]}
    assert {f["name"] for f in infos["label_noise_0.3"]["features"]} >= {"image", "audio", "label", "original_label"}
    first = yaml.safe_load(exported["first_card"].split("---")[1])
    assert [c["config_name"] for c in first["configs"]] == ["clean"]  # the later exports added theirs
    shards = sorted(p.name for p in (exported["out"] / "clean").iterdir())
    assert shards == ["luma_variant.json", "ood-00000-of-00001.parquet", "test-00000-of-00001.parquet",
                      "train-00000-of-00001.parquet"]


def test_card_records_what_made_each_config(exported, mirror):
    record = json.loads((exported["out"] / "sample_noise" / "luma_variant.json").read_text())
    built = _builder_output(exported, mirror, "sample_noise")
    assert record["config"] == "sample_noise" and record["luma_noise_version"] == __version__
    assert record["fields"]["text_noises"] == ["KeyboardNoise", "SpellingNoise", "OCRNoise"]
    assert record["resolved_fields"]["image_noise_ratio"] == 1.0
    assert "e6c5b7e35c1753ac59bbe60a9ccc7bfaf5cd0b36" in record["upstream"]["splits"]
    assert record["rows"] == {split: len(ds) for split, ds in built.items()}
    card = (exported["out"] / "README.md").read_text()
    assert "## sample_noise" in card and "## label_noise_0.3" in card and "not exercised against the Hub" in card
    assert "--set 'text_noises=[\"KeyboardNoise\", \"SpellingNoise\", \"OCRNoise\"]'" in card


def test_exporting_a_config_again_replaces_it_and_keeps_the_others(exported, mirror, tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        status, _, stderr = luma("export", "clean", "--mirror", mirror[0], "--cache-dir", exported["cache"],
                                 "--output-dir", out, "--max-shard-size", "100KB")
        assert status == 0, stderr
    shards = sorted(p.name for p in (out / "clean").glob("train-*"))
    assert len(shards) > 1 and shards[-1] == f"train-{len(shards) - 1:05d}-of-{len(shards):05d}.parquet"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left
    again = datasets.load_dataset(str(out), "clean", cache_dir=str(tmp_path / "read"))
    built = _builder_output(exported, mirror, "clean")
    assert again["train"].with_format("arrow")[:].equals(built["train"].with_format("arrow")[:])


def test_export_names_carry_a_hash_of_the_content_fields():
    assert Variant("label_noise_0.3", {"mirror": "/m"}).export_name() == "label_noise_0.3"
    name = Variant("label_noise_0.3", {"seed": 7, "mirror": "/m"}).export_name()
    assert name.startswith("label_noise_0.3-") and len(name) == len("label_noise_0.3-") + 8
    assert name == Variant("label_noise_0.3", {"seed": 7}).export_name() != Variant("label_noise_0.3", {"seed": 8}).export_name()


def test_push_to_hub_is_one_call_into_datasets(exported, mirror, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub",
                        lambda self, repo_id, **kwargs: calls.append(("push_to_hub", repo_id, kwargs, list(self))))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", lambda self, **kwargs: calls.append(("upload_file", kwargs)))
    status, stdout, stderr = luma("export", "clean", "--set", "seed=7", "--mirror", mirror[0], "--cache-dir",
                                  tmp_path / "cache", "--output-dir", tmp_path / "out", "--push-to-hub", "user/luma-variants",
                                  "--token", "hf_test")
    assert status == 0, stderr
    name = Variant("clean", {"seed": 7}).export_name()
    (_, repo, kwargs, splits), (_, upload), (_, croissant) = calls
    assert repo == "user/luma-variants" and kwargs["config_name"] == name and kwargs["token"] == "hf_test"
    assert splits == ["train", "test", "ood"] and json.loads(kwargs["commit_description"])["fields"]["seed"] == 7
    assert upload["path_in_repo"] == f"{name}/luma_variant.json" and upload["repo_id"] == "user/luma-variants"
    assert croissant["path_in_repo"] == "croissant.json" and croissant["repo_id"] == "user/luma-variants"
    assert f"pushed {name}" in stdout


def test_bad_push_target_fails_before_building(mirror, tmp_path):
    status, _, stderr = luma("export", "clean", "--mirror", mirror[0], "--cache-dir", tmp_path / "cache",
                             "--output-dir", tmp_path / "out", "--push-to-hub", "no-slash")
    assert status == 2 and "--push-to-hub='no-slash': expected USER/REPO" in stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()
