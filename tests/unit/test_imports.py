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


def _import_graph(top_level_only: bool) -> dict:
    """{module: the luma_noise modules it imports}, read from the source (`import`, `from . import`,
    `from .x import y`, `from ..x import y`); `top_level_only`: only imports run when the module is
    imported, not those inside functions."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "luma_noise"
    files = {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in package.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets = set()
        for node in (tree.body if top_level_only else ast.walk(tree)):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                package_parts = here[:len(here) - node.level + 1] if node.level else []
                base = ".".join(package_parts + ([node.module] if node.module else []))
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names}
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def _cycle_through(graph: dict, start: str) -> list:
    """A chain of imports from `start` back to itself, or [] if there is none."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop()
        for target in sorted(graph[path[-1]]):
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                paths.append(path + [target])
    return []


def test_no_import_cycle_when_modules_are_imported():
    graph = _import_graph(top_level_only=True)
    cycles = {module: cycle for module in graph if (cycle := _cycle_through(graph, module))}
    assert not cycles, f"import cycles: {cycles}"


def test_the_command_line_and_the_baselines_do_not_import_each_other():
    """`--set`'s parser lives in luma_noise.set_option: the baselines import it, not luma_noise.cli
    (imports inside functions count too)."""
    graph = _import_graph(top_level_only=False)
    assert _cycle_through(graph, "luma_noise.cli") == []
    assert "luma_noise.set_option" in graph["luma_noise.baselines.train"]
    assert not any("luma_noise.cli" in targets for module, targets in graph.items() if module.startswith("luma_noise.baselines"))


def test_no_import_cycle_even_through_imports_inside_functions():
    """A module never needs one that needs it back, whenever the import runs: the layers are
    upstream -> plan -> variants -> noise -> examples -> builder, and scoring -> methods -> runner ->
    train -> sweep -> executors in the baselines."""
    graph = _import_graph(top_level_only=False)
    cycles = {module: cycle for module in graph if (cycle := _cycle_through(graph, module))}
    assert not cycles, f"import cycles: {cycles}"
