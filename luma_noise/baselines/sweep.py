"""`sweep`: the paper's experiment in one command, every config and seed through `train`.

    python -m luma_noise.baselines sweep --output-dir runs/ [--configs clean low_diversity ...]
           [--seeds 42 43 44] [--set FIELD=VALUE ...] [--mirror M] [train options]

Each (config, seed) is one `run_training` call into `runs/<folder>/seed-<n>/` (folder: the
config name, or `sample_noise-image` for `sample_noise:image`, see `runs.parse_variant`). Runs
go seed by seed (every config for the first seed, then the next), so a partial sweep already
gives a one-seed report. All runs share one datasets cache, so each config is prepared once and
its text embeddings computed once. A run with `sweep.json` (written when it finished, with the
options it ran with) is skipped; one without is resumed by `run_training`, which does not
retrain the models it already finished. Every run is checked before the first starts (an
interrupted run's run.json must record the options asked for); one sweep at a time holds the
root folder (`rundir.FolderLock`). One progress bar covers the whole sweep.
"""

import contextlib
import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from . import executors, rundir
from .runs import parse_variant

DEFAULT_CONFIGS = ("clean", "low_diversity", "sample_noise", "label_noise_0.1", "label_noise_0.2",
                   "label_noise_0.3", "label_noise_0.4", "label_noise_0.5", "conflict")
DONE = "sweep.json"


def add_parser(subparsers):
    """Register `sweep` on an argparse subparsers object (used by `luma baselines` too)."""
    from ..set_option import parse_set
    from .train import add_run_options

    parser = subparsers.add_parser("sweep", help="train every config and seed into runs/<config>/seed-<n>/",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True, help="root folder of the runs")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), metavar="CONFIG[:MODALITY]",
                        help="named configs; sample_noise:image (or image+audio) noises only those modalities")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44], help="training seeds, one run each")
    parser.add_argument("--set", dest="fields", action="append", type=parse_set, default=[], metavar="FIELD=VALUE",
                        help="LUMA config field for every run (VALUE as JSON, else a string); overrides a :MODALITY")
    parser.add_argument("--mirror", help="local folder or http(s) URL of a LUMA mirror")
    parser.add_argument("--cache-dir", help="datasets cache shared by every run (default: the datasets default)")
    parser.add_argument("--withhold", nargs="+", default=[], metavar="MODALITY[+MODALITY]",
                        help="then evaluate every fused model with these views withheld (as `evaluate --withhold`)")
    add_run_options(parser.add_argument_group("train options (passed to every run)"))
    executors.add_options(parser.add_argument_group("executor (docs/scaling.md)"))
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from .train import RUN_DEFAULTS

    train = {k: getattr(args, k) for k in RUN_DEFAULTS}
    try:
        if args.withhold:  # bad views named before anything trains
            from .withhold import parse
            problems = []
            for spec in args.withhold:
                try:
                    parse(spec)
                except ValueError as err:
                    problems.append(str(err))
            if problems:
                raise ValueError("\n".join(problems))
        summary = run_sweep(args.output_dir, args.configs, args.seeds, dict(args.fields), mirror=args.mirror,
                            cache_dir=args.cache_dir, **executors.options_of(args), **train)
    except ValueError as err:
        print(f"sweep: {err}", file=sys.stderr)
        return 2
    if args.withhold:  # every run folder of the sweep, its finished evaluations skipped
        from .evaluations import evaluate_runs

        try:
            folders = [str(d) for _, _, d in plan(args.output_dir, args.configs, args.seeds, dict(args.fields))]
            evaluate_runs(folders, withhold=args.withhold, mirror=args.mirror, cache_dir=args.cache_dir,
                          batch_size=args.batch_size, device=None if args.device == "auto" else args.device)
        except ValueError as err:
            print(f"sweep: {err}", file=sys.stderr)
            return 2
    minutes = summary["seconds"] / 60
    print(f"sweep: {summary['runs']} runs ({summary['skipped']} already finished, {summary['trained']} trained) "
          f"in {minutes:.1f} min under {args.output_dir}\n"
          f"next: python -m luma_noise.baselines report {args.output_dir} --output-dir report/")
    return 0


