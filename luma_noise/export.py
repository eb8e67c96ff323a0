"""Export a built LUMA variant as Parquet that `datasets` (any release) and the Hub load without a script.

Layout of an export folder (several configs coexist; exporting a config again replaces it):

    out/README.md                                   YAML header: every config's data_files and features
    out/<config>/<split>-NNNNN-of-MMMMM.parquet     shards under `datasets.config.MAX_SHARD_SIZE` (500 MB)
    out/<config>/luma_variant.json                  what made the config: fields, versions, upstream

The YAML header is written with `datasets`' own card helpers (`MetadataConfigs`,
`DatasetInfosDict`), the same ones `push_to_hub` uses, so `load_dataset("out/", "<config>")`
returns the builder's rows, features and bytes. `push` hands the data to `datasets`'
`push_to_hub`: nothing here talks HTTP itself.

Safety (docs/reliability.md, "Exports"): a name is one plain folder name; only a folder holding
this tool's provenance file for that name is ever replaced, and a README.md only if this tool
wrote it (or `force`); everything is checked before anything is built or moved. A config is
replaced through a hidden work folder `.luma-export-<host>-<pid>-XXXX/` in the export folder:
the new shards and README are written there, the old config folder is moved aside into it, the
new one moved in, the README replaced, then the work folder deleted. A kill at any point leaves
the old export in place or aside in the work folder, which the next export restores (if nothing
took its place) and deletes once its owner process is gone.

Longer than 300 lines because the ownership checks and the swap's recovery steps must be read
together to see that no kill loses a folder; each step fits a screen.
"""

import hashlib
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .safe_files import BadInput, output_folder_problems, read_json, read_text

PROVENANCE = "luma_variant.json"
_MARKER = "<!-- luma export: generated from */luma_variant.json; edits are replaced by the next export -->"
WORK_PREFIX = ".luma-export-"
NAME_RULE = "one folder name of letters, digits, '_', '.', '+' and '-', not starting with '.', '+' or '-', at most 100 characters"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")
_PROVENANCE_KEYS = {"name", "config", "fields", "rows", "resolved_fields", "luma_noise_version", "datasets_version",
                    "builder_version", "upstream", "command"}


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


