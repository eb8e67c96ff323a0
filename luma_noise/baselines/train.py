"""The `train` subcommand: train and evaluate every method of one LUMA config with the Trainer.

    python -m luma_noise.baselines train clean --output-dir runs/clean --max-epochs 20

For each method, modality and seed (a "run", named `<method>-<modality>-seed<s>`), the
Trainer (`methods.trainer.LumaTrainer`: the stock one less its repeated per-step host work)
trains a `MethodModel` on 80 % of `train` (seeded split),
validates on the other 20 % every epoch (Adam, ReduceLROnPlateau, early stopping on the
validation loss, best checkpoint kept), then the model is evaluated on validation, test
and ood (`methods.runner`, the one path of every method). Output folder (`results`):

- results.json: config, fields, mode and one row of metrics per finished run;
- predictions/<run>.npz: per-example probabilities, labels and uncertainties;
- models/<run>/: the trained model (`MethodModel.from_pretrained`) and done.json;
- checkpoints/<run>/: the Trainer's checkpoints while a run trains (removed when done);
- train.log: one line per epoch and per finished run.

Finished runs are never retrained; an interrupted run resumes from its newest complete
checkpoint. run.json records every option that changes a result: a rerun with other options is
refused, naming them. One writer at a time (`rundir.FolderLock`); a non-empty folder without
run.json is refused untouched. Every bad input is named at once before any work (exit 2).
The options are one validated `settings.RunSettings`.
"""

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from . import results, rundir, trainlog
from .collator import LumaCollator, featurize_dataset
from .inputs import MODES
from .methods.de import ENSEMBLE_TRAINING
from .methods.runner import Ranks, is_main_process
from .settings import (MEMORY_FORMATS, NOT_RECORDED, PRECISIONS, RUN_MODALITIES, STOP_PATIENCE,  # noqa: F401
                       VAL_MC_SAMPLES_FIXED, RunSettings, SettingsError, bf16_cpu_supported, needed_modalities,
                       text_model_problems, parse_method_option, plan_runs, run_name, run_record, validation_passes)

# Options of `train` and `sweep` (the RunSettings fields that are command-line options) and their defaults.
RUN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunSettings)
                if f.name not in ("seeds", "max_steps", "patience", "method_options")}
RUN_DEFAULTS["method_options"] = {}


class _MethodOptions(argparse.Action):
    """--method-option METHOD.NAME=VALUE, repeatable: {method: {name: value}}."""

    def __call__(self, parser, namespace, value, option_string=None):
        try:
            method, name, parsed = parse_method_option(value)
        except ValueError as err:
            parser.error(str(err))
        options = {k: dict(v) for k, v in (getattr(namespace, self.dest) or {}).items()}
        setattr(namespace, self.dest, {**options, method: {**options.get(method, {}), name: parsed}})


def add_run_options(group) -> None:
    """Add the run options (RUN_DEFAULTS) to an argparse parser or argument group."""
    from .methods.registry import BUILTIN, PAPER

    group.add_argument("--methods", nargs="+", default=list(PAPER), metavar="METHOD",
                       help=f"{', '.join(BUILTIN)}, all (every one of them) or package.module:Class "
                            f"(docs/methods.md); default: the paper's {' '.join(PAPER)}")
    group.add_argument("--modalities", nargs="+", default=list(RUN_MODALITIES), metavar="MODALITY",
                       help=f"{', '.join(RUN_MODALITIES)} (= all three fused) or a fused subset such as image+text; "
                            "a method runs on those it accepts (RCML and the fusion methods on two or more)")
    group.add_argument("--mode", choices=MODES, default=RUN_DEFAULTS["mode"])
    group.add_argument("--text-model", default=RUN_DEFAULTS["text_model"], metavar="ID_OR_PATH")
    for name in ("max_epochs", "ensemble_size", "mc_samples", "batch_size"):
        group.add_argument(f"--{name.replace('_', '-')}", type=int, default=RUN_DEFAULTS[name])
    group.add_argument("--ensemble-training", choices=ENSEMBLE_TRAINING, default=RUN_DEFAULTS["ensemble_training"])
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default=RUN_DEFAULTS["device"])
    group.add_argument("--val-mc-samples", type=int, default=None, metavar="T",
                       help=f"MC dropout passes of the validation loss every epoch (default: {VAL_MC_SAMPLES_FIXED} "
                            "in fixed mode, --mc-samples in faithful mode); the final evaluation uses --mc-samples")
    group.add_argument("--precision", choices=PRECISIONS, default=RUN_DEFAULTS["precision"],
                       help="bf16: training and validation under bfloat16 autocast (weights and the final "
                            "evaluation stay float32; docs/scaling.md); default fp32")
    group.add_argument("--memory-format", choices=MEMORY_FORMATS, default=RUN_DEFAULTS["memory_format"],
                       help="layout of the convolutions: channels_last (default; faster on this CPU, "
                            "docs/performance.md) or contiguous (the layout, and so the numbers, of runs made "
                            "before it was an option)")
    group.add_argument("--dataloader-workers", type=int, default=RUN_DEFAULTS["dataloader_workers"], metavar="N",
                       help="DataLoader worker processes of the Trainer (speed only; default 0: in-process)")
    group.add_argument("--method-option", dest="method_options", action=_MethodOptions, default={},
                       metavar="METHOD.NAME=VALUE",
                       help="a hyper-parameter of one method (its Config, docs/methods.md), VALUE as JSON, "
                            "e.g. tmc.anneal_epochs=20 or dbf.self_term=false; repeatable; recorded in run.json")


