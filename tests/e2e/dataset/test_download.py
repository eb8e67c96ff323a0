"""Downloads as from the real Hub: rate limits, resume, truncated files, checksums, tokens, dying servers.

A loopback server (`hub_server.ThrottledServer`) answers 429 past N requests per 1 s window,
adds latency, truncates a file once, or dies mid-file; builds go through `load_dataset` on the
script path and are compared with the build from the same mirror as a folder.
"""

import hashlib
import os
import re
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.support.helpers import load, rows
from luma_noise.fixtures.hub import ThrottledServer
from luma_noise.upstream import download


def _fingerprint(dataset_dict):
    return {split: [{k: (v.tobytes() if hasattr(v, "tobytes") else v) for k, v in ex.items()} for ex in rows(dataset_dict[split])]
            for split in dataset_dict}


@pytest.fixture(scope="module")
def folder_build(mirror, tmp_path_factory):
    return _fingerprint(load(mirror=str(mirror[0]), cache_dir=str(tmp_path_factory.mktemp("cache"))))


@pytest.fixture
def fast_retries(monkeypatch):
    """Retries and timeouts scaled down so failure paths finish in a second or two."""
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    monkeypatch.setattr(download, "TIMEOUT_S", (2.0, 2.0))


def _wavs(counter):
    return {path: n for path, n in counter.items() if path.endswith(".wav")}


