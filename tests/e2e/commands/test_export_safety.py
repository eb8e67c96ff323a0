"""`luma export` never deletes or rewrites what it did not write, and an interrupted export loses nothing.

Sacrificial folders around the output folder must survive every refused name; a child process
SIGKILLs itself at chosen points of the replacement and the next export must restore or finish it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.cli_helpers import luma
from luma_noise import export

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cache(mirror, tmp_path_factory):
    """A datasets cache holding `clean` prepared from the mirror (later exports only write Parquet)."""
    work = tmp_path_factory.mktemp("export-safety")
    status, _, stderr = luma("export", "clean", "--mirror", mirror[0], "--cache-dir", work / "cache",
                             "--output-dir", work / "warm")
    assert status == 0, stderr
    return work / "cache"


def _export(mirror, cache, out, *extra):
    return luma("export", "clean", "--mirror", mirror[0], "--cache-dir", cache, "--output-dir", out, *extra)


def _snapshot(folder: Path) -> dict:
    """{relative path: bytes} of every file under `folder` (hidden ones included)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _sacrifices(tmp_path) -> dict:
    """parent/ with a file, parent/out/ with a file, a sibling parent/X/ and an unrelated out/photos/."""
    files = {}
    for rel in ("parent/keep.txt", "parent/out/keep.txt", "parent/X/keep.txt", "parent/out/photos/cat.jpg"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
        files[path] = rel
    return files


@pytest.mark.parametrize("name", ["..", ".", "./../X", "../X", "a/b", "", ".hidden", "photos/..", "ABSOLUTE"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused_before_any_work(mirror, tmp_path, name):
    files = _sacrifices(tmp_path)
    name = str(tmp_path / "parent" / "X") if name == "ABSOLUTE" else name
    cache = tmp_path / "cache"
    status, _, stderr = _export(mirror, cache, tmp_path / "parent" / "out", "--name", name)
    assert status == 2, stderr
    assert f"--name {name!r}" in stderr and "one folder name" in stderr
    assert all(path.read_text() == rel for path, rel in files.items())  # every sacrificial folder survives
    assert not cache.exists()  # refused before the dataset was built
    assert sorted(p.name for p in (tmp_path / "parent" / "out").iterdir()) == ["keep.txt", "photos"]


@pytest.mark.parametrize("kind", ["folder", "file", "symlink", "other_export"])
def test_a_target_that_is_not_an_earlier_export_is_refused(mirror, cache, tmp_path, kind):
    files = _sacrifices(tmp_path)
    out = tmp_path / "parent" / "out"
    if kind == "file":
        (out / "clean").write_text("mine")
    elif kind == "symlink":  # a link to a folder of ours would delete or write through it
        (out / "clean").symlink_to(out / "photos", target_is_directory=True)
    elif kind == "other_export":  # an export's provenance file, but of another name: not this config's folder
        (out / "clean").mkdir()
        (out / "clean" / "luma_variant.json").write_text(json.dumps({"name": "other", "config": "clean"}))
    name = "photos" if kind == "folder" else "clean"
    before = _snapshot(out)
    status, _, stderr = _export(mirror, tmp_path / "cache", out, "--name", name)
    assert status == 2, stderr
    assert f"{out / name}" in stderr and "not an earlier export" in stderr
    assert _snapshot(out) == before and all(path.read_text() == rel for path, rel in files.items())
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("out", ["file", "file/out"])
def test_an_output_folder_that_is_or_is_under_a_file_is_refused_before_any_work(mirror, tmp_path, out):
    (tmp_path / "file").write_text("not a folder")
    status, _, stderr = _export(mirror, tmp_path / "cache", tmp_path / out)
    assert status == 2 and f"--output-dir {tmp_path / out}" in stderr and "not a folder" in stderr
    assert not (tmp_path / "cache").exists()


def test_a_readme_this_tool_did_not_write_is_kept_unless_forced(mirror, cache, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    foreign = "---\nlicense: mit\npretty_name: My photos\n---\n# My own dataset\n\nHand-written notes.\n"
    (out / "README.md").write_text(foreign)
    status, _, stderr = _export(mirror, cache, out)
    assert status == 2 and "README.md" in stderr and "--force" in stderr
    assert (out / "README.md").read_text() == foreign and not (out / "clean").exists()
    status, _, stderr = _export(mirror, cache, out, "--force")
    assert status == 0, stderr
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert header["license"] == "mit" and header["pretty_name"] == "My photos"  # its header kept and extended
    assert [c["config_name"] for c in header["configs"]] == ["clean"]
    status, _, stderr = _export(mirror, cache, out)  # from now on the README is ours
    assert status == 0, stderr


@pytest.mark.parametrize("header", ["license: [unclosed\n", "- a list\n- not a mapping\n", "configs: 7\n"])
def test_a_readme_whose_header_does_not_parse_is_refused_before_anything_moves(mirror, cache, tmp_path, header):
    out = tmp_path / "out"
    status, _, stderr = _export(mirror, cache, out)
    assert status == 0, stderr
    ours = (out / "README.md").read_text()
    (out / "README.md").write_text("---\n" + header + "---\n" + ours.split("---\n", 2)[2])
    before = _snapshot(out)
    for extra in ([], ["--force"]):
        status, _, stderr = _export(mirror, tmp_path / "cache2", out, *extra)
        assert status == 2 and f"{out / 'README.md'}" in stderr and "header" in stderr, stderr
        assert _snapshot(out) == before
        assert not (tmp_path / "cache2").exists()


_CHILD = """
import os, shutil, signal, sys
sys.path.insert(0, {tests!r})
import tests.conftest  # offline, temporary caches
from luma_noise import export
point, seen = {point!r}, []

def kill_at(kind, real):
    def wrapper(*args, **kwargs):
        seen.append(kind)
        if f"{{kind}}{{seen.count(kind)}}" == point:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper

export.os.replace = kill_at("replace", os.replace)
export.shutil.rmtree = kill_at("rmtree", shutil.rmtree)
from luma_noise.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("point", ["replace1", "replace2", "replace3", "rmtree1"])
def test_an_export_killed_at_any_step_loses_nothing_and_the_next_one_cleans_up(mirror, cache, tmp_path, point):
    """Kill points: before the 1st, 2nd, 3rd `os.replace` (old export aside, new one in, README) and
    before the work folder is deleted. The old export must survive (in place, or aside where the next
    export restores it); the next export, of another name, must leave the old one as it was."""
    out = tmp_path / "out"
    status, _, stderr = _export(mirror, cache, out, "--max-shard-size", "100KB")
    assert status == 0, stderr
    old = _snapshot(out / "clean")
    argv = ["export", "clean", "--mirror", str(mirror[0]), "--cache-dir", str(cache), "--output-dir", str(out),
            "--max-shard-size", "100KB"]  # the same shards as the old export: what is in place must equal it
    child = _CHILD.format(tests=str(ROOT), point=point, argv=argv)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    hidden = [p for p in out.iterdir() if p.name.startswith(".")]
    assert hidden  # the killed export's work folder is still there
    status, _, stderr = _export(mirror, cache, out, "--name", "other")
    assert status == 0, stderr
    assert _snapshot(out / "clean") == old  # in place, restored from aside, or the identical new one
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the stale work folder is gone
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert sorted(c["config_name"] for c in header["configs"]) == ["clean", "other"]
    body = (out / "README.md").read_text().split("---\n", 2)[2]
    assert body.count("## clean") == 1 and body.count("## other") == 1


def test_a_live_exports_work_folder_is_left_alone(mirror, cache, tmp_path):
    """A work folder whose owner is still running (here: this test process) is not cleaned."""
    out = tmp_path / "out"
    out.mkdir()
    live = out / f"{export.work_prefix()}live"
    (live / "config").mkdir(parents=True)
    (live / "config" / "luma_variant.json").write_text(json.dumps({"name": "clean"}))
    status, _, stderr = _export(mirror, cache, out)
    assert status == 0, stderr
    assert (live / "config" / "luma_variant.json").exists()
    body = (out / "README.md").read_text().split("---\n", 2)[2]
    assert body.count("## clean") == 1


def test_staging_folders_left_by_earlier_versions_are_removed(mirror, cache, tmp_path):
    """luma_noise 0.2.0 staged into `.<name>-XXXXXXXX/` and left it when killed: the card listed it twice."""
    out = tmp_path / "out"
    status, _, stderr = _export(mirror, cache, out)
    assert status == 0, stderr
    leftover = out / ".clean-k7cy8ydf"
    shutil.copytree(out / "clean", leftover)
    unrelated = out / ".cache-12345678"  # hidden, the same shape of name, but not a staging folder of ours
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("mine")
    status, _, stderr = _export(mirror, cache, out, "--name", "other")
    assert status == 0, stderr
    assert not leftover.exists() and (unrelated / "notes.txt").read_text() == "mine"
    body = (out / "README.md").read_text().split("---\n", 2)[2]
    assert body.count("## clean") == 1
