"""One epoch of the paper's nine-model protocol at the real row counts, through `train`'s own path:

    python benchmarks/bench_epoch.py [--runs mcd-image de-audio ...] [--val-mc-samples N] [--device cuda]
                                     [--json epoch.json]

Each run of the default plan (MC dropout and the deep ensemble on image, audio, text and the three
fused; RCML fused) is trained for one epoch by `methods.runner.fit`, the function `train` calls:
`methods.trainer.LumaTrainer` with `train`'s arguments, the per-epoch validation with its measures
on the 20 % split, the checkpoint. The rows are random inputs of the real shapes, 16,800 of them (13,440 to
train, 3,360 to validate, as `train_run` splits LUMA's training split), stored and read as
`featurize_dataset` stores them. Prints, per run, the training and validation seconds (wall and
CPU) and the validation's share of the epoch, with the time left; then the totals. No final
evaluation (that is once per run, not per epoch: docs/methods.md#cost). The libraries the
validation's measures import (torchmetrics, about a second) are imported before the timed runs.

`--val-mc-samples 100 --prefix-per-pass --memory-format contiguous` validates and trains as `train`
did before issue 19: 100 MC-dropout passes every epoch, each computing its trunks whole, the
convolutions contiguous.
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 16_800  # LUMA's training split: 42 classes x 400 (docs/performance.md)
# relative cost of one epoch, for the time left: seconds measured on the 2-core CPU, channels-last
# (docs/performance.md)
WEIGHT = {"mcd-text": 4, "mcd-image": 11, "de-text": 15, "de-image": 82, "rcml-multimodal": 191,
          "mcd-audio": 235, "mcd-multimodal": 254, "de-audio": 2116, "de-multimodal": 1738}


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    return tuple(b - a for a, b in zip(start, _clock()))


def random_rows(rows: int, modalities, text_dim: int = 768, seed: int = 0):
    """`rows` random rows holding the inputs of `modalities`, as `featurize_dataset` stores and reads them."""
    import datasets
    import pyarrow as pa

    from luma_noise.baselines import collator

    rng = np.random.default_rng(seed)
    features = datasets.Features({"label": datasets.Value("int64"), **collator._input_features(modalities, text_dim)})
    columns = {"label": pa.array(rng.integers(0, 42, rows))}
    for name, feature in features.items():
        if name != "label":
            flat = pa.array(rng.standard_normal(rows * feature.length, dtype=np.float32))
            columns[name] = pa.FixedSizeListArray.from_arrays(flat, feature.length)
    table = datasets.table.InMemoryTable(pa.table(columns))
    dataset = datasets.Dataset(table, info=datasets.DatasetInfo(features=features))
    return collator.input_format(dataset, modalities)


class ValidationClock:
    """Times every `Trainer.evaluate` call (the per-epoch validation) while installed."""

    def __init__(self):
        import transformers

        self.trainer, self.seconds = transformers.Trainer, []
        self.original = self.trainer.evaluate

    def __enter__(self):
        def timed(trainer, *args, **kwargs):
            start = _clock()
            try:
                return self.original(trainer, *args, **kwargs)
            finally:
                self.seconds.append(_since(start))

        self.trainer.evaluate = timed
        return self

    def __exit__(self, *exc):
        self.trainer.evaluate = self.original


def prefix_per_pass():
    """MC dropout computes each trunk whole in every pass, as before issue 19: the layers before the
    first dropout are then an empty prefix (the same masks are drawn: only where the work is done moves)."""
    from unittest import mock

    from luma_noise.baselines.networks import Branch

    return mock.patch.object(Branch, "cut", property(lambda branch: 0))


def import_measures() -> float:
    """Import what the first validation's measures import (torchmetrics, scikit-learn), once per
    process and not per epoch, before the timed runs; its seconds."""
    from luma_noise.baselines.methods.evaluation import measures

    start = time.perf_counter()
    measures({"probs": np.full((4, 2), 0.5), "labels": np.array([0, 1, 0, 1])})
    return time.perf_counter() - start


def one_epoch(method, modality, seed, data, job) -> dict:
    """Train one run of the plan for one epoch through `runner.fit`; its seconds."""
    from luma_noise.baselines.methods.runner import fit, model_config
    from luma_noise.baselines.settings import run_name

    split = data.train_test_split(test_size=0.2, seed=seed)
    config = model_config(method, modality, seed, split["train"], job)
    with ValidationClock() as validation:
        start = _clock()
        fit(run_name(method, modality, seed), config, seed, split, job)
        wall, cpu = _since(start)
    val_wall, val_cpu = map(sum, zip(*validation.seconds))
    return {"run": f"{method}-{modality}", "rows": len(split["train"]), "validation_rows": len(split["test"]),
            "epoch_s": wall, "epoch_cpu_s": cpu, "validation_s": val_wall, "validation_cpu_s": val_cpu,
            "training_s": wall - val_wall, "validation_share": val_wall / wall}


def main(argv=None) -> int:
    from luma_noise.baselines.settings import MEMORY_FORMATS, RunSettings, modalities_of

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", metavar="METHOD-MODALITY", help="a subset of the plan (default: all nine)")
    parser.add_argument("--val-mc-samples", type=int, help="MC dropout passes of the validation (default: train's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--memory-format", default=RunSettings.memory_format, choices=MEMORY_FORMATS,
                        help="the convolutions' layout (train's --memory-format; contiguous: as before it existed)")
    parser.add_argument("--prefix-per-pass", action="store_true",
                        help="MC dropout recomputes the layers before the first dropout in every pass "
                             "(as before issue 19)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows before the 80/20 split (default: LUMA's)")
    parser.add_argument("--json", help="write the rows and totals here")
    args = parser.parse_args(argv)

    import torch

    from luma_noise.baselines.collator import ALL_MODALITIES, LumaCollator
    from luma_noise.baselines.methods.runner import Job

    settings = RunSettings(max_epochs=1, device=args.device, val_mc_samples=args.val_mc_samples, seeds=(0,),
                           memory_format=args.memory_format)
    names = {f"{method}-{modality}": (method, modality, seed) for method, modality, seed in settings.plan()}
    unknown = sorted(set(args.runs or ()) - set(names))
    if unknown:
        parser.error(f"unknown runs {unknown}; the plan's: {sorted(names)}")
    plan = sorted(args.runs or names, key=lambda name: WEIGHT.get(name, 100))  # the quick ones first
    print(f"importing the measures' libraries (once per process, not timed): {import_measures():.1f} s", flush=True)
    print(f"{len(plan)} runs, one epoch each, {args.rows} rows (torch threads: {torch.get_num_threads()}, "
          f"MC dropout validation passes: {settings.validation_passes}, prefix "
          f"{'in every pass' if args.prefix_per_pass else 'once'}, {settings.memory_format}); building the rows ...",
          flush=True)
    used = {m for name in plan for m in modalities_of(names[name][1])}
    data = random_rows(args.rows, [m for m in ALL_MODALITIES if m in used])
    rows, started = [], time.perf_counter()
    as_before = prefix_per_pass() if args.prefix_per_pass else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as folder, as_before:
        job = Job(output_dir=Path(folder), data={"train": data}, settings=settings, say=lambda event: None,
                  collator=LumaCollator(text_model="unused: the rows hold embeddings"))
        for i, name in enumerate(plan):
            r = one_epoch(*names[name], data, job)
            rows.append(r)
            done = sum(WEIGHT.get(x["run"], 100) for x in rows)
            left = sum(WEIGHT.get(n, 100) for n in plan[i + 1:])
            elapsed = time.perf_counter() - started
            print(f"  {r['run']:<16} epoch {r['epoch_s']:8.1f} s (CPU {r['epoch_cpu_s']:8.1f}): training "
                  f"{r['training_s']:8.1f} s, validation {r['validation_s']:7.1f} s = "
                  f"{100 * r['validation_share']:4.1f} %   [{elapsed / 60:.0f} min, about "
                  f"{elapsed / done * left / 60:.0f} min left]", flush=True)
    total = {k: sum(r[k] for r in rows) for k in ("epoch_s", "epoch_cpu_s", "training_s", "validation_s")}
    total["validation_share"] = total["validation_s"] / total["epoch_s"]
    print(f"one epoch of {len(rows)} runs: {total['epoch_s']:.0f} s ({total['epoch_s'] / 3600:.2f} h; CPU "
          f"{total['epoch_cpu_s']:.0f} s), of which validation {total['validation_s']:.0f} s = "
          f"{100 * total['validation_share']:.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "total": total,
                                               "val_mc_samples": settings.validation_passes,
                                               "prefix_per_pass": args.prefix_per_pass,
                                               "memory_format": settings.memory_format}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
