"""The dataset card's machine-readable parts, generated from the builder so they never drift.

`python -m luma_noise.card` rewrites `dataset_infos.json` (at the top level, for the script and
the Hub, and inside the package, where the packaged builder reads its recorded split sizes) and
the YAML header of `README.md`, and the card's two tables of configs and fields, written from
the named configs (`options.NAMED_CONFIGS`) and the fields' one description
(`config_fields.FIELDS`); a test fails when any is out of date.
"""

import json
import re
from pathlib import Path


from .builder import DOWNLOAD_CHECKSUMS

# Split sizes on the real upstream data; every config keeps the clean split's sizes.
REAL_SPLIT_SIZES = {"train": 21000, "test": 4200, "ood": 3859}
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_INFOS = Path(__file__).resolve().parent / "dataset_infos.json"


def dataset_infos(builder_cls) -> dict:
    """{config name: DatasetInfo as a JSON dict} with the real upstream split sizes."""
    infos = {}
    for config in builder_cls.BUILDER_CONFIGS:
        info = builder_cls(config_name=config.name).info
        infos[config.name] = {
            "description": info.description,
            "citation": info.citation,
            "homepage": info.homepage,
            "license": info.license,
            "features": info.features.to_dict(),
            "builder_name": "luma",
            "config_name": config.name,
            "version": {"version_str": str(config.version)},
            "splits": {name: {"name": name, "num_examples": n, "dataset_name": "luma"} for name, n in REAL_SPLIT_SIZES.items()},
            "download_checksums": DOWNLOAD_CHECKSUMS,  # the published md5 of the pinned CIFAR tarballs
        }
    return infos


def yaml_header(builder_cls) -> str:
    """The card's YAML header: license, tasks, and per config its features and splits
    (`huggingface_hub.DatasetCardData`, filled by `datasets`' `DatasetInfosDict`)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    infos = DatasetInfosDict()
    for config in builder_cls.BUILDER_CONFIGS:
        splits = SplitDict({n: SplitInfo(name=n, num_examples=k) for n, k in REAL_SPLIT_SIZES.items()})
        infos[config.name] = DatasetInfo(features=builder_cls(config_name=config.name).info.features, splits=splits)
    card = DatasetCardData(
        license="cc-by-sa-4.0",
        language=["en"],
        pretty_name="LUMA",
        size_categories=["10K<n<100K"],
        task_categories=["image-classification", "audio-classification", "text-classification"],
        tags=["multimodal", "uncertainty-quantification", "out-of-distribution-detection", "label-noise"],
    )
    infos.to_dataset_card_data(card)
    return "---\n" + card.to_yaml() + "\n---\n"


# What each named config is for, in a phrase (the fields it sets come from options.NAMED_CONFIGS).
# Configs named `<prefix>_<value>` share one row under their prefix.
CONFIG_SUMMARIES = {
    "clean": "nothing: the published clean split",
    "sample_noise": "every image, audio clip and text of every split is corrupted",
    "low_diversity": "the train split is re-drawn per modality, favouring samples near the class centre",
    "label_noise": "each train and test label is switched with probability p to the nearest other class",
    "conflict": "in the test split, a fraction of each class's examples get one modality from the next class",
}


def _value(value) -> str:
    """A field value as a keyword argument spells it, in backticks."""
    if isinstance(value, (tuple, list)):
        return ", ".join(f"`{v}`" for v in value)
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def _values(values: list) -> str:
    """One value, or the first and last of a config family's values."""
    return _value(values[0]) if len(values) == 1 else f"{_value(values[0])} … {_value(values[-1])}"


