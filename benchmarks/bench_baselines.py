"""Cost of the baselines on this machine: training examples/s and vectorised MC dropout.

    python benchmarks/bench_baselines.py                       # everything (several minutes on 2 cores)
    python benchmarks/bench_baselines.py --skip-training --test-size 4200

1. Training: examples/s of one optimisation step (forward, sampling-softmax or RCML loss,
   backward, Adam) at batch 128 on inputs of the real shapes, per method and modality
   (DE with `--ensemble-size` members trained jointly). The inputs are featurised once
   before training (`featurize_dataset`), so this is the per-epoch cost.
2. Evaluation: T = `--passes` MC-dropout passes over `--test-size` examples (the test
   split has 4,200), vectorised by repeating the batch (`MethodModel`) against a plain loop
   of T forward passes per batch; audio on `--audio-test-size` examples, scaled to the
   test split.
3. Text embeddings: ms per text of a random BERT of bert-base's size, one text per call and
   batched by equal token count (what `LumaCollator` does).
"""

import argparse
import time
from pathlib import Path

import torch

from luma_noise.baselines import MethodModel, MethodConfig
from luma_noise.baselines.methods.mcd import MCDropout

SHAPES = {"pixel_values": (3, 32, 32), "audio_features": (1, 128, 128), "text_embeddings": (768,)}
NAMES = {"image": "pixel_values", "audio": "audio_features", "text": "text_embeddings"}
RUNS = [("mcd", "image"), ("mcd", "audio"), ("mcd", "text"), ("mcd", "multimodal"), ("de", "image"),
        ("de", "audio"), ("de", "text"), ("de", "multimodal"), ("rcml", "multimodal")]


def modalities(run_modality):
    """"multimodal" (all three), one modality, or several joined by "+" ("image+text")."""
    return ("image", "audio", "text") if run_modality == "multimodal" else tuple(run_modality.split("+"))


def batch_of(mods, size):
    return {NAMES[m]: torch.randn(size, *SHAPES[NAMES[m]]) for m in mods}


def timed(fn, min_seconds: float, max_repeats: int) -> float:
    """Seconds per call of fn() after one warm-up call: repeats until min_seconds or max_repeats."""
    fn()
    start, calls = time.perf_counter(), 0
    while calls < max_repeats and (calls == 0 or time.perf_counter() - start < min_seconds):
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def bench_training(args):
    print(f"training, batch {args.batch_size}, DE with {args.ensemble_size} members (examples/s, one step = "
          "forward + loss + backward + Adam):")
    for method, run_modality in RUNS:
        torch.manual_seed(0)
        mods = modalities(run_modality)
        model = MethodModel(MethodConfig(method=method, modalities=mods, ensemble_size=args.ensemble_size)).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        batch = batch_of(mods, args.batch_size)
        labels = torch.randint(0, 42, (args.batch_size,))

        def step():
            optimiser.zero_grad()
            model(**batch, labels=labels).loss.backward()
            optimiser.step()

        seconds = timed(step, args.min_seconds, 10)
        per_epoch = 16_800 / args.batch_size * seconds
        print(f"  {method:>4} {run_modality:<10} {args.batch_size / seconds:8.0f} examples/s   "
              f"{per_epoch:7.1f} s per epoch of 16,800 (training only)")


def plain_loop(model, batch, passes):
    """T separate forward passes with dropout on: the floor the vectorised passes are compared with."""
    net = model.members[0]
    net.train()
    mus, sigmas = [], []
    for _ in range(passes):
        mu, sigma, _ = net(batch)
        mus.append(mu)
        sigmas.append(sigma)
    return torch.stack(mus), torch.stack(sigmas)


def bench_mc_dropout(args):
    print(f"MC dropout evaluation, T = {args.passes} passes, batch {args.batch_size}, "
          f"mc_chunk_floats {args.mc_chunk_floats or MCDropout.Config().mc_chunk_floats} "
          f"(test split of {args.test_size}; audio timed on {args.audio_test_size} and scaled):")
    for run_modality in ("image", "audio", "text", "multimodal"):
        torch.manual_seed(0)
        mods = modalities(run_modality)
        chunk = {"mc_chunk_floats": args.mc_chunk_floats} if args.mc_chunk_floats else {}
        model = MethodModel(MethodConfig(method="mcd", modalities=mods, mc_samples=args.passes, **chunk)).eval()
        n = args.audio_test_size if "audio" in mods else args.test_size
        batches = [batch_of(mods, min(args.batch_size, n - s)) for s in range(0, n, args.batch_size)]
        results = {}
        for name, fn in (("vectorised", lambda b: model.method.passes(model, b, torch.Generator().manual_seed(0))), ("loop", lambda b: plain_loop(model, b, args.passes))):
            with torch.no_grad():
                start = time.perf_counter()
                for b in batches:
                    fn(b)
                results[name] = (time.perf_counter() - start) * args.test_size / n
        print(f"  {run_modality:<10} vectorised {results['vectorised']:7.1f} s   loop {results['loop']:7.1f} s   "
              f"loop / vectorised = {results['loop'] / results['vectorised']:.2f}")


def bench_text(args):
    from transformers import BertConfig, BertModel

    import tempfile

    from luma_noise.baselines.inputs import TextEmbedder
    from luma_noise.fixtures.models import save_tiny_models

    folder = Path(tempfile.mkdtemp(prefix="luma-bench-bert-"))
    text_path = save_tiny_models(folder)["text"]
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=27, max_position_embeddings=512)).save_pretrained(text_path)  # bert-base size
    words = "the big horse runs near a small dog and the man sits on the field".split()
    pairs = [(" ".join(words[i % 7:] + words[:i % 7]) + f" {i}", "horse") for i in range(args.texts)]
    per_text = {}
    for batch_size in (1, 32):  # one text per call, then texts of equal token count together
        embedder = TextEmbedder(text_path, batch_size=batch_size)
        embedder(pairs[:2])  # loads the model
        start = time.perf_counter()
        embedder(pairs[2:])
        per_text[batch_size] = (time.perf_counter() - start) / (len(pairs) - 2)
    print(f"text embeddings, random bert-base-size model, {len(pairs) - 2} texts of 15 words: "
          f"{per_text[1] * 1e3:.0f} ms per text one at a time, {per_text[32] * 1e3:.0f} ms batched by equal "
          f"token count (ratio {per_text[1] / per_text[32]:.1f}); {per_text[32] * 29_059 / 60:.0f} min for "
          "LUMA's 29,059 texts, once per text model")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ensemble-size", type=int, default=10)
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--test-size", type=int, default=4200)
    parser.add_argument("--audio-test-size", type=int, default=256)
    parser.add_argument("--texts", type=int, default=34)
    parser.add_argument("--mc-chunk-floats", type=int, help="MethodConfig.mc_chunk_floats (default: its default)")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time each training step at least this long")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-mc", action="store_true")
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_training:
        bench_training(args)
    if not args.skip_mc:
        bench_mc_dropout(args)
    if not args.skip_text:
        bench_text(args)


if __name__ == "__main__":
    main()
