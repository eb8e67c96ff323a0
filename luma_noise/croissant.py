"""Croissant metadata (ML Commons Croissant 1.0, JSON-LD) for a `luma export` folder.

`write_croissant(out_dir)` (called by `luma export`) writes `out_dir/croissant.json` describing
every config the folder holds (`<config>/luma_variant.json` beside its Parquet shards), as the Hub
and the dataset tracks of ML venues read it:

- distribution: one `cr:FileSet` per config, `<config>/*.parquet` (application/x-parquet), paths
  relative to the folder holding croissant.json (the export folder, or the Hub repository it was
  pushed to: `push_to_hub` keeps the layout);
- record sets: per config, `<config>` with every column as a field of its type (read from the
  shards' own `datasets` features; images and audio as `{bytes, path}` structs, their `bytes`
  taken), its split from the file name, and `<config>_splits` listing the splits;
- licence, citation, homepage and description of LUMA (the builder's);
- provenance: the record set `provenance` holds, per config, every config field and its value,
  the versions and the command that rebuilds it (from `luma_variant.json`), and
  `rai:dataPreprocessingProtocol` says the same in words.

Writing needs no library beyond `datasets` and `pyarrow`; `mlcroissant` (the `test` extra)
validates and reads the file: `mlcroissant.Dataset("out/croissant.json").records("clean")`.
"""

import json
from pathlib import Path

