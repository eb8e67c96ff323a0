"""LUMA's config fields: the named configs and validation.

The loading script's `LumaConfig` holds the fields; this module says which values are
allowed and which named configs exist, so a wrong value fails before any download.
"""

import dataclasses
import hashlib
import json
import math
import numbers
import os
import warnings

from . import audio
from . import features
from . import image
from . import sources
from . import text
from .classes import MODALITIES

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

_BUILDER_FIELDS = {"name", "version", "data_dir", "data_files", "description"}
LABEL_NOISE_MODALITIES = ("all", *MODALITIES)


# Fields whose None is a documented value (datasets drops None keywords: the builder applies them).
# None means: mirror, the real upstream; text_noise_params, the noises' defaults; m_compactness,
# the published train rows; m_feature_model, the default checkpoint (features.DEFAULT_MODEL_IDS);
# m_feature_revision, the checkpoint's default branch; feature_cache_dir, the default location.
NONE_ALLOWED = frozenset({"mirror", "text_noise_params", "feature_cache_dir",
                          *(f"{m}_{part}" for m in MODALITIES for part in ("compactness", "feature_model", "feature_revision"))})
# Renamed fields still accepted: old name -> the fields it sets.
DEPRECATED_ALIASES = {"feature_revision": tuple(f"{m}_feature_revision" for m in MODALITIES)}


class ConfigError(ValueError):
    """Bad config values; `problems` lists one message per bad field (all of them, at once)."""

    def __init__(self, problems: list):
        self.problems = list(problems)
        head = "" if len(problems) == 1 else f"{len(problems)} bad LUMA config values:\n  "
        super().__init__(head + "\n  ".join(problems))


def check_field_names(config_class, kwargs: dict) -> None:
    """Raise ValueError naming any keyword that is not a field of `config_class`."""
    fields = sorted(f.name for f in dataclasses.fields(config_class) if f.name not in _BUILDER_FIELDS)
    unknown = sorted(set(kwargs) - set(fields) - _BUILDER_FIELDS - set(DEPRECATED_ALIASES))
    if unknown:
        raise ValueError(f"unknown LUMA config field(s) {unknown}; the fields are: {', '.join(fields)}")


def normalise_fields(fields: dict) -> dict:
    """Keyword overrides as the config stores them: a local `mirror` made absolute (`~` expanded),
    a feature model of None made the default checkpoint, deprecated aliases replaced. The config
    id is computed from the result, so two folders both typed "./mirror" get different ids."""
    fields = dict(fields)
    for alias, targets in DEPRECATED_ALIASES.items():
        if alias in fields:
            warnings.warn(f"{alias} is deprecated: set {', '.join(targets)}", DeprecationWarning, stacklevel=3)
            value = fields.pop(alias)
            for target in targets:
                fields.setdefault(target, value)
    if "mirror" in fields:
        fields["mirror"] = normalise_mirror(fields["mirror"])
    for modality in MODALITIES:
        if f"{modality}_feature_model" in fields and fields[f"{modality}_feature_model"] is None:
            fields[f"{modality}_feature_model"] = features.DEFAULT_MODEL_IDS[modality]
    return fields


def normalise_mirror(mirror):
    """An absolute local path (`~` expanded, `..` resolved), or an http(s) URL / non-string unchanged."""
    if not isinstance(mirror, str) or mirror.startswith(("http://", "https://")):
        return mirror
    return os.path.abspath(os.path.expanduser(mirror))


def _number(config, field: str, low: float, high: float = math.inf, integer: bool = False) -> list:
    value = getattr(config, field)
    kind = numbers.Integral if integer else numbers.Real
    if (isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value)
            or not low <= value <= high):
        what = "an integer" if integer else "a number"
        bounds = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        return [f"{field}={value!r}: expected {'a finite number' if not math.isfinite(high) and not integer else what} {bounds}"]
    return []


def _flag(config, field: str) -> list:
    if not isinstance(getattr(config, field), bool):
        return [f"{field}={getattr(config, field)!r}: expected True or False"]
    return []


def _names(config, field: str, check_name) -> list:
    """A non-empty list of distinct names, each passing the library's `check_name`; stored as a
    tuple (keywords arrive as lists)."""
    value = getattr(config, field)
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        return [f"{field}={value!r}: expected a non-empty list of names"]
    if len(set(value)) != len(value):
        return [f"{field}={list(value)!r}: expected distinct names"]
    setattr(config, field, tuple(value))
    problems = []
    for name in value:
        problems += _checked(field, check_name, name)
    return problems


def _optional_text(config, field: str, what: str) -> list:
    value = getattr(config, field)
    if value is not None and (not isinstance(value, str) or not value or any(c.isspace() for c in value)):
        return [f"{field}={value!r}: expected None or {what}"]
    return []


def _checked(fields: str, check, *args) -> list:
    """Run a library's own validation, naming the config fields in its error."""
    try:
        check(*args)
    except ValueError as err:
        return [f"{fields}: {err}"]
    return []


