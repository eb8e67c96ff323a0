"""Overheads of the training path, as ratios measured in one run (docs/scaling.md):

    python benchmarks/bench_perf.py [--runs mcd:image mcd:text de:image] [--rows 1024] [--json out.json]

1. trainer: an epoch through the Trainer `train` uses (`methods.trainer.LumaTrainer`; with
   --stock-trainer also `transformers.Trainer`), the `train` command's arguments, no validation,
   against a bare PyTorch loop over the same network, batches and Adam, the paths
   alternating epoch by epoch in one process (goal <= 1.15x): over batches collated beforehand
   (the floor), and reading them each epoch through a plain DataLoader as the Trainer does.
2. validation: the share of an epoch's time that the per-epoch validation takes in fixed mode
   (MCD with --val-mc-samples passes, default 4; goal <= 30 %).
3. ensemble: the deep ensemble's members in one batched call (`torch.func.stack_module_state` +
   `vmap`) against one call per member, forward + backward (the ratio; `batched_members` is
   tested to give the members' outputs).
4. flops: the audio network's achieved GFLOP/s in a training step against this machine's
   measured dense float32 matmul GFLOP/s.
5. dropout prefix: the share of an MC dropout pass spent before the first dropout layer (the same
   in every pass), and what computing it once would save.
6. reading a batch: what the Trainer's DataLoader does per batch (`collator.BatchReader`'s
   gather of each column, then the collator) against `datasets`' own batch read (rows split, then stacked),
   over a train_test_split's rows as `train` reads them; the tensors are tested equal.
7. memory format: an MC dropout training step and a validation batch (T_val passes) with the
   convolutions contiguous against channels_last (`--memory-format`, the default).
8. predictive: MC dropout's and the deep ensemble's evaluation of T outputs (the predictive
   distribution and the loss, `uncertainty.predictive_and_loss`) against the plain one it replaced
   (a softmax per chunk of the whole budget, and each pass's loss on its own draws).
Random inputs of the real shapes; timings on a shared machine are noisy: compare ratios, prefer
the CPU-time ratios with --threads 1, and repeat (--repeats).
"""

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
from bench_baselines import SHAPES, batch_of, modalities  # noqa: E402

from luma_noise.baselines import MethodModel, MethodConfig  # noqa: E402

AUDIO_GFLOP_FORWARD = 0.22  # per example (docs/performance.md); a training step is about 3x the forward


def _dataset(mods, n, seed=0):
    """n random rows of the real input shapes, stored and read exactly as `featurize_dataset`'s output."""
    import datasets
    import numpy as np

    from luma_noise.baselines import collator

    rng = np.random.default_rng(seed)
    features = datasets.Features({"label": datasets.Value("int64"),
                                  **collator._input_features(mods, SHAPES["text_embeddings"][0])})
    columns = {"label": rng.integers(0, 42, n).tolist()}
    for m in mods:
        name = collator.INPUT_NAMES[m]
        shape = getattr(features[name], "shape", (-1,))  # Array3D before the flat inputs
        columns[name] = list(rng.standard_normal((n, int(np.prod(SHAPES[name])))).astype(np.float32).reshape(n, *shape))
    dataset = datasets.Dataset.from_dict(columns, features=features)
    if not hasattr(collator, "input_format"):  # the code before the flat inputs (to measure "before")
        return dataset.with_format("torch")
    return collator.input_format(dataset, mods)


