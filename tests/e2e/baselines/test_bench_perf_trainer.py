"""Section 1 of benchmarks/bench_perf.py (the Trainer against bare loops) on a tiny split: a
smoke test of its wiring, not a timing."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))


def test_trainer_section_pairs_each_trainer_epoch_with_both_bare_loops(monkeypatch):
    import bench_perf

    runs, real = [], bench_perf._bare_loop

    def counted(*args):  # a bare loop whose epochs are counted
        epoch = real(*args)
        return lambda: runs.append(1) or epoch()

    monkeypatch.setattr(bench_perf, "_bare_loop", counted)
    r = bench_perf.trainer_vs_loop("mcd", "text", rows=48, batch_size=16, val_passes=2, epochs=3)
    assert len(runs) == 2 * 3  # each bare loop once after each of the Trainer's 3 epochs
    for name in ("bare", "bare_reading"):
        assert r[f"trainer_over_{name}_cpu"] > 0 and r[f"{name}_cpu_s"] > 0
    assert r["trainer_cpu_s"] > 0 and 0 < r["validation_share_cpu"] < 1


def test_trainer_section_runs_any_method_as_the_runner_does():
    """QMF on two fused modalities: the rows get the example index its history needs and the
    Trainer the annealing callback, as `methods.runner.fit` gives them."""
    import bench_perf

    r = bench_perf.trainer_vs_loop("qmf", "image+text", rows=48, batch_size=16, val_passes=2, epochs=2)
    assert r["run"] == "qmf-image+text" and r["trainer_over_bare_cpu"] > 0 and 0 < r["validation_share_cpu"] < 1


def test_trainer_section_times_the_trainer_of_train_and_on_request_the_stock_one(monkeypatch):
    """`train`'s LumaTrainer by default; `stock=True` (--stock-trainer) the stock transformers.Trainer."""
    import bench_perf
    import transformers

    from luma_noise.baselines.methods.trainer import LumaTrainer

    built, real = [], transformers.Trainer.train  # LumaTrainer.train calls it too
    monkeypatch.setattr(transformers.Trainer, "train", lambda self, *a, **k: built.append(type(self)) or real(
        self, *a, **k))
    for stock in (False, True):
        r = bench_perf.trainer_vs_loop("softmax", "text", rows=32, batch_size=16, val_passes=2, epochs=2, stock=stock)
        assert r["trainer"] == ("stock" if stock else "luma") and r["trainer_over_bare_cpu"] > 0
    assert built == [LumaTrainer, transformers.Trainer]