def plan(output_dir, configs, seeds, fields=None) -> list:
    """[(config, run fields, run folder)] in run order; ValueError naming every bad config or field."""
    from ..builder import LumaConfig
    from ..options import check_field_names
    from ..variant import Variant

    problems, variants = [], []
    for spec in configs:
        try:
            variants.append(parse_variant(spec))
        except ValueError as err:
            problems.append(str(err))
    try:
        check_field_names(LumaConfig, fields or {})
    except ValueError as err:
        problems.append(f"--set: {err}")
    if len(set(seeds)) != len(seeds):
        problems.append(f"--seeds must be distinct, got {list(seeds)}")
    if problems:
        raise ValueError("\n".join(problems))
    if len({folder for _, _, folder in variants}) != len(variants):
        raise ValueError(f"a config is named twice in {list(configs)}")
    for config, own, _ in variants:  # every value checked before the first run starts, text noise parameters too
        problems += [f"{config}: {problem}" for problem in Variant(config, {**own, **(fields or {})}).errors()]
    if problems:
        raise ValueError("\n".join(problems))
    return [(config, {**own, **(fields or {})}, Path(output_dir) / folder / f"seed-{seed}")
            for seed in seeds for config, own, folder in variants]


def _record(config, fields, seed, mirror, train) -> dict:
    """What a finished run ran with, as stored in its sweep.json (JSON-normalised)."""
    from .settings import NOT_RECORDED, implicit_before

    # as run.json: sweep.json files written before an option existed stay valid
    kept = {k: v for k, v in train.items() if k not in NOT_RECORDED and not implicit_before(k, v)}
    return json.loads(json.dumps({"config": config, "fields": fields, "seed": seed, "mirror": mirror, **kept}))


def _finished(run_dir: Path, record: dict) -> bool:
    """True if run_dir finished with these options; ValueError if it finished with others."""
    done = run_dir / DONE
    if not done.is_file():
        return False
    before = rundir.read_json(done)
    if before != record:
        differ = sorted(k for k in set(before) | set(record) if before.get(k) != record.get(k))
        raise ValueError(f"{run_dir} finished with other options ({', '.join(differ)} differ); "
                         f"use another --output-dir or remove that folder")
    return True


def models_per_run(methods, modalities) -> int:
    """Models one run trains: each method on each modality it accepts (`train.plan_runs`)."""
    from .train import plan_runs

    return len(plan_runs(methods, modalities, [0]))


@contextlib.contextmanager
def _only_our_bar(quiet: bool):
    """Hide the per-map and per-checkpoint bars of datasets and transformers while the sweep's own
    bar runs (restored afterwards), so the whole sweep shows one progress display."""
    import datasets.utils.logging as datasets_logging
    import transformers.utils.logging as transformers_logging

    before = (datasets_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled())
    if quiet:
        datasets_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before[0]:
            datasets_logging.enable_progress_bar()
        if before[1]:
            transformers_logging.enable_progress_bar()


