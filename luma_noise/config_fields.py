"""Every LUMA config field, described once: default, kind, accepted values, what None means, documentation.

`FIELDS` is the one description. Everything else follows from it: `LumaConfig`'s dataclass fields
(`builder.py`), the validation (`options.validate`), the help of `luma configs` and `luma prepare
--help` (`variant.field_help`), the card's field table (`card.fields_table`), the cache id
(`options.config_id`), the export name (`variant.Variant.export_name`), the report's variant name
(`baselines.runs.variant_of`) and the fields a run records (`baselines.train`). Adding a field is
adding one `Field` here (then `python -m luma_noise.card`).

Kinds, and what each takes part in:

    content     changes the examples: in a variant's name (export name, report variant), in
                the command that reproduces an export, in the cache id.
    provenance  which upstream release or model the examples come from: in the reproduction
                command, the records and the cache id, not in the name. A name says what was
                done to the data; a local copy of the default checkpoint, or the commit a tag
                points to, must not make another variant (nor keep the report from comparing
                it with the paper). Runs and exports record these fields (results.json `fields`,
                luma_variant.json), so sources that differ can still be told apart.
    location    where things are read or cached: in the cache id only (a mirror may hold a subset).

A field's `rule` both checks a value and says what it accepts (help and errors use the same words).
Checks that involve several fields are `JOINT_CHECKS`, run once each field passed its own rule.
(Over 300 lines: the table of 40 documented fields is most of it, and belongs in one place.)
"""

import dataclasses
import math
import numbers
from typing import Callable, Optional

from .noise import audio
from .noise import image
from .upstream import sources
from .noise import text
from .classes import MODALITIES
from .variants.deep_features import DEFAULT_MODEL_IDS

CONTENT, PROVENANCE, LOCATION = "content", "provenance", "location"
KINDS = (CONTENT, PROVENANCE, LOCATION)
LABEL_NOISE_MODALITIES = ("all", *MODALITIES)


# ---------------------------------------------------------------- rules: a check and its words

@dataclasses.dataclass(frozen=True)
class Rule:
    """accepts: what the field accepts, in words ("a number in [0.0, 1.0]"); test(value) -> bool."""

    accepts: str
    test: Callable

    def problems(self, name: str, value, none_too: bool = False) -> list:
        """[] if `value` is accepted, else one message naming the field, the value and what is accepted."""
        return [] if self.test(value) else [f"{name}={value!r}: expected {'None or ' if none_too else ''}{self.accepts}"]


def number(low: float = -math.inf, high: float = math.inf, integer: bool = False) -> Rule:
    """A finite real (or integer) in [low, high]; bools are refused."""
    kind = numbers.Integral if integer else numbers.Real
    if integer:
        words = f"an integer in [{low}, {high}]"
    elif math.isfinite(high):
        words = f"a number in [{low}, {high}]"
    else:
        words = "a finite number" + (f" >= {low}" if math.isfinite(low) else "")
    return Rule(words, lambda v: not isinstance(v, bool) and isinstance(v, kind) and math.isfinite(v) and low <= v <= high)


FLAG = Rule("True or False", lambda v: isinstance(v, bool))


def choice(options: tuple) -> Rule:
    return Rule(f"one of {options!r}", lambda v: isinstance(v, str) and v in options)


def token(what: str) -> Rule:
    """A non-empty string without whitespace (a revision)."""
    return Rule(what, lambda v: isinstance(v, str) and bool(v) and not any(c.isspace() for c in v))


def string(what: str) -> Rule:
    return Rule(what, lambda v: isinstance(v, str) and bool(v))


@dataclasses.dataclass(frozen=True)
class Library(Rule):
    """A rule whose check is a library's own (`check(value)` raises ValueError); its message is kept."""

    def problems(self, name: str, value, none_too: bool = False) -> list:
        try:
            self.test(value)
        except ValueError as err:
            return [f"{name}: {err}"]
        return []


@dataclasses.dataclass(frozen=True)
class Names(Rule):
    """A non-empty list of distinct names, each passing the library's `test(name)` (raises ValueError).
    Stored as a tuple (keywords and JSON arrive as lists)."""

    def problems(self, name: str, value, none_too: bool = False) -> list:
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
            return [f"{name}={value!r}: expected a non-empty list of names"]
        if len(set(value)) != len(value):
            return [f"{name}={list(value)!r}: expected distinct names"]
        return [problem for each in value for problem in Library.problems(self, name, each)]


def _noise_params(value) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items())


# ---------------------------------------------------------------- the fields

@dataclasses.dataclass(frozen=True)
class Field:
    """One config field. type: its annotation on `LumaConfig`; doc: what it does (units, range);
    none: what None does, as "None <none>" reads ("" if None is not accepted); none_is_default: None
    is replaced by the default when the config is built (the config never holds None)."""

    name: str
    type: object
    default: object
    kind: str
    rule: Rule
    doc: str
    none: str = ""
    none_is_default: bool = False

    def problems(self, value) -> list:
        if value is None and self.none:
            return []
        return self.rule.problems(self.name, value, none_too=bool(self.none))

    def accepts(self) -> str:
        """What the field accepts, in words, None and its meaning included."""
        return self.rule.accepts + (f"; None {self.none}" if self.none else "")

    def meaning(self) -> str:
        """The documentation, with what None means."""
        return self.doc + (f" None {self.none}." if self.none else "")


