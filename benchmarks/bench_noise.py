"""Speed and strength of LUMA's sample noise: image corruptions, audio backgrounds, text noise.

    python benchmarks/bench_noise.py                 # about 20 s on 2 cores
    python benchmarks/bench_noise.py --images 100 --rounds 5

Prints markdown tables:
(a) ms per 32x32 image for each corruption at severity 4 (`corrupt_image`), warm: one
    call per corruption is made and discarded first (glass blur compiles its numba kernel
    on first use, about 2.5 s; a few others pay one-off imports or caches);
(b) mean PSNR (dB) per corruption x severity 1..5 (`damage_table`);
(c) ms per 1 s, 16 kHz clip for `AudioNoise`, with synthetic ESC-50-like backgrounds
    (5 s, 44.1 kHz, 16-bit; one padded with digital silence as ESC-50 pads short clips);
(d) ms per text for each text noise of `luma_noise.noise.text.TextNoise`, if that module exists,
    except back-translation and the WordNet ones (they need downloaded models/corpora).

Images are crops of the photos bundled with scikit-image (no download), resized to 32x32
like CIFAR's. Timings are the best of `--rounds` rounds over all images (and the median
round, since other processes share the machine). Every random draw comes from an explicit
`numpy.random.Generator` seeded with `--seed`.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from luma_noise.noise.audio import AudioNoise
from luma_noise.noise.image import IMAGE_CORRUPTIONS, SEVERITIES, corrupt_image, damage_table

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
CLIP_RATE = 16_000  # Hz, LUMA's wavs
ESC50_RATE = 44_100  # Hz, ESC-50's clips
ESC50_SECONDS = 5.0
# Noises left out of (d): back-translation runs two translation models; the WordNet ones need nltk corpora.
TEXT_SKIPPED = ("BackTranslationNoise", "AntonymNoise", "SynonymNoise")
TEXTS = (
    "A small brown horse is grazing in the field next to the old barn.",
    "The truck drove slowly down the narrow road towards the harbour at dawn.",
    "Two bees were buzzing around the bright yellow flowers in the garden.",
    "An elephant sprayed water over its back while the calf watched from the shore.",
    "The whale surfaced once, blew a tall spout of mist and dived again.",
    "He picked up the telephone, listened for a moment and put it down without a word.",
    "Roses climbed over the fence and filled the whole street with their scent.",
    "A lone wolf howled from the ridge as the snow began to fall.",
)


def photo(name: str) -> np.ndarray:
    """A photo bundled with scikit-image, as (H, W, 3) uint8 (read from the package, no download)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def to_32(image: np.ndarray, box=None) -> np.ndarray:
    """Crop `box` (left, top, right, bottom; default: the centred square) and resize to 32x32 (PIL, bicubic)."""
    if box is None:
        h, w = image.shape[:2]
        side = min(h, w)
        box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    return np.asarray(Image.fromarray(image).resize((32, 32), Image.Resampling.BICUBIC, box=box))