class _Display:
    """The sweep's one progress bar: models done (a model in training counts by its epochs),
    the current run, model and epoch, time so far and tqdm's estimate of the rest (from this
    sweep's rate; runs finished earlier count as done, not in the rate)."""

    def __init__(self, runs: int, skipped: int, per_run: int, show: bool):
        self.runs, self.per_run, self.base, self.models, self.label = runs, per_run, 0, set(), ""
        self.bar = tqdm(total=runs * per_run, initial=skipped * per_run, unit="model", disable=not show,
                        desc=f"sweep {skipped}/{runs} runs",
                        bar_format="{desc} |{bar}| {n:.1f}/{total} models [{elapsed}<{remaining}]")
        self.done_runs = skipped

    def start_run(self, done_runs: int, label: str) -> None:
        self.base, self.models, self.label, self.done_runs = done_runs * self.per_run, set(), label, done_runs
        self.bar.set_description_str(f"sweep {done_runs}/{self.runs} runs, {label}", refresh=True)

    def __call__(self, event: dict) -> None:
        """A run_training progress event (see the contract)."""
        if "finished" in event:
            self.models.add(event["finished"])
            self.bar.n = self.base + min(len(self.models), self.per_run)
        elif "epoch" in event:
            fraction = min(1.0, event["epoch"] / max(1, event.get("max_epochs") or 1))
            self.bar.n = self.base + min(len(self.models) + fraction, self.per_run)
            self.bar.set_description_str(f"sweep {self.done_runs}/{self.runs} runs, {self.label} {event.get('run', '')} "
                                         f"epoch {event['epoch']}/{event.get('max_epochs')}", refresh=False)
        self.bar.refresh()

    def end_run(self, done_runs: int) -> None:
        self.bar.n = done_runs * self.per_run
        self.bar.set_description_str(f"sweep {done_runs}/{self.runs} runs")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_sweep(output_dir, configs=DEFAULT_CONFIGS, seeds=(42, 43, 44), fields=None, *, mirror=None,
              cache_dir=None, on_event=None, show_progress=True, executor="sequential", ray_address=None,
              cpus_per_run=1.0, gpus_per_run=0.0, ray_init=None, **train) -> dict:
    """Train every (config, seed) not finished yet; returns {"runs", "skipped", "trained", "seconds"}.

    `train`: run_training keywords (`train.RUN_DEFAULTS`). `on_event(event)` sees every progress
    event of run_training after the display (an exception from it stops the sweep: the run
    stays unfinished and the next sweep resumes it). executor: "sequential" or "ray" (then
    ray_address, cpus_per_run, gpus_per_run, ray_init: see `executors.run_ray`; on_event runs in
    the task's worker there).
    """
    from .train import RUN_DEFAULTS

    train = {**RUN_DEFAULTS, **train}
    problems = executors.check(executor, train["device"], cpus_per_run, gpus_per_run)
    if problems:  # Ray missing: said at once, before any planning or data
        raise ValueError("\n".join(problems))
    todo = plan(output_dir, configs, seeds, fields)
    seed_of = [int(run_dir.name.split("-", 1)[1]) for _, _, run_dir in todo]
    finished = [_finished(d, _record(c, f, s, mirror, train)) for (c, f, d), s in zip(todo, seed_of)]
    _check_unfinished(todo, seed_of, finished, mirror, cache_dir, train)
    with rundir.FolderLock(output_dir):
        if executor == "ray":
            start, skipped = time.monotonic(), sum(finished)
            trained = executors.run_ray(todo, seed_of, finished, mirror, cache_dir, train, run_one=run_one,
                                        ray_address=ray_address,
                                        cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, on_event=on_event,
                                        show_progress=show_progress, ray_init=ray_init)
            return {"runs": len(todo), "skipped": skipped, "trained": trained, "seconds": time.monotonic() - start}
        return _sweep(todo, seed_of, finished, mirror, cache_dir, on_event, show_progress, train)


def _check_unfinished(todo, seed_of, finished, mirror, cache_dir, train) -> None:
    """ValueError naming every problem of the runs still to do (an interrupted run's run.json
    recording other options included), before the first one starts."""
    from .train import check_run

    problems = []
    for (config, run_fields, run_dir), seed, done in zip(todo, seed_of, finished):
        if not done:
            problems += check_run(config, run_dir, fields=run_fields, mirror=mirror, seeds=(seed,),
                                  cache_dir=cache_dir, **train)[1]
    if problems:
        raise ValueError("\n".join(dict.fromkeys(problems)))


def run_one(config, run_fields, run_dir, seed, mirror, cache_dir, train, progress=None) -> str:
    """Train (or resume) one run of the sweep and mark it finished (sweep.json); returns run_dir.
    The per-run step of every executor (the Ray executor runs it as a task)."""
    from .train import run_training  # the train command's entry point (contract)

    run_training(config, str(run_dir), fields=run_fields, mirror=mirror, seeds=(seed,), progress=progress,
                 cache_dir=cache_dir, **train)
    rundir.write_json(Path(run_dir) / DONE, _record(config, run_fields, seed, mirror, train))
    return str(run_dir)


def _sweep(todo, seed_of, finished, mirror, cache_dir, on_event, show_progress, train) -> dict:
    """run_sweep's loop over the checked runs (under the root folder's lock)."""
    start, skipped = time.monotonic(), sum(finished)
    display = _Display(len(todo), skipped, max(1, models_per_run(train["methods"], train["modalities"])), show_progress)
    with _only_our_bar(show_progress), contextlib.closing(display):
        for index, (config, run_fields, run_dir) in enumerate(todo):
            if finished[index]:
                continue
            display.start_run(sum(finished), f"{run_dir.parent.name}/{run_dir.name}")

            def progress(event):
                display(event)
                if on_event is not None:
                    on_event(event)

            run_one(config, run_fields, run_dir, seed_of[index], mirror, cache_dir, train, progress)
            finished[index] = True
            display.end_run(sum(finished))
    return {"runs": len(todo), "skipped": skipped, "trained": sum(finished) - skipped,
            "seconds": time.monotonic() - start}
