"""The settings of a `train` run: one validated object (`RunSettings`), the plan of runs it implies,
and the run.json record of the options that change a result.

    settings = RunSettings(methods=("mcd", "tmc"), max_epochs=20, method_options={"tmc": {"anneal_epochs": 20}})

Every problem of every field is named in one `SettingsError` when the object is built, before any
data is read; `sweep` builds one per run before its first run starts. The fields are the options
of `train` and `sweep` (`add_run_options`), with the paper's protocol (BASELINES.md §5) as
defaults.

Just over 300 lines: every option's check sits beside its field, so that one read shows what a run
accepts.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .collator import ALL_MODALITIES
from .inputs import MODES
from .methods.de import ENSEMBLE_TRAINING
from .methods.registry import PAPER

RUN_MODALITIES = ALL_MODALITIES + ("multimodal",)
# The reference's protocol (BASELINES.md §5).
LEARNING_RATE, PLATEAU_FACTOR, PLATEAU_PATIENCE, STOP_PATIENCE = 1e-2, 0.33, 5, 10
# MC dropout passes of the per-epoch validation loss in fixed mode (faithful: mc_samples, as the
# reference); the final evaluation always uses mc_samples. Chosen with benchmarks/bench_val_passes.py
# (docs/scaling.md): on the planted fixture mirror, 8 seeds, 4 passes kept the best epoch of T = 100
# in 7 of 8 runs (mean |difference| 0.12 epochs; 10 passes: 7 of 8, 0.50), and validation then costs
# about 30 % of an MC-dropout image epoch (docs/performance.md).
VAL_MC_SAMPLES_FIXED = 4
PRECISIONS = ("fp32", "bf16")
# How the convolutions' weights and activations are laid out. channels_last: 1.58x (audio), 1.44x (fused)
# training steps on this CPU (docs/performance.md); dropout masks are drawn in memory order, so the
# two give different (equally valid) numbers. contiguous: the layout of the runs made before.
MEMORY_FORMATS = ("channels_last", "contiguous")
DEVICES = ("auto", "cpu", "cuda")
# Options that change how fast a run goes, never its results: not in run.json nor sweep.json.
NOT_RECORDED = ("dataloader_workers",)
# Options that run.json and sweep.json omit at (or without) the value every folder written before
# they existed ran with, so that those folders stay valid.
IMPLICIT_BEFORE = {"method_options": {}, "memory_format": "contiguous"}
# Run options that are hyper-parameters of the methods whose Config has a field of that name.
METHOD_RUN_OPTIONS = ("ensemble_size", "ensemble_training", "mc_samples")
# How the run seed s is used; change it whenever that changes (it is part of run.json).
SEEDING = "split, initialisation and data order from s; independent member i from 100 s + i; evaluation " \
          "(dropout masks, softmax noise) from (s, 'evaluate', split)"


class SettingsError(ValueError):
    """Every problem of a `RunSettings` (`problems`: one message each)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class RunSettings:
    """What and how a `train` call trains: methods (registry names, "all", "package.module:Class"),
    modalities (image, audio, text, multimodal = the three fused, or a fused subset as image+text),
    seeds; mode ("fixed" or "faithful"); text_model (BERT for the text embeddings); max_epochs,
    patience (early stopping, epochs), batch_size, max_steps (overrides epochs; for smoke tests);
    ensemble_size, ensemble_training, mc_samples (the paper's methods); val_mc_samples (MC dropout
    passes of the per-epoch validation; None: `validation_passes`); method_options ({method:
    {hyper-parameter: value}}, validated by the method's Config); device ("auto", "cpu",
    "cuda"); precision ("fp32" or "bf16" autocast); memory_format ("channels_last" or "contiguous":
    the convolutions' layout); dataloader_workers (speed only)."""

    methods: tuple = PAPER
    modalities: tuple = RUN_MODALITIES
    mode: str = "fixed"
    text_model: str = "bert-base-uncased"
    max_epochs: int = 300
    ensemble_size: int = 10
    ensemble_training: str = "joint"
    mc_samples: int = 100
    batch_size: int = 128
    device: str = "auto"
    precision: str = "fp32"
    memory_format: str = "channels_last"
    dataloader_workers: int = 0
    val_mc_samples: Optional[int] = None
    method_options: dict = field(default_factory=dict)
    seeds: tuple = (42,)
    max_steps: Optional[int] = None
    patience: int = STOP_PATIENCE

    def __post_init__(self):
        for name in ("methods", "modalities", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = settings_problems(self)
        if problems:
            raise SettingsError(problems)

    def options(self) -> dict:
        """{field: value} of every option (the keywords of `run_training` and `sweep`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def validation_passes(self) -> int:
        """MC dropout passes of the per-epoch validation: val_mc_samples if given, else mc_samples in
        faithful mode (the reference validates with all T) and min(VAL_MC_SAMPLES_FIXED, mc_samples) in fixed."""
        return validation_passes(self.options())

    def hyper_parameters(self, method: str) -> dict:
        """The method's Config keywords: the run options it has (mc_samples, ...) and its method_options."""
        from .methods.registry import resolve

        cls = resolve(method)
        names = {f.name for f in dataclasses.fields(cls.Config)}
        return {**{k: getattr(self, k) for k in METHOD_RUN_OPTIONS if k in names},
                **self.method_options.get(method, self.method_options.get(cls.name, {}))}

    def plan(self) -> list:
        return plan_runs(self.methods, self.modalities, self.seeds)


def validation_passes(values: dict):
    """`RunSettings.validation_passes` of a dict of options (mode, mc_samples, val_mc_samples)."""
    if values.get("val_mc_samples") is not None:
        return values["val_mc_samples"]
    mc = values["mc_samples"]
    return mc if values["mode"] == "faithful" or not isinstance(mc, int) else min(VAL_MC_SAMPLES_FIXED, mc)


def _int_problems(s: RunSettings) -> list:
    errors = [f"{name} must be an integer >= 1, got {getattr(s, name)!r}"
              for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size", "patience")
              if not isinstance(getattr(s, name), int) or getattr(s, name) < 1]
    if s.val_mc_samples is not None and (not isinstance(s.val_mc_samples, int) or s.val_mc_samples < 1):
        errors.append(f"val_mc_samples must be an integer >= 1 or None, got {s.val_mc_samples!r}")
    if s.max_steps is not None and (not isinstance(s.max_steps, int) or s.max_steps < 1):
        errors.append(f"max_steps must be an integer >= 1 or None, got {s.max_steps!r}")
    if not isinstance(s.dataloader_workers, int) or s.dataloader_workers < 0:
        errors.append(f"dataloader_workers must be an integer >= 0, got {s.dataloader_workers!r}")
    return errors


def _method_problems(s: RunSettings) -> list:
    """Unknown methods, and hyper-parameters (run options and method_options) their Config refuses."""
    from .methods.registry import check_methods, expand, resolve

    problems = [f"methods: {problem}" for problem in check_methods(s.methods)]
    chosen = [] if problems else expand(s.methods)
    # one member or one dropout pass: the epistemic spread is 0 by construction, the measure means nothing
    for name, method in (("ensemble_size", "de"), ("mc_samples", "mcd")):
        if getattr(s, name) == 1 and method in chosen:
            problems.append(f"{name} 1 leaves {method}'s epistemic uncertainty at 0 by construction: use >= 2")
    if not isinstance(s.method_options, dict):
        return problems + [f"method_options must be {{method: {{name: value}}}}, got {s.method_options!r}"]
    names = {resolve(m).name: m for m in chosen}
    for method in s.method_options:
        if method not in chosen and method not in names:
            problems.append(f"method option for {method!r}, which is not among the methods {list(s.methods)}")
    if chosen:
        for method in chosen:
            try:
                resolve(method)(**s.hyper_parameters(method))
            except (ValueError, TypeError) as err:
                problems.append(f"method options: {err}")
    return problems


def settings_problems(s: RunSettings) -> list:
    """Every problem of the settings (SettingsError's messages)."""
    errors = _int_problems(s) + _precision_problems(s.precision, s.device)
    bad = [v for v in s.modalities if not valid_modality(v)]
    if bad or not s.modalities:
        errors.append(f"modalities must be among {RUN_MODALITIES} or fused subsets such as image+text, "
                      f"got {list(s.modalities)!r}")
    for name, allowed in (("mode", MODES), ("ensemble_training", ENSEMBLE_TRAINING), ("device", DEVICES),
                          ("memory_format", MEMORY_FORMATS)):
        if getattr(s, name) not in allowed:
            errors.append(f"{name} must be one of {allowed}, got {getattr(s, name)!r}")
    if not s.seeds:
        errors.append("seeds must name at least one seed")
    elif len(set(s.seeds)) != len(s.seeds):
        errors.append(f"seeds must be distinct, got {list(s.seeds)}")
    if s.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            errors.append("device 'cuda' asked for, but torch sees no CUDA device")
    errors += _method_problems(s)
    if not errors and not s.plan():
        errors.append(f"nothing to train: RCML runs on multimodal only, got methods {list(s.methods)} "
                      f"and modalities {list(s.modalities)}")
    return errors


def _precision_problems(precision, device) -> list:
    """Why `precision` cannot run on `device` ("auto" resolved as the run will): bf16 needs a CUDA
    device that supports it, or a CPU with native bfloat16 (oneDNN: AVX512-BF16 or AMX)."""
    if precision not in PRECISIONS:
        return [f"precision must be one of {PRECISIONS}, got {precision!r}"]
    if precision == "fp32":
        return []
    import torch

    if device != "cpu" and torch.cuda.is_available():
        ok, where = torch.cuda.is_bf16_supported(), "this CUDA device"
    else:
        ok, where = bf16_cpu_supported(), "this CPU (no AVX512-BF16 or AMX)"
    return [] if ok else [f"precision bf16 is not supported by {where}: use --precision fp32"]


def bf16_cpu_supported() -> bool:
    """True if this CPU computes bfloat16 natively (oneDNN's check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolved_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_record(config_name: str, differing: dict, settings: RunSettings, text_model_digest) -> dict:
    """run.json: every option that changes a result (not methods, modalities, seeds: they pick
    runs); method_options only when set and memory_format only when not contiguous
    (`implicit_before`), so folders written before they existed stay valid."""
    s = settings
    record = {"config": config_name, "fields": differing, "mode": s.mode, "text_model": s.text_model,
              "text_model_digest": text_model_digest, "device": resolved_device(s.device),
              **{k: getattr(s, k) for k in ("max_epochs", "max_steps", "patience", "batch_size", "ensemble_size",
                                            "ensemble_training", "mc_samples", "precision")},
              "val_mc_samples": s.validation_passes, "seeding": SEEDING}
    record.update({k: getattr(s, k) for k in IMPLICIT_BEFORE if not implicit_before(k, getattr(s, k))})
    return record


def implicit_before(name: str, value) -> bool:
    """True if `value` of option `name` is left out of the records (see IMPLICIT_BEFORE)."""
    return name in IMPLICIT_BEFORE and (not value or value == IMPLICIT_BEFORE[name])


def modalities_of(run_modality: str) -> tuple:
    """The modalities of a run's modality name ("multimodal" = all three)."""
    return ALL_MODALITIES if run_modality == "multimodal" else tuple(run_modality.split("+"))


def valid_modality(run_modality) -> bool:
    """"multimodal", one modality, or distinct modalities joined by + in the order image, audio, text."""
    parts = run_modality.split("+") if isinstance(run_modality, str) else []
    return run_modality == "multimodal" or (
        bool(parts) and len(set(parts)) == len(parts) and all(p in ALL_MODALITIES for p in parts)
        and parts == sorted(parts, key=ALL_MODALITIES.index) and len(parts) < len(ALL_MODALITIES))


def needed_modalities(runs) -> list:
    """The modalities the planned runs read, in canonical order."""
    return sorted({m for _, modality, _ in runs for m in modalities_of(modality)}, key=ALL_MODALITIES.index)


def plan_runs(methods, modalities, seeds) -> list:
    """(method, modality, seed) in training order (the paper's methods, then the others as given; "all"
    = every built-in); each method on the modalities it accepts (RCML and fusion methods on 2 or more)."""
    from .methods.registry import accepts, expand

    methods = expand(methods)
    methods = [m for m in PAPER if m in methods] + [m for m in methods if m not in PAPER]
    modalities = [m for m in RUN_MODALITIES if m in modalities] + [m for m in modalities if m not in RUN_MODALITIES]
    return [(method, modality, seed) for seed in seeds for method in methods for modality in modalities
            if accepts(method, modalities_of(modality))]


def run_name(method: str, modality: str, seed: int) -> str:
    from .methods.registry import run_label

    return f"{run_label(method)}-{modality}-seed{seed}"


def parse_method_option(text: str) -> tuple:
    """`tmc.anneal_epochs=20` -> ("tmc", "anneal_epochs", 20): the value as JSON, else a string
    (argparse type of --method-option); ValueError naming the accepted form."""
    import json

    target, sep, value = text.partition("=")
    method, dot, name = target.rpartition(".")
    if not sep or not dot or not method or not name:
        raise ValueError(f"--method-option {text!r}: expected METHOD.NAME=VALUE, e.g. tmc.anneal_epochs=20")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return method, name, parsed


def method_options(triples) -> dict:
    """{method: {name: value}} of parsed --method-option values (a later one wins)."""
    out = {}
    for method, name, value in triples:
        out.setdefault(method, {})[name] = value
    return out


def text_model_problems(text_model: str, needed: bool) -> list:
    """Why `text_model` cannot be loaded (checked only when a run reads text): neither a model
    folder nor a well-formed Hub id. Whether a Hub id exists is left to the download."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    path = Path(text_model).expanduser()
    if not needed or (path / "config.json").is_file():
        return []
    if path.is_dir():
        return [f"--text-model {text_model}: a folder without config.json, not a saved model"]
    if path.exists():
        return [f"--text-model {text_model}: a file, not a model folder or a Hub id"]
    try:
        validate_repo_id(text_model)
    except HFValidationError:
        return [f"--text-model {text_model}: no such folder, and not a Hub model id (name or namespace/name)"]
    return []
