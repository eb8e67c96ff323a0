"""The fixture builders ship inside the package (`luma_noise.fixtures`): the wheel lists every
subpackage, importing the package pulls in no torch, and nothing reaches them through a path into tests/."""

import subprocess
import sys
import tomllib

from tests.support.helpers import ROOT


def test_every_subpackage_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "luma_noise").rglob("__init__.py")}
    assert found == listed and "luma_noise.fixtures" in listed


def test_importing_the_fixtures_imports_no_torch():
    code = "import sys, luma_noise.fixtures, luma_noise.fixtures.mirror; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_tests_and_benchmarks_reach_the_fixtures_without_path_hacks():
    """The fixture builders are imported as `luma_noise.fixtures.*`: no tests/ copy of them, no sys.path
    entry pointing into tests/ from a benchmark."""
    names = {"make_mirror", "tiny_models", "tiny_text_models", "marian_models", "planted_models", "hub_server", "py2_pickle"}
    assert not [p for p in (ROOT / "tests").rglob("*.py") if p.stem in names]
    hacks = [p.name for p in (ROOT / "benchmarks").glob("*.py") if '"tests"' in p.read_text() and "sys.path" in p.read_text()]
    assert not hacks


def test_the_mirror_command_runs_from_the_package(tmp_path):
    for command in ([sys.executable, "-m", "luma_noise.fixtures.mirror"],):
        out = tmp_path / "mirror"
        done = subprocess.run([*command, str(out)], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "OOD aligned total" in done.stdout and (out / "splits" / "image_test.txt").is_file()
