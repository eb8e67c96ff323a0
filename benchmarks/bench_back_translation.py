"""Cost per text of back-translation noise (`TextNoise(["BackTranslationNoise"], params)`) on this machine.

    python benchmarks/bench_back_translation.py                    # about 2-3 min on 2 cores
    python benchmarks/bench_back_translation.py --texts 16 --max-length 64

The real checkpoints cannot be downloaded here, so two *randomly initialised* models of the
real size are built offline and saved to a temporary folder, then loaded through `TextNoise`
exactly as checkpoints are (`from_model_name=<folder>`, `to_model_name=<folder>`):

- architecture (`--arch`): "marian" (default) as Helsinki-NLP/opus-mt-en-de and -de-en: d_model
  512, 6 encoder + 6 decoder layers, 8 heads, FFN 2048, swish, vocabulary 58,101 with shared, tied
  embeddings, ~74M parameters each, beam search with 4 beams as their generation config. Or
  "fsmt" as nlpaug's default facebook/wmt19-en-de and -de-en: d_model 1024, 6 + 6 layers, 16 heads,
  FFN 8192 (encoder) / 4096 (decoder) as fairseq's checkpoint args give them, vocabularies 42,024,
  5 beams (untied output embedding, FSMTConfig's default: changes the size, not the compute);
  about 2.5x the time per text of "marian" on 2 cores, so use fewer texts (`--texts 8`).
- tokenizer: the word-level fast tokenizer of `tests/tiny_text_models.py` (one token per word
  or punctuation run, unknown words -> <unk>: the encoder sees one position per word, a little
  fewer than a real subword tokenizer's), its vocabulary filled up with made-up words to the
  model's size, so any token a model emits decodes to one word. Every translation runs to exactly
  `--max-length` tokens (decoder start, max_length - 2 words, </s> forced last as in the real
  configs; <s>/<pad>/<unk> are never emitted, </s> not earlier), and the intermediate "German"
  re-tokenises to as many tokens. Random weights decode garbage: the timing is of the compute for
  that length, which is what a trained model of this size spends on a translation of that length
  (real translations of these ~35-word passages are about that long; the cost grows about
  linearly with `--max-length`).

Timed, after waiting until no other benchmark runs (`pgrep -f "benchmarks/bench_(prepare|sampling|noise)"`,
checked every 10 s, given up after 15 min):
- one-off cost: loading both models and tokenizers, which nlpaug does on the noise's first use;
  the first call after it (one text, warm-up included) is printed too;
- batch_size 1 (the CPU default): each text in its own call, so the spread is visible;
  wall and this process's CPU time (the machine may be shared: with 2 threads, CPU ms / wall ms
  near 1 means another process held a core, and multi-threaded torch then slows down several-fold);
- batch_size 32: all texts in one call (batches of 32), after an untimed load and first call.
torch runs on all the machine's cores (`--threads`).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

OTHER_BENCHMARKS = "benchmarks/bench_(prepare|sampling|noise)"

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
ARCHS = {
    "marian": dict(vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                   decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                   max_position_embeddings=512, activation_function="swish", scale_embedding=True,
                   share_encoder_decoder_embeddings=True, tie_word_embeddings=True),
    "fsmt": dict(src_vocab_size=42024, tgt_vocab_size=42024, d_model=1024, encoder_layers=6, decoder_layers=6,
                 encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=4096,
                 max_position_embeddings=1024, activation_function="relu", scale_embedding=True),
}
REAL_NAMES = {"marian": "Helsinki-NLP/opus-mt-en-de / -de-en", "fsmt": "facebook/wmt19-en-de / -de-en (nlpaug's default)"}
NUM_BEAMS = {"marian": 4, "fsmt": 5}


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
        print("  gave up waiting (15 min): timing while another benchmark runs", flush=True)
    return time.monotonic() - start


def full_vocab_tokenizer(tiny_dir: Path, vocab_size: int):
    """The word-level tokenizer saved in `tiny_dir` by `tiny_text_models.build_tiny_translation_model`,
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


