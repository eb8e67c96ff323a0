"""The dataset side of `luma_noise` (everything but the baselines and the commands that mount them)
has no import cycles, no module imported under another name, and the variants registry finds
every variant module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "luma_noise"
# The command layer: `luma` mounts the baselines' commands, which is the issue-18 cycle the
# baselines' own redesign removes; these modules are not checked here.
COMMAND_LAYER = ("luma_noise.baselines", "luma_noise.cli", "luma_noise.demo")


def _modules() -> dict:
    """{dotted name: path} of every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict) -> list:
    """(imported module, alias or None) of every import in the module, top level or in functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, alias.asname) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    out.append((target, alias.asname))
                elif base in modules:
                    out.append((base, None))
    return out


def _dataset_side(modules: dict) -> dict:
    return {name: path for name, path in modules.items() if not name.startswith(COMMAND_LAYER)}


def test_no_import_cycles_on_the_dataset_side():
    modules = _modules()
    side = _dataset_side(modules)
    graph = {name: {target for target, _ in _imports(name, path, modules) if target in side and target != name}
             for name, path in side.items()}
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_of_the_package_is_imported_under_another_name():
    modules = _modules()
    aliased = [f"{name} imports {target} as {alias}" for name, path in _dataset_side(modules).items()
               for target, alias in _imports(name, path, modules) if alias and alias != target.rsplit(".", 1)[-1]]
    assert not aliased, aliased


def test_every_variant_module_is_registered_in_order():
    from luma_noise import variants

    names = [module.__name__.rsplit(".", 1)[-1] for module in variants.registry()]
    assert names == ["diversity", "label_noise", "conflict"]
    for module in variants.registry():
        assert {"is_on", "feature_modalities", "apply", "column_values"} <= set(vars(module)), module.__name__
