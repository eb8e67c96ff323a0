"""The fixture builders ship inside the package (`luma_noise.fixtures`): the wheel lists every
subpackage, importing the package pulls in no torch, and the old module names in tests/ are the
package's modules themselves."""

import subprocess
import sys
import tomllib

from helpers import ROOT


def test_every_subpackage_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "luma_noise").rglob("__init__.py")}
    assert found == listed and "luma_noise.fixtures" in listed


def test_importing_the_fixtures_imports_no_torch():
    code = "import sys, luma_noise.fixtures, luma_noise.fixtures.mirror; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_old_names_are_the_package_modules():
    import hub_server
    import make_mirror
    import marian_models
    import planted_models
    import py2_pickle
    import tiny_models
    import tiny_text_models
    from luma_noise.fixtures import hub, marian, mirror, models, pickles, planted, text_models

    pairs = [(make_mirror, mirror), (py2_pickle, pickles), (tiny_models, models), (tiny_text_models, text_models),
             (marian_models, marian), (planted_models, planted), (hub_server, hub)]
    assert all(old is new for old, new in pairs)
    assert make_mirror._wav_bytes is mirror._wav_bytes  # private names too


def test_the_mirror_command_runs_from_tests_and_from_the_package(tmp_path):
    for command in ([sys.executable, str(ROOT / "tests" / "make_mirror.py")], [sys.executable, "-m", "luma_noise.fixtures.mirror"]):
        out = tmp_path / command[-1].replace("/", "_")
        done = subprocess.run([*command, str(out)], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "OOD aligned total" in done.stdout and (out / "splits" / "image_test.txt").is_file()
