"""Deep-feature extraction against the bare forward passes of the same models on the same batches.

    python benchmarks/bench_features.py                    # 64 items per modality, 2 rounds
    python benchmarks/bench_features.py --items 32 --modalities audio

Random models of the real architectures' sizes (the checkpoints cannot be downloaded here),
saved to a temporary folder and loaded through `deep_features.Extractor` as checkpoints are:
Wav2Vec 2.0 large LV-60 (layer-norm encoder, attention mask; 315 M parameters), BERT base
(110 M; a vocabulary of one-token words so texts have the intended token count) and
ResNet-18 (11 M) behind `microsoft/resnet-18`'s image processor (32x32 images resized to 224).
Items: clips of `--min-seconds`..`--max-seconds` at 16 kHz, texts of about `--tokens`
tokens, 32x32 images.

For each modality it times `Extractor.run` (reading items, preprocessing, forward passes,
pooling; serial on the CPU, and again with the next batch prepared in a thread) and the
model's forward passes alone on the batches the extractor forms, with the inputs prepared
beforehand; the ratio is the extractor's overhead, the image processor's resizing included. For audio it also times
the forward passes on batches in the items' own order (what batching without length grouping
pads). Per-item costs are extrapolated to the items LUMA's deep-feature configs extract.
"""

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from luma_noise.variants import deep_features

# Items whose features a first build extracts at the real row counts: label_noise_* the
# train and test splits (21,000 + 4,200 per modality), low_diversity every candidate of
# `variants.diversity.pool` (counted in a build of `python -m luma_noise.fixtures.mirror --scale 1.0`).
WORKLOADS = {
    "label_noise_*": {"image": 25_200, "audio": 25_200, "text": 25_200},
    "low_diversity": {"image": 50_160, "audio": 115_769, "text": 52_299},
}
AUDIO_RATE = 16_000


def _save_models(folder: Path) -> dict:
    """Random real-size checkpoints under `folder`; returns {modality: path}."""
    torch.manual_seed(0)
    paths = {m: folder / m for m in ("audio", "text", "image")}
    audio = transformers.Wav2Vec2Config(  # facebook/wav2vec2-large-960h-lv60-self
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, feat_extract_activation="gelu")
    transformers.Wav2Vec2Model(audio).eval().save_pretrained(paths["audio"])
    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=AUDIO_RATE, padding_value=0.0,
                                          do_normalize=True, return_attention_mask=True).save_pretrained(paths["audio"])
    paths["text"].mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30_517)]
    (paths["text"] / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(str(paths["text"] / "vocab.txt"), do_lower_case=True).save_pretrained(paths["text"])
    transformers.BertModel(transformers.BertConfig()).eval().save_pretrained(paths["text"])  # bert-base-uncased
    image = transformers.ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                                      layer_type="basic")  # microsoft/resnet-18
    transformers.ResNetModel(image).eval().save_pretrained(paths["image"])
    try:  # transformers >= 5 without torchvision: the PIL processor, named to avoid a fallback warning
        from transformers import ConvNextImageProcessorPil as processor
    except ImportError:
        from transformers import ConvNextImageProcessor as processor
    processor(size={"shortest_edge": 224}, crop_pct=0.875).save_pretrained(paths["image"])
    return {m: str(p) for m, p in paths.items()}