def test_clean_over_a_rate_limited_server_equals_the_folder_build(
        mirror, folder_build, allow_loopback_http, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(download, "ANNOUNCE_AT", 20)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_the_hub_only")
    with ThrottledServer(mirror[0], limit=80, window_s=1, latency_s=0.002) as server:
        with caplog.at_level("WARNING"):
            ds = load(mirror=server.url, cache_dir=str(tmp_path / "cache"))
        assert _fingerprint(ds) == folder_build
        fetched = _wavs(server.served(200))
        assert set(fetched.values()) == {1}, "a wav was fetched twice"
        paused = sum(1 for _, status in server.log if status == 429)
        # the client pauses when the server says the window is used up: few 429s, far fewer than files
        assert paused <= download.WORKERS * (len(server.log) // 80 + 1)
        assert not any(server.auth_headers), "the token went to a mirror"
        announced = [r.message for r in caplog.records if "LUMA: downloading" in r.message]
        assert len(announced) == 1 and "allows 80 requests per 1 s" in announced[0]

        # another config sharing the cache (seed 7: same train/test rows, other OOD draws) fetches
        # only the wavs it has not seen, and nothing twice
        other = load(mirror=server.url, cache_dir=str(tmp_path / "cache"), seed=7)
        assert len(other["test"]) == len(folder_build["test"])
        again = _wavs(server.served(200))
        assert set(again.values()) == {1}, "a cached wav was fetched again"
        assert 0 < len(again) - len(fetched) <= len(folder_build["ood"])


def test_streaming_over_a_rate_limited_server_equals_the_folder_build(mirror, folder_build, allow_loopback_http, tmp_path):
    # as on the Hub, each file is a limited redirect (carrying the limit headers) to an unlimited CDN
    with ThrottledServer(mirror[0], limit=40, window_s=1, latency_s=0.002, redirect=True) as server:
        streamed = load(mirror=server.url, cache_dir=str(tmp_path / "cache"), streaming=True)
        assert _fingerprint(streamed) == folder_build
        assert server.windows_used_up >= 1  # the limit was reached and the client waited for the next window
        assert set(_wavs(server.served(302)).values()) == {1}, "a wav was fetched twice"


def test_streaming_over_http_fetches_the_wavs_of_the_blocks_read_only(mirror, folder_build, allow_loopback_http, tmp_path):
    n = len(folder_build["test"])
    block = max(1, min(256, -(-n // 8)))  # examples.blocks: up to 256 examples, at least 8 blocks
    with ThrottledServer(mirror[0]) as server:
        streamed = load(mirror=server.url, cache_dir=str(tmp_path / "cache"), streaming=True, split="test")
        first = next(iter(streamed))
        assert first["audio_path"] == folder_build["test"][0]["audio_path"]
        time.sleep(0.5)  # anything still in flight
        # each block is its own shard when streaming: nothing reads ahead into the server's request limit
        assert 1 <= len(_wavs(server.served(200))) <= block


def test_a_truncated_download_is_named_not_cached_and_fetched_again(mirror, folder_build, allow_loopback_http, tmp_path):
    with ThrottledServer(mirror[0]) as server:
        server.truncate_once("cifar-10-python.tar.gz")
        with pytest.raises(download.UnreadableFileError) as err:
            load(mirror=server.url, cache_dir=str(tmp_path / "cache"))
        message = str(err.value)
        assert "cifar/cifar-10-python.tar.gz" in message and server.url + "cifar/cifar-10-python.tar.gz" in message
        assert "removed from the download cache" in message
        assert _fingerprint(load(mirror=server.url, cache_dir=str(tmp_path / "cache"))) == folder_build
        assert server.served(200)["/cifar/cifar-10-python.tar.gz"] == 2


def test_a_truncated_wav_is_named_not_cached_and_fetched_again(mirror, folder_build, allow_loopback_http, tmp_path):
    wav = "/luma/audio/" + rows(load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "c0"), split="test"))[0]["audio_path"]
    with ThrottledServer(mirror[0]) as server:
        server.truncate_once(wav)
        with pytest.raises(download.UnreadableFileError, match="truncated") as err:
            load(mirror=server.url, cache_dir=str(tmp_path / "cache"))
        assert server.url.rstrip("/") + wav in str(err.value)
        assert not list((tmp_path / "cache").rglob("*.arrow")), "a damaged build was cached"
        assert _fingerprint(load(mirror=server.url, cache_dir=str(tmp_path / "cache"))) == folder_build
        assert server.served(200)[wav] == 2


def test_checksums_are_checked_before_caching(mirror, allow_loopback_http, tmp_path):
    name = "cifar/cifar-100-python.tar.gz"
    good = hashlib.md5((Path(mirror[0]) / name).read_bytes()).hexdigest()
    options = download.Options(str(tmp_path / "dl"))
    with ThrottledServer(mirror[0]) as server:
        url = server.url + name
        with pytest.raises(download.DownloadError, match=f"{url}: md5 .* differs from the published 0+"):
            download.download([url], options, md5={url: "0" * 32})
        assert not os.listdir(options.cache_dir)
        [path] = download.download([url], options, md5={url: good})
        assert Path(path).read_bytes() == (Path(mirror[0]) / name).read_bytes()


def test_recorded_checksums_are_the_published_cifar_md5():
    import json

    from tests.support.helpers import ROOT

    infos = json.loads((ROOT / "dataset_infos.json").read_text())
    checksums = infos["clean"]["download_checksums"]
    assert checksums["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]["md5"] == "c58f30108f718f92721af3b95e74349a"
    assert checksums["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"]["md5"] == "eb9058c3a382ffc7106e4002c42a8d85"


def test_a_server_dying_mid_stream_gives_a_named_error_quickly(mirror, allow_loopback_http, fast_retries, tmp_path):
    wav = "/luma/audio/" + rows(load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "c0"), split="test"))[5]["audio_path"]
    with ThrottledServer(mirror[0]) as server:
        streamed = load(mirror=server.url, cache_dir=str(tmp_path / "cache"), streaming=True, split="test")
        server.die_on(wav)
        start = time.monotonic()
        with pytest.raises(download.DownloadError) as err:
            list(streamed)
        assert time.monotonic() - start < 30
        # the file that failed first names the error: the dying one or one fetched beside it
        assert re.search(rf"could not download {server.url}luma/audio/\S+\.wav after {download.RETRIES + 1} attempts",
                         str(err.value))


def test_the_token_goes_to_hub_hosts_only(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_configured")
    hub = "https://huggingface.co/datasets/bezirganyan/LUMA/resolve/main/audio/datalist.csv"
    assert download.auth_headers(hub, None) == {"authorization": "Bearer hf_configured"}
    assert download.auth_headers(hub, "hf_given") == {"authorization": "Bearer hf_given"}
    assert download.auth_headers("https://cdn-lfs.huggingface.co/x", None) == {"authorization": "Bearer hf_configured"}
    assert download.auth_headers(hub, False) == {}
    for other in ("http://127.0.0.1:8000/luma/text_data.tsv", "https://huggingface.co.evil.example/x",
                  "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"):
        assert download.auth_headers(other, "hf_given") == {}


def test_rate_limit_headers_and_expected_waits():
    assert download.retry_after_s({"Retry-After": "42"}) == 42
    assert 55 < download.retry_after_s({"Retry-After": formatdate(time.time() + 60, usegmt=True)}) <= 60
    assert download.retry_after_s({}) is None
    client = download._Client(False)
    assert client._note_limits({"RateLimit": '"resolvers";r=0;t=55', "RateLimit-Policy": '"fixed window";"resolvers";q=3000;w=300'}) == 55
    assert client.limit == (3000, 300.0) and client.remaining == 0
    # clean's ~29,000 wavs: 9 more windows anonymous, 5 with a free account, 2 with PRO
    assert download.expected_wait_s(29_000, 3000, 300) == 9 * 300
    assert download.expected_wait_s(29_000, 5000, 300) == 5 * 300
    assert download.expected_wait_s(29_000, 12000, 300) == 2 * 300
    assert download.expected_wait_s(2_000, 3000, 300) == 0
    assert download.expected_wait_s(3_500, 3000, 300, remaining=1000, reset_s=100) == 100



def test_an_interrupted_download_resumes_where_it_stopped(mirror, folder_build, allow_loopback_http, fast_retries, tmp_path):
    cache = str(tmp_path / "cache")
    last = "/luma/audio/" + folder_build["ood"][-1]["audio_path"]  # among the last wavs fetched
    with ThrottledServer(mirror[0]) as server:
        server.die_on(last)
        with pytest.raises(download.DownloadError):
            load(mirror=server.url, cache_dir=cache)
        first = _wavs(server.served(200))
        server.revive()
        assert _fingerprint(load(mirror=server.url, cache_dir=cache)) == folder_build
        both = _wavs(server.served(200))
    complete = set(first) - {last}  # the dying one was cut short
    assert len(complete) > len(folder_build["train"]) and all(both[path] == 1 for path in complete), \
        "a complete file was fetched again"
    assert both[last] == 2
