"""The command line stays light: importing it loads neither `datasets`, `torch` nor `nlpaug`."""

import subprocess
import sys

HEAVY = ("datasets", "torch", "nlpaug")


def _imported_after(statement: str) -> set:
    code = f"import sys; {statement}; print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(out.stdout.split())


def test_cli_imports_no_heavy_module():
    assert _imported_after("import luma_noise.cli") == set()


def test_package_names_load_on_first_use():
    assert _imported_after("import luma_noise") == set()
    assert _imported_after("import luma_noise; luma_noise.CLASSES") == set()
    # the examples planner needs datasets' features: importing it through the package loads them
    assert "datasets" in _imported_after("import luma_noise; luma_noise.plan_examples")


def test_submodules_reachable_as_attributes():
    code = "import luma_noise; print(callable(luma_noise.loader.builder_class))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"
