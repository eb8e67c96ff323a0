"""The dataset side of `luma_noise` (everything but the baselines and the commands that mount them)
has no import cycles, no module imported under another name, and the variants registry finds
every variant module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "luma_noise"
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


_REVERSED_TEST = '''
"""A test variant: the test split in reverse order, with each example's old position as a column."""
import dataclasses
import numpy as np

ORDER = 40
COLUMNS = {"old_position": "string"}


def is_on(config):
    return config.num_sampling == 3  # a field no other variant of `clean` reads


def feature_modalities(config):
    return ()


def column_values(plan):
    return {"old_position": [str(i) for i in getattr(plan, "old_position", range(len(plan)))]}


def apply(plans, upstream, config, features):
    test = plans["test"]
    order = np.arange(len(test))[::-1]
    fields = {f.name: getattr(test, f.name) for f in dataclasses.fields(test)}
    reversed_test = dataclasses.replace(test, **{k: v[order] for k, v in fields.items() if isinstance(v, np.ndarray)})
    reversed_test.old_position = order
    return {**plans, "test": reversed_test}
'''


def test_adding_a_variant_is_adding_one_module(mirror, tmp_path, monkeypatch):
    """A module dropped into the variants package reaches load_dataset: its plans, its column."""
    from tests.support.helpers import load
    from luma_noise import variants

    (tmp_path / "reversed_test.py").write_text(_REVERSED_TEST)
    monkeypatch.setattr(variants, "__path__", [*variants.__path__, str(tmp_path)])
    variants.registry.cache_clear()
    try:
        plain = load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "plain"))
        reversed_ = load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "reversed"), num_sampling=3)
        assert "old_position" not in plain["test"].column_names
        n = len(plain["test"])
        assert reversed_["test"]["text_index"] == plain["test"]["text_index"][::-1]
        assert reversed_["test"]["old_position"] == [str(i) for i in range(n - 1, -1, -1)]
        assert reversed_["train"]["old_position"] == [str(i) for i in range(len(plain["train"]))]  # on every split
        assert reversed_["train"]["text_index"] == plain["train"]["text_index"]
    finally:
        variants.registry.cache_clear()
