"""A requested LUMA variant (named config + field overrides): its checks, its fields' help and
its preparation into the same cache `load_dataset` uses.

Used by the `luma` command (`luma_noise.cli`); importing this module is light (the builder,
and with it `datasets`, is imported by the functions that need it).
"""

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Optional

# Fields that say where things are read or cached, not what the examples are: they are left
# out of an exported config's name (the provenance still records them).
LOCATION_FIELDS = ("mirror", "feature_cache_dir")

_DOC_ENTRY = re.compile(r"^ {8}(\w[\w, ]*): (.*)$")  # "        name[, name2]: text" in LumaConfig's docstring


@dataclasses.dataclass
class Variant:
    """config: a named config (`options.NAMED_CONFIGS`); fields: LumaConfig field overrides as
    the user gave them (JSON values: lists stay lists), `mirror` included when given."""

    config: str
    fields: dict = dataclasses.field(default_factory=dict)

    def errors(self) -> list:
        """Every problem of the request, each naming the field and what it accepts; [] if none.

        The config validation reports all bad values at once (`options.ConfigError`); a value
        of a type the config class itself trips on is reported field by field.
        """
        from . import options
        from .builder import LumaConfig

        if self.config not in options.NAMED_CONFIGS:
            return [f"unknown config {self.config!r}; the configs are: {', '.join(options.NAMED_CONFIGS)}"]
        try:
            options.check_field_names(LumaConfig, self.fields)
        except ValueError as err:
            return [str(err)]
        problem = _problem(self.config, self.fields)
        if problem is None:
            return []
        if isinstance(problem, list):
            return problem
        return [p for p in (_problem(self.config, {k: v}) for k, v in self.fields.items()) if p] or [problem]

    def resolved(self):
        """The LumaConfig this request builds (every field), validated."""
        from . import options
        from .builder import LumaConfig

        config = LumaConfig(name=self.config, **options.normalise_fields({**options.NAMED_CONFIGS[self.config], **self.fields}))
        options.validate(config)
        return config

    def content_fields(self) -> dict:
        """The overrides that change the examples (location fields left out)."""
        return {k: v for k, v in self.fields.items() if k not in LOCATION_FIELDS}

    def export_name(self) -> str:
        """The config's name, plus `-<8 hex digits>` of the content overrides when there are any:
        `label_noise_0.3` stays, `label_noise_0.3 --set seed=7` becomes `label_noise_0.3-<hash>`."""
        content = self.content_fields()
        if not content:
            return self.config
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:8]
        return f"{self.config}-{digest}"


def _problem(config_name: str, overrides: dict):
    """None if the config is valid; the validation's list of problems; or one message."""
    from . import options
    from .builder import LumaConfig

    try:
        fields = options.normalise_fields({**options.NAMED_CONFIGS[config_name], **overrides})
        options.validate(LumaConfig(name=config_name, **fields))
    except options.ConfigError as err:
        return err.problems
    except (ValueError, TypeError) as err:
        if isinstance(err, TypeError) and len(overrides) == 1:  # e.g. a number where a list of names is expected
            field, value = next(iter(overrides.items()))
            return f"{field}={value!r}: {_accepted(field)}"
        return str(err)
    return None


def field_help() -> list:
    """[(field, default, accepted values, description)] of every LumaConfig field, derived from
    the config class: defaults from its dataclass fields, descriptions from its docstring, and
    accepted values from `options.validate`'s own message for a value no field accepts."""
    from . import options
    from .builder import LumaConfig

    descriptions = _docstring_entries(LumaConfig.__doc__ or "")
    rows = []
    for field in dataclasses.fields(LumaConfig):
        if field.name in options._BUILDER_FIELDS:
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        rows.append((field.name, default, _accepted(field.name), descriptions.get(field.name, "")))
    return rows


def _accepted(field: str) -> str:
    """What `options.validate` says a field accepts, from its error for unacceptable values."""
    from . import options
    from .builder import LumaConfig

    said = []
    for bad in ([object()], ["?"]):  # the second names the allowed names of name-list fields
        config = LumaConfig(name="probe")
        setattr(config, field, bad)
        try:  # text_params=False: a probe of text_noise_ratio would otherwise import nlpaug (3.5 s)
            options.validate(config, text_params=False)
        except (ValueError, TypeError) as err:  # ConfigError is a ValueError
            message = re.sub(r", got .*$", "", str(err))
            message = re.sub(r"^\w+=.*?: (expected)", r"\1", message)
            if message not in said and "object" not in message and not any("[" in m or "(" in m for m in said):
                said.append(message)
    return "; ".join(said) or "any string"


def _docstring_entries(doc: str) -> dict:
    """{field: description} from `name[, name2]: text` entries (continuation lines appended);
    `m_...` names stand for each modality."""
    from .classes import MODALITIES

    entries, current = {}, []
    for line in doc.splitlines():
        match = _DOC_ENTRY.match(line)
        if match:
            names = [n.strip() for n in match.group(1).split(",")]
            current = [f"{m}_{n[2:]}" if n.startswith("m_") else n for n in names
                       for m in (MODALITIES if n.startswith("m_") else MODALITIES[:1])]
            for name in current:
                entries[name] = match.group(2).strip()
        elif line.startswith(" " * 12) and current:
            for name in current:
                entries[name] += " " + line.strip()
        else:
            current = []
    return entries


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
