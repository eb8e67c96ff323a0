"""Loading paths of the script: streaming, HTTP mirror, num_proc, determinism, luma_noise.load."""

import http.server
import json
import threading

import pytest

import luma_noise
from tests.support.helpers import ROOT, load, rows


def _fingerprint(examples):
    """Comparable content of a split: everything, with arrays as bytes."""
    return [{k: (v.tobytes() if hasattr(v, "tobytes") else v) for k, v in ex.items()} for ex in examples]


@pytest.fixture(scope="module")
def prepared(clean):
    """The session's `clean` examples (conftest), fingerprinted."""
    return {split: _fingerprint(examples) for split, examples in clean.items()}


def test_streaming_gives_the_same_examples_in_the_same_order(prepared, mirror, cache_dir):
    streamed = load(mirror=str(mirror[0]), cache_dir=cache_dir, streaming=True)
    assert {split: _fingerprint(rows(streamed[split])) for split in streamed} == prepared


def test_two_fresh_caches_and_num_proc_give_identical_examples(prepared, mirror, tmp_path):
    again = load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "a"))
    assert {split: _fingerprint(rows(again[split])) for split in again} == prepared
    sharded = load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "b"), num_proc=2)
    assert {split: _fingerprint(rows(sharded[split])) for split in sharded} == prepared


def test_a_different_seed_pairs_differently_but_selects_the_same_rows(prepared, mirror, cache_dir):
    other = load(mirror=str(mirror[0]), cache_dir=cache_dir, seed=7)
    train = rows(other["train"])
    assert sorted(ex["image_index"] for ex in train) == sorted(ex["image_index"] for ex in prepared["train"])
    pairs = lambda exs: {(ex["image_index"], ex["audio_path"], ex["text_index"]) for ex in exs}  # noqa: E731
    assert pairs(train) != pairs(prepared["train"])


def test_http_mirror_prepared_and_streaming(prepared, http_mirror, allow_loopback_http, cache_dir):
    url, _ = http_mirror
    ds = load(mirror=url, cache_dir=cache_dir)
    assert {split: _fingerprint(rows(ds[split])) for split in ds} == prepared
    streamed = load(mirror=url, cache_dir=cache_dir, streaming=True)
    assert _fingerprint(rows(streamed["test"])) == prepared["test"]


def test_only_the_selected_audio_files_are_downloaded(mirror, allow_loopback_http, cache_dir):
    root, manifest = mirror
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ds = load(mirror=f"http://127.0.0.1:{server.server_address[1]}", cache_dir=cache_dir)
    finally:
        server.shutdown()
    used = {ex for split in ds for ex in ds[split]["audio_path"]}
    fetched = {p.split("/luma/audio/", 1)[1] for p in requested if p.endswith(".wav")}
    assert fetched == used
    assert len(used) < len(manifest["audio_paths"])


def test_luma_noise_load_drives_the_builder_directly(prepared, mirror, cache_dir):
    ds = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache_dir)
    assert {split: _fingerprint(rows(ds[split])) for split in ds} == prepared
    test = luma_noise.load("clean", split="test", streaming=True, mirror=str(mirror[0]), cache_dir=cache_dir)
    assert _fingerprint(rows(test)) == prepared["test"]


def test_recorded_sizes_hold_for_the_real_upstream_only(mirror, cache_dir):
    infos = json.loads((ROOT / "dataset_infos.json").read_text())
    splits = {name: s["num_examples"] for name, s in infos["clean"]["splits"].items()}
    assert splits == {"train": 21000, "test": 4200, "ood": 3859}
    builder_cls = luma_noise.loader.builder_class()
    assert {k: v.num_examples for k, v in builder_cls(config_name="clean", cache_dir=cache_dir).info.splits.items()} == splits


def test_a_clone_named_luma_loads_by_folder_name(prepared, mirror, tmp_path, monkeypatch):
    import datasets

    clone = tmp_path / "luma"
    clone.mkdir()
    for name in ("luma.py", "README.md", "dataset_infos.json"):
        (clone / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    ds = datasets.load_dataset("luma", "clean", mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"), trust_remote_code=True)
    assert _fingerprint(rows(ds["test"])) == prepared["test"]
