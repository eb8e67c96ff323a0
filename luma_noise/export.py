"""Export a built LUMA variant as Parquet that `datasets` (any release) and the Hub load without a script.

Layout of an export folder (several configs coexist; exporting a config again replaces it):

    out/README.md                                   YAML header: every config's data_files and features
    out/<config>/<split>-NNNNN-of-MMMMM.parquet     shards under `datasets.config.MAX_SHARD_SIZE` (500 MB)
    out/<config>/luma_variant.json                  what made the config: fields, versions, upstream

The YAML header is written with `datasets`' own card helpers (`MetadataConfigs`,
`DatasetInfosDict`), the same ones `push_to_hub` uses, so `load_dataset("out/", "<config>")`
returns the builder's rows, features and bytes. `push` hands the data to `datasets`'
`push_to_hub`: nothing here talks HTTP itself.
"""

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

PROVENANCE = "luma_variant.json"
_MARKER = "<!-- luma export: generated from */luma_variant.json; edits are replaced by the next export -->"


def export_features(features):
    """The features an export declares: the builder's, with `audio` as `Audio()` (on `datasets`
    >= 4 without torchcodec the builder stores it as its plain {bytes, path} struct, the same
    Arrow storage)."""
    import datasets

    features = features.copy()
    if not isinstance(features["audio"], datasets.Audio):
        features["audio"] = datasets.Audio()
    return features


def _declared(dataset):
    """The dataset with the features an export declares; no copy when they are already its own
    (`Dataset.cast` rewrites every row to a new cache file)."""
    features = export_features(dataset.features)
    return dataset if features == dataset.features else dataset.cast(features)


