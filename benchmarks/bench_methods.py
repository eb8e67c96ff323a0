"""Cost of every registered method on this machine: training examples/s and evaluation time.

    python benchmarks/bench_methods.py                         # every method, multimodal (minutes on 2 cores)
    python benchmarks/bench_methods.py --methods tmc qmf --modality image+text

Per method, on random inputs of the real shapes (text: 768-dim embeddings, computed once per
dataset by `featurize_dataset`, so not part of either cost):
- training: examples/s of one optimisation step (forward, loss, backward, Adam) at `--batch-size`;
- evaluation: seconds to predict the 4,200-example test split (eval mode, no gradients; MC
  dropout with `--passes` passes, the deep ensemble with `--ensemble-size` members), timed on
  `--eval-size` examples and scaled.
EDL is unimodal: it runs on the first modality of `--modality`.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from luma_noise.baselines.methods import MethodConfig, MethodModel, registry  # noqa: E402

SHAPES = {"image": ("pixel_values", (3, 32, 32)), "audio": ("audio_features", (1, 128, 128)),
          "text": ("text_embeddings", (768,))}
TEST_SIZE, TRAIN_SIZE = 4200, 16_800


def build(method, modalities, args):
    torch.manual_seed(0)
    hyper = {"mcd": {"mc_samples": args.passes}, "de": {"ensemble_size": args.ensemble_size}}.get(method, {})
    return MethodModel(MethodConfig(method=method, method_config=hyper, modalities=modalities,
                                    num_train_examples=TRAIN_SIZE))


def batch_of(modalities, size, with_index=False):
    batch = {SHAPES[m][0]: torch.randn(size, *SHAPES[m][1]) for m in modalities}
    if with_index:
        batch["example_index"] = torch.randint(0, TRAIN_SIZE, (size,))
    return batch


def timed(fn, min_seconds: float) -> float:
    """Seconds per call of fn() after one warm-up call, repeated for at least min_seconds (3 calls at most)."""
    fn()
    start, calls = time.perf_counter(), 0
    while calls < 3 and (calls == 0 or time.perf_counter() - start < min_seconds):
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def bench(method, modalities, args) -> tuple:
    """(training examples/s, evaluation seconds for the test split) of one method."""
    model = build(method, modalities, args).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    needs_index = method not in registry.PAPER and model.method.needs_index
    batch, labels = batch_of(modalities, args.batch_size, needs_index), torch.randint(0, 42, (args.batch_size,))

    def step():
        optimiser.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimiser.step()

    train_rate = args.batch_size / timed(step, args.min_seconds)
    model.eval()
    batches = [batch_of(modalities, min(args.batch_size, args.eval_size - s))
               for s in range(0, args.eval_size, args.batch_size)]
    with torch.no_grad():
        start = time.perf_counter()
        for b in batches:
            model(**b)
    return train_rate, (time.perf_counter() - start) * TEST_SIZE / args.eval_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(registry.BUILTIN))
    parser.add_argument("--modality", default="image+audio+text", help="modalities joined by +")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-size", type=int, default=256, help="examples timed at evaluation")
    parser.add_argument("--passes", type=int, default=100, help="MC dropout passes")
    parser.add_argument("--ensemble-size", type=int, default=10)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    modalities = tuple(args.modality.split("+"))
    print(f"{args.modality}, batch {args.batch_size}, torch threads {torch.get_num_threads()}; evaluation of the "
          f"{TEST_SIZE}-example test split timed on {args.eval_size} examples")
    print(f"{'method':<8} {'modalities':<18} {'train ex/s':>10} {'s/epoch':>8} {'eval s':>8}")
    for method in args.methods:
        low, high = registry.resolve(method).views
        mods = modalities[:1] if len(modalities) > high else modalities
        if len(mods) < low:
            continue
        rate, evaluation = bench(method, mods, args)
        print(f"{method:<8} {'+'.join(mods):<18} {rate:10.0f} {TRAIN_SIZE * 0.8 / rate:8.1f} {evaluation:8.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
