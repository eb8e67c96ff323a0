"""Bad input: wrong config values fail before any download; broken upstream files name themselves;
an interrupted build leaves nothing half-written."""

import os
import pickle
import shutil
from pathlib import Path

import pytest

from tests.support.helpers import load, rows


@pytest.fixture
def broken_mirror(mirror, tmp_path):
    """A private copy of the mirror that a test may damage."""
    root = tmp_path / "mirror"
    shutil.copytree(mirror[0], root)
    return root


def _cached_datasets(cache_dir):
    return [p for p in Path(cache_dir).rglob("*.arrow")] if Path(cache_dir).exists() else []


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("no_such_config", {}, "clean"),
        ("clean", {"sead": 1}, "unknown LUMA config field(s) ['sead']"),
        ("clean", {"seed": -1}, "seed=-1"),
        ("clean", {"seed": "42"}, "seed='42'"),
        ("clean", {"mirror": "/no/such/folder"}, "mirror='/no/such/folder'"),
        ("clean", {"luma_revision": "a b"}, "luma_revision='a b'"),
    ],
)
def test_bad_config_fails_before_download(name, kwargs, message, cache_dir):
    with pytest.raises(ValueError) as err:
        load(name, cache_dir=cache_dir, **kwargs)
    assert message in str(err.value)
    assert not _cached_datasets(cache_dir)


def test_unknown_field_message_lists_the_fields(cache_dir):
    with pytest.raises(ValueError, match="the fields are: .*mirror.*seed"):
        load("clean", cache_dir=cache_dir, colour="red")


def test_missing_column_names_the_file(broken_mirror, cache_dir):
    datalist = broken_mirror / "luma" / "audio" / "datalist.csv"
    datalist.write_text(datalist.read_text().replace("path,", "file,", 1))
    with pytest.raises(ValueError, match=r"audio/datalist.csv: missing column\(s\) \['path'\]"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)
    assert not _cached_datasets(cache_dir)


def test_missing_file_names_the_file(broken_mirror, cache_dir):
    (broken_mirror / "luma" / "text_data.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="text_data.tsv"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)


def test_malformed_split_file_names_the_line(broken_mirror, cache_dir):
    split = broken_mirror / "splits" / "text_test.txt"
    split.write_text("12\nseven\n")
    with pytest.raises(ValueError, match="text_test.txt: line 2 is 'seven'"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)


def test_out_of_range_split_row_is_refused(broken_mirror, cache_dir):
    (broken_mirror / "splits" / "audio_test.txt").write_text("99999999\n")
    with pytest.raises(ValueError, match="audio_test.txt: row 99999999 is out of range"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)


class _Payload:
    """Unpickling this would create the file named by `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_edm_pickle_is_refused_and_never_runs(broken_mirror, cache_dir, tmp_path):
    marker = tmp_path / "payload-ran"
    (broken_mirror / "luma" / "edm_images.pickle").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(pickle.UnpicklingError, match=r"edm_images.pickle: refused to load global pathlib.*\.touch"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)
    assert not marker.exists()
    assert not _cached_datasets(cache_dir)


def test_tampered_arrow_edm_pickle_is_refused_cleanly(broken_mirror, cache_dir):
    """A string column with tampered Arrow offsets used to crash the process (exit 139)."""
    from tests.unit.upstream.test_safe_pickle import tampered_arrow_pickle

    (broken_mirror / "luma" / "edm_images.pickle").write_bytes(tampered_arrow_pickle())
    with pytest.raises((pickle.UnpicklingError, ValueError), match="edm_images.pickle: refused .*Arrow-backed columns"):
        load(mirror=str(broken_mirror), cache_dir=cache_dir)
    assert not _cached_datasets(cache_dir)
    assert not [p for p in Path(cache_dir).rglob("*") if p.name.endswith(".incomplete")]


def test_interrupted_build_leaves_no_dataset_and_the_next_call_rebuilds(mirror, monkeypatch, cache_dir):
    """A build that dies halfway through writing keeps nothing; the next call rebuilds cleanly."""
    import luma_noise

    finish, calls = luma_noise.examples.finish_batch, []

    def dying(*args):
        calls.append(1)
        if len(calls) > 1:  # after the first batch of the train split has been written
            raise RuntimeError("interrupted")
        return finish(*args)

    monkeypatch.setattr(luma_noise.examples, "finish_batch", dying)
    with pytest.raises(Exception) as err:  # datasets wraps it in DatasetGenerationError
        load(mirror=str(mirror[0]), cache_dir=cache_dir)
    assert "interrupted" in repr(err.value) + repr(err.value.__cause__)
    assert not _cached_datasets(cache_dir)
    assert not [p for p in Path(cache_dir).rglob("*") if p.name.endswith(".incomplete")]
    monkeypatch.setattr(luma_noise.examples, "finish_batch", finish)
    ds = load(mirror=str(mirror[0]), cache_dir=cache_dir)
    reference = load(mirror=str(mirror[0]), cache_dir=os.path.join(cache_dir, "reference"))
    for split in reference:
        assert rows(ds[split])[0]["text"] == rows(reference[split])[0]["text"]
        assert ds[split]["image_index"] == reference[split]["image_index"]