def _noise_switches(m: str) -> list:
    """A modality's sample-noise ratio and split switches."""
    return [Field(f"{m}_noise_ratio", float, 0.0, CONTENT, number(0.0, 1.0),
                  "fraction of examples noised, in [0, 1]; 0 turns the modality's noise off."),
            Field(f"{m}_noise_train", bool, True, CONTENT, FLAG, "noise the modality in the train split."),
            Field(f"{m}_noise_test", bool, True, CONTENT, FLAG, "noise the modality in the test and ood splits.")]


def _per_modality(make) -> list:
    return [make(m) for m in MODALITIES]


FIELDS = (
    Field("seed", int, 42, CONTENT, number(0, 2**63 - 1, integer=True),
          "seeds every random draw (alignment, OOD draw, noise, sampling), through generators derived "
          "per purpose and example."),
    Field("mirror", Optional[str], None, LOCATION, string("a folder path or an http(s) URL"),
          "a local folder or http(s) base URL holding the folders luma/, cifar/, splits/, esc50/ in the "
          "upstream layout. A relative or `~` path is made absolute before the config id is computed.",
          none="reads the real upstream"),
    Field("luma_revision", str, "main", PROVENANCE, token("a branch, tag or commit of bezirganyan/LUMA"),
          "revision (branch, tag or commit) of the `bezirganyan/LUMA` Hub repository (`load_dataset`'s own "
          "`revision` argument belongs to `datasets`)."),
    *_noise_switches("image"),
    Field("image_corruptions", tuple, image.IMAGE_CORRUPTIONS, CONTENT,
          Names(f"a non-empty list of distinct names out of {', '.join(image.IMAGE_CORRUPTIONS)}", image.check_corruption),
          "names from `luma_noise.noise.image.IMAGE_CORRUPTIONS`, one drawn per example."),
    Field("image_severity", int, 4, CONTENT,
          Library(f"an integer in {list(image.SEVERITIES)}", image.check_severity),
          "1..5, of the tables image_severity_tables selects."),
    Field("image_severity_tables", str, "imagenet-c", CONTENT,
          Library(f"one of {', '.join(map(repr, image.TABLES))}", image.check_tables),
          '"imagenet-c" (ImageNet-C\'s tables, through `imagecorruptions`) or "cifar10-c" (CIFAR-10-C\'s, '
          "milder on 32x32 images, as LUMA's reference tool applies them)."),
    Field("reference_effective", bool, False, CONTENT, FLAG,
          "build the images as the reference tool effectively does, whatever the image fields say: each "
          "image of every split corrupted with probability 0.1, CIFAR-10-C tables, image_corruptions, and "
          "severity image_severity when image_noise_ratio > 0 (sample_noise: 4), else 1 (the reference's "
          "default config). Audio and text follow their fields. See docs/reference_data.md."),
    *_noise_switches("audio"),
    *[Field(f"audio_{end}_snr_db", float, default, CONTENT, number(),
            "SNR range (dB) of the ESC-50 background mixed in.") for end, default in (("min", 3.0), ("max", 5.0))],
    *_noise_switches("text"),
    Field("text_noises", tuple, text.DEFAULT_TEXT_NOISES, CONTENT,
          Names(f"a non-empty list of distinct names out of {', '.join(text.TEXT_NOISES)}", text._check_name),
          "names from `luma_noise.noise.text.TEXT_NOISES`, one drawn per example."),
    Field("text_noise_params", Optional[dict], None, CONTENT,
          Rule("{noise name: {nlpaug parameter: value}}", _noise_params),
          "nlpaug parameters overriding the noises' defaults, per noise named in text_noises. Names and "
          "parameter names are checked even when text noise is off.",
          none="keeps the noises' defaults"),
    *_per_modality(lambda m: Field(
        f"{m}_compactness", Optional[float], None, CONTENT, number(0.0),
        "compactness k >= 0 of the diversity sampling of the train split (Eq. 1 of the paper).",
        none="keeps the published clean train rows")),
    Field("num_sampling", int, 10, CONTENT, number(1, 1000, integer=True),
          "draws per class, keeping the one with the largest mean pairwise distance."),
    Field("label_noise", float, 0.0, CONTENT, number(0.0, 1.0),
          "probability in [0, 1] that a train or test example's label is switched to the class whose "
          "`label_noise_neighbours` nearest samples are closest."),
    Field("label_noise_modality", str, "all", CONTENT, choice(LABEL_NOISE_MODALITIES),
          '"all" (distances averaged over the three modalities\' normalised features) or one modality.'),
    Field("label_noise_neighbours", int, 5, CONTENT, number(1, 500, integer=True),
          "nearest samples per class averaged to find the closest class."),
    Field("conflict_ratio", float, 0.0, CONTENT, number(0.0, 1.0),
          "fraction in [0, 1] of each test class whose examples get one modality replaced by the "
          "same-position sample of the next class."),
    *_per_modality(lambda m: Field(
        f"{m}_feature_model", str, DEFAULT_MODEL_IDS[m], PROVENANCE, string("a Hub model id or a local folder"),
        "`transformers` model ids (or local folders) for the deep features of diversity sampling and label noise.",
        none="is the default checkpoint", none_is_default=True)),
    *_per_modality(lambda m: Field(
        f"{m}_feature_revision", Optional[str], None, PROVENANCE,
        token("a branch, tag or commit of the model's repository"),
        "Hub revision (branch, tag or commit) of each modality's feature model. (`feature_revision=` "
        "still sets all three, with a DeprecationWarning.)",
        none="is the model's default branch")),
    Field("feature_cache_dir", Optional[str], None, LOCATION, string("a folder path"),
          "where deep features are cached.",
          none="is `luma_features` under the builder's cache root (`load_dataset`'s cache_dir or the datasets cache)"),
)
BY_NAME = {f.name: f for f in FIELDS}
NAMES = tuple(BY_NAME)
# Renamed fields still accepted: old name -> the fields it sets.
DEPRECATED_ALIASES = {"feature_revision": tuple(f"{m}_feature_revision" for m in MODALITIES)}


