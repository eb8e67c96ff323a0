"""`reference_effective`: any config built as LUMA's reference tool effectively builds it, end to
end (the `luma` command, `load_dataset`, sweep plans, run names and the report), and the default
configs' examples unchanged by the new fields."""

import hashlib
import json
import math

import numpy as np
import pytest

from tests.support.cli_helpers import luma
from tests.support.helpers import built_rows, load, rows
from luma_noise.baselines import report, runs, sweep
from luma_noise.baselines.paper import paper_value
from luma_noise.baselines.summary import reference_of
from luma_noise.noise.image import IMAGE_CORRUPTIONS, corrupt_image
from luma_noise.variant import Variant

# Digests of the examples before `image_severity_tables` and `reference_effective` existed
# (commit 8bfc1b2, `content_digest` below, fixture mirror). `clean`: every column, pixels
# decoded (independent of the PNG encoder). `sample_noise` without text noise: labels, rows and
# noise records (corruption, severity, seed; SNR, ESC-50 file), which are draws of our own
# generators and so independent of library versions (the corrupted pixels are not).
CLEAN_DIGEST = "904ef58693d76db9bcadb5ce79eb908fbbef0c5ce69d8438d536bdd0b032475d"
NOISY_RECORDS_DIGEST = "6adc1a3644a1774177af591119619bfe72b8902f213eb7a2b3fcced6d5ac92c2"


