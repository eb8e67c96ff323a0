"""LUMA's named configs, and the config checks and identities derived from `config_fields`.

The loading script's `LumaConfig` holds the fields and `config_fields.FIELDS` describes them; this
module says which named configs exist, validates a config (a wrong value fails before any
download), and computes a config's cache id and a variant's identity (the content fields it
changes), which the export name and the report's variant name share.
"""

import dataclasses
import hashlib
import json
import os
import warnings

from . import config_fields
from .classes import MODALITIES
from .config_fields import DEPRECATED_ALIASES

# The paper's reference settings (LUMA_SOURCES.md, "The paper's variants").
PAPER_COMPACTNESS = {"image": 20.0, "audio": 10.0, "text": 20.0}
LABEL_NOISE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5)

# Named configs: name -> field overrides, generated from the specs above.
NAMED_CONFIGS = {
    "clean": {},
    "sample_noise": {f"{m}_noise_ratio": 1.0 for m in MODALITIES},
    "low_diversity": {f"{m}_compactness": k for m, k in PAPER_COMPACTNESS.items()},
    **{f"label_noise_{p}": {"label_noise": p} for p in LABEL_NOISE_LEVELS},
    "conflict": {"conflict_ratio": 0.4},
}

# `datasets.BuilderConfig`'s own fields (not LUMA's).
_BUILDER_FIELDS = {"name", "version", "data_dir", "data_files", "description"}

# Fields whose None is a documented value (datasets drops None keywords: the builder applies them).
NONE_ALLOWED = frozenset(f.name for f in config_fields.FIELDS if f.none)


class ConfigError(ValueError):
    """Bad config values; `problems` lists one message per bad field (all of them, at once)."""

    def __init__(self, problems: list):
        self.problems = list(problems)
        head = "" if len(problems) == 1 else f"{len(problems)} bad LUMA config values:\n  "
        super().__init__(head + "\n  ".join(problems))


def check_field_names(config_class, kwargs: dict) -> None:
    """Raise ValueError naming any keyword that is not a field of `config_class` (LumaConfig:
    the fields of `config_fields.FIELDS`, `datasets`' own, the deprecated aliases)."""
    fields = sorted(f.name for f in dataclasses.fields(config_class) if f.name not in _BUILDER_FIELDS)
    unknown = sorted(set(kwargs) - set(fields) - _BUILDER_FIELDS - set(DEPRECATED_ALIASES))
    if unknown:
        raise ValueError(f"unknown LUMA config field(s) {unknown}; the fields are: {', '.join(fields)}")


def normalise_fields(fields: dict) -> dict:
    """Keyword overrides as the config stores them: a local `mirror` made absolute (`~` expanded),
    None made the default for the fields where None means the default (the feature models),
    deprecated aliases replaced. The config id is computed from the result, so two folders both
    typed "./mirror" get different ids."""
    fields = dict(fields)
    for alias, targets in DEPRECATED_ALIASES.items():
        if alias in fields:
            warnings.warn(f"{alias} is deprecated: set {', '.join(targets)}", DeprecationWarning, stacklevel=3)
            value = fields.pop(alias)
            for target in targets:
                fields.setdefault(target, value)
    if "mirror" in fields:
        fields["mirror"] = normalise_mirror(fields["mirror"])
    for field in config_fields.FIELDS:
        if field.none_is_default and field.name in fields and fields[field.name] is None:
            fields[field.name] = field.default
    return fields


def normalise_mirror(mirror):
    """An absolute local path (`~` expanded, `..` resolved), or an http(s) URL / non-string unchanged."""
    if not isinstance(mirror, str) or mirror.startswith(("http://", "https://")):
        return mirror
    return os.path.abspath(os.path.expanduser(mirror))


def validate(config, text_params: bool = True) -> None:
    """Raise ConfigError (a ValueError) listing every field of `config` whose value is not allowed
    (`config_fields.problems`: each field's rule, then the checks of several fields, the mirror's
    existence last). Lists given for name fields are stored as tuples. `text_params=False` skips
    checking text noise parameter names against nlpaug, whose import pulls in torch and
    transformers (about 6 s): the script's named configs are built at import time. With
    `text_params=True` nlpaug is imported only when `text_noise_params` is given or text noise is on.
    """
    values = {name: getattr(config, name) for name in config_fields.NAMES}
    problems = config_fields.problems(values, full=text_params)
    if problems:
        raise ConfigError(problems)
    for field in config_fields.FIELDS:
        setattr(config, field.name, config_fields.stored(field, values[field.name]))


def config_id(config, base) -> str:
    """The cache id of `config`: its name, plus a digest of the fields that differ from `base`
    (the named config it started from). Computed from the values the config holds, so a None
    override, a normalised mirror path or a value equal to the default all count for what they are."""
    names = (*config_fields.NAMES, "data_dir", "data_files")  # every kind counts: a mirror may hold a subset
    changed = {name: getattr(config, name) for name in names if getattr(config, name) != getattr(base, name, None)}
    if not changed:
        return config.name
    digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    return f"{config.name}-{digest}"


def uses_diversity(config) -> bool:
    """Whether the config re-draws the train split (any compactness set)."""
    return any(getattr(config, f"{m}_compactness") is not None for m in MODALITIES)


def variant_fields(config: str, fields: dict) -> dict:
    """{field: JSON value} of what makes a variant of named config `config` other than the named
    config: the fields of `fields` that are not provenance or location (`config_fields`), whose
    value differs from the named config's (its override, else the default). A field given at the
    named config's value is no change; a name that is not a known field counts as a change.
    The export name (`variant.Variant.export_name`) and the report's variant name
    (`baselines.runs.variant_of`) are both made from this."""
    named = NAMED_CONFIGS.get(config, {})
    changed = {}
    for name, value in (fields or {}).items():
        if name in config_fields.NOT_IN_NAME:
            continue
        value = _json(value)
        field = config_fields.BY_NAME.get(name)
        if field is None or value != _json(named.get(name, field.default)):
            changed[name] = value
    return changed


def _json(value):
    """`value` as JSON gives it back (tuples as lists)."""
    return json.loads(json.dumps(value, default=list))