def photo_crops(n: int, rng: np.random.Generator) -> list:
    """`n` CIFAR-like (32, 32, 3) uint8 images: random square crops (1/4 to all of the short side) of the bundled photos."""
    photos = [photo(name) for name in PHOTOS]
    out = []
    for i in range(n):
        image = photos[i % len(photos)]
        h, w = image.shape[:2]
        side = int(rng.integers(min(h, w) // 4, min(h, w) + 1))
        left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        out.append(to_32(image, (left, top, left + side, top + side)))
    return out


def speech_like(rng: np.random.Generator, seconds: float = 1.0, rate: int = CLIP_RATE) -> np.ndarray:
    """A spoken-word-like float32 clip in [-1, 1]: a gliding harmonic voice (f0 110-180 Hz, harmonics
    up to 4 kHz with two formant-like peaks) under a syllable envelope of about 4 Hz."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110.0 + 70.0 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = np.arange(1, int(4000 / 180) + 1)
    # Two formant-like peaks, ~600 Hz and ~1.8 kHz, placed at each harmonic's frequency for the mean f0 (145 Hz).
    centre = harmonics * 145.0
    gain = np.exp(-((centre - 600.0) / 300.0) ** 2) + 0.5 * np.exp(-((centre - 1800.0) / 500.0) ** 2) + 0.05
    voice = (gain[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t + rng.uniform(0, np.pi)), 0.0, None) ** 2
    clip = voice * syllables
    return (0.5 * clip / np.abs(clip).max()).astype(np.float32)


def _shaped_noise(rng, n: int, rate: int, exponent: float, low_hz: float = 20.0) -> np.ndarray:
    """Gaussian noise with power ∝ 1/f**exponent above `low_hz`, unit peak."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= np.where(f > low_hz, np.maximum(f, low_hz) ** (-exponent / 2), 0.0)
    noise = np.fft.irfft(spectrum, n)
    return noise / np.abs(noise).max()


def esc50_like(rng: np.random.Generator, kind: str, seconds: float = ESC50_SECONDS, rate: int = ESC50_RATE) -> np.ndarray:
    """A synthetic ESC-50-like background (float64, peak 0.8): "rain" (pink noise), "engine" (30 Hz
    harmonics over brown noise), "crickets" (4.5 kHz pulse trains) or "dog" (barks, then digital silence
    for the last 40%, as ESC-50 pads clips shorter than 5 s)."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    if kind == "rain":
        x = _shaped_noise(rng, n, rate, 1.0)
    elif kind == "engine":
        x = sum(np.sin(2 * np.pi * 30.0 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 12))
        x = x / np.abs(x).max() + 0.5 * _shaped_noise(rng, n, rate, 2.0)
    elif kind == "crickets":
        pulses = (np.sin(2 * np.pi * 30.0 * t) > 0.3) * (np.sin(2 * np.pi * 0.8 * t) > -0.2)
        x = pulses * np.sin(2 * np.pi * 4500.0 * t) + 0.05 * _shaped_noise(rng, n, rate, 0.0)
    elif kind == "dog":
        x = np.zeros(n)
        for start in np.sort(rng.uniform(0.0, 0.6 * seconds - 0.3, size=4)):
            i, m = int(start * rate), int(0.25 * rate)
            bark_t = np.arange(m) / rate
            f = 500.0 * np.exp(-3.0 * bark_t)
            bark = sum(np.sin(2 * np.pi * h * np.cumsum(f) / rate) / h for h in range(1, 8))
            x[i:i + m] += bark * np.exp(-bark_t / 0.06) * (1 - np.exp(-bark_t / 0.005))
        x[int(0.6 * n):] = 0.0
    else:
        raise ValueError(f"kind must be one of rain, engine, crickets, dog; got {kind!r}")
    return 0.8 * x / np.abs(x).max()


def write_backgrounds(folder, rng: np.random.Generator, rate: int = ESC50_RATE) -> list:
    """Write four ESC-50-like backgrounds as 16-bit wavs named like ESC-50's files; return their paths."""
    folder = Path(folder)
    names = {"rain": "1-17367-A-10.wav", "engine": "1-18527-A-44.wav", "crickets": "1-57316-A-34.wav", "dog": "1-100032-A-0.wav"}
    paths = []
    for kind, name in names.items():
        soundfile.write(folder / name, esc50_like(rng, kind, rate=rate), rate, subtype="PCM_16")
        paths.append(folder / name)
    return paths


def _time_rounds(run, rounds: int) -> tuple:
    """(best, median) seconds of `rounds` calls of `run`."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def image_speed(images, seeds, rounds: int) -> list:
    """Rows (name, first call ms, best ms/image, median ms/image) at severity 4."""
    rows = []
    for name in IMAGE_CORRUPTIONS:
        start = time.perf_counter()
        corrupt_image(images[0], name, 4, int(seeds[0]))  # warm-up, not counted
        first = time.perf_counter() - start
        best, median = _time_rounds(lambda: [corrupt_image(im, name, 4, int(s)) for im, s in zip(images, seeds)], rounds)
        rows.append((name, 1e3 * first, 1e3 * best / len(images), 1e3 * median / len(images)))
    return rows


def audio_speed(rng: np.random.Generator, clips: int, rounds: int) -> list:
    """Rows (backgrounds' description, best ms/clip, median ms/clip) for `AudioNoise` on 1 s clips."""
    samples = [speech_like(rng) for _ in range(clips)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="luma-bench-audio-") as tmp:
        for rate in (ESC50_RATE, CLIP_RATE):
            folder = Path(tmp) / str(rate)
            folder.mkdir()
            noise = AudioNoise(write_backgrounds(folder, rng, rate))
            draw_rngs = [np.random.default_rng(seed) for seed in rng.integers(2**32, size=clips)]
            noise(samples[0], CLIP_RATE, np.random.default_rng(0))  # warm-up: imports, soundfile.info cache
            best, median = _time_rounds(lambda: [noise(x, CLIP_RATE, r) for x, r in zip(samples, draw_rngs)], rounds)
            label = f"4 backgrounds, 5 s at {rate / 1000:g} kHz" + (" (ESC-50's rate: resampled per call)" if rate != CLIP_RATE else " (no resampling)")
            rows.append((label, 1e3 * best / clips, 1e3 * median / clips))
    return rows


def text_speed(rng: np.random.Generator, rounds: int):
    """Rows (noise, best ms/text, median ms/text, note), or a string saying why text noise was skipped."""
    try:
        from luma_noise.noise import text
    except ImportError as err:  # the module or one of its dependencies (nlpaug) is missing
        return f"skipped: luma_noise.noise.text is not available ({err})"
    if not hasattr(text, "TextNoise"):
        return "skipped: luma_noise.noise.text has no TextNoise"
    names = getattr(text, "TEXT_NOISES", ("KeyboardNoise", "SpellingNoise", "OCRNoise", "RandomCharNoise", "RandomWordNoise"))
    texts = [TEXTS[i % len(TEXTS)] for i in range(64)]
    rows = []
    for name in names:
        if name in TEXT_SKIPPED:
            continue
        try:
            noise = text.TextNoise([name])
            seeds = rng.integers(2**32, size=len(texts))
            noise(texts[:1], [np.random.default_rng(0)])  # warm-up: nlpaug's first call loads its tables
            # Fresh generators per round, so every round does the same work.
            best, median = _time_rounds(lambda: noise(texts, [np.random.default_rng(s) for s in seeds]), rounds)
            rows.append((name, 1e3 * best / len(texts), 1e3 * median / len(texts), ""))
        except Exception as err:  # a missing resource must not hide the other noises' numbers
            rows.append((name, float("nan"), float("nan"), f"failed: {type(err).__name__}: {err}"[:100]))
    return rows


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50, help="images for (a) and (b)")
    parser.add_argument("--clips", type=int, default=20, help="audio clips per round for (c)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; best and median are printed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    images = photo_crops(args.images, rng)
    seeds = rng.integers(2**32, size=len(images))

    print(f"## (a) ms per 32x32 image, severity 4 ({args.images} photo crops, best and median of {args.rounds} rounds)\n")
    print("Warm: the first call per corruption is timed separately and not counted "
          "(frosted_glass_blur compiles numba on its first call).\n")
    rows = image_speed(images, seeds, args.rounds)
    print(table(("corruption", "first call ms", "ms/image best", "ms/image median"),
                [(n, f"{f:.1f}", f"{b:.2f}", f"{m:.2f}") for n, f, b, m in rows]))
    total = sum(b for _, _, b, _ in rows)
    print(f"\nMean over the 15 (one drawn uniformly per example): {total / len(rows):.2f} ms/image "
          f"-> about {1e3 / (total / len(rows)):.0f} images/s on one core.\n")

    print(f"## (b) mean PSNR (dB) vs the clean image, {args.images} photo crops (`damage_table`, seed {args.seed})\n")
    psnr = damage_table(images, seed=args.seed)
    print(table(("corruption", *(f"s{s}" for s in SEVERITIES)),
                [(n, *(f"{psnr[n, s]:.1f}" for s in SEVERITIES)) for n in IMAGE_CORRUPTIONS]))

    print(f"\n## (c) ms per 1 s clip at 16 kHz, `AudioNoise` (SNR 3-5 dB, {args.clips} clips, best and median of {args.rounds} rounds)\n")
    print(table(("backgrounds (synthetic, ESC-50-like)", "ms/clip best", "ms/clip median"),
                [(label, f"{b:.2f}", f"{m:.2f}") for label, b, m in audio_speed(rng, args.clips, args.rounds)]))

    print(f"\n## (d) ms per text, `TextNoise` (64 texts, best and median of {args.rounds} rounds; "
          f"not timed: {', '.join(TEXT_SKIPPED)})\n")
    rows = text_speed(rng, args.rounds)
    if isinstance(rows, str):
        print(rows)
    else:
        print(table(("noise", "ms/text best", "ms/text median", "note"), [(n, f"{b:.3f}", f"{m:.3f}", note) for n, b, m, note in rows]))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
