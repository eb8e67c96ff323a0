"""The deep ensemble's evaluation: its members in one batched call against one call per member.

    python benchmarks/bench_ensemble.py [--runs image text audio multimodal] [--members 10] [--batch 128]

`methods.de.batched_members` (parameters stacked with `torch.func.stack_module_state`, one
`vmap`) against a loop of member calls, forward only with dropout off (what `DeepEnsemble.passes`
runs at every validation and evaluation batch), on random inputs of the real shapes. Prints the
median of `--repeats` timings of each and their ratio (loop / batched: above 1, batching wins).
Training keeps one call per member (its dropout masks would differ under vmap, and
benchmarks/bench_perf.py measured no gain for the convolutional networks in training).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_baselines import batch_of, modalities  # noqa: E402

from luma_noise.baselines.methods import MethodConfig, MethodModel  # noqa: E402
from luma_noise.baselines.methods.de import batched_members  # noqa: E402


def measure(run_modality: str, members: int, batch_size: int, repeats: int) -> dict:
    mods = modalities(run_modality)
    model = MethodModel(MethodConfig(method="de", method_config={"ensemble_size": members}, modalities=mods)).eval()
    inputs = batch_of(mods, batch_size)

    def loop():
        outs = [member(inputs)[:2] for member in model.members]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])

    def batched():
        return batched_members(model.members, inputs)

    times = {}
    with torch.no_grad():
        for name, fn in (("loop", loop), ("batched", batched)):
            fn()  # warm-up
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            times[name] = statistics.median(runs)
    return {"modality": run_modality, "members": members, "batch": batch_size, "loop_s": times["loop"],
            "batched_s": times["batched"], "loop_over_batched": times["loop"] / times["batched"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["image", "text", "audio", "multimodal"])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}")
    for run in args.runs:
        r = measure(run, args.members, args.batch, args.repeats)
        print(f"{run:<11} {r['members']} members, batch {r['batch']}: loop {r['loop_s'] * 1e3:8.1f} ms  "
              f"batched {r['batched_s'] * 1e3:8.1f} ms  ratio {r['loop_over_batched']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
