"""A requested LUMA variant (named config + field overrides): its checks, its fields' help and
its preparation into the same cache `load_dataset` uses.

Used by the `luma` command (`luma_noise.cli`); importing this module is light (the builder,
and with it `datasets`, is imported by the functions that need it).
"""

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional

from . import config_fields

# Fields that say where things are read or cached, not what the examples are: left out of the
# command that reproduces an export (its provenance file still records them).
LOCATION_FIELDS = config_fields.of_kind(config_fields.LOCATION)


@dataclasses.dataclass
class Variant:
    """config: a named config (`options.NAMED_CONFIGS`); fields: LumaConfig field overrides as
    the user gave them (JSON values: lists stay lists), `mirror` included when given."""

    config: str
    fields: dict = dataclasses.field(default_factory=dict)

    def errors(self) -> list:
        """Every problem of the request, each naming the field and what it accepts; [] if none.
        All bad values at once, text noise parameters included (`config_fields.problems`), without
        building a config (the config class stops at its first check)."""
        from . import options

        if self.config not in options.NAMED_CONFIGS:
            return [f"unknown config {self.config!r}; the configs are: {', '.join(options.NAMED_CONFIGS)}"]
        unknown = sorted(set(self.fields) - set(config_fields.NAMES) - options._BUILDER_FIELDS - set(options.DEPRECATED_ALIASES))
        if unknown:
            return [f"unknown LUMA config field(s) {unknown}; the fields are: {', '.join(sorted(config_fields.NAMES))}"]
        fields = options.normalise_fields({**options.NAMED_CONFIGS[self.config], **self.fields})
        return config_fields.problems({**{f.name: f.default for f in config_fields.FIELDS}, **fields})

    def resolved(self):
        """The LumaConfig this request builds (every field), validated."""
        from . import options
        from .builder import LumaConfig

        config = LumaConfig(name=self.config, **options.normalise_fields({**options.NAMED_CONFIGS[self.config], **self.fields}))
        options.validate(config)
        return config

    def content_fields(self) -> dict:
        """The overrides the examples depend on, as given: every field but the location ones (the
        command that reproduces an export sets these)."""
        return {k: v for k, v in self.fields.items() if k not in LOCATION_FIELDS}

    def export_name(self) -> str:
        """The config's name, plus `-<8 hex digits>` of what makes the variant other than the named
        config (`options.variant_fields`: content fields at another value) when there is any:
        `label_noise_0.3` stays, `label_noise_0.3 --set seed=7` becomes `label_noise_0.3-<hash>`."""
        from .options import variant_fields

        content = variant_fields(self.config, self.fields)
        if not content:
            return self.config
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:8]
        return f"{self.config}-{digest}"


def field_help() -> list:
    """[(field, default, accepted values, description, kind)] of every LumaConfig field, from its
    one description (`config_fields.FIELDS`)."""
    return [(f.name, f.default, f.accepts(), f.doc, f.kind) for f in config_fields.FIELDS]


def script_path() -> Optional[str]:
    """The loading script `luma.py` beside the package (a checkout or an editable install),
    or None (an installed wheel holds the package only)."""
    path = Path(__file__).resolve().parent.parent / "luma.py"
    return str(path) if path.is_file() and "luma_noise.builder" in path.read_text(encoding="utf-8") else None


def uses_script(script: Optional[str]) -> bool:
    """Whether `prepare` goes through `load_dataset` on the script: `datasets` < 4 and a script."""
    import datasets

    return script is not None and int(datasets.__version__.split(".")[0]) < 4


def prepare(variant: Variant, num_proc: Optional[int] = None, cache_dir: Optional[str] = None,
            script: Optional[str] = None):
    """Build and cache a variant; returns its DatasetDict.

    On `datasets` < 4 with the script at hand, through `load_dataset(script, config, **fields)`:
    the script's cache folder (`<cache>/luma/<config id>/<version>/<script hash>`) is the one a
    later `load_dataset` call with the same script and keywords finds. Otherwise (`datasets` >= 4,
    or no script) through `luma_noise.load`, whose cache (`<cache>/luma/<config id>/<version>`)
    a later `luma_noise.load` with the same keywords finds.
    """
    import datasets

    from .loader import load

    if uses_script(script):
        return datasets.load_dataset(script, variant.config, trust_remote_code=True, cache_dir=cache_dir,
                                     num_proc=num_proc, **variant.fields)
    return load(variant.config, cache_dir=cache_dir, num_proc=num_proc, **variant.fields)