def write_config(dataset_dict, out_dir, name: str, provenance: dict, max_shard_size=None, progress: bool = True,
                 force: bool = False) -> dict:
    """Write one config's splits as Parquet shards under `out_dir/name/` and update
    `out_dir/README.md`; returns {split: [shard paths]}.

    Refuses (BadInput) what `check_export` refuses. Everything is written into a hidden work
    folder first and swapped in at the end (module doc), so an interrupted export leaves the
    previous `out_dir/name/` in place or recoverable by the next export.
    """
    import datasets
    from datasets.utils.py_utils import convert_file_size_to_int

    problems = check_export(out_dir, name, force)
    if problems:
        raise BadInput(problems, "cannot export")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recover(out_dir)
    limit = convert_file_size_to_int(max_shard_size or datasets.config.MAX_SHARD_SIZE)
    work = Path(tempfile.mkdtemp(prefix=work_prefix(), dir=out_dir))
    try:
        staged = work / "config"
        staged.mkdir()  # with the umask's mode, not mkdtemp's 0700: it becomes out_dir/name
        shards = _write_shards(dataset_dict, staged, name, limit, progress)
        (staged / PROVENANCE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _write_card(out_dir, name, dataset_dict, shards, staged, work / "README.md")
        _swap(out_dir, name, work)
    finally:
        _settle(work, out_dir)
    return {split: [str(out_dir / name / f) for f in files] for split, files in shards.items()}


def _write_shards(dataset_dict, folder: Path, name: str, limit: int, progress: bool) -> dict:
    """Parquet shards of every split into `folder`, each under `limit` bytes; {split: [file names]}."""
    from tqdm.auto import tqdm

    plan = {split: max(1, math.ceil(ds.data.nbytes / limit)) for split, ds in dataset_dict.items()}
    shards = {}
    with tqdm(total=sum(plan.values()), desc=f"writing {name}", unit="shard", disable=not progress) as bar:
        for split, ds in dataset_dict.items():
            ds = _declared(ds)
            shards[split] = []
            for index in range(plan[split]):
                path = folder / f"{split}-{index:05d}-of-{plan[split]:05d}.parquet"
                ds.shard(plan[split], index, contiguous=True).to_parquet(str(path))
                shards[split].append(path.name)
                bar.update()
    return shards


def _swap(out_dir: Path, name: str, work: Path) -> None:
    """Old `out_dir/name` aside into `work/old/`, `work/config` in its place, `work/README.md` over
    the README; each step one `os.replace` (atomic on one file system)."""
    target, aside = out_dir / name, work / "old" / name
    if os.path.lexists(target):  # check_export made sure it is an earlier export of ours
        aside.parent.mkdir()
        os.replace(target, aside)
    try:
        os.replace(work / "config", target)
    except OSError:
        if os.path.lexists(aside):
            os.replace(aside, target)
        raise
    os.replace(work / "README.md", out_dir / "README.md")


def work_prefix() -> str:
    """This process's work folder prefix: `.luma-export-<host>-<pid>-` (host: 8 hex digits of a
    hash of the host name), so that a later export can tell a folder whose owner is gone."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{WORK_PREFIX}{host}-{os.getpid()}-"


def _owner_alive(folder_name: str) -> bool:
    """True unless the work folder's owner is a process of this host that no longer runs."""
    match = re.fullmatch(re.escape(WORK_PREFIX) + r"([0-9a-f]{8})-(\d+)-.*", folder_name)
    if not match or match.group(1) != work_prefix()[len(WORK_PREFIX):].split("-")[0]:
        return True  # not ours to judge: another host's (or an unknown) folder is left alone
    try:
        os.kill(int(match.group(2)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _settle(work: Path, out_dir: Path) -> None:
    """Put an old export aside in `work` back where nothing took its place, then delete `work`."""
    old = work / "old"
    if old.is_dir():
        for folder in old.iterdir():
            if not os.path.lexists(out_dir / folder.name):
                os.replace(folder, out_dir / folder.name)
                print(f"luma export: restored {out_dir / folder.name} from an interrupted export", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)


def recover(out_dir) -> None:
    """Settle the work folders of exports into `out_dir` whose process is gone (killed): restore
    the old config they had moved aside if nothing took its place, delete the rest. Also delete
    the staging folders `.<name>-XXXXXXXX/` that luma_noise 0.2.0 and earlier left when killed."""
    for work in sorted(Path(out_dir).glob(WORK_PREFIX + "*")):
        if work.is_dir() and not work.is_symlink() and not _owner_alive(work.name):
            _settle(work, Path(out_dir))
            print(f"luma export: removed {work.name}, left by an interrupted export", file=sys.stderr)
    for folder in sorted(Path(out_dir).glob(".*-????????")):
        name = folder.name[1:-9]
        if (not folder.name.startswith(WORK_PREFIX) and _NAME.fullmatch(name) and folder.is_dir() and not folder.is_symlink()
                and all(f.name == PROVENANCE or re.fullmatch(r"\w+-\d{5}-of-\d{5}\.parquet", f.name) for f in folder.iterdir())
                and (_provenance_of(folder) or {}).get("name") == name):
            shutil.rmtree(folder)
            print(f"luma export: removed {folder.name}, left by an interrupted export of an earlier version", file=sys.stderr)


def check_export(out_dir, name, force: bool = False) -> list:
    """Every reason not to export config `name` into `out_dir`, before anything is built.

    `name` must be one plain folder name (`NAME_RULE`); `out_dir` a folder (or absent);
    `out_dir/name` absent or an earlier export of this tool under that name (a folder, not a
    link, holding our provenance file naming it); `out_dir/README.md` absent or a regular file
    whose YAML header parses as a dataset card and whose text this tool wrote (or `force`).
    """
    problems = []
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"--name {name!r}: expected {NAME_RULE}")
    out = Path(out_dir)
    problems += output_folder_problems(out)
    if not out.is_dir():
        return problems
    if not problems:
        problems += _check_target(out / name, name)
    return problems + _check_readme(out / "README.md", force)


def _check_target(target: Path, name: str) -> list:
    if not os.path.lexists(target):
        return []
    refusal = (f"{target}: not an earlier export of this tool named {name!r} (no {PROVENANCE} of ours naming it); "
               "luma export replaces only its own exports: pick another --name or move the folder away")
    if target.is_symlink() or not target.is_dir():
        return [refusal.replace("(no", "(not a folder but a link or file; no", 1)]
    try:
        record = read_json(target / PROVENANCE, 1 * 2 ** 20)
    except BadInput:
        return [refusal]
    if not _is_provenance(record) or record["name"] != name:
        return [refusal]
    return []


def _is_provenance(record) -> bool:
    return isinstance(record, dict) and _PROVENANCE_KEYS <= set(record)


def _check_readme(readme: Path, force: bool) -> list:
    if not os.path.lexists(readme):
        return []
    try:
        text = read_text(readme)
        _card_data(text, dry_run=True)
    except BadInput as err:
        return err.problems
    except Exception as err:  # noqa: BLE001 -- yaml, huggingface_hub and datasets each raise their own
        return [f"{readme}: its YAML header does not parse as a dataset card ({type(err).__name__}: {err}); "
                "fix or remove the header, nothing was changed"]
    if not force and _MARKER not in text:
        return [f"{readme}: not written by luma export; --force replaces its text by the export's card "
                "(its YAML header is kept and extended)"]
    return []


def _card_data(text: str, dry_run: bool = False):
    """The DatasetCardData of a README's text; with `dry_run`, also merge a placeholder config
    into it, as the export will, so that a header the merge would choke on fails here."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card_data = DatasetCard(text).data
    if dry_run:
        DatasetInfosDict({"luma-check": DatasetInfo()}).to_dataset_card_data(card_data)
        MetadataConfigs({"luma-check": {"data_files": [{"split": "train", "path": "x/*"}]}}).to_dataset_card_data(card_data)
        card_data.to_yaml()
        _header_configs(card_data)
    return card_data


def _header_configs(card_data) -> list:
    """The config names in a card's `configs` list, in its order."""
    configs = card_data.to_dict().get("configs") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) and "config_name" in c for c in configs):
        raise ValueError("`configs` is not a list of entries with a config_name")
    return [str(c["config_name"]) for c in configs]