def add_parser(subparsers):
    """Register `train` on an argparse `subparsers`; returns its parser."""
    from ..set_option import parse_set

    p = subparsers.add_parser("train", help="train and evaluate the baselines on one config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="LUMA config name, e.g. clean, sample_noise, label_noise_0.3")
    p.add_argument("--set", dest="fields", action="append", type=parse_set, default=[], metavar="FIELD=VALUE",
                   help="LumaConfig field, value as JSON (plain text if not JSON); repeatable")
    p.add_argument("--mirror", help="local folder or http(s) URL of an upstream mirror")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--cache-dir", help="datasets cache (default: the datasets default)")
    p.add_argument("--streaming", action="store_true",
                   help="read the config as a stream (nothing prepared on disk; model inputs computed per batch)")
    add_run_options(p)
    return p


def run(args) -> int:
    """Entry point of `train`: 0 when every run finished, 2 (and the problems on stderr) for bad inputs."""
    try:
        finished = run_training(
            args.config, args.output_dir, fields=dict(args.fields), mirror=args.mirror, seeds=args.seeds,
            cache_dir=args.cache_dir, streaming=args.streaming, **{name: getattr(args, name) for name in RUN_DEFAULTS})
    except ValueError as err:
        print(f"train: {err}", file=sys.stderr)
        return 2
    print(summary(finished, args.output_dir))
    return 0


def summary(finished: dict, output_dir) -> str:
    """A table of the finished runs, for the terminal."""
    lines = [f"{len(finished['results'])} runs of {finished['config']} ({finished['mode']}) in "
             f"{output_dir}/results.json",
             f"{'run':<28} {'acc':>6} {'ale':>6} {'epi':>6} {'auroc':>6} {'ece':>6} {'epochs':>6}"]
    for r in finished["results"]:
        ale, epi = (f"{r[k]:6.3f}" if r.get(k) is not None else f"{'-':>6}" for k in ("aleatoric", "epistemic"))
        lines.append(f"{r['method'] + '-' + r['modality'] + '-seed' + str(r['seed']):<28} {r['accuracy']:6.3f} "
                     f"{ale} {epi} {r['ood_auroc']:6.3f} {r['ece']:6.3f} "
                     f"{r.get('epochs', 0):6d}")
    return "\n".join(lines)


def run_training(config_name: str, output_dir, *, fields=None, mirror=None, cache_dir=None, progress=None,
                 streaming: bool = False, **options) -> dict:
    """Train and evaluate every (method, modality, seed) of one config; returns results.json's content.

    fields: LumaConfig fields ({name: value}); mirror: upstream mirror; cache_dir: datasets cache;
    streaming: read the config as a stream; options: the `settings.RunSettings` fields (methods,
    modalities, seeds, mode, max_epochs, ...), validated at once with the config and the folder.
    progress(event) gets {"run", "epoch", "max_epochs", "loss", "eval_loss", "eval_accuracy",
    "best_loss", "learning_rate", "seconds_per_epoch"} every epoch and {"finished": run} per
    finished run (default: lines printed); everything also goes to output_dir/train.log.
    Finished runs in output_dir are kept, an interrupted run resumes.
    """
    output_dir, fields = Path(output_dir), dict(fields or {})
    record, problems, settings = _checked(config_name, output_dir, fields, mirror, cache_dir, options)
    if problems:
        raise ValueError("\n".join(problems))
    runs = settings.plan()
    header = {"config": config_name, "fields": record["fields"], "mode": settings.mode}
    main, ranks = is_main_process(), Ranks(cpu=record["device"] == "cpu")
    # under torchrun only rank 0 writes, so only it takes the folder's lock (the others only read)
    with rundir.FolderLock(output_dir) if main else contextlib.nullcontext():
        if main:
            trainlog.claim_output_dir(output_dir, record)
        say = trainlog.reporter(output_dir, progress) if main else (lambda event: None)
        if main:
            trainlog.remove_leftovers(output_dir, say)
        with ranks.main_first():  # rank 0 builds the caches, then the others read them
            collator, data = prepare_inputs(config_name, fields, mirror, cache_dir, settings.mode,
                                            settings.text_model, runs, streaming)
        if settings.mode == "faithful" and "audio" in needed_modalities(runs):  # defect 7: clips it cannot batch
            from .inputs import long_clips

            dataset = _load(config_name, fields, mirror, cache_dir)
            header["faithful_audio"] = long_clips({s: dataset[s] for s in ("train", "test", "ood")})
        from .methods.runner import Job, train_run

        job = Job(output_dir, data, collator, say, settings)
        for method, modality, seed in runs:
            name = run_name(method, modality, seed)
            if not (output_dir / results.MODELS / name / results.DONE).exists():
                train_run(name, method, modality, seed, job)
            say({"finished": name})
        written = results.write_results(output_dir, header, [run_name(*r) for r in runs]) if main else None
        ranks.wait()
        return written if main else rundir.read_json(output_dir / results.RESULTS)


def prepare_inputs(config_name, fields, mirror, cache_dir, mode, text_model, runs, streaming: bool = False) -> tuple:
    """(collator, {split: featurised Dataset}) of one config for the planned runs: the dataset is
    built (or read from the datasets cache) and its model inputs computed once and cached on disk
    (`featurize_dataset`), so a later call with the same arguments only reads them (the Ray
    sweep calls this before its tasks start). streaming: the splits as streams, featurised per batch
    (the training split is then materialised for the seeded 80/20 split; test and ood stay streams)."""
    load = _stream if streaming else _load
    dataset = load(config_name, fields, mirror, cache_dir)
    needed = needed_modalities(runs)
    collator = LumaCollator(text_model=text_model if "text" in needed else None, mode=mode, modalities=needed)
    data = {split: featurize_dataset(dataset[split], collator) for split in ("train", "test", "ood")}
    if streaming:
        data["train"] = _materialised(data["train"])
    return collator, data


def _stream(config_name, fields, mirror, cache_dir):
    """The config's splits as streams (`load_dataset(..., streaming=True)`: nothing prepared on disk)."""
    import luma_noise

    extra = {"mirror": mirror} if mirror else {}
    return luma_noise.load(config_name, streaming=True, cache_dir=cache_dir, **fields, **extra)


def _materialised(stream):
    """A streamed split as an in-memory Dataset (the train/validation split needs random access)."""
    import datasets

    rows = list(stream)
    return datasets.Dataset.from_list(rows, features=stream.features)


def check_run(config_name: str, output_dir, *, fields=None, mirror=None, cache_dir=None, **options) -> tuple:
    """(run.json record or None, [problems]) of a `run_training` call, without loading any data.

    options: the RunSettings fields (missing ones take their defaults). Problems name every bad
    setting, config field, text model and output folder at once; `sweep` uses this to check every
    run before the first one starts."""
    record, problems, _ = _checked(config_name, Path(output_dir), dict(fields or {}), mirror, cache_dir, options)
    return record, problems


def _checked(config_name, output_dir: Path, fields, mirror, cache_dir, options) -> tuple:
    """(record, problems, RunSettings or None): every problem of the settings, the config's fields,
    the text model and the output folder."""
    settings, problems = None, []
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(RunSettings)})
    if unknown:
        problems.append(f"unknown options {unknown}; accepted: {sorted(f.name for f in dataclasses.fields(RunSettings))}")
    try:
        settings = RunSettings(**{k: v for k, v in options.items() if k not in unknown})
    except SettingsError as err:
        problems += err.problems
    differing = None
    try:
        differing = _differing_fields(config_name, fields, mirror, cache_dir)
    except (ValueError, TypeError) as err:
        problems.append(str(err))
    text_model = options.get("text_model", RunSettings.text_model)
    problems += text_model_problems(text_model, _reads_text(settings, options))
    if settings is None:  # the record is not known: the folder is checked, its run.json not compared
        return None, problems + rundir.output_problems(output_dir, None), None
    local = Path(settings.text_model).expanduser()
    digest = rundir.model_folder_digest(local) if local.is_dir() else None
    record = run_record(config_name, differing or {}, settings, digest)
    # with bad fields the record is not known, so run.json is not compared (the fields are named already)
    problems += rundir.output_problems(output_dir, record if differing is not None else None)
    return record, problems, settings


