"""LUMA's config fields: the named configs and validation.

The loading script's `LumaConfig` holds the fields; this module says which values are
allowed and which named configs exist, so a wrong value fails before any download.
"""

import dataclasses

from . import sources

# Named configs: name -> field overrides. Generated from small specs, not written by hand.
NAMED_CONFIGS = {
    "clean": {},
}

_BUILDER_FIELDS = {"name", "version", "data_dir", "data_files", "description"}


def check_field_names(config_class, kwargs: dict) -> None:
    """Raise ValueError naming any keyword that is not a field of `config_class`."""
    fields = sorted(f.name for f in dataclasses.fields(config_class) if f.name not in _BUILDER_FIELDS)
    unknown = sorted(set(kwargs) - set(fields) - _BUILDER_FIELDS)
    if unknown:
        raise ValueError(f"unknown LUMA config field(s) {unknown}; the fields are: {', '.join(fields)}")


def validate(config) -> None:
    """Raise ValueError naming the first field of `config` whose value is not allowed."""
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2**63:
        raise ValueError(f"seed={config.seed!r}: expected an integer in [0, 2**63)")
    if config.mirror is not None and not isinstance(config.mirror, str):
        raise ValueError(f"mirror={config.mirror!r}: expected None, a folder path or an http(s) URL")
    sources.check_mirror(config.mirror)
    if not isinstance(config.luma_revision, str) or not config.luma_revision or any(c.isspace() for c in config.luma_revision):
        raise ValueError(f"luma_revision={config.luma_revision!r}: expected a branch, tag or commit of bezirganyan/LUMA")
