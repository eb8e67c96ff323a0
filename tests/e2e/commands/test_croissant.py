"""`luma export` writes croissant.json: valid under mlcroissant's validator, and mlcroissant reads the
exported rows back through it (the same values `load_dataset` gives)."""

import json

import datasets
import mlcroissant as mlc
import pytest

from tests.support.cli_helpers import TEXT_NOISES_WITHOUT_MODELS, luma

EXPORTS = {"clean": [], "sample_noise": ["--set", f"text_noises={TEXT_NOISES_WITHOUT_MODELS}"]}


@pytest.fixture(scope="module")
def exported(mirror, tmp_path_factory):
    work = tmp_path_factory.mktemp("croissant")
    out = work / "out"
    for name, sets in EXPORTS.items():
        status, stdout, stderr = luma("export", name, *sets, "--mirror", mirror[0], "--cache-dir", work / "cache",
                                      "--name", name, "--output-dir", out)
        assert status == 0, stderr
        assert "README.md and croissant.json" in stdout.splitlines()[-1]  # the closing line names it
    return out


def test_croissant_is_valid_and_describes_every_config(exported):
    dataset = mlc.Dataset(exported / "croissant.json")  # raises mlc.ValidationError on any error
    # datePublished is left out on purpose (two exports of one config give the same bytes)
    assert dataset.metadata.ctx.issues.warnings <= {
        '[Metadata(LUMA variants)] Property "https://schema.org/datePublished" is recommended, but does not exist.'}
    data = json.loads((exported / "croissant.json").read_text())
    assert data["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert data["license"] == "https://creativecommons.org/licenses/by-sa/4.0/" and "bezirganyan" in data["citeAs"]
    assert [d["includes"] for d in data["distribution"]] == ["clean/*.parquet", "sample_noise/*.parquet"]
    sets = {r["@id"]: r for r in data["recordSet"]}
    assert {"clean", "clean_splits", "sample_noise", "sample_noise_splits", "provenance"} == set(sets)
    types = {f["name"]: f.get("dataType") for f in sets["sample_noise"]["field"]}
    assert types == {"split": "sc:Text", "image": "sc:ImageObject", "audio": "sc:AudioObject", "text": "sc:Text",
                     "label": "sc:Integer", "image_source": "sc:Text", "image_index": "sc:Integer",
                     "audio_path": "sc:Text", "text_index": "sc:Integer", "noise": None}  # noise: a struct
    fields = {(r["provenance/config"], r["provenance/field"]): r["provenance/value"] for r in sets["provenance"]["data"]}
    assert json.loads(fields[("sample_noise", "field:text_noises")]) == json.loads(TEXT_NOISES_WITHOUT_MODELS)
    assert "luma export sample_noise" in json.loads(fields[("sample_noise", "command")])


def test_mlcroissant_reads_the_exported_rows(exported):
    import itertools

    dataset = mlc.Dataset(exported / "croissant.json")
    expected = datasets.load_dataset(str(exported), "sample_noise", split="ood").select(range(3))
    records = list(itertools.islice(dataset.records("sample_noise"), 3))  # shards in file-name order: ood first
    for record, row in zip(records, expected.cast_column("audio", datasets.Audio(decode=False)), strict=True):
        assert record["sample_noise/split"] == b"ood"
        assert record["sample_noise/text"].decode() == row["text"] and record["sample_noise/label"] == row["label"]
        assert record["sample_noise/audio"] == row["audio"]["bytes"]
        assert record["sample_noise/image"].tobytes() == row["image"].tobytes()  # the decoded PNG, pixel for pixel
        assert record["sample_noise/noise/text"]["sample_noise/noise/text/name"].decode() == row["noise"]["text"]["name"]
    assert sorted(r["clean_splits/name"] for r in dataset.records("clean_splits")) == ["ood", "test", "train"]


def test_a_croissant_json_export_did_not_write_is_left_alone(tmp_path):
    from luma_noise.croissant import write_croissant

    theirs = tmp_path / "croissant.json"
    theirs.write_text('{"name": "my dataset"}')
    assert write_croissant(tmp_path) is None and theirs.read_text() == '{"name": "my dataset"}'