FILENAME = "croissant.json"
NAME = "LUMA variants"  # with the LUMA homepage as `url`: how a croissant.json of ours is recognised
PROVENANCE = "luma_variant.json"  # export.PROVENANCE
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"
CONTEXT = {  # Croissant 1.0's context, as its specification and mlcroissant give it
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
    "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}
# `datasets` Value dtypes -> Croissant data types
_VALUE_TYPES = {**{t: "sc:Integer" for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
                **{t: "sc:Float" for t in ("float16", "float32", "float64")},
                "string": "sc:Text", "large_string": "sc:Text", "bool": "sc:Boolean"}


def write_croissant(out_dir):
    """Write `out_dir/croissant.json` for every exported config in `out_dir`; returns its path, or
    None when a croissant.json is there that this module did not write (it is never replaced).

    Raises ValueError naming the config and column whose type Croissant cannot describe here.
    """
    out_dir = Path(out_dir)
    path = out_dir / FILENAME
    if path.exists() and not _ours(path):
        return None
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out_dir.glob(f"*/{PROVENANCE}"))]
    path.write_text(json.dumps(metadata(out_dir, records), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _ours(path: Path) -> bool:
    """Whether `path` is a croissant.json this module wrote (its name and the LUMA homepage)."""
    from .builder import _HOMEPAGE

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("name") == NAME and data.get("url") == _HOMEPAGE


def metadata(out_dir: Path, records: list) -> dict:
    """The Croissant JSON-LD of the configs whose provenance `records` are given (shards under out_dir/<name>/)."""
    from .builder import _CITATION, _DESCRIPTION, _HOMEPAGE

    names = [r["name"] for r in records]
    record_sets = []
    for record in records:
        record_sets += _config_record_sets(record["name"], _features(out_dir / record["name"]), list(record["rows"]))
    record_sets.append(_provenance_record_set(records))
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "name": NAME,
        "description": _DESCRIPTION.strip() + f" This folder holds the configs {', '.join(names)}, built with "
                       "luma_noise and exported with `luma export`.",
        "conformsTo": CONFORMS_TO, "citeAs": _CITATION.strip(), "license": LICENSE_URL, "url": _HOMEPAGE,
        "version": records[0]["builder_version"] if records else "1.0.0",
        "isBasedOn": _HOMEPAGE,
        "rai:dataPreprocessingProtocol": [_protocol(r) for r in records],
        "distribution": [_file_set(name) for name in names],
        "recordSet": record_sets,
    }


def _features(folder: Path):
    """The `datasets` Features stored in the config's first Parquet shard."""
    import datasets
    import pyarrow.parquet as pq

    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise ValueError(f"{folder}: no Parquet shards to describe")
    return datasets.Features.from_arrow_schema(pq.read_schema(shards[0]))


def _file_set(name: str) -> dict:
    return {"@type": "cr:FileSet", "@id": f"{name}-parquet", "name": f"{name}-parquet",
            "description": f"The Parquet shards of config {name}, one set per split ({name}/<split>-NNNNN-of-MMMMM.parquet).",
            "encodingFormat": "application/x-parquet", "includes": f"{name}/*.parquet"}


def _config_record_sets(name: str, features, splits: list) -> list:
    """`<name>_splits` (the split names) and `<name>` (every column, and the split of each row)."""
    split_set = {"@type": "cr:RecordSet", "dataType": "cr:Split", "key": {"@id": f"{name}_splits/name"},
                 "@id": f"{name}_splits", "name": f"{name}_splits", "description": f"The splits of config {name}.",
                 "field": [{"@type": "cr:Field", "@id": f"{name}_splits/name", "name": "name",
                            "description": "The split's name.", "dataType": "sc:Text"}],
                 "data": [{f"{name}_splits/name": split} for split in splits]}
    # The regex also matches a bare split name: mlcroissant applies it to the split set's values when joining.
    split_field = {"@type": "cr:Field", "@id": f"{name}/split", "name": "split", "dataType": "sc:Text",
                   "description": "The split the row belongs to, from its shard's file name.",
                   "source": {"fileSet": {"@id": f"{name}-parquet"}, "extract": {"fileProperty": "filename"},
                              "transform": {"regex": "^(" + "|".join(splits) + ")(?:-\\d+-of-\\d+\\.parquet)?$"}},
                   "references": {"field": {"@id": f"{name}_splits/name"}}}
    fields = [split_field] + [_field(name, f"{name}/{column}", column, feature, [column])
                              for column, feature in features.items()]
    rows = {"@type": "cr:RecordSet", "@id": name, "name": name, "field": fields,
            "description": f"The examples of config {name}: one record per row of its Parquet shards."}
    return [split_set, rows]


def _field(config: str, field_id: str, column: str, feature, path: list) -> dict:
    """The Croissant field of a (possibly nested) column; `path` = [column, key, key, ...]."""
    import datasets

    source = {"fileSet": {"@id": f"{config}-parquet"}, "extract": {"column": path[0]}}
    described = {"@type": "cr:Field", "@id": field_id, "name": path[-1]}
    if isinstance(feature, dict):  # a struct: one subfield per key
        return {**described, "description": f"`{'.'.join(path)}`: a struct of {', '.join(feature)}.",
                "subField": [_field(config, f"{field_id}/{key}", column, sub, path + [key]) for key, sub in feature.items()]}
    if len(path) > 1:
        source["transform"] = {"jsonPath": ".".join(path[1:])}
    if isinstance(feature, (datasets.Image, datasets.Audio)):
        kind = "sc:ImageObject" if isinstance(feature, datasets.Image) else "sc:AudioObject"
        what = "PNG image" if kind == "sc:ImageObject" else "WAV file"
        return {**described, "dataType": kind, "description": f"`{column}`: the {what}'s bytes.",
                "source": {**source, "transform": {"jsonPath": "bytes"}}}
    if isinstance(feature, datasets.ClassLabel):
        return {**described, "dataType": "sc:Integer", "source": source,
                "description": f"`{'.'.join(path)}`: class id, 0-{feature.num_classes - 1}, names in this order: "
                               + ", ".join(feature.names) + "."}
    if isinstance(feature, datasets.Value) and feature.dtype in _VALUE_TYPES:
        return {**described, "dataType": _VALUE_TYPES[feature.dtype], "source": source,
                "description": f"`{'.'.join(path)}` ({feature.dtype})."}
    raise ValueError(f"config {config}, column {'.'.join(path)}: no Croissant type for {feature!r}; "
                     f"handled: Image, Audio, ClassLabel, structs and Value of {sorted(_VALUE_TYPES)}")


def _provenance_record_set(records: list) -> dict:
    """One record per (config, field): every config field's value, the versions and the rebuild command."""
    columns = ("config", "field", "value")
    data = []
    for record in records:
        items = {**{f"field:{k}": v for k, v in sorted(record["resolved_fields"].items())},
                 "luma_noise_version": record["luma_noise_version"], "datasets_version": record["datasets_version"],
                 "builder_version": record["builder_version"], "named_config": record["config"],
                 "upstream": record["upstream"], "command": record["command"]}
        data += [{f"provenance/{c}": v for c, v in zip(columns, (record["name"], key, json.dumps(value, sort_keys=True)))}
                 for key, value in items.items()]
    fields = [{"@type": "cr:Field", "@id": f"provenance/{c}", "name": c, "dataType": "sc:Text", "description": d}
              for c, d in zip(columns, ("The exported config.", "`field:<name>` for a config field, else what is recorded.",
                                        "Its value, as JSON."))]
    return {"@type": "cr:RecordSet", "@id": "provenance", "name": "provenance", "field": fields, "data": data,
            "description": "What made each config: every config field and its value, the versions of luma_noise, "
                           "datasets and the builder, the upstream sources and the command that rebuilds it."}


def _protocol(record: dict) -> str:
    """One config's provenance in words."""
    changed = json.dumps(record["fields"], sort_keys=True) if record["fields"] else "none"
    return (f"{record['name']}: LUMA's named config {record['config']} (field overrides: {changed}), built by luma_noise "
            f"{record['luma_noise_version']} (builder {record['builder_version']}) under datasets "
            f"{record['datasets_version']}; rebuild with `{record['command']}`.")


def upload_croissant(out_dir, repo_id: str, token=None):
    """Upload `out_dir/croissant.json` to the Hub dataset `repo_id` (after `push_to_hub`)."""
    from huggingface_hub import HfApi

    return HfApi(token=token).upload_file(path_or_fileobj=str(Path(out_dir) / FILENAME), path_in_repo=FILENAME,
                                          repo_id=repo_id, repo_type="dataset",
                                          commit_message="luma export: croissant.json")
