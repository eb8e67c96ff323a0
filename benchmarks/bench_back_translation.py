"""Back-translation candidates side by side, per text, on this machine (`TextNoise(["BackTranslationNoise"])`).

    python benchmarks/bench_back_translation.py --threads 1 --rounds 2 --texts 16   # docs/performance.md's table
    python benchmarks/bench_back_translation.py --only 5 --texts 64                # the default alone

Several minutes per round (the wmt19 candidate takes most of it); 14 min in all for docs/performance.md's
run on a heavily shared machine.

The real checkpoints cannot be downloaded here, so randomly initialised models of the real
sizes are built offline, saved to a temporary folder and loaded through `TextNoise` exactly as
checkpoints are (`from_model_name=<folder>`, `to_model_name=<folder>`):

- "wmt19": nlpaug's default and the reference tool's, facebook/wmt19-en-de and -de-en (FSMT,
  d_model 1024, 6 + 6 layers, 16 heads, FFN 8192 / 4096, vocabularies 42,024, 5 beams) through
  `transformers`;
- "opus-mt": Helsinki-NLP/opus-mt-en-de and -de-en (Marian, d_model 512, 6 + 6 layers, 8 heads,
  FFN 2048, vocabulary 58,101; ~74M parameters each; 4 beams in their generation config), built
  by `luma_noise/fixtures/marian.py`, through `transformers` with 4 beams, 2 beams and greedy, and through
  CTranslate2 (int8 on CPU, converted once into the conversion cache) with 4 beams and greedy.

Random weights decode garbage, so the models are kept from ending early: every translation runs to
`--max-length` tokens (the compute of a real translation of that length; LUMA's passages, 2-3
sentences of ~35 words, translate to about that many). Tokenizers are word-level (one token per
word), a little fewer positions than a real subword tokenizer gives.

Every candidate computes each text alone (batch_size 1: a text's output does not depend on the
others in the call). Per round, each candidate is loaded (its one-off cost), warmed up on one text,
then timed on `--texts` passages (fewer for the slow ones: `SLOW_TEXTS`) in one call: wall time
and this process's CPU time per text (on a shared machine CPU time is the steadier figure of the
compute; wall time is what a user waits). torch runs on `--threads` threads (default: all cores);
CTranslate2 on one thread per text with `--threads` replicas. Rounds repeat the lot, so each ratio
to the default compares runs made minutes apart.
Before each candidate, waits while another benchmark runs (`pgrep -f OTHER_BENCHMARKS`, 5 min at most in all).
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

OTHER_BENCHMARKS = "benchmarks/bench_(prepare|sampling|noise|download|features|streaming)"
SAMPLE_NOISE_TEXTS = 7265  # texts drawing BackTranslationNoise in the default sample_noise (of 29,059)

# LUMA-like passages: 2-3 sentences about one class each, as LUMA's generated texts.
PASSAGES = (
    "The apple hung low on the branch, its red skin still wet with morning dew. A child reached up and "
    "twisted it free. It was crisp and sweet, with a faint sour note near the core.",
    "In the aquarium, a small striped fish darted between the green plants. It paused near the glass "
    "and stared at the visitors before vanishing behind a rock.",
    "The brown bear waded into the cold river and waited. When a salmon leapt from the water, it "
    "caught the fish in its jaws and carried it to the shore.",
    "A bee landed on the open flower and crawled deep inside. Its legs were covered in yellow pollen "
    "as it moved on to the next blossom in the garden.",
    "The old bicycle leaned against the fence, its chain rusty and its tyres soft. Every summer "
    "morning, the boy pumped them up and rode to the lake.",
    "The bus stopped at the corner and the doors hissed open. A crowd of students climbed aboard, "
    "laughing and shouting, and the driver pulled away into the traffic.",
    "A butterfly with orange and black wings rested on a thistle. When the wind rose, it fluttered "
    "away over the meadow and disappeared among the tall grass.",
    "The camel knelt in the sand while its owner loaded the heavy bags. Then it rose slowly and "
    "walked on across the dunes, as calm as ever under the burning sun.",
    "The castle stood on a rocky hill above the village. Its towers had watched over the valley for "
    "centuries, and its thick walls still bore the marks of old sieges.",
    "The cloud drifted slowly across the blue sky, changing shape as it went. By evening it had grown "
    "dark and heavy, and the first drops of rain began to fall.",
    "The crab scuttled sideways across the wet sand, its claws raised in warning. When a wave rolled "
    "in, it dug itself into the beach and was gone.",
    "A crocodile lay motionless on the muddy bank, its eyes half closed. The birds kept their "
    "distance, knowing how fast those jaws could snap shut.",
    "The dolphin leapt out of the water beside the boat, its grey body shining in the sun. Soon the "
    "whole pod joined in, racing the bow through the waves.",
    "The elephant sprayed water over its back with its long trunk. Nearby, a young calf splashed in "
    "the shallow pool and trumpeted with delight.",
    "A fox crept along the edge of the forest at dusk. Its red coat glowed in the last light as it "
    "listened for mice rustling in the leaves.",
    "The lamp on the desk cast a warm circle of light over the open book. Outside the window, the "
    "street was dark and quiet, and the clock struck midnight.",
    "The lion lay in the shade of an acacia tree, watching the herd in the distance. Its mane was "
    "golden and thick, and its tail flicked lazily at the flies.",
    "The motorcycle roared down the empty highway, its rider leaning into every curve. The engine "
    "echoed off the cliffs long after it had passed.",
    "The mountain rose high above the clouds, its peak covered in snow all year. Climbers set out "
    "before dawn to reach the summit and return before the storm.",
    "A mushroom pushed up through the damp leaves after the rain. Its cap was pale brown and smooth, "
    "and a small snail had already found it.",
    "The pickup truck bounced along the dirt road, loaded with hay bales. Dust rose behind it in a "
    "long cloud that settled slowly over the fields.",
    "The rabbit froze in the clover, its ears turning towards the sound. Then it bolted across the "
    "lawn and disappeared into a hole under the hedge.",
    "A red rose bloomed beside the garden gate, its petals soft as velvet. Its scent filled the warm "
    "evening air and drew bees from across the yard.",
    "The sea was calm at dawn, reflecting the pink sky like a mirror. By noon the wind had picked up, "
    "and white waves crashed against the harbour wall.",
    "The squirrel raced up the oak tree with an acorn in its mouth. It stopped on a high branch, "
    "looked around carefully, and buried its prize in a hollow.",
    "The old tractor chugged across the field, pulling a plough behind it. Seagulls followed in its "
    "wake, diving for worms in the freshly turned soil.",
    "The train pulled into the station with a long whistle. Passengers hurried along the platform "
    "with their suitcases, searching for their carriages.",
    "A tulip opened its bright yellow petals in the spring sunshine. Rows of them lined the path, "
    "swaying gently whenever the breeze passed through.",
    "The turtle swam slowly through the clear blue water, its flippers moving in long strokes. It "
    "surfaced for a breath of air and then dived back towards the reef.",
    "The whale surfaced once, blew a tall spout of mist and dived again. For a moment its huge tail "
    "rose above the waves before sliding silently into the deep.",
    "A wolf howled from the ridge as the snow began to fall. Somewhere in the valley below, the rest "
    "of the pack answered, and the forest fell silent.",
    "The airplane climbed steeply into the grey sky, its engines roaring. Within minutes it was above "
    "the clouds, flying smoothly towards the setting sun.",
)

# Real checkpoint shapes (config fields) and beam widths. Marian: Helsinki-NLP/opus-mt-en-de (and
# -de-en, same shape). FSMT: facebook/wmt19-en-de as fairseq's checkpoint args give it (encoder FFN
# 8192, decoder FFN 4096); tie_word_embeddings as FSMTConfig's default (changes size, not compute).

# FSMT as fairseq's checkpoint args give facebook/wmt19-en-de (encoder FFN 8192, decoder FFN 4096);
# tie_word_embeddings as FSMTConfig's default (changes the size, not the compute).
ARCHS = {
    "fsmt": dict(src_vocab_size=42024, tgt_vocab_size=42024, d_model=1024, encoder_layers=6, decoder_layers=6,
                 encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=4096,
                 max_position_embeddings=1024, activation_function="relu", scale_embedding=True),
}

# (label, models, TextNoise parameters beyond the models); the last is the default.
CANDIDATES = (
    ("wmt19, transformers, 5 beams (reference, nlpaug's default)", "wmt19", {"backend": "transformers", "num_beams": None}),
    ("opus-mt, transformers, 4 beams (its generation config)", "opus-mt", {"backend": "transformers", "num_beams": None}),
    ("opus-mt, transformers, 2 beams", "opus-mt", {"backend": "transformers", "num_beams": 2}),
    ("opus-mt, transformers, greedy", "opus-mt", {"backend": "transformers", "num_beams": 1}),
    ("opus-mt, CTranslate2 int8, 4 beams", "opus-mt", {"backend": "ctranslate2", "num_beams": 4}),
    ("opus-mt, CTranslate2 int8, greedy (default)", "opus-mt", {"backend": "ctranslate2", "num_beams": 1}),
)
SLOW_TEXTS = {0: 2, 1: 4, 2: 4, 3: 8}  # candidate index -> texts timed (--texts for the others)

def machine_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def others_running() -> list[str]:
    """Command lines of the other benchmarks now running (pgrep -f OTHER_BENCHMARKS)."""
    result = subprocess.run(["pgrep", "-af", OTHER_BENCHMARKS], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if line.strip()]


def wait_for_quiet_machine(deadline: float, poll: float = 10.0) -> float:
    """Block until no other benchmark runs or `deadline` (time.monotonic()) passes; seconds waited."""
    start = time.monotonic()
    running = others_running()
    while running and time.monotonic() < deadline:
        print(f"  waiting: another benchmark runs ({running[0][:100]})", flush=True)
        time.sleep(poll)
        running = others_running()
    if running:
        print("  gave up waiting: timing while another benchmark runs", flush=True)
    return time.monotonic() - start


def full_vocab_tokenizer(tiny_dir: Path, vocab_size: int):
    """The word-level tokenizer saved in `tiny_dir` by `fixtures.text_models.build_tiny_translation_model`,
    its vocabulary filled up to `vocab_size` with made-up words ("x00055", ...), so that every
    token id a model of that vocabulary emits decodes to one word that re-tokenises to one token."""
    from tokenizers import Tokenizer, models
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tiny = AutoTokenizer.from_pretrained(tiny_dir)
    vocab = tiny.get_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab))), "tiny tokenizer ids are not 0..n-1"
    width = len(str(vocab_size))
    vocab.update({f"x{i:0{width}d}": i for i in range(len(vocab), vocab_size)})
    backend = Tokenizer.from_str(tiny.backend_tokenizer.to_str())
    backend.model = models.WordLevel(vocab, unk_token=tiny.unk_token)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=tiny.pad_token, bos_token=tiny.bos_token, eos_token=tiny.eos_token,
        unk_token=tiny.unk_token, model_input_names=["input_ids", "attention_mask"])


def build_fsmt_model(path: Path, tiny_dir: Path, seed: int, max_length: int) -> str:
    """Save a random FSMT model of facebook/wmt19-en-de's size and its tokenizer
    (`full_vocab_tokenizer`) to `path`, a checkpoint folder; return it as str.

    The generation config is the real checkpoint's (5 beams, </s> forced at max_length), with token
    ids renumbered to the tokenizer's (<pad> 0, <s> 1, </s> 2, <unk> 3), plus what makes every
    translation exactly `max_length` tokens long: <s>, <pad> and <unk> are never emitted
    (`bad_words_ids`) and </s> not before the last step (`min_length`)."""
    import torch
    from transformers import FSMTConfig, FSMTForConditionalGeneration, GenerationConfig

    tokenizer = full_vocab_tokenizer(tiny_dir, ARCHS["fsmt"]["tgt_vocab_size"])
    pad, bos, eos, unk = (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                          tokenizer.unk_token_id)
    ids = dict(pad_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos)
    config = FSMTConfig(langs=["en", "de"], **ARCHS["fsmt"], **ids, bos_token_id=bos, decoder_start_token_id=eos)
    with torch.random.fork_rng(devices=[]):  # leave the caller's torch RNG alone
        torch.manual_seed(seed)
        model = FSMTForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        num_beams=5, max_length=200, early_stopping=False, length_penalty=1.0, decoder_start_token_id=eos,
        **ids, bad_words_ids=[[pad], [bos], [unk]], min_length=max_length - 1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def build_models(work: Path, seed: int, max_length: int) -> dict:
    """{"wmt19": (en-de folder, de-en folder), "opus-mt": (...)}, random models of the real sizes."""
    from luma_noise.fixtures.marian import build_marian_model
    from luma_noise.fixtures.text_models import build_tiny_translation_model

    build_tiny_translation_model(work / "tokenizer-source", seed=seed)  # only its tokenizer is used
    return {
        "wmt19": tuple(build_fsmt_model(work / f"wmt19-{pair}", work / "tokenizer-source", seed + i, max_length)
                       for i, pair in enumerate(("en-de", "de-en"), 1)),
        "opus-mt": tuple(build_marian_model(work / f"opus-mt-{pair}", seed + i, "opus-mt")[0]
                         for i, pair in enumerate(("en-de", "de-en"), 3)),
    }


def time_candidate(models: tuple, params: dict, texts: list, rngs, max_length: int, threads: int) -> dict:
    """One-off load, warm-up and per-text wall/CPU seconds of one candidate (one call, all texts),
    on `threads` cores (torch threads; CTranslate2 replicas)."""
    import torch

    import luma_noise.noise.back_translation
    from luma_noise.noise.text import TextNoise

    torch.set_num_threads(threads)
    luma_noise.noise.back_translation._cores = lambda: threads
    noise = TextNoise(["BackTranslationNoise"], {"BackTranslationNoise": {
        "from_model_name": models[0], "to_model_name": models[1], "device": "cpu", "batch_size": 1,
        "max_length": max_length, **params}})
    start = time.perf_counter()
    noise._augmenter("BackTranslationNoise")  # nlpaug loads both models here (CTranslate2: converts first)
    load_s = time.perf_counter() - start
    noise(texts[:1], rngs(range(1)))  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    outputs = noise(texts, rngs(range(len(texts))))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"load_s": load_s, "per_text_s": wall / len(texts), "cpu_per_text_s": cpu / len(texts), "n": len(texts),
            "words_out": [len(out.split()) for out, _ in outputs]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=32, help="passages timed per fast candidate (cycled from 32)")
    parser.add_argument("--max-length", type=int, default=40, help="tokens per translation; every translation reaches it")
    parser.add_argument("--rounds", type=int, default=2, help="times every candidate is measured")
    parser.add_argument("--only", type=int, nargs="*", help="candidate indices to run (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=machine_cores(),
                        help="cores used: torch threads, CTranslate2 replicas (default: all)")
    args = parser.parse_args()
    if args.texts < 1 or args.max_length < 3 or args.rounds < 1:
        parser.error("--texts, --rounds must be >= 1 and --max-length >= 3")
    chosen = args.only if args.only is not None else list(range(len(CANDIDATES)))

    wall = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="luma-bench-bt-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["HF_DATASETS_CACHE"] = str(work / "datasets-cache")  # a fresh conversion cache
    deadline = time.monotonic() + 5 * 60
    waited = wait_for_quiet_machine(deadline)
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    texts = [PASSAGES[i % len(PASSAGES)] for i in range(args.texts)]
    seeds = np.random.default_rng(args.seed).integers(2**32, size=len(texts))
    rngs = lambda indices: [np.random.default_rng(int(seeds[i])) for i in indices]  # noqa: E731
    results = {i: [] for i in chosen}
    try:
        start = time.perf_counter()
        models = build_models(work, args.seed, args.max_length)
        built = time.perf_counter() - start
        for round_ in range(args.rounds):
            for i in chosen:
                label, family, params = CANDIDATES[i]
                n = min(SLOW_TEXTS.get(i, args.texts), args.texts)
                waited += wait_for_quiet_machine(deadline)
                result = time_candidate(models[family], params, texts[:n], rngs, args.max_length, args.threads)
                result["load_avg"] = os.getloadavg()[0]
                results[i].append(result)
                print(f"round {round_ + 1}: {label}: {1e3 * result['per_text_s']:,.0f} ms per text, "
                      f"CPU {1e3 * result['cpu_per_text_s']:,.0f} ms "
                      f"({n} texts, load {result['load_s']:.1f} s, 1-min load average {result['load_avg']:.1f})", flush=True)
        others = others_running()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    default = len(CANDIDATES) - 1
    rows = []
    for i in chosen:
        runs = results[i]
        per_text = [r["per_text_s"] for r in runs]
        ratios = ([f"{r['per_text_s'] / d['per_text_s']:.1f}" for r, d in zip(runs, results[default])]
                  if default in results else ["-"])
        hours = [SAMPLE_NOISE_TEXTS * t / 3600 for t in per_text]
        rows.append((CANDIDATES[i][0], f"{runs[0]['n']}", " / ".join(f"{1e3 * t:,.0f}" for t in per_text),
                     " / ".join(f"{1e3 * r['cpu_per_text_s']:,.0f}" for r in runs),
                     " / ".join(ratios), " / ".join(f"{h:.2f}" for h in hours),
                     " / ".join(f"{r['load_s']:.1f}" for r in runs)))
    print(f"\n## Back-translation per text, batch_size 1, {args.max_length} tokens per translation, "
          f"{args.rounds} round(s)\n")
    print(table(("candidate", "texts", "wall ms per text (rounds)", "CPU ms per text", "x default (same round)",
                 f"hours for {SAMPLE_NOISE_TEXTS:,} texts", "one-off load s"), rows))
    words = sorted({w for runs in results.values() for r in runs for w in r["words_out"]})
    print(f"\ntorch {torch.__version__} on {args.threads} thread(s), CTranslate2 {args.threads} replica(s) of one "
          f"thread, {machine_cores()} cores; words out per "
          f"text {words[0]}-{words[-1]} (expected about {args.max_length - 2}); 1-min load average "
          f"{min(r['load_avg'] for v in results.values() for r in v):.1f}-"
          f"{max(r['load_avg'] for v in results.values() for r in v):.1f}; waited {waited:.0f} s for other "
          f"benchmarks; building the random models (no part of LUMA's cost) {built:.0f} s. CTranslate2's one-off "
          f"load includes converting both models on the first round (cached afterwards).")
    if others:
        print(f"Warning: another benchmark was running at the end: {others[0][:100]}")
    print(f"\ntotal {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