def _write_card(out_dir: Path, name: str, dataset_dict, shards: dict, staged: Path, dest: Path) -> None:
    """Write to `dest` the card `out_dir/README.md` becomes: config `name` added to (or replaced
    in) the YAML header, the text rewritten for the header's configs from their provenance files
    (`name`'s from `staged`, the folder about to replace `out_dir/name`)."""
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    readme = out_dir / "README.md"
    card_data = _card_data(read_text(readme)) if readme.exists() else DatasetCardData()
    splits = datasets.SplitDict()
    for split, ds in dataset_dict.items():
        splits.add(datasets.SplitInfo(name=split, num_bytes=ds.data.nbytes, num_examples=len(ds)))
    info = datasets.DatasetInfo(
        features=export_features(next(iter(dataset_dict.values())).features), splits=splits,
        download_size=sum((staged / f).stat().st_size for files in shards.values() for f in files),
        dataset_size=sum(ds.data.nbytes for ds in dataset_dict.values()))
    # `to_dataset_card_data` merges by config name: other configs' entries stay as they are
    DatasetInfosDict({name: info}).to_dataset_card_data(card_data)
    data_files = [{"split": split, "path": f"{name}/{split}-*"} for split in shards]
    MetadataConfigs({name: {"data_files": data_files}}).to_dataset_card_data(card_data)
    if "license" not in card_data.to_dict():
        card_data.license = "cc-by-sa-4.0"
    folders = {config: out_dir / config for config in _header_configs(card_data) if _NAME.fullmatch(config)}
    folders[name] = staged
    dest.write_text(f"---\n{card_data.to_yaml()}\n---\n{card_body(folders)}", encoding="utf-8")


def _provenance_of(folder: Path):
    """The provenance record in `folder`, or None when there is none of ours (a config another tool added)."""
    try:
        record = read_json(folder / PROVENANCE, 1 * 2 ** 20)
    except BadInput:
        return None
    return record if _is_provenance(record) else None


def card_body(folders) -> str:
    """The card's text: how to load, and per config the fields, versions and upstream that made it.

    folders: {config name: its folder}, the configs of the card's YAML header (an export folder
    path instead: every config folder in it holding a provenance file)."""
    if not isinstance(folders, dict):
        folders = {p.parent.name: p.parent for p in sorted(Path(folders).glob(f"[!.]*/{PROVENANCE}"))}
    variants = [v for v in map(_provenance_of, folders.values()) if v is not None]
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