def build_model(arch: str, path: Path, tiny_dir: Path, seed: int, num_beams: int, max_length: int) -> tuple[str, int]:
    """Save a random model of architecture `arch` ("marian" or "fsmt") at its real size and its
    tokenizer (`full_vocab_tokenizer`) to `path`, a checkpoint folder; return (path as str,
    parameter count).

    The generation config is the real checkpoint's (beam search, </s> forced at max_length, Marian
    never emitting <pad>), with token ids renumbered to the tokenizer's (<pad> 0, <s> 1, </s> 2,
    <unk> 3), plus what makes every translation exactly `max_length` tokens long: <s>, <pad> and
    <unk> are never emitted (`bad_words_ids`, a fixed mask) and </s> not before the last step
    (`min_length`). (`suppress_tokens` would do it too but costs ~17 s per generate call at this
    vocabulary size.)"""
    import torch
    from transformers import FSMTConfig, FSMTForConditionalGeneration, GenerationConfig, MarianConfig, MarianMTModel

    vocab_size = ARCHS[arch].get("vocab_size") or ARCHS[arch]["tgt_vocab_size"]
    tokenizer = full_vocab_tokenizer(tiny_dir, vocab_size)
    pad, bos, eos, unk = (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                          tokenizer.unk_token_id)
    ids = dict(pad_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos)
    if arch == "marian":  # opus-mt: decoding starts from <pad>
        config = MarianConfig(**ARCHS[arch], **ids, decoder_start_token_id=pad)
        real = dict(max_length=512, decoder_start_token_id=pad)
    else:  # wmt19: decoding starts from </s>
        config = FSMTConfig(langs=["en", "de"], **ARCHS[arch], **ids, bos_token_id=bos, decoder_start_token_id=eos)
        real = dict(max_length=200, early_stopping=False, length_penalty=1.0, decoder_start_token_id=eos)
    with torch.random.fork_rng(devices=[]):  # leave the caller's torch RNG alone
        torch.manual_seed(seed)
        model = (MarianMTModel if arch == "marian" else FSMTForConditionalGeneration)(config)
    model.generation_config = GenerationConfig(
        num_beams=num_beams, **real, **ids, bad_words_ids=[[pad], [bos], [unk]], min_length=max_length - 1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path), sum(p.numel() for p in model.parameters())


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=32, help="passages timed (cycled from 32 built-in ones)")
    parser.add_argument("--max-length", type=int, default=40,
                        help="max_length of each translation, in tokens; every translation reaches it")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="marian",
                        help="model architecture at its real size (fsmt: ~2.5x the time per text; try --texts 8)")
    parser.add_argument("--num-beams", type=int, default=None,
                        help="beam width in the models' generation config (default: the real one, marian 4, fsmt 5)")
    parser.add_argument("--threads", type=int, default=machine_cores(), help="torch threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="save the models into DIR and keep them (default: a temp folder, removed)")
    args = parser.parse_args()
    args.num_beams = args.num_beams or NUM_BEAMS[args.arch]
    if args.texts < 1 or args.max_length < 3 or args.num_beams < 1 or args.threads < 1:
        parser.error("--texts, --num-beams, --threads must be >= 1 and --max-length >= 3")

    wall = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    deadline = time.monotonic() + 15 * 60
    waited = wait_for_quiet_machine(deadline)

    import torch
    import transformers
    from tiny_text_models import build_tiny_translation_model

    from luma_noise.text import TextNoise

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="luma-bench-bt-"))
    try:
        start = time.perf_counter()
        build_tiny_translation_model(work / "tokenizer-source", seed=args.seed)  # only its tokenizer is used
        en_de, n_params = build_model(args.arch, work / "en-de", work / "tokenizer-source", args.seed + 1,
                                      args.num_beams, args.max_length)
        de_en, _ = build_model(args.arch, work / "de-en", work / "tokenizer-source", args.seed + 2,
                               args.num_beams, args.max_length)
        built = time.perf_counter() - start
        size_mb = sum(f.stat().st_size for f in (work / "en-de").iterdir()) / 2**20

        texts = [PASSAGES[i % len(PASSAGES)] for i in range(args.texts)]
        seeds = np.random.default_rng(args.seed).integers(2**32, size=len(texts))

        def rngs(indices):
            return [np.random.default_rng(int(seeds[i])) for i in indices]

        def noise(batch_size):
            params = {"from_model_name": en_de, "to_model_name": de_en, "device": "cpu",
                      "max_length": args.max_length, "batch_size": batch_size}
            return TextNoise(["BackTranslationNoise"], {"BackTranslationNoise": params})

        def timed(fn, *fn_args):
            """(wall s, this process's CPU s, result): CPU time shows how much of the wall time was ours."""
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            result = fn(*fn_args)
            return time.perf_counter() - wall_start, time.process_time() - cpu_start, result

        # One-off: `TextNoise(...)` and its augmenter (nlpaug loads both models and tokenizers on
        # first use; `_augmenter` is that first use, without a translation), then the first call.
        waited += wait_for_quiet_machine(deadline)
        load_avg = [os.getloadavg()[0]]
        one = noise(1)
        load_s, _, _ = timed(one._augmenter, "BackTranslationNoise")
        first_s, _, first_out = timed(one, texts[:1], rngs([0]))

        # batch_size 1: one call per text, each timed.
        per_text, per_text_cpu, outputs = [], [], []
        for i, text in enumerate(texts):
            wall_s, cpu_s, out = timed(one, [text], rngs([i]))
            per_text.append(wall_s)
            per_text_cpu.append(cpu_s)
            outputs.append(out[0][0])
        assert outputs[0] == first_out[0][0], "batch_size 1 gave two outputs for one text"
        del one
        load_avg.append(os.getloadavg()[0])

        # batch_size 32: all texts in one call, after an untimed load and first call.
        waited += wait_for_quiet_machine(deadline)
        thirty_two = noise(32)
        thirty_two(texts[:2], rngs([0, 1]))
        load_avg.append(os.getloadavg()[0])
        batched_s, batched_cpu, batched = timed(thirty_two, texts, rngs(range(len(texts))))
        load_avg.append(os.getloadavg()[0])
        del thirty_two

        # Sanity: the work really is max_length tokens per translation.
        tokenizer = transformers.AutoTokenizer.from_pretrained(en_de)
        in_tokens = [len(tokenizer(t)["input_ids"]) for t in texts]
        out_words = [len(out.split()) for out in outputs] + [len(out.split()) for out, _ in batched]
        others = others_running()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    median_1 = statistics.median(per_text)
    mean_1 = statistics.fmean(per_text)
    per_text_32 = batched_s / len(texts)
    batches = -(-len(texts) // 32)
    threads = torch.get_num_threads()

    print(f"\n## Back-translation cost per text, `TextNoise([\"BackTranslationNoise\"])`, "
          f"{len(texts)} LUMA-like passages, max_length {args.max_length}\n")
    print(f"Models: 2 x randomly initialised {args.arch} of the size of {REAL_NAMES[args.arch]} "
          f"({n_params / 1e6:.1f}M parameters, {size_mb:.0f} MB each on disk), beam search num_beams={args.num_beams}. "
          f"Each of the two translations runs to max_length={args.max_length} tokens "
          f"(words out: {min(out_words)}-{max(out_words)}, expected {args.max_length - 2}); "
          f"input {statistics.fmean(in_tokens):.0f} tokens per passage on average ({min(in_tokens)}-{max(in_tokens)}, "
          f"word-level). torch {torch.__version__}, {threads} thread(s) on {machine_cores()} cores; "
          f"waited {waited:.0f} s for other benchmarks; 1-min load average during timing "
          f"{min(load_avg):.1f}-{max(load_avg):.1f}.\n")
    rows = [
        ("batch_size 1 (CPU default), per text",
         f"{1e3 * mean_1:,.0f} (median {1e3 * median_1:,.0f}, {1e3 * min(per_text):,.0f}-{1e3 * max(per_text):,.0f})",
         f"{1e3 * statistics.fmean(per_text_cpu):,.0f}", f"{3600 / mean_1:,.0f}"),
        (f"batch_size 32, per text ({len(texts)} texts in one call, {batches} batch{'es' if batches > 1 else ''})",
         f"{1e3 * per_text_32:,.0f}", f"{1e3 * batched_cpu / len(texts):,.0f}", f"{3600 / per_text_32:,.0f}"),
        ("one-off, per TextNoise: load both models + tokenizers (files just written, in page cache)", f"{1e3 * load_s:,.0f}", "", ""),
    ]
    print(table(("", "wall ms", "CPU ms (all threads)", "texts per hour"), rows))
    print(f"\nFirst call after the load (one text, warm-up included): {first_s:.1f} s. "
          f"Batching 32 is {mean_1 / per_text_32:.2f}x faster per text than batch_size 1. "
          f"CPU ms / wall ms: {statistics.fmean(per_text_cpu) / mean_1:.1f} at batch_size 1, "
          f"{batched_cpu / batched_s:.1f} at 32" + (f" (with {threads} threads; near 1 means another process "
          f"held a core, and then multi-threaded torch slows down a lot). " if threads > 1 else ". ") +
          f"Building and saving the two random models (no part of LUMA's cost): {built:.1f} s.")
    if others:
        print(f"Warning: another benchmark was running at the end: {others[0][:100]}")
    print(f"\ntotal {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
