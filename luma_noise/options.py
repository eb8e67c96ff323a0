"""LUMA's config fields: the named configs and validation.

The loading script's `LumaConfig` holds the fields; this module says which values are
allowed and which named configs exist, so a wrong value fails before any download.
"""

import dataclasses
import math
import numbers

from . import audio
from . import image
from . import sources
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


def check_field_names(config_class, kwargs: dict) -> None:
    """Raise ValueError naming any keyword that is not a field of `config_class`."""
    fields = sorted(f.name for f in dataclasses.fields(config_class) if f.name not in _BUILDER_FIELDS)
    unknown = sorted(set(kwargs) - set(fields) - _BUILDER_FIELDS)
    if unknown:
        raise ValueError(f"unknown LUMA config field(s) {unknown}; the fields are: {', '.join(fields)}")


def _number(config, field: str, low: float, high: float = math.inf, integer: bool = False) -> None:
    value = getattr(config, field)
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{field}={value!r}: expected {what} in [{low}, {high}]")


def _flag(config, field: str) -> None:
    if not isinstance(getattr(config, field), bool):
        raise ValueError(f"{field}={getattr(config, field)!r}: expected True or False")


def _names(config, field: str) -> None:
    """Sequences arrive as lists from keyword arguments: store them as tuples."""
    value = getattr(config, field)
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field}={value!r}: expected a list of names")
    setattr(config, field, tuple(value))


def _checked(fields: str, check, *args) -> None:
    """Run a library's own validation, naming the config fields in its error."""
    try:
        check(*args)
    except ValueError as err:
        raise ValueError(f"{fields}: {err}") from None


def validate(config, text_params: bool = True) -> None:
    """Raise ValueError naming the first field of `config` whose value is not allowed.

    Lists given for name fields are stored as tuples. `text_params=False` skips checking
    text noise parameters against nlpaug, whose import pulls in torch and transformers
    (about 6 s and 400 MB): the script's named configs are built at import time.
    """
    _number(config, "seed", 0, 2**63 - 1, integer=True)
    if config.mirror is not None and not isinstance(config.mirror, str):
        raise ValueError(f"mirror={config.mirror!r}: expected None, a folder path or an http(s) URL")
    sources.check_mirror(config.mirror)
    if not isinstance(config.luma_revision, str) or not config.luma_revision or any(c.isspace() for c in config.luma_revision):
        raise ValueError(f"luma_revision={config.luma_revision!r}: expected a branch, tag or commit of bezirganyan/LUMA")
    _validate_sample_noise(config, text_params)
    _validate_uncertainty(config)


def _validate_sample_noise(config, text_params: bool) -> None:
    for modality in MODALITIES:
        _number(config, f"{modality}_noise_ratio", 0.0, 1.0)
        _flag(config, f"{modality}_noise_train")
        _flag(config, f"{modality}_noise_test")
    _names(config, "image_corruptions")
    _checked("image_corruptions/image_severity", image.ImageNoise, config.image_corruptions, config.image_severity)
    _checked("audio_min_snr_db/audio_max_snr_db", audio.check_snr_range, config.audio_min_snr_db, config.audio_max_snr_db)
    _names(config, "text_noises")
    if config.text_noise_params is not None and not isinstance(config.text_noise_params, dict):
        raise ValueError(f"text_noise_params={config.text_noise_params!r}: expected None or {{noise name: {{parameter: value}}}}")
    if config.text_noise_ratio and text_params:
        from .text import TextNoise  # nlpaug is slow to import: only when text noise is on

        _checked("text_noises/text_noise_params", TextNoise, config.text_noises, config.text_noise_params)


def _validate_uncertainty(config) -> None:
    for modality in MODALITIES:
        if getattr(config, f"{modality}_compactness") is not None:
            _number(config, f"{modality}_compactness", 0.0)
        if not isinstance(getattr(config, f"{modality}_feature_model"), str):
            raise ValueError(f"{modality}_feature_model: expected a Hub model id or a local folder")
    _number(config, "num_sampling", 1, 1000, integer=True)
    _number(config, "label_noise", 0.0, 1.0)
    _number(config, "label_noise_neighbours", 1, 500, integer=True)
    if config.label_noise_modality not in LABEL_NOISE_MODALITIES:
        raise ValueError(f"label_noise_modality={config.label_noise_modality!r}: expected one of {LABEL_NOISE_MODALITIES}")
    _number(config, "conflict_ratio", 0.0, 1.0)
    if config.feature_cache_dir is not None and not isinstance(config.feature_cache_dir, str):
        raise ValueError(f"feature_cache_dir={config.feature_cache_dir!r}: expected None or a folder path")


def uses_diversity(config) -> bool:
    """Whether the config re-draws the train split (any compactness set)."""
    return any(getattr(config, f"{m}_compactness") is not None for m in MODALITIES)