def _items(modality: str, args, rng) -> list:
    n = args.items
    if modality == "audio":
        seconds = rng.uniform(args.min_seconds, args.max_seconds, size=n)
        return [(rng.uniform(-0.3, 0.3, size=int(s * AUDIO_RATE)).astype(np.float32), AUDIO_RATE) for s in seconds]
    if modality == "text":
        counts = rng.integers(args.tokens // 2, args.tokens * 3 // 2, size=n)
        return [(" ".join(f"w{w}" for w in rng.integers(0, 30_000, size=c)), "w1") for c in counts]
    return [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(n)]


def _clock() -> np.ndarray:
    """(wall seconds, CPU seconds of this process); CPU time is steadier on a shared machine."""
    return np.array([time.perf_counter(), time.process_time()])


def _forward_seconds(extractor, items, batches) -> np.ndarray:
    """(wall, CPU) seconds of the model's forward passes alone over `batches` (inputs prepared untimed)."""
    processor, model, device = extractor.load()
    prepare = deep_features._STEPS[extractor.modality][0]
    inputs = [prepare([items[i] for i in batch], processor, model, device) for batch in batches]
    calls = [kw for batch in inputs for _, kw, _ in batch] if extractor.modality == "audio" else inputs
    start = _clock()
    with torch.inference_mode():
        for kwargs in calls:
            model(**kwargs)
    return _clock() - start


def _extract_seconds(extractor, items, sizes, prefetch=None) -> np.ndarray:
    """(wall, CPU) seconds of `Extractor.run` over all items (prefetch: see `deep_features.Extractor`)."""
    extractor.prefetch = prefetch
    start = _clock()
    for _ in extractor.run(items, extractor.plan(range(len(items)), sizes)):
        pass
    return _clock() - start


def bench(modality: str, path: str, args) -> np.ndarray:
    """Print the timings of one modality; return the extraction cost per item, (wall, CPU) s."""
    items = _items(modality, args, np.random.default_rng(0))
    sizes = None if modality == "image" else [deep_features.item_size(modality, item) for item in items]
    extractor = deep_features.Extractor(modality, path, batch_size=args.batch_size)
    batches = extractor.plan(range(len(items)), sizes)
    _extract_seconds(extractor, items[: args.batch_size], None)  # warm-up: load, first allocations
    extract, ahead, forward = [], [], []
    for _ in range(args.rounds):  # interleaved, best of: the machine may be shared
        extract.append(_extract_seconds(extractor, items, sizes))
        ahead.append(_extract_seconds(extractor, items, sizes, prefetch=True))
        forward.append(_forward_seconds(extractor, items, batches))
    extract, ahead, forward = (np.min(t, axis=0) for t in (extract, ahead, forward))
    per_item = extract / len(items)
    print(f"{modality}: {len(items)} items, batch {args.batch_size}: extraction {extract[0]:.2f} s wall / "
          f"{extract[1]:.2f} s CPU, forward passes alone {forward[0]:.2f} / {forward[1]:.2f}; "
          f"ratio {extract[0] / forward[0]:.3f} wall, {extract[1] / forward[1]:.3f} CPU; per item "
          f"{per_item[0] * 1e3:.0f} ms wall, {per_item[1] * 1e3:.0f} ms CPU")
    print(f"  with the next batch prepared in a thread: ratio {ahead[0] / forward[0]:.3f} wall, "
          f"{ahead[1] / forward[1]:.3f} CPU")
    if modality == "audio":
        unsorted = [np.arange(i, min(i + args.batch_size, len(items))) for i in range(0, len(items), args.batch_size)]
        padded = _forward_seconds(extractor, items, unsorted)
        print(f"  forward passes on batches in item order (no length grouping): {padded[1]:.2f} s CPU, "
              f"{padded[1] / forward[1]:.2f}x the grouped batches")
    return per_item


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64, help="items per modality (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="the extractor's default, 32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modalities", nargs="+", default=["image", "text", "audio"])
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=1.5)
    parser.add_argument("--tokens", type=int, default=64, help="mean tokens per text")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {deep_features._resolve_device(None)}")
    with tempfile.TemporaryDirectory(prefix="luma-bench-features-") as folder:
        start = time.perf_counter()
        paths = _save_models(Path(folder))
        print(f"random real-size models written in {time.perf_counter() - start:.0f} s")
        cost = {m: bench(m, paths[m], args) for m in args.modalities}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (the real-size models and their activations, one modality at a time)")
    for config, counts in WORKLOADS.items():
        wall = sum(counts[m] * cost[m][0] for m in cost) / 3600
        cpu = sum(counts[m] * cost[m][1] for m in cost) / 3600
        detail = ", ".join(f"{m} {counts[m]:,} x {cost[m][0] * 1e3:.0f} ms" for m in cost)
        print(f"{config} first build: {wall:.1f} h at this run's wall-clock cost per item ({detail}); "
              f"{cpu:.1f} CPU hours, {cpu / os.cpu_count():.1f} h if all {os.cpu_count()} cores were free")


if __name__ == "__main__":
    main()