def _config_rows() -> list:
    """[(names, summary key, {field: [values]})]: named configs, with `<prefix>_<value>` families
    that set one field to `<value>` folded into one row."""
    from .options import NAMED_CONFIGS

    rows = {}  # summary key -> (names, {field: [values]})
    for name, fields in NAMED_CONFIGS.items():
        family = re.fullmatch(r"(.+)_(\d+(?:\.\d+)?)", name)
        key = family.group(1) if family and [str(v) for v in fields.values()] == [family.group(2)] else name
        names, values = rows.setdefault(key, ([], {field: [] for field in fields}))
        names.append(name)
        for field, value in fields.items():
            values[field].append(value)
    return [(names, key, values) for key, (names, values) in rows.items()]


def _names(names: list) -> str:
    return f"`{names[0]}`" if len(names) == 1 else f"`{names[0]}` … `{names[-1]}`"


def configs_table() -> str:
    """The card's table of named configs: what each is for and the fields it sets."""
    lines = ["| config | what it changes | fields it sets |", "|---|---|---|"]
    for names, key, fields in _config_rows():
        values = ", ".join(f"`{f}` = {_values(vs)}" for f, vs in fields.items()) or "none (the defaults)"
        if key not in CONFIG_SUMMARIES:
            raise ValueError(f"named config {key!r} has no summary: add one to luma_noise.card.CONFIG_SUMMARIES")
        lines.append(f"| {_names(names)} | {CONFIG_SUMMARIES[key]} | {values} |")
    return "\n".join(lines)


def fields_table() -> str:
    """The card's table of every config field: default, value in the named configs that change
    it, kind and meaning, from the fields' one description (`config_fields.FIELDS`). Fields
    sharing a description share a row."""
    from .config_fields import FIELDS

    groups = {}
    for field in FIELDS:
        groups.setdefault((field.meaning(), field.kind), []).append(field)
    lines = ["| field | default | kind | meaning |", "|---|---|---|---|"]
    for (meaning, kind), group in groups.items():
        defaults = [_value(f.default) for f in group]
        default = defaults[0] if len(set(defaults)) == 1 else ", ".join(defaults)
        for names, _, fields in _config_rows():
            set_here = [fields[f.name] for f in group if f.name in fields]
            if set_here:
                default += f" ({', '.join(_values(vs) for vs in set_here)} in {_names(names)})"
        fields = ", ".join(f"`{f.name}`" for f in group)
        lines.append(f"| {fields} | {default} | {kind} | {meaning.replace('|', '&#124;')} |")
    return "\n".join(lines)


def _markers(name: str) -> tuple:
    """The comment lines before and after a generated table in the card."""
    return (f"<!-- {name} table: generated by `python -m luma_noise.card`, do not edit -->",
            f"<!-- end of {name} table -->")


def generated_tables() -> dict:
    """{table name: the table between its markers, as the card holds it}."""
    tables = {"configs": configs_table(), "fields": fields_table()}
    return {name: f"{_markers(name)[0]}\n{table}\n{_markers(name)[1]}" for name, table in tables.items()}


def _with_tables(body: str) -> str:
    """`body` with each generated table (between its markers) replaced by the current one."""
    for name, section in generated_tables().items():
        start, end = _markers(name)
        pattern = re.escape(start) + ".*?" + re.escape(end)
        if not re.search(pattern, body, flags=re.S):
            raise ValueError(f"README.md has no {name} table: put the two lines {start!r} and {end!r} where it goes")
        body = re.sub(pattern, lambda _: section, body, flags=re.S)
    return body


def write(builder_cls, root: Path = ROOT) -> None:
    """Rewrite dataset_infos.json (under `root` and in the package), README.md's YAML header and
    its generated tables."""
    infos = json.dumps(dataset_infos(builder_cls), indent=2) + "\n"
    for path in (root / "dataset_infos.json", PACKAGE_INFOS):
        path.write_text(infos)
    readme = root / "README.md"
    text = readme.read_text() if readme.exists() else ""
    body = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    readme.write_text(yaml_header(builder_cls) + _with_tables(body))


if __name__ == "__main__":
    from .loader import builder_class

    write(builder_class())
