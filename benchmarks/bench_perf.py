"""Overheads of the training path, as ratios measured in one run (docs/scaling.md):

    python benchmarks/bench_perf.py [--runs mcd:image mcd:text de:image] [--rows 1024] [--json out.json]

1. trainer: one epoch through `transformers.Trainer` (the `train` command's arguments, no
   validation) against a bare PyTorch loop over the same network, batches and Adam (goal <= 1.15x).
2. validation: the share of an epoch's time that the per-epoch validation takes in fixed mode
   (MCD with --val-mc-samples passes, default 10; goal <= 30 %).
3. ensemble: the deep ensemble's members in one batched call (`torch.func.stack_module_state` +
   `vmap`) against one call per member, forward + backward (the ratio; `batched_members` is
   tested to give the members' outputs).
4. flops: the audio network's achieved GFLOP/s in a training step against this machine's
   measured dense float32 matmul GFLOP/s.
Random inputs of the real shapes; timings on a shared machine are noisy: compare ratios.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_baselines import batch_of, modalities  # noqa: E402

from luma_noise.baselines import LumaModel, LumaModelConfig  # noqa: E402

AUDIO_GFLOP_FORWARD = 0.22  # per example (docs/performance.md); a training step is about 3x the forward


def _rows(mods, n, seed=0):
    torch.manual_seed(seed)
    batch = batch_of(mods, n)
    labels = torch.randint(0, 42, (n,))
    return [{**{k: v[i] for k, v in batch.items()}, "labels": labels[i]} for i in range(n)]


def _collate(rows):
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def trainer_vs_loop(method, run_modality, rows, batch_size=128, val_passes=10) -> dict:
    """Seconds of one training epoch via the Trainer and via a bare loop, and the validation's
    seconds (MC passes = val_passes) through the Trainer's evaluate."""
    import transformers

    from luma_noise.baselines.methods.runner import training_arguments
    from luma_noise.baselines.settings import RunSettings

    mods = modalities(run_modality)
    data = _rows(mods, rows)
    validation = data[: max(1, rows // 4)]  # 80/20 split: validation is a quarter of training
    config = LumaModelConfig(method=method, modalities=mods, ensemble_size=10)
    settings = RunSettings(batch_size=batch_size, max_epochs=1, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        args = training_arguments(Path(folder), 0, settings)
        args.eval_strategy, args.save_strategy, args.load_best_model_at_end = "no", "no", False
        model = LumaModel(config)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=data, data_collator=_collate)
        start = time.perf_counter()
        trainer.train()
        through_trainer = time.perf_counter() - start
        model.validation_passes = val_passes
        start = time.perf_counter()
        trainer.evaluate(validation)
        validating = time.perf_counter() - start
    model = LumaModel(config).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for first in range(0, rows, batch_size):
        batch = _collate([data[i] for i in order[first:first + batch_size]])
        optimiser.zero_grad()
        model(**batch).loss.backward()
        optimiser.step()
    bare = time.perf_counter() - start
    return {"run": f"{method}-{run_modality}", "trainer_s": through_trainer, "bare_s": bare,
            "trainer_over_bare": through_trainer / bare, "validation_s": validating,
            "validation_share": validating / (validating + through_trainer)}


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
    model = LumaModel(LumaModelConfig(method="de", modalities=mods, ensemble_size=members)).train()
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


def flops(batch_size=64, repeats=2) -> dict:
    """Achieved GFLOP/s of the audio network's training step, and dense matmul GFLOP/s."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    matmul = 5 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9
    model = LumaModel(LumaModelConfig(method="mcd", modalities=("audio",))).train()
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["mcd:image", "mcd:text", "de:image", "de:text"],
                        metavar="METHOD:MODALITY")
    parser.add_argument("--rows", type=int, default=1024, help="training rows of the timed epoch")
    parser.add_argument("--ensemble", nargs="+", default=["image", "text"], metavar="MODALITY")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)
    out = {"threads": torch.get_num_threads(), "trainer": [], "ensemble": []}
    print("1-2. Trainer epoch / bare loop, and validation share of an epoch (fixed mode, T_val = 10):")
    for spec in args.runs:
        method, run_modality = spec.split(":")
        r = trainer_vs_loop(method, run_modality, args.rows)
        out["trainer"].append(r)
        print(f"  {r['run']:<14} trainer {r['trainer_s']:7.2f} s  bare {r['bare_s']:7.2f} s  "
              f"ratio {r['trainer_over_bare']:.2f}x  validation {100 * r['validation_share']:.0f} %")
    print("3. deep ensemble, forward + backward: one call per member / one vmapped call:")
    for run_modality in args.ensemble:
        r = ensemble_batched_vs_loop(run_modality)
        out["ensemble"].append(r)
        print(f"  {r['run']:<14} loop {r['loop_s']:.3f} s  batched {r['batched_s']:.3f} s  "
              f"ratio {r['loop_over_batched']:.2f}x")
    out["flops"] = f = flops()
    print(f"4. audio training step {f['audio_train_gflops']:.0f} GFLOP/s, dense matmul {f['matmul_gflops']:.0f} "
          f"GFLOP/s: {100 * f['audio_over_matmul']:.0f} % of it")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