def validate(config, text_params: bool = True) -> None:
    """Raise ConfigError (a ValueError) listing every field of `config` whose value is not allowed.

    Values are checked before the mirror's existence, and all bad fields are reported at once.
    Lists given for name fields are stored as tuples. `text_params=False` skips checking text
    noise parameter names against nlpaug, whose import pulls in torch and transformers (about
    6 s): the script's named configs are built at import time. With `text_params=True` nlpaug
    is imported only when `text_noise_params` is given or text noise is on.
    """
    problems = _number(config, "seed", 0, 2**63 - 1, integer=True)
    if config.mirror is not None and not isinstance(config.mirror, str):
        problems.append(f"mirror={config.mirror!r}: expected None, a folder path or an http(s) URL")
    if not isinstance(config.luma_revision, str) or not config.luma_revision or any(c.isspace() for c in config.luma_revision):
        problems.append(f"luma_revision={config.luma_revision!r}: expected a branch, tag or commit of bezirganyan/LUMA")
    problems += _validate_sample_noise(config, text_params)
    problems += _validate_uncertainty(config)
    if isinstance(config.mirror, str):  # last: a bad value is reported as itself, not as a missing mirror
        problems += _checked("mirror", sources.check_mirror, config.mirror)
    if problems:
        raise ConfigError(problems)


def _validate_sample_noise(config, text_params: bool) -> list:
    problems = []
    for modality in MODALITIES:
        problems += _number(config, f"{modality}_noise_ratio", 0.0, 1.0)
        problems += _flag(config, f"{modality}_noise_train")
        problems += _flag(config, f"{modality}_noise_test")
    corruptions = _names(config, "image_corruptions", image.check_corruption)
    problems += corruptions or _checked("image_corruptions/image_severity", image.ImageNoise, config.image_corruptions, config.image_severity)
    problems += _checked("image_severity_tables", image.check_tables, config.image_severity_tables)
    problems += _flag(config, "reference_effective")
    problems += _checked("audio_min_snr_db/audio_max_snr_db", audio.check_snr_range, config.audio_min_snr_db, config.audio_max_snr_db)
    names = _names(config, "text_noises", text._check_name)
    problems += names + _text_params(config, text_params and not names)
    return problems


def _text_params(config, full: bool) -> list:
    """text_noise_params: names from text_noises, each a dict; with `full`, parameter names checked
    against the nlpaug augmenters' signatures, and everything through TextNoise when text noise is on."""
    params = config.text_noise_params
    if params is None:
        pass
    elif not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        return [f"text_noise_params={params!r}: expected None or {{noise name: {{parameter: value}}}}"]
    elif set(params) - set(config.text_noises):
        return [f"text_noise_params: given for {sorted(set(params) - set(config.text_noises))}, "
                f"which are not in text_noises {list(config.text_noises)}"]
    if not full:
        return []
    if config.text_noise_ratio:
        return _checked("text_noises/text_noise_params", text.TextNoise, config.text_noises, params)
    problems = []
    for name, given in (params or {}).items():
        problems += _checked("text_noise_params", text._check_param_names, name, given)  # names only: no models
    return problems


def _validate_uncertainty(config) -> list:
    problems = []
    for modality in MODALITIES:
        if getattr(config, f"{modality}_compactness") is not None:
            problems += _number(config, f"{modality}_compactness", 0.0)
        model = getattr(config, f"{modality}_feature_model")
        if not isinstance(model, str) or not model:
            problems.append(f"{modality}_feature_model={model!r}: expected a Hub model id or a local folder "
                            f"(None: {features.DEFAULT_MODEL_IDS[modality]})")
        problems += _optional_text(config, f"{modality}_feature_revision", "a branch, tag or commit of the model's repository")
    problems += _number(config, "num_sampling", 1, 1000, integer=True)
    problems += _number(config, "label_noise", 0.0, 1.0)
    problems += _number(config, "label_noise_neighbours", 1, 500, integer=True)
    if config.label_noise_modality not in LABEL_NOISE_MODALITIES:
        problems.append(f"label_noise_modality={config.label_noise_modality!r}: expected one of {LABEL_NOISE_MODALITIES}")
    problems += _number(config, "conflict_ratio", 0.0, 1.0)
    if config.feature_cache_dir is not None and not isinstance(config.feature_cache_dir, str):
        problems.append(f"feature_cache_dir={config.feature_cache_dir!r}: expected None or a folder path")
    return problems


def config_id(config, base) -> str:
    """The cache id of `config`: its name, plus a digest of the fields that differ from `base`
    (the named config it started from). Computed from the values the config holds, so a None
    override, a normalised mirror path or a value equal to the default all count for what they are."""
    changed = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if f.name not in ("name", "version", "description") and getattr(config, f.name) != getattr(base, f.name, None)}
    if not changed:
        return config.name
    digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    return f"{config.name}-{digest}"


def uses_diversity(config) -> bool:
    """Whether the config re-draws the train split (any compactness set)."""
    return any(getattr(config, f"{m}_compactness") is not None for m in MODALITIES)
