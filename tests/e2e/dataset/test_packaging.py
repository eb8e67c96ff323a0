"""`luma_noise.load` takes `load_dataset`'s own arguments; the package metadata states ranges.

The installed-wheel check (a wheel built, installed in a fresh environment outside the
checkout under the newest `datasets`, `tests/smoke_new_datasets.py` run from a temp folder)
is a CI step (`.ci/run`): it needs the package index.
"""

import os
import re
import sys
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _arrow_files(dataset_dict):
    return sorted(f["filename"] for split in dataset_dict.values() for f in split.cache_files)


def test_load_passes_download_and_verification_modes_through(mirror, cache_dir):
    import datasets
    import luma_noise

    first = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache_dir)
    stamps = {f: os.stat(f).st_mtime_ns for f in _arrow_files(first)}
    again = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache_dir, verification_mode="no_checks",
                            download_config=datasets.DownloadConfig(max_retries=2))
    assert {f: os.stat(f).st_mtime_ns for f in _arrow_files(again)} == stamps  # reused
    rebuilt = luma_noise.load("clean", mirror=str(mirror[0]), cache_dir=cache_dir, download_mode="force_redownload",
                              keep_in_memory=True)
    assert all(os.stat(f).st_mtime_ns != stamps[f] for f in stamps)  # rebuilt in place
    assert rebuilt["test"]["image_index"] == first["test"]["image_index"]
    with pytest.raises(ValueError, match="not a valid DownloadMode"):  # datasets' own check: it was passed on
        luma_noise.load("clean", split="test", mirror=str(mirror[0]), cache_dir=cache_dir, download_mode="sometimes")


def test_revision_points_to_luma_revision(cache_dir):
    import luma_noise

    with pytest.raises(ValueError, match=r"pass luma_revision='v1.0'"):
        luma_noise.load("clean", cache_dir=cache_dir, revision="v1.0")


def test_load_reports_bad_fields_like_load_dataset(cache_dir):
    import luma_noise

    with pytest.raises(ValueError, match="seed=-1"):
        luma_noise.load("clean", cache_dir=cache_dir, seed=-1)


def _requirements() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower(): r for r in project["dependencies"]}


def test_library_metadata_states_ranges_not_this_machines_pins():
    deps = _requirements()
    assert deps["datasets"].replace(" ", "") == "datasets>=3.6"  # works on datasets 4 through luma_noise.load
    assert "==" not in deps["torch"] and ">=" in deps["torch"]  # never replace a user's CUDA torch
    assert "accelerate" in deps  # the Trainer of the baselines needs it
    assert all("==" not in r for r in deps.values())


def test_requirements_pin_this_machines_torch():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "torch==2.13.0" in lines


def test_the_wheel_ships_the_builder_and_its_recorded_infos():
    import json

    import luma_noise.builder

    package = Path(luma_noise.builder.__file__).parent
    infos = json.loads((package / "dataset_infos.json").read_text())
    assert "clean" in infos
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dataset_infos.json" in project["tool"]["setuptools"]["package-data"]["luma_noise"]


def test_package_version_matches_the_metadata():
    import luma_noise

    assert luma_noise.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
