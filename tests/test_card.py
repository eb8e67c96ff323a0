"""The dataset card and CI stay in step with the code."""

import json
import re

from helpers import ROOT
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


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    setup, test = re.findall(r"```bash\n(.+?)\n```", readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci and test in ci
    assert ci.index(setup) < ci.index(test)
