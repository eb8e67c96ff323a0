"""How `sweep` runs its runs: one after the other in this process (the default), or as Ray tasks.

    python -m luma_noise.baselines sweep --output-dir runs/ --executor ray [--ray-address HOST:PORT]
           [--cpus-per-run 1] [--gpus-per-run 0.25]

The Ray executor (`pip install 'luma_noise[ray]'`) starts Ray's embedded one-machine cluster
(`ray.init()`: every core and GPU of this machine) or joins a running cluster (`--ray-address`),
prepares every config's dataset and model inputs once in this process (into the shared datasets
cache), then runs each unfinished (config, seed) as one task running `sweep.run_one`, the
sequential sweep's own per-run step: the same `run_training` call, the same run folder, lock and
run.json, so finished runs are skipped and interrupted ones resumed exactly as sequentially, and
the results are the same for the same seeds. Each task asks Ray for `cpus_per_run` CPUs and
`gpus_per_run` of a GPU (a fraction lets several small models share one device). A task whose
worker process dies is retried (`max_retries`); it resumes its run from its newest complete
checkpoint. A run that raises an error is not retried: the error is raised here and the tasks
not started yet are cancelled.

On a cluster, `--output-dir` and `--cache-dir` must be folders every node sees at the same path
(a shared file system), since the tasks write their runs and read the prepared caches there.
"""

import os

EXECUTORS = ("sequential", "ray")
# Ray's default task retries on a worker's death; a run resumes from its checkpoints each time.
MAX_RETRIES = 3


def add_options(parser) -> None:
    """The executor options of `sweep` (an argparse parser or argument group)."""
    parser.add_argument("--executor", choices=EXECUTORS, default="sequential",
                        help="sequential (default): runs one after the other in this process; ray: runs as Ray "
                             "tasks (pip install 'luma_noise[ray]')")
    parser.add_argument("--ray-address", metavar="HOST:PORT",
                        help="join this Ray cluster (default: start a local one on this machine)")
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs a Ray task asks for (default 1)")
    parser.add_argument("--gpus-per-run", type=float, default=0.0,
                        help="GPUs a Ray task asks for, e.g. 0.25 = four runs share a GPU (default 0: CPU runs)")


def options_of(args) -> dict:
    """run_sweep's executor keywords from parsed command-line arguments."""
    return {"executor": args.executor, "ray_address": args.ray_address, "cpus_per_run": args.cpus_per_run,
            "gpus_per_run": args.gpus_per_run}


def check(executor: str, device: str, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0, **_) -> list:
    """Every problem of the executor options (Ray missing included), before anything starts."""
    if executor not in EXECUTORS:
        return [f"executor must be one of {EXECUTORS}, got {executor!r}"]
    if executor == "sequential":
        return []
    problems = []
    try:
        import ray  # noqa: F401
    except ImportError:
        problems.append("--executor ray needs Ray, which is not installed: pip install 'luma_noise[ray]' "
                        "(or pip install ray)")
    if not cpus_per_run > 0:
        problems.append(f"--cpus-per-run must be > 0, got {cpus_per_run!r}")
    if not 0 <= gpus_per_run <= 1 and not (gpus_per_run > 1 and float(gpus_per_run).is_integer()):
        problems.append(f"--gpus-per-run must be a fraction in [0, 1] or a whole number, got {gpus_per_run!r}")
    if device == "cuda" and gpus_per_run == 0:
        problems.append("--device cuda with --gpus-per-run 0: Ray hides the GPUs from tasks that ask for none; "
                        "give --gpus-per-run (e.g. 0.25)")
    if device == "auto" and gpus_per_run == 0 and _local_cuda():
        problems.append("--device auto on a machine with CUDA and --gpus-per-run 0: the runs would record cuda "
                        "but run on CPU; give --gpus-per-run (e.g. 0.25) or --device cpu")
    return problems


def _local_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_ray(todo, seed_of, finished, mirror, cache_dir, train, *, run_one, ray_address=None, cpus_per_run=1.0,
            gpus_per_run=0.0, on_event=None, show_progress=True, ray_init=None) -> int:
    """Run the unfinished runs of `todo` ([(config, fields, run folder)], as `sweep.plan`) as Ray
    tasks; returns how many were trained. `finished[i]` tells whether todo[i] is done already.
    run_one: the sweep's per-run step (`sweep.run_one`, passed in so that this module does not
    import `sweep`; Ray pickles it by reference).

    on_event(event) is called in the task's worker process (Ray pickles it) with run_training's
    progress events. ray_init: extra `ray.init` keywords (tests: num_cpus). Ray is shut down
    afterwards if this call started it.
    """
    import ray
    from tqdm.auto import tqdm

    pending = [i for i, done in enumerate(finished) if not done]
    if not pending:
        return 0
    _prepare_inputs([todo[i][:2] for i in pending], mirror, cache_dir, train)
    started = not ray.is_initialized()
    if started:
        # Ray reports usage statistics to its authors unless told not to; a user may opt in explicitly
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, **(ray_init or {}))
    try:
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RETRIES)(_task)
        refs = {task.remote(run_one, todo[i][0], todo[i][1], str(todo[i][2]), seed_of[i], mirror, cache_dir, train,
                            on_event): i for i in pending}
        with tqdm(total=len(todo), initial=len(todo) - len(pending), unit="run", disable=not show_progress,
                  desc="sweep (ray)") as bar:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                try:
                    ray.get(done[0])
                except BaseException:
                    for ref in waiting:
                        ray.cancel(ref)
                    raise
                finished[refs[done[0]]] = True
                bar.update(1)
    finally:
        if started:
            ray.shutdown()
    return len(pending)


def _task(run_one, config, run_fields, run_dir, seed, mirror, cache_dir, train, on_event):
    """One Ray task: `run_one` (`sweep.run_one`) in a worker process (torch's threads = the CPUs Ray gave it)."""
    def progress(event):
        if on_event is not None:
            on_event(event)

    return run_one(config, run_fields, run_dir, seed, mirror, cache_dir, train, progress)


def _prepare_inputs(runs, mirror, cache_dir, train) -> None:
    """Build every config's dataset and model inputs once, in this process, before the tasks start:
    the tasks then read them from the datasets cache instead of building the same one at once."""
    from .train import plan_runs, prepare_inputs

    planned = plan_runs(train["methods"], train["modalities"], [0])
    seen = set()
    for config, fields in runs:
        key = (config, repr(sorted(fields.items())))
        if key not in seen:
            seen.add(key)
            prepare_inputs(config, fields, mirror, cache_dir, train["mode"], train["text_model"], planned)