def _reads_text(settings, options) -> bool:
    """Whether the planned runs read text (with bad settings: unless the modalities surely do not)."""
    if settings is not None:
        return "text" in needed_modalities(settings.plan())
    modalities = options.get("modalities", RunSettings.modalities)
    return not isinstance(modalities, (list, tuple)) or any("text" in m or m == "multimodal" for m in modalities)


def _differing_fields(config_name, fields, mirror, cache_dir) -> dict:
    """{field: value} of the chosen config differing from the named config's defaults (JSON values),
    every LUMA field but the mirror (recorded on its own); ValueError or TypeError for a bad name
    or value. Loads no data."""
    from luma_noise.config_fields import NAMES
    from luma_noise.loader import builder_class

    extra = {"mirror": mirror} if mirror else {}
    chosen = builder_class()(config_name=config_name, cache_dir=cache_dir, **fields, **extra).config
    default = builder_class()(config_name=config_name, cache_dir=cache_dir).config
    differing = {name: getattr(chosen, name) for name in NAMES
                 if name != "mirror" and getattr(chosen, name) != getattr(default, name)}
    return json.loads(json.dumps(differing, default=str))


def _load(config_name, fields, mirror, cache_dir):
    """The DatasetDict of the config (built or read from the cache)."""
    import luma_noise

    extra = {"mirror": mirror} if mirror else {}
    return luma_noise.load(config_name, cache_dir=cache_dir, **fields, **extra)