def of_kind(*kinds: str) -> tuple:
    """The names of the fields of these kinds, in FIELDS order."""
    return tuple(f.name for f in FIELDS if f.kind in kinds)


# Fields that never make a variant's name: provenance and location, with their deprecated aliases.
NOT_IN_NAME = frozenset(of_kind(PROVENANCE, LOCATION)) | {
    alias for alias, targets in DEPRECATED_ALIASES.items() if set(targets) <= set(of_kind(PROVENANCE, LOCATION))}


def dataclass_fields() -> list:
    """(name, annotation, dataclasses.field) of every field, for `LumaConfig`."""
    return [(f.name, f.type, dataclasses.field(default=f.default)) for f in FIELDS]


def docstring() -> str:
    """`LumaConfig`'s docstring: every field with its default, kind, meaning and accepted values."""
    lines = ["A LUMA variant. Every field is checked when the config is built, before any download.",
             "Keyword overrides of None are applied (`datasets` alone would drop them): e.g.",
             "`image_compactness=None` on `low_diversity` keeps the published image train rows.", "",
             "Fields (described in `luma_noise.config_fields`):"]
    for f in FIELDS:
        lines += [f"    {f.name} = {f.default!r} ({f.kind}): {f.doc}", f"        accepts: {f.accepts()}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- checks of several fields

def _snr_range(values: dict, full: bool) -> list:
    try:
        audio.check_snr_range(values["audio_min_snr_db"], values["audio_max_snr_db"])
    except ValueError as err:
        return [f"audio_min_snr_db/audio_max_snr_db: {err}"]
    return []


def _text_noise(values: dict, full: bool) -> list:
    """text_noise_params names only noises of text_noises; with `full`, its parameter names are
    checked against the nlpaug augmenters' signatures (imports nlpaug, about 6 s), and everything
    through `text.TextNoise` when text noise is on."""
    params, noises = values["text_noise_params"], values["text_noises"]
    if params and set(params) - set(noises):
        return [f"text_noise_params: given for {sorted(set(params) - set(noises))}, which are not in text_noises {list(noises)}"]
    if not full:
        return []
    try:
        if values["text_noise_ratio"]:
            text.TextNoise(noises, params)
            return []
        problems = []
        for name, given in (params or {}).items():
            try:
                text._check_param_names(name, given)  # names only: no models
            except ValueError as err:
                problems.append(f"text_noise_params: {err}")
        return problems
    except ValueError as err:
        return [f"text_noises/text_noise_params: {err}"]


def _mirror_exists(values: dict, full: bool) -> list:
    """A local mirror is an existing folder (last: a bad value is reported as itself, not as a missing mirror)."""
    try:
        sources.check_mirror(values["mirror"])
    except ValueError as err:
        return [f"mirror: {err}"]
    return []


# (fields, check(values, full) -> problems): run when every one of the fields passed its own rule
JOINT_CHECKS = (
    (("audio_min_snr_db", "audio_max_snr_db"), _snr_range),
    (("text_noises", "text_noise_params", "text_noise_ratio"), _text_noise),
    (("mirror",), _mirror_exists),
)


def problems(values: dict, full: bool = True) -> list:
    """Every problem of `values` ({field: value}, every field of FIELDS), one message per bad field
    or joint check, in FIELDS order. `full=False` skips what imports nlpaug (see `_text_noise`)."""
    found, bad = [], set()
    for field in FIELDS:
        own = field.problems(values[field.name])
        found += own
        bad |= {field.name} if own else set()
    for names, check in JOINT_CHECKS:
        if not bad & set(names):
            found += check(values, full)
    return found


def stored(field: Field, value):
    """The value a config stores for an accepted `value`: name lists as tuples."""
    return tuple(value) if isinstance(field.rule, Names) else value
