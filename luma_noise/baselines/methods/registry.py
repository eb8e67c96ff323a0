"""The method registry: built-in names, `all`, and `package.module:Class` for a user's own method.

    resolve("tmc")                      -> the TMC class
    resolve("my_package.my_module:Mine") -> Mine (imported; must subclass `Method`)
    expand(["all"])                     -> every built-in name, in `BUILTIN` order

The paper's three methods ("mcd", "de", "rcml") are method objects like the others
(`mcd.py`, `de.py`, `rcml.py`), first in `BUILTIN` and the default of `train` and `sweep`.
"""

import importlib
import re

from .base import Method
from .de import DeepEnsemble
from .evidential import DBF, EDL, ETMC, TMC
from .mcd import MCDropout
from .qmf import QMF
from .rcml import RCML
from .softmax import Softmax, TemperatureScaled


BUILTIN = {cls.name: cls for cls in (MCDropout, DeepEnsemble, RCML, Softmax, TemperatureScaled, EDL, TMC, ETMC,
                                     DBF, QMF)}
PAPER = ("mcd", "de", "rcml")  # the paper's protocol: the default of `train` and `sweep`
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def expand(specs) -> list:
    """The method specs with "all" replaced by every built-in name; duplicates dropped, order kept."""
    out = []
    for spec in specs:
        for name in (BUILTIN if spec == "all" else [spec]):
            if name not in out:
                out.append(name)
    return out


def resolve(spec: str) -> type:
    """The method class of a built-in name or of `package.module:Class`; ValueError saying what is accepted."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ValueError(f"unknown method {spec!r}: use one of {', '.join(BUILTIN)}, 'all', "
                         f"or package.module:Class for your own Method subclass")
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"method {spec!r}: cannot import {class_name} from {module_name} ({err})") from err
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"method {spec!r} is not a subclass of luma_noise.baselines.methods.Method")
    if not re.fullmatch(r"[a-z0-9_]+", cls.name or "") or cls.name in BUILTIN:
        raise ValueError(f"method {spec!r}: its `name` ({cls.name!r}) must be lower-case letters, digits and _ "
                         f"and not a built-in name; it names the runs")
    return cls


def check_methods(specs) -> list:
    """Every problem of a list of method specs (empty when all resolve)."""
    problems = []
    for spec in expand(specs):
        try:
            resolve(spec)
        except ValueError as err:
            problems.append(str(err))
    return problems or ([] if list(specs) else ["name at least one method"])


def accepts(spec: str, modalities) -> bool:
    """Whether the method trains on these modalities (its number of views, `Method.views`)."""
    low, high = resolve(spec).views
    return low <= len(tuple(modalities)) <= high


def run_label(spec: str) -> str:
    """The method's part of a run name: its registry name (the class's `name` for module:Class)."""
    return resolve(spec).name