def write_config(dataset_dict, out_dir, name: str, provenance: dict, max_shard_size=None, progress: bool = True) -> dict:
    """Write one config's splits as Parquet shards under `out_dir/name/` and update
    `out_dir/README.md`; returns {split: [shard paths]}.

    Shards are written to a temporary folder beside the target and moved in place at the end,
    so an interrupted export leaves the previous state of `out_dir/name/` (or none).
    """
    import datasets
    from datasets.utils.py_utils import convert_file_size_to_int
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    limit = convert_file_size_to_int(max_shard_size or datasets.config.MAX_SHARD_SIZE)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        plan = {split: max(1, math.ceil(ds.data.nbytes / limit)) for split, ds in dataset_dict.items()}
        shards = {}
        with tqdm(total=sum(plan.values()), desc=f"writing {name}", unit="shard", disable=not progress) as bar:
            for split, ds in dataset_dict.items():
                ds = _declared(ds)
                shards[split] = []
                for index in range(plan[split]):
                    path = staging / f"{split}-{index:05d}-of-{plan[split]:05d}.parquet"
                    ds.shard(plan[split], index, contiguous=True).to_parquet(str(path))
                    shards[split].append(path.name)
                    bar.update()
        (staging / PROVENANCE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_card(out_dir, name, dataset_dict, shards)
    return {split: [str(target / f) for f in files] for split, files in shards.items()}


def _write_card(out_dir: Path, name: str, dataset_dict, shards: dict) -> None:
    """Add (or replace) config `name` in `out_dir/README.md`'s YAML header; rewrite its body
    from every config's provenance file."""
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    readme = out_dir / "README.md"
    card_data = DatasetCard.load(readme).data if readme.exists() else DatasetCardData()
    splits = datasets.SplitDict()
    for split, ds in dataset_dict.items():
        splits.add(datasets.SplitInfo(name=split, num_bytes=ds.data.nbytes, num_examples=len(ds)))
    info = datasets.DatasetInfo(
        features=export_features(next(iter(dataset_dict.values())).features), splits=splits,
        download_size=sum((out_dir / name / f).stat().st_size for files in shards.values() for f in files),
        dataset_size=sum(ds.data.nbytes for ds in dataset_dict.values()))
    # `to_dataset_card_data` merges by config name: other configs' entries stay as they are
    DatasetInfosDict({name: info}).to_dataset_card_data(card_data)
    data_files = [{"split": split, "path": f"{name}/{split}-*"} for split in shards]
    MetadataConfigs({name: {"data_files": data_files}}).to_dataset_card_data(card_data)
    if "license" not in card_data.to_dict():
        card_data.license = "cc-by-sa-4.0"
    readme.write_text(f"---\n{card_data.to_yaml()}\n---\n{card_body(out_dir)}", encoding="utf-8")


def card_body(out_dir) -> str:
    """The card's text: how to load, and per config the fields, versions and upstream that made it."""
    variants = []
    for path in sorted(Path(out_dir).glob(f"*/{PROVENANCE}")):
        variants.append(json.loads(path.read_text(encoding="utf-8")))
    lines = [_MARKER, "", "# LUMA variants", "",
             "Configs of [LUMA](https://huggingface.co/datasets/bezirganyan/LUMA) built with `luma_noise` and "
             "exported with `luma export`. Load one with `datasets.load_dataset(<this repo or folder>, \"<config>\")`; "
             "no loading script is needed. The rows, features and bytes are the builder's.", "",
             "Uploading with `luma export --push-to-hub` goes through `datasets`' own `push_to_hub`; that path "
             "was not exercised against the Hub where this tool was written.", ""]
    for variant in variants:
        lines += [f"## {variant['name']}", "",
                  f"Named config `{variant['config']}` with the fields "
                  f"`{json.dumps(variant['fields'], sort_keys=True)}`; rebuild with:", "",
                  "```", variant["command"], "```", "",
                  f"- `luma_noise` {variant['luma_noise_version']}, `datasets` {variant['datasets_version']}, "
                  f"builder version {variant['builder_version']}",
                  f"- upstream: {json.dumps(variant['upstream'], sort_keys=True)}",
                  f"- rows: {json.dumps(variant['rows'])}",
                  f"- every field: `{json.dumps(variant['resolved_fields'], sort_keys=True)}`", ""]
    return "\n".join(lines)


def provenance(variant, name: str, resolved, rows: dict) -> dict:
    """What made an exported config: request, every field, versions, upstream sources."""
    import dataclasses
    import shlex

    import datasets

    from . import __version__, builder, options

    resolved_fields = {f.name: getattr(resolved, f.name) for f in dataclasses.fields(resolved)
                       if f.name not in options._BUILDER_FIELDS}
    upstream = {k: v.format(revision=resolved.luma_revision) for k, v in builder._UPSTREAM.items()}
    sets = " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in variant.content_fields().items())
    return {
        "name": name, "config": variant.config, "fields": variant.fields, "rows": rows,
        "resolved_fields": json.loads(json.dumps(resolved_fields, default=list)),
        "luma_noise_version": __version__, "datasets_version": datasets.__version__,
        "builder_version": str(builder._VERSION), "upstream": upstream,
        "command": f"luma export {variant.config} {sets} --name {name} --output-dir OUT".replace("  ", " "),
    }


def push(dataset_dict, repo_id: str, name: str, out_dir, token: Optional[str] = None, max_shard_size=None):
    """Upload config `name` with `datasets`' `DatasetDict.push_to_hub(repo_id, config_name=name)`
    (the user's token: `token` or the one `huggingface-cli login` saved), then its provenance
    file with `huggingface_hub`'s `upload_file`. Returns push_to_hub's commit info."""
    import datasets
    from huggingface_hub import HfApi

    data = datasets.DatasetDict({split: _declared(ds) for split, ds in dataset_dict.items()})
    record = Path(out_dir) / name / PROVENANCE
    commit = data.push_to_hub(repo_id, config_name=name, token=token, max_shard_size=max_shard_size,
                              commit_message=f"luma export: {name}",
                              commit_description=record.read_text(encoding="utf-8"))
    HfApi(token=token).upload_file(path_or_fileobj=str(record), path_in_repo=f"{name}/{PROVENANCE}",
                                   repo_id=repo_id, repo_type="dataset", commit_message=f"luma export: {name} provenance")
    return commit
