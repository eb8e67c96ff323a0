"""A damaged wav among those a config stores fails the build with its name before anything is cached."""

import os
import shutil

import pytest

from tests.support.helpers import load, rows
from luma_noise.fixtures.hub import ThrottledServer
from luma_noise.upstream import download, wav_check

DAMAGES = {"random bytes": os.urandom(2000), "0 bytes": b""}


@pytest.fixture(scope="module")
def reference(mirror, tmp_path_factory):
    """The test split built from the intact mirror, and the audio path of its first example."""
    test = rows(load(mirror=str(mirror[0]), cache_dir=str(tmp_path_factory.mktemp("cache")), split="test"))
    return test, "audio/" + test[0]["audio_path"]


@pytest.fixture
def mirror_copy(mirror, tmp_path):
    return shutil.copytree(mirror[0], tmp_path / "mirror")


def _no_arrow(cache):
    return not any(name.endswith(".arrow") for _, _, files in os.walk(cache) for name in files)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_wav_in_a_folder_mirror_is_named_and_nothing_is_cached(reference, mirror_copy, tmp_path, damage):
    test, name = reference
    wav = mirror_copy / "luma" / name
    good = wav.read_bytes()
    wav.write_bytes(DAMAGES[damage])
    cache = str(tmp_path / "cache")
    for kwargs in ({}, {"streaming": True}, {"audio_noise_ratio": 1.0}):  # prepared, streaming, under audio noise
        with pytest.raises(download.UnreadableFileError) as err:
            load(mirror=str(mirror_copy), cache_dir=cache, **kwargs)
        assert name in str(err.value) and str(wav) in str(err.value)
        assert "1 wav file(s) this config stores are damaged or missing" in str(err.value)
        assert _no_arrow(cache)
    wav.write_bytes(good)
    assert rows(load(mirror=str(mirror_copy), cache_dir=cache, split="test")) is not None
    assert [ex["audio"] for ex in rows(load(mirror=str(mirror_copy), cache_dir=cache, split="test"))] == [ex["audio"] for ex in test]


def test_missing_wavs_of_a_folder_mirror_are_all_named_before_anything_is_cached(reference, mirror_copy, tmp_path):
    test, _ = reference
    names = ["audio/" + ex["audio_path"] for ex in test[:3]]
    for name in names:
        (mirror_copy / "luma" / name).unlink()
    cache = str(tmp_path / "cache")
    with pytest.raises(download.UnreadableFileError) as err:
        load(mirror=str(mirror_copy), cache_dir=cache)
    assert "3 wav file(s) this config stores are damaged or missing" in str(err.value)
    assert all(f"{name} cannot be read (missing)" in str(err.value) for name in names) and _no_arrow(cache)


def test_a_damaged_wav_over_http_is_named_evicted_and_fetched_again_once_fixed(
        reference, mirror_copy, allow_loopback_http, tmp_path):
    test, name = reference
    wav = mirror_copy / "luma" / name
    good = wav.read_bytes()
    wav.write_bytes(DAMAGES["random bytes"])
    cache = str(tmp_path / "cache")
    with ThrottledServer(mirror_copy) as server:
        with pytest.raises(download.UnreadableFileError, match="removed from the download cache") as err:
            load(mirror=server.url, cache_dir=cache)
        assert server.url + "luma/" + name in str(err.value) and _no_arrow(cache)
        streamed = load(mirror=server.url, cache_dir=cache, streaming=True, split="test")
        with pytest.raises(download.UnreadableFileError, match="not a wav file") as err:
            list(streamed)
        assert server.url + "luma/" + name in str(err.value)
        wav.write_bytes(good)
        assert [ex["audio"] for ex in rows(load(mirror=server.url, cache_dir=cache, split="test"))] == [ex["audio"] for ex in test]


@pytest.mark.parametrize("cut, problem", [(0, "too short"), (20, "truncated in its header"), (36, "no data chunk"), (44, "truncated"), (-1, "truncated")])
def test_wav_check_finds_truncation_that_libsndfile_would_hide(reference, mirror, cut, problem):
    data = (mirror[0] / "luma" / reference[1]).read_bytes()
    assert wav_check.bytes_problem(data) is None
    assert problem in wav_check.bytes_problem(data[:cut])


def test_a_damaged_clip_read_for_features_is_named(tmp_path):
    """Candidate clips of the deep-feature configs are decoded for extraction only: a damaged
    one is named too (not libsndfile's "Format not recognised")."""
    from luma_noise.upstream.download import UnreadableFileError
    from luma_noise.upstream.fetcher import decode_wav_file

    bad = tmp_path / "cv_audio" / "horse" / "3.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x17" * 300)
    with pytest.raises(UnreadableFileError, match=r"cv_audio/horse/3\.wav cannot be read as a wav file"):
        decode_wav_file(str(bad))