def content_digest(rows_by_split: dict) -> str:
    """sha256 over every split, example and column (images as decoded pixels, audio as its bytes)."""
    digest = hashlib.sha256()
    for split in sorted(rows_by_split):
        for example in rows_by_split[split]:
            for key in sorted(example):
                value = example[key]
                if key == "image":
                    value = (value.shape, value.tobytes().hex())
                elif key == "audio":
                    value = value["bytes"].hex()
                digest.update(json.dumps([split, key, value], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _records(rows_by_split: dict) -> dict:
    return {split: [{"key_label": (ex["label"], ex["image_index"]), "noise": ex["noise"]} for ex in examples]
            for split, examples in rows_by_split.items()}


def _binomial_ok(count, n, p, sigmas=4):
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_default_configs_give_the_same_examples_as_before_the_new_fields(mirror, clean, tmp_path):
    assert content_digest(clean) == CLEAN_DIGEST
    noisy = built_rows(mirror[0], tmp_path / "cache", "sample_noise", text_noise_ratio=0.0)
    assert content_digest(_records(noisy)) == NOISY_RECORDS_DIGEST
    for split, examples in noisy.items():  # the pixels are the ImageNet-C tables' (imagecorruptions)
        for ex, ref in list(zip(examples, clean[split]))[:5]:
            params = json.loads(ex["noise"]["image"]["params"])
            assert set(params) == {"severity", "seed"}
            expected = corrupt_image(ref["image"], ex["noise"]["image"]["name"], params["severity"], params["seed"])
            assert np.array_equal(ex["image"], expected)


@pytest.fixture(scope="module")
def effective_clean(mirror, tmp_path_factory):
    """`clean` prepared by `luma prepare --set reference_effective=true`, read back by load_dataset."""
    cache = tmp_path_factory.mktemp("effective")
    status, _, err = luma("prepare", "clean", "--set", "reference_effective=true", "--mirror", mirror[0], "--cache-dir", cache)
    assert status == 0, err
    arrow_files = sorted(cache.rglob("*.arrow"))
    dataset = load("clean", mirror=str(mirror[0]), cache_dir=str(cache), reference_effective=True)
    assert sorted(cache.rglob("*.arrow")) == arrow_files  # the command's build, found again
    return {split: rows(dataset[split]) for split in dataset}


def test_clean_as_the_reference_ran_it_corrupts_a_tenth_of_the_images_at_cifar10c_severity_1(effective_clean, clean):
    noised = {split: 0 for split in clean}
    for split, examples in effective_clean.items():
        for ex, ref in zip(examples, clean[split]):
            assert ex["text"] == ref["text"] and ex["audio"]["bytes"] == ref["audio"]["bytes"]
            assert ex["noise"]["audio"] is None and ex["noise"]["text"] is None
            record = ex["noise"]["image"]
            if record is None:
                assert np.array_equal(ex["image"], ref["image"])
                continue
            noised[split] += 1
            params = json.loads(record["params"])
            assert record["name"] in IMAGE_CORRUPTIONS and params["severity"] == 1 and params["tables"] == "cifar10-c"
            assert np.array_equal(ex["image"], corrupt_image(ref["image"], record["name"], 1, params["seed"], "cifar10-c"))
    n = sum(map(len, clean.values()))
    assert noised == {"train": 7, "test": 12, "ood": 3}  # of 126, 84, 39: the seed's draws (every split noised)
    assert _binomial_ok(sum(noised.values()), n, 0.1), (noised, n)


def test_the_switch_equals_its_fields_spelled_out(mirror, effective_clean, tmp_path):
    spelled = built_rows(mirror[0], tmp_path / "cache", "clean", image_noise_ratio=0.1, image_severity=1,
                         image_severity_tables="cifar10-c")
    assert content_digest(spelled) == content_digest(effective_clean)  # the same examples noised, the same way


def test_sample_noise_as_the_reference_ran_it_keeps_severity_4_but_noises_a_tenth_of_the_images(mirror, tmp_path):
    got = built_rows(mirror[0], tmp_path / "cache", "sample_noise", text_noise_ratio=0.0, reference_effective=True)
    examples = [ex for split in got.values() for ex in split]
    images = [json.loads(ex["noise"]["image"]["params"]) for ex in examples if ex["noise"]["image"]]
    assert _binomial_ok(len(images), len(examples), 0.1) and images
    assert all(p["severity"] == 4 and p["tables"] == "cifar10-c" for p in images)
    assert all(ex["noise"]["audio"] is not None for ex in examples)  # audio as configured: every clip


def test_bad_values_are_named_before_anything_is_built(mirror, tmp_path):
    status, _, err = luma("prepare", "clean", "--set", "reference_effective=yes", "--set", "image_severity_tables=cifar10c",
                          "--mirror", mirror[0], "--cache-dir", tmp_path / "cache")
    assert status == 2
    assert "reference_effective='yes': expected True or False" in err
    assert "image_severity_tables: severity tables must be one of ['imagenet-c', 'cifar10-c'], got 'cifar10c'" in err
    assert not (tmp_path / "cache").exists()


def test_the_variant_is_named_apart_in_exports_sweeps_and_runs(tmp_path):
    assert Variant("clean", {"reference_effective": True}).export_name() != "clean"
    assert runs.variant_of("clean", {"reference_effective": True}) == "clean{reference_effective=true}"
    assert reference_of("sample_noise{reference_effective=true}", {"clean", "clean{reference_effective=true}"}) \
        == "clean{reference_effective=true}"
    assert paper_value("accuracy", "clean{reference_effective=true}", "mcd", "image") == 0.335  # the paper's clean
    planned = sweep.plan(tmp_path, ["clean", "sample_noise"], [1], {"reference_effective": True})
    assert [fields for _, fields, _ in planned] == [{"reference_effective": True}] * 2
    with pytest.raises(ValueError, match="reference_effective='yes': expected True or False"):
        sweep.plan(tmp_path, ["clean"], [1], {"reference_effective": "yes"})


def test_training_records_the_switch_in_its_fields(mirror, tmp_path):
    from luma_noise.baselines.train import _differing_fields, _load

    fields, where = {"reference_effective": True}, (str(mirror[0]), str(tmp_path / "cache"))
    differing = _differing_fields("clean", fields, *where)
    assert differing == {"reference_effective": True}  # results.json's `fields`, hence the run's variant name
    dataset = _load("clean", fields, *where)
    assert any(noise["image"] is not None for noise in dataset["train"]["noise"])


def _results(folder, config, fields, accuracy):
    folder.mkdir(parents=True)
    result = {"method": "mcd", "modality": "image", "seed": 1, "accuracy": accuracy, "aleatoric": 1.0,
              "epistemic": 0.5, "ood_auroc": 0.6}
    (folder / "results.json").write_text(json.dumps({"config": config, "fields": fields, "results": [result]}))


def test_report_shows_the_paper_as_run_and_as_said_side_by_side(tmp_path):
    _results(tmp_path / "as-said" / "clean", "clean", {}, 0.30)
    _results(tmp_path / "as-said" / "sample_noise", "sample_noise", {}, 0.20)
    _results(tmp_path / "as-run" / "clean", "clean", {"reference_effective": True}, 0.34)
    _results(tmp_path / "as-run" / "sample_noise", "sample_noise", {"reference_effective": True}, 0.35)
    report.write_report([tmp_path / "as-said", tmp_path / "as-run"], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    table3 = text.split("## Table 3")[1].split("##")[0]
    header, _, row = [line for line in table3.splitlines() if line.startswith("|")]
    assert header.split(" | ")[1:] == ["seeds", "`clean`", "paper", "Δ", "`clean{reference_effective=true}`", "paper", "Δ",
                                       "`sample_noise`", "paper", "Δ", "`sample_noise{reference_effective=true}`", "paper", "Δ |"]
    assert row.split(" | ")[2:8] == ["0.300", "0.335", "-0.035", "0.340", "0.335", "+0.005"]
    assert row.split(" | ")[11:14] == ["+0.010", "+0.019", "-0.009 |"]  # 0.35 - 0.34 against the paper's +0.019
    assert "`clean`: clean images" in text
    assert ("`sample_noise{reference_effective=true}`: images as the reference tool effectively built them: "
            "10% corrupted (train, test, ood), severity 4 of CIFAR-10-C's tables") in text
    assert "`sample_noise`: images as configured: 100% corrupted (train, test, ood), severity 4 of ImageNet-C's tables" in text
    assert "`clean{reference_effective=true}`: images as the reference tool effectively built them: 10% corrupted " \
           "(train, test, ood), severity 1 of CIFAR-10-C's tables" in text
