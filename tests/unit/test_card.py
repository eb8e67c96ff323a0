"""The dataset card and CI stay in step with the code."""

import json
import re

from tests.support.helpers import ROOT
from luma_noise import card
from luma_noise.loader import builder_class


def test_dataset_infos_and_card_header_are_generated_from_the_builder():
    builder = builder_class()
    assert json.loads((ROOT / "dataset_infos.json").read_text()) == card.dataset_infos(builder)
    assert card.PACKAGE_INFOS.read_text() == (ROOT / "dataset_infos.json").read_text()
    assert (ROOT / "README.md").read_text().startswith(card.yaml_header(builder)), "run: python -m luma_noise.card"


def test_every_config_is_documented_in_the_card():
    readme = (ROOT / "README.md").read_text()
    for config in builder_class().BUILDER_CONFIGS:
        if not config.name.startswith("label_noise_"):
            assert f"| `{config.name}` |" in readme
    assert "`label_noise_0.1` … `label_noise_0.5`" in readme
    fields = [f for f in builder_class().BUILDER_CONFIG_CLASS.__dataclass_fields__ if f not in
              ("name", "version", "data_dir", "data_files", "description")]
    for field in fields:
        assert field in readme, f"field {field} is not documented in README.md"


def test_the_card_tables_of_configs_and_fields_are_generated_from_the_config_class():
    readme = (ROOT / "README.md").read_text()
    for name, table in card.generated_tables().items():
        assert table in readme, f"the {name} table is out of date: run python -m luma_noise.card"
    fields = card.fields_table()
    undocumented = [row for row in fields.splitlines()[2:] if row.endswith("|  |")]
    assert not undocumented, f"luma_noise.config_fields does not describe: {undocumented}"
    assert "| `label_noise_neighbours` | `5` | content | nearest samples per class" in fields  # the description's text
    assert "`0.0` (`1.0`, `1.0`, `1.0` in `sample_noise`)" in fields  # a named config's values beside the default
    assert "| `label_noise_0.1` … `label_noise_0.5` |" in card.configs_table()
    assert "`label_noise` = `0.1` … `0.5`" in card.configs_table()


def test_generated_tables_are_rewritten_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(card, "PACKAGE_INFOS", tmp_path / "package_infos.json")
    stale = "# card\n\n" + "\n\n".join(f"{start}\n| stale |\n{end}" for start, end in map(card._markers, ("configs", "fields")))
    (tmp_path / "README.md").write_text("---\nold: header\n---\n" + stale + "\n\ntail\n")
    card.write(builder_class(), root=tmp_path)
    written = (tmp_path / "README.md").read_text()
    assert "| stale |" not in written and written.endswith("\n\ntail\n") and "old: header" not in written
    assert all(table in written for table in card.generated_tables().values())
    card.write(builder_class(), root=tmp_path)
    assert (tmp_path / "README.md").read_text() == written


def test_every_data_field_is_documented_in_the_card():
    readme = (ROOT / "README.md").read_text()
    columns = {name for config in builder_class().BUILDER_CONFIGS for name in builder_class()(config_name=config.name).info.features}
    for column in columns:
        assert f"| `{column}` |" in readme, f"column {column} is missing from the card's data fields"


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    setup, test = (re.search(label + r"[^\n]*\n(?:[^\n]+\n)*\n*```bash\n(.+?)\n```", readme).group(1)
                   for label in ("Setup command", "Test command"))
    assert (setup, test) == ("python -m pip install -r requirements.txt", "python -m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci and test in ci
    assert ci.index(setup) < ci.index(test)


def test_a_new_named_config_needs_a_summary_for_the_card(monkeypatch):
    import pytest

    from luma_noise import options

    monkeypatch.setitem(options.NAMED_CONFIGS, "label_noise_0.6", {"label_noise": 0.6})  # joins its family's row
    assert "| `label_noise_0.1` … `label_noise_0.6` |" in card.configs_table()
    monkeypatch.setitem(options.NAMED_CONFIGS, "very_noisy", {"image_noise_ratio": 1.0})
    with pytest.raises(ValueError, match="'very_noisy' has no summary"):
        card.configs_table()
