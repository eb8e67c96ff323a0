"""The long steps show their time left, and `luma prepare` ends with a line a person can act on."""

import datasets

import luma_noise
from tests.support.cli_helpers import luma


def test_prepare_shows_each_splits_total_and_ends_with_the_call_that_loads_it(mirror, tmp_path):
    cache = tmp_path / "cache"
    status, out, err = luma("prepare", "clean", "--mirror", mirror[0], "--cache-dir", cache)
    assert status == 0, err
    rows = {split: len(mirror[1]["splits"][f"audio_{part}"]) for split, part in (("train", "train_clean"), ("test", "test"))}
    # a total, so tqdm shows the time left (from a mirror the recorded sizes are not used)
    assert "Generating train split: 100%" in err and f"{rows['train']}/{rows['train']}" in err
    last = out.strip().splitlines()[-1]
    assert last.startswith("done: clean is ready, ") and f"train {rows['train']}, test {rows['test']}" in last
    call = last.split("load it with ", 1)[1]
    arrow_files = sorted(cache.rglob("*.arrow"))
    loaded = eval(call, {"datasets": datasets, "luma_noise": luma_noise})  # the printed call, as a user pastes it
    assert len(loaded["train"]) == rows["train"] and sorted(cache.rglob("*.arrow")) == arrow_files  # found, not rebuilt
