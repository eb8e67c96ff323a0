"""`sweep --executor ray`: the runs as Ray tasks on a local 2-CPU Ray (fixture mirror, tiny
models, one epoch) give the sequential sweep's results.json; a worker killed mid-run has its
task retried and its run resumed; a second call skips everything; without Ray the command
fails at once saying what to install."""

import argparse
import json
import os

import pytest

from luma_noise.baselines import executors, sweep

OPTIONS = dict(methods=("mcd", "de"), modalities=("image",), max_epochs=1, ensemble_size=2, mc_samples=2,
               batch_size=32, device="cpu", show_progress=False)
CONFIGS, SEEDS = ["clean", "conflict"], [42]


@pytest.fixture(scope="module")
def local_ray():
    """Ray's local cluster with 2 CPUs, for this module, on the loopback address only (Ray's switch
    for that is named after Windows and macOS, where it is the default), no usage report."""
    os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'luma_noise[ray]' to run these tests")
    from ray._private import ray_constants, services

    ray_constants.ENABLE_RAY_CLUSTER = False  # if ray was imported before the variable was set
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    assert services.get_node_ip_address() == "127.0.0.1"
    yield ray
    ray.shutdown()


def _kill_once(marker, log):
    """on_event for the tasks: log every event; kill the worker process (as SIGKILL would) right
    after the first model of the sweep finished, once, writing its pid to `marker`."""
    def on_event(event):
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), **event}) + "\n")
        if "finished" in event:
            try:  # created atomically: one worker only, which writes its pid there
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)
    return on_event


def _results(root):
    return {str(p.relative_to(root)): json.loads(p.read_text())["results"] for p in sorted(root.glob("*/*/results.json"))}


def test_ray_sweep_equals_sequential_survives_a_killed_worker_and_skips_finished(tmp_path, mirror, local_ray):
    common = dict(mirror=str(mirror[0]), cache_dir=str(tmp_path / "cache"), **OPTIONS)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray task with 1 CPU: CPU kernels sum in an order that depends on it
    try:
        sequential = sweep.run_sweep(tmp_path / "seq", CONFIGS, SEEDS, **common)
    finally:
        torch.set_num_threads(threads)
    assert sequential["trained"] == 2
    marker, log = tmp_path / "killed", tmp_path / "events.jsonl"
    summary = sweep.run_sweep(tmp_path / "ray", CONFIGS, SEEDS, executor="ray", on_event=_kill_once(marker, log),
                              **common)
    assert marker.exists() and summary == {**summary, "runs": 2, "skipped": 0, "trained": 2}
    events = [json.loads(line) for line in log.read_text().splitlines()]
    killed = int(marker.read_text())
    last = max(i for i, e in enumerate(events) if e["pid"] == killed)
    # the killed worker says nothing after its "finished"; its task's retry runs in another process:
    # a new worker, or the other task's worker if that one was idle by then (Ray reuses it)
    assert "finished" in events[last]
    assert sum(e.get("finished") == "mcd-image-seed42" for e in events) == 3  # the retry says it again
    assert len({e["pid"] for e in events}) in (2, 3)
    # the model finished before the kill is not trained again by the retried task: one epoch line per model
    logs = [(p.parent, p.read_text()) for p in (tmp_path / "ray").glob("*/*/train.log")]
    for folder, text in logs:
        assert text.count("] epoch 1/1") == 2 and text.count("mcd-image-seed42] epoch") == 1, folder
    assert sum(text.count("mcd-image-seed42] finished") for _, text in logs) == 3  # said again by the retry
    # bit-identical: the same seeds and the same number of torch threads (Ray gives a task cpus_per_run)
    assert _results(tmp_path / "ray") == _results(tmp_path / "seq") and len(_results(tmp_path / "seq")) == 2
    assert all(json.loads(p.read_text())["seed"] == 42 for p in (tmp_path / "ray").glob("*/*/sweep.json"))
    again = sweep.run_sweep(tmp_path / "ray", CONFIGS, SEEDS, executor="ray", **common)
    assert (again["skipped"], again["trained"]) == (2, 0)


def test_without_ray_the_command_fails_at_once_naming_the_extra(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers())
    args = parser.parse_args(["sweep", "--output-dir", str(tmp_path / "runs"), "--executor", "ray",
                              "--gpus-per-run", "1.5", "--device", "cuda"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "pip install 'luma_noise[ray]'" in err and "--gpus-per-run must be" in err
    assert not (tmp_path / "runs").exists()  # nothing planned, prepared or written


def test_executor_options_reach_run_sweep(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: seen.update(k) or {"runs": 0, "skipped": 0,
                                                                                "trained": 0, "seconds": 0})
    parser = argparse.ArgumentParser()
    sweep.add_parser(parser.add_subparsers())
    args = parser.parse_args(["sweep", "--output-dir", str(tmp_path), "--executor", "ray", "--ray-address",
                              "127.0.0.1:6379", "--cpus-per-run", "2", "--gpus-per-run", "0.25"])
    assert args.func(args) == 0
    assert {k: seen[k] for k in ("executor", "ray_address", "cpus_per_run", "gpus_per_run")} == {
        "executor": "ray", "ray_address": "127.0.0.1:6379", "cpus_per_run": 2.0, "gpus_per_run": 0.25}
    assert executors.check("sequential", "cuda") == []