def _median_epoch(seconds) -> tuple:
    """(wall, CPU) of the epoch whose CPU time is the median of `seconds` [(wall, CPU), ...]."""
    return sorted(seconds, key=lambda s: s[1])[len(seconds) // 2]


def _clock():
    """(wall, CPU) seconds: on a shared machine the process's CPU time is the steadier measure of
    its work (with 1 torch thread it is the work); wall time shows what waiting costs too."""
    return time.perf_counter(), time.process_time()


def _since(start):
    return tuple(b - a for a, b in zip(start, _clock()))


class _PairedEpochs(transformers.TrainerCallback):
    """Times each Trainer epoch and, right after it, one epoch of each of `bare` ({name: callable}):
    the paths alternate, so the drift of a shared machine (single epochs here scatter by 10-30 %
    from minute to minute) falls on all alike."""

    def __init__(self, **bare):
        self.bare, self.seconds, self.started = bare, {"trainer": [], **{name: [] for name in bare}}, None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = _clock()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds["trainer"].append(_since(self.started))
        for name, epoch in self.bare.items():
            start = _clock()
            epoch()
            self.seconds[name].append(_since(start))


def _bare_loop(config, optimiser_cls, optimiser_kwargs, batches, memory_format):
    """A bare PyTorch loop with its own model and a one-group optimiser: -> a function that runs one
    epoch over `batches` (an iterable of collated batches)."""
    torch.manual_seed(0)
    model = MethodModel(config).use_memory_format(memory_format).train()
    optimiser = optimiser_cls(model.parameters(), **optimiser_kwargs)

    def epoch():
        for batch in batches:
            optimiser.zero_grad()
            model(**batch).loss.backward()
            optimiser.step()
    return epoch


def trainer_vs_loop(method, run_modality, rows, batch_size=128, val_passes=10, epochs=6, stock=False) -> dict:
    """Training epochs through the Trainer (`train`'s LumaTrainer, or the stock `transformers.Trainer`
    if `stock`; the `train` command's arguments, its dataset format and
    LumaCollator; no validation, no checkpoint), each followed by one epoch of two bare loops over
    the same network and the optimiser the Trainer builds: "bare" over the same batches collated
    beforehand (the floor), "bare_reading" reading them each epoch through a plain DataLoader
    (the same reader and collator, no accelerate). Ratios: medians over the epochs but the first
    (warm). Also: the Trainer's fixed cost per train() call, one pass of its DataLoader alone, and
    the validation's seconds (MC passes = val_passes) through the Trainer's evaluate."""
    from luma_noise.baselines.collator import LumaCollator, batch_reader
    from luma_noise.baselines.methods.model import with_example_index
    from luma_noise.baselines.methods.runner import training_arguments
    from luma_noise.baselines.methods.trainer import LumaTrainer
    from luma_noise.baselines.model import AnnealingCallback
    from luma_noise.baselines.settings import RunSettings

    mods = modalities(run_modality)
    data, validation = _dataset(mods, rows), _dataset(mods, max(1, rows // 4), seed=1)  # 80/20 split
    collator = LumaCollator(text_model="unused: the rows hold embeddings", modalities=mods)
    config = MethodConfig(method=method, modalities=mods, ensemble_size=10, num_train_examples=rows)
    if config.build_method().needs_index:  # as methods.runner.fit
        data = with_example_index(data)
    settings = RunSettings(batch_size=batch_size, max_epochs=epochs, device="cpu", dataloader_workers=0, precision="fp32")
    out = {"run": f"{method}-{run_modality}", "rows": rows, "trainer": "stock" if stock else "luma"}
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(0)).tolist()
    collated = [collator([data[i] for i in order[first:first + batch_size]]) for first in range(0, rows, batch_size)]
    reading = torch.utils.data.DataLoader(batch_reader(data, mods), batch_size, shuffle=True, collate_fn=collator,
                                          generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as folder:
        args = training_arguments(Path(folder), 0, settings)
        args.eval_strategy, args.save_strategy, args.load_best_model_at_end = "no", "no", False
        torch.manual_seed(0)
        model = MethodModel(config).use_memory_format(settings.memory_format)
        optimiser = transformers.Trainer.get_optimizer_cls_and_kwargs(args, model)
        timer = _PairedEpochs(bare=_bare_loop(config, *optimiser, collated, settings.memory_format),
                              bare_reading=_bare_loop(config, *optimiser, reading, settings.memory_format))
        trainer = (transformers.Trainer if stock else LumaTrainer)(
            model=model, args=args, train_dataset=batch_reader(data, mods), data_collator=collator,
            callbacks=[AnnealingCallback(), timer])  # as fit
        start = _clock()
        trainer.train()
        out["trainer_total_s"], out["trainer_total_cpu_s"] = _since(start)
        for name, seconds in timer.seconds.items():
            out[f"{name}_s"], out[f"{name}_cpu_s"] = _median_epoch(seconds[1:])
        timed = sum(s[0] for seconds in timer.seconds.values() for s in seconds)
        out["trainer_fixed_s"] = out["trainer_total_s"] - timed
        for name in ("bare", "bare_reading"):
            pairs = list(zip(timer.seconds["trainer"], timer.seconds[name]))[1:]
            out[f"trainer_over_{name}"] = statistics.median(t[0] / b[0] for t, b in pairs)
            out[f"trainer_over_{name}_cpu"] = statistics.median(t[1] / b[1] for t, b in pairs)
        start = _clock()
        for _ in trainer.get_train_dataloader():
            pass
        out["dataloader_s"], out["dataloader_cpu_s"] = _since(start)
        model.validation_passes = val_passes
        start = _clock()
        trainer.evaluate(batch_reader(validation, mods))
        out["validation_s"], out["validation_cpu_s"] = _since(start)
    return {**out, "validation_share": out["validation_s"] / (out["validation_s"] + out["trainer_s"]),
            "validation_share_cpu": out["validation_cpu_s"] / (out["validation_cpu_s"] + out["trainer_cpu_s"])}


def batched_members(members, inputs, randomness="different"):
    """The members' (μ, σ) stacked, (M, B, C) each, from one vmapped call over stacked parameters."""
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(list(members))
    base = members[0]

    def one(p, b):
        mu, sigma, _ = functional_call(base, (p, b), (inputs,))
        return mu, sigma

    return vmap(one, randomness=randomness)(params, buffers)


def ensemble_batched_vs_loop(run_modality, members=10, batch_size=128, repeats=2) -> dict:
    mods = modalities(run_modality)
    model = MethodModel(MethodConfig(method="de", modalities=mods, ensemble_size=members)).train()
    inputs = batch_of(mods, batch_size)

    def loop():
        outs = [m(inputs)[:2] for m in model.members]
        (torch.stack([o[0] for o in outs]).sum() + torch.stack([o[1] for o in outs]).sum()).backward()

    def batched():  # stack_module_state copies the parameters: counted, as a training step would pay it
        mu, sigma = batched_members(model.members, inputs)
        (mu.sum() + sigma.sum()).backward()

    times = {}
    for name, fn in (("loop", loop), ("batched", batched)):
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times[name] = (time.perf_counter() - start) / repeats
    return {"run": f"de-{run_modality} x{members}", "loop_s": times["loop"], "batched_s": times["batched"],
            "loop_over_batched": times["loop"] / times["batched"]}


def flops(batch_size=64, repeats=2, memory_format="channels_last") -> dict:
    """Achieved GFLOP/s of the audio network's training step, and dense matmul GFLOP/s."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    matmul = 5 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9
    model = MethodModel(MethodConfig(method="mcd", modalities=("audio",))).use_memory_format(memory_format).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch, labels = batch_of(("audio",), batch_size), torch.randint(0, 42, (batch_size,))

    def step():
        optimiser.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    seconds = (time.perf_counter() - start) / repeats
    audio = 3 * AUDIO_GFLOP_FORWARD * batch_size / seconds
    return {"matmul_gflops": matmul, "audio_train_gflops": audio, "audio_over_matmul": audio / matmul}


def dropout_prefix(run_modality, passes=10, batch_size=128, repeats=5) -> dict:
    """Where MC dropout's passes spend their time: one forward of a branch (dropout on, no
    gradients, as the validation and the final evaluation run it) against its trunk's layers
    before the first dropout (deterministic: the same for every pass) and the rest; and the speed-up
    of computing that prefix once for `passes` passes instead of in every pass (CPU time)."""
    from luma_noise.baselines import networks

    branch = networks.Branch(run_modality, 42, 0.3, True, SHAPES["text_embeddings"][0]).train()
    x = batch_of((run_modality,), batch_size)[networks.INPUT_NAMES[run_modality]]
    layers = list(branch.trunk)
    first = next(i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Dropout))
    prefix, rest = torch.nn.Sequential(*layers[:first]), torch.nn.Sequential(*layers[first:])
    with torch.no_grad():
        h = prefix(x)
        calls = {"forward": lambda: branch(x), "prefix": lambda: prefix(x),
                 "rest": lambda: (lambda f: (branch.logits(f), branch.sigma(f)))(rest(h))}
        best = {}
        for _ in range(2):  # interleaved rounds, best of each
            for name, fn in calls.items():
                fn()
                start = time.process_time()
                for _ in range(repeats):
                    fn()
                best[name] = min(best.get(name, float("inf")), (time.process_time() - start) / repeats)
    return {"run": f"mcd-{run_modality}", **{f"{k}_cpu_s": v for k, v in best.items()},
            "prefix_share": best["prefix"] / best["forward"],
            "speedup": passes * best["forward"] / (best["prefix"] + passes * best["rest"]), "passes": passes}


def batch_read(run_modality, rows, batch_size=128, batches=100) -> dict:
    """CPU ms per batch: BatchReader + LumaCollator against Dataset.__getitems__ + LumaCollator."""
    import numpy as np

    from luma_noise.baselines.collator import LumaCollator, batch_reader

    mods = modalities(run_modality)
    train = _dataset(mods, rows).train_test_split(test_size=0.2, seed=0)["train"]  # keeps the numpy format
    collator, reader = LumaCollator(text_model="unused", modalities=mods), batch_reader(train, mods)
    order = np.random.default_rng(0).permutation(len(train))
    count = min(batches, len(train) // batch_size)
    batches = [order[i * batch_size:(i + 1) * batch_size].tolist() for i in range(count)]
    best = {}
    for _ in range(2):
        for name, read in (("reader", reader.__getitems__), ("datasets", train.__getitems__)):
            start = time.process_time()
            for indices in batches:
                collator(read(indices))
            best[name] = min(best.get(name, float("inf")), (time.process_time() - start) / len(batches))
    return {"run": run_modality, "reader_ms": 1000 * best["reader"], "datasets_ms": 1000 * best["datasets"],
            "ratio": best["datasets"] / best["reader"]}


def memory_format(run_modality, val_passes=4, batch_size=128, rounds=3) -> dict:
    """CPU s of an MC dropout training step (fused AdamW) and of a validation batch (val_passes
    passes), contiguous and channels_last, each the best of `rounds` interleaved rounds."""
    mods = modalities(run_modality)
    batch, labels = batch_of(mods, batch_size), torch.randint(0, 42, (batch_size,))
    best = {}
    for _ in range(rounds):
        for layout in ("contiguous", "channels_last"):
            torch.manual_seed(0)
            model = MethodModel(MethodConfig(method="mcd", modalities=mods)).use_memory_format(layout)
            optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)

            def step():
                optimiser.zero_grad()
                model(**batch, labels=labels).loss.backward()
                optimiser.step()

            def validate():
                with torch.no_grad():
                    model(**batch, labels=labels)

            for name, fn in (("train", step), ("validation", validate)):
                model.train(name == "train")
                model.validation_passes = val_passes
                fn()
                start = time.process_time()
                fn()
                key = f"{name}_{layout}_cpu_s"
                best[key] = min(best.get(key, float("inf")), time.process_time() - start)
    return {"run": f"mcd-{run_modality}", **best,
            **{f"{name}_speedup": best[f"{name}_contiguous_cpu_s"] / best[f"{name}_channels_last_cpu_s"]
               for name in ("train", "validation")}}


def plain_predictive_and_loss(mu, sigma, labels, samples=100, generator=None, max_floats=2 ** 22):
    """The evaluation `uncertainty.predictive_and_loss` replaced: the predictive's softmax over chunks
    of `max_floats` floats, and each pass's `losses.sampling_softmax_loss` on draws of its own."""
    from luma_noise.baselines import losses

    eps = torch.randn((samples, 1, 1, mu.shape[-1]), generator=generator)
    step = max(1, max_floats // (samples * mu[0].numel()))
    total = torch.zeros_like(mu[0])
    for start in range(0, len(mu), step):
        total += torch.softmax(mu[start:start + step] + sigma[start:start + step] * eps, -1).sum((0, 1))
    if labels is None:
        return total / (samples * len(mu)), None
    loss = torch.stack([losses.sampling_softmax_loss(m, s, labels, samples, generator=generator)
                        for m, s in zip(mu, sigma)]).mean()
    return total / (samples * len(mu)), loss


def predictive(passes, batch_size=128, classes=42, rounds=3) -> dict:
    """CPU ms of the evaluation of `passes` outputs (T, B, C) of a batch, now and plain, with labels
    (the validation: distribution and loss) and without (the final evaluation: the distribution);
    each the best of `rounds` interleaved rounds of 3 calls."""
    from luma_noise.baselines import uncertainty

    torch.manual_seed(0)
    mu, sigma = torch.randn(passes, batch_size, classes) * 2, torch.rand(passes, batch_size, classes)
    labels = torch.randint(0, classes, (batch_size,))
    best = {}
    for _ in range(rounds):
        for name, fn in (("now", uncertainty.predictive_and_loss), ("plain", plain_predictive_and_loss)):
            for kind, given in (("validation", labels), ("final", None)):
                fn(mu, sigma, given, 100, torch.Generator().manual_seed(0))
                start = time.process_time()
                for _ in range(3):
                    fn(mu, sigma, given, 100, torch.Generator().manual_seed(0))
                key = f"{kind}_{name}_ms"
                best[key] = min(best.get(key, float("inf")), 1000 * (time.process_time() - start) / 3)
    return {"passes": passes, **best, **{f"{kind}_ratio": best[f"{kind}_plain_ms"] / best[f"{kind}_now_ms"]
                                         for kind in ("validation", "final")}}


def _section(out, key, title, measure, networks, line) -> None:
    """Print `title`, then measure(m) for each network m, printed by `line`(result); the results in out[key]."""
    print(title)
    out[key] = []
    for run_modality in networks:
        out[key].append(measure(run_modality))
        print("  " + line(out[key][-1]), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=["mcd:image", "mcd:text", "de:image", "de:text"],
                        metavar="METHOD:MODALITY")
    parser.add_argument("--rows", type=int, default=1024,
                        help="training rows of the timed epoch (the real protocol: 13440, 80 %% of 16,800)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="measurements per run (each the median of 5 paired epochs)")
    parser.add_argument("--val-passes", type=int, default=4, help="MC dropout passes of the validation (T_val; the default of --val-mc-samples)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 makes CPU time the work")
    parser.add_argument("--skip-ensemble", action="store_true")
    parser.add_argument("--skip-flops", action="store_true")
    parser.add_argument("--ensemble", nargs="+", default=["image", "text"], metavar="MODALITY")
    parser.add_argument("--prefix", nargs="*", default=["image", "audio", "text"], metavar="MODALITY",
                        help="networks for section 5 (none: skip it)")
    parser.add_argument("--read", nargs="*", default=["image", "text"], metavar="MODALITY",
                        help="inputs for section 6 (none: skip it)")
    parser.add_argument("--formats", nargs="*", default=["image", "audio"], metavar="MODALITY",
                        help="networks for section 7 (none: skip it)")
    parser.add_argument("--predictive", nargs="*", type=int, default=[4, 100], metavar="T",
                        help="passes (outputs) for section 8 (none: skip it)")
    parser.add_argument("--stock-trainer", action="store_true",
                        help="sections 1-2 also time the stock transformers.Trainer (after LumaTrainer, each repeat)")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = {"threads": torch.get_num_threads(), "trainer": [], "ensemble": []}
    print(f"1-2. Trainer epoch / bare loop ({args.rows} rows, warm epoch), and validation share of an epoch "
          f"(fixed mode, T_val = {args.val_passes}):")
    for spec in args.runs:
        method, run_modality = spec.split(":")
        for repeat, stock in itertools.product(range(args.repeats), (False, True) if args.stock_trainer else (False,)):
            r = trainer_vs_loop(method, run_modality, args.rows, val_passes=args.val_passes, stock=stock)
            out["trainer"].append(r)
            print(f"  {r['run']:<10} {r['trainer']:<5} CPU s: trainer {r['trainer_cpu_s']:6.2f}  "
                  f"bare {r['bare_cpu_s']:6.2f}  "
                  f"ratio {r['trainer_over_bare_cpu']:.2f}x (wall {r['trainer_over_bare']:.2f}x); against a bare loop "
                  f"reading the same way {r['trainer_over_bare_reading_cpu']:.2f}x; DataLoader alone "
                  f"{r['dataloader_cpu_s']:.2f}; fixed per train() {r['trainer_fixed_s']:.2f} wall s; validation "
                  f"{100 * r['validation_share_cpu']:.0f} % of the epoch (wall {100 * r['validation_share']:.0f} %)",
                  flush=True)
        for trainer in ("luma", "stock"):
            mine = [r for r in out["trainer"] if r["run"] == f"{method}-{run_modality}" and r["trainer"] == trainer]
            if len(mine) > 1:
                print(f"  {mine[0]['run']:<10} {trainer:<5} median over {len(mine)}: ratio "
                      f"{statistics.median(r['trainer_over_bare_cpu'] for r in mine):.2f}x (reading: "
                      f"{statistics.median(r['trainer_over_bare_reading_cpu'] for r in mine):.2f}x), validation "
                      f"{100 * statistics.median(r['validation_share_cpu'] for r in mine):.0f} %", flush=True)
    if not args.skip_ensemble:
        print("3. deep ensemble, forward + backward: one call per member / one vmapped call:")
    for run_modality in [] if args.skip_ensemble else args.ensemble:
        r = ensemble_batched_vs_loop(run_modality)
        out["ensemble"].append(r)
        print(f"  {r['run']:<14} loop {r['loop_s']:.3f} s  batched {r['batched_s']:.3f} s  "
              f"ratio {r['loop_over_batched']:.2f}x")
    _section(out, "dropout_prefix", f"5. MC dropout, {args.val_passes} passes: the layers before a branch's first "
             "dropout, computed once:", lambda m: dropout_prefix(m, args.val_passes), args.prefix,
             lambda r: f"{r['run']:<10} forward {1000 * r['forward_cpu_s']:.1f} CPU ms per batch of 128, of which "
                       f"before the first dropout {100 * r['prefix_share']:.0f} %: {r['speedup']:.2f}x faster passes")
    _section(out, "batch_read", f"6. reading and collating a batch of 128 ({args.rows} rows split 80/20): "
             "BatchReader / datasets' rows:", lambda m: batch_read(m, args.rows), args.read,
             lambda r: f"{r['run']:<10} {r['reader_ms']:.2f} CPU ms against {r['datasets_ms']:.2f}: "
                       f"{r['ratio']:.1f}x faster")
    _section(out, "memory_format", "7. memory format, MC dropout at batch 128: contiguous / channels_last CPU time "
             f"(T_val = {args.val_passes}):", lambda m: memory_format(m, args.val_passes), args.formats,
             lambda r: f"{r['run']:<10} training step {r['train_contiguous_cpu_s']:.3f} / "
                       f"{r['train_channels_last_cpu_s']:.3f} s = {r['train_speedup']:.2f}x; validation batch "
                       f"{r['validation_contiguous_cpu_s']:.3f} / {r['validation_channels_last_cpu_s']:.3f} s = "
                       f"{r['validation_speedup']:.2f}x")
    _section(out, "predictive", "8. sampling-softmax evaluation of T outputs, batch of 128: plain / now CPU time:",
             predictive, args.predictive,
             lambda r: f"T = {r['passes']:<4} " + "; ".join(
                 f"{kind} {r[f'{kind}_plain_ms']:.1f} / {r[f'{kind}_now_ms']:.1f} ms = {r[f'{kind}_ratio']:.2f}x"
                 for kind in ("validation", "final")))
    out["flops"] = None if args.skip_flops else {layout: flops(memory_format=layout)
                                                   for layout in ("contiguous", "channels_last")}
    for layout, f in (out["flops"] or {}).items():
        print(f"4. audio training step, {layout}: {f['audio_train_gflops']:.0f} GFLOP/s, dense matmul "
              f"{f['matmul_gflops']:.0f} GFLOP/s: {100 * f['audio_over_matmul']:.0f} % of it")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
