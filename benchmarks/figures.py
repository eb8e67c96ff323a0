"""Figures for the docs: what LUMA's sample noise and compactness do.

    python benchmarks/figures.py          # writes docs/*.png, about 20 s

- docs/corruptions.png: the 15 image corruptions (rows) at severities 1..5 (columns, after
  the clean image) on two photos bundled with scikit-image, centre-cropped and resized to
  32x32 like CIFAR's, shown enlarged with nearest-neighbour so the pixels stay visible.
- docs/audio_noise_spectrogram.png: spectrograms of a synthetic spoken-word-like clip
  before and after `AudioNoise` at 4 dB SNR with a synthetic ESC-50-like rain background.
- docs/compactness.png: one class's pool of 1,300 synthetic 64-D feature vectors projected
  on its first two principal components, with the 500 rows `diversity_sample` keeps for
  compactness k = 0, 10, 20 (num_sampling = 10), like Figure 7 of the paper. The features
  are synthetic because the feature models' weights cannot be downloaded here.

Every random draw comes from a fixed seed, so the figures are the same on every run.
"""

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.signal import spectrogram  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_noise import CLIP_RATE, photo, speech_like, to_32, write_backgrounds  # noqa: E402

from luma_noise.noise.audio import AudioNoise  # noqa: E402
from luma_noise.noise.image import IMAGE_CORRUPTIONS, SEVERITIES, corrupt_image  # noqa: E402
from luma_noise.variants.sampling import diversity_sample  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
SEED = 0
PNG = {"dpi": 100, "metadata": {"Software": None}}  # no version string: same bytes on every run


def corruption_grid(path: Path) -> None:
    """15 corruptions x (clean, severity 1..5), for chelsea (cat) and coffee (cup)."""
    photos = {name: to_32(photo(name)) for name in ("chelsea", "coffee")}
    columns = ("clean", *(f"severity {s}" for s in SEVERITIES))
    fig, axes = plt.subplots(len(IMAGE_CORRUPTIONS), 2 * len(columns), figsize=(13, 17),
                             gridspec_kw={"wspace": 0.06, "hspace": 0.08})
    for block, (name, image) in enumerate(photos.items()):
        for row, corruption in enumerate(IMAGE_CORRUPTIONS):
            # One seed per (photo, corruption), shared by its severities: columns differ by severity only.
            seed = 1000 * block + row
            tiles = [image] + [corrupt_image(image, corruption, s, seed) for s in SEVERITIES]
            for col, tile in enumerate(tiles):
                ax = axes[row, block * len(columns) + col]
                ax.imshow(np.kron(tile, np.ones((4, 4, 1), dtype=np.uint8)), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(columns[col], fontsize=9)
            axes[row, 0].set_ylabel(corruption, rotation=0, ha="right", va="center", fontsize=10)
        axes[0, block * len(columns)].annotate(
            f"skimage.data.{name}() — 32x32", xy=(0, 1.45), xycoords="axes fraction", fontsize=11, weight="bold")
    fig.suptitle("LUMA image sample noise: 15 corruptions (imagecorruptions / ImageNet-C tables) at severities 1-5\n"
                 "on 32x32 centre crops of two scikit-image photos (shown 4x, nearest-neighbour)", fontsize=12, y=0.935)
    fig.savefig(path, bbox_inches="tight", **PNG)
    plt.close(fig)


def _spectrogram_db(samples):
    f, t, power = spectrogram(samples, fs=CLIP_RATE, nperseg=512, noverlap=384, window="hann")
    return f, t, 10.0 * np.log10(power + 1e-12)


def audio_spectrogram(path: Path) -> None:
    """Clean vs noised (4 dB SNR) spectrogram of a 2 s synthetic voice-like clip."""
    rng = np.random.default_rng(SEED)
    clean = speech_like(rng, seconds=2.0)
    with tempfile.TemporaryDirectory(prefix="luma-figure-") as tmp:
        rain = [p for p in write_backgrounds(tmp, np.random.default_rng(SEED)) if p.name == "1-17367-A-10.wav"]
        noised, record = AudioNoise(rain, min_snr_db=4.0, max_snr_db=4.0)(clean, CLIP_RATE, rng)
    snr = 20 * np.log10(np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean((noised - clean) ** 2)))
    panels = {"clean": clean, f"noised ({snr:.1f} dB SNR measured)": noised, "added background (noised − clean)": noised - clean}
    specs = {title: _spectrogram_db(x) for title, x in panels.items()}
    top = max(s[2].max() for s in specs.values())
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True, constrained_layout=True)
    for ax, (title, (f, t, db)) in zip(axes, specs.items()):
        mesh = ax.pcolormesh(t, f / 1000, db, vmin=top - 80, vmax=top, shading="auto", cmap="magma")
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(mesh, ax=axes, label="power (dB, relative)", shrink=0.9)
    fig.suptitle("AudioNoise at 4 dB SNR — clean: synthetic spoken-word-like signal (harmonic voice, f0 110–180 Hz, "
                 "~4 Hz syllables), 16 kHz;\nbackground: synthetic ESC-50-like 'rain' (pink noise, 5 s at 44.1 kHz, "
                 f"resampled), offset {record.params['offset_s']:.2f} s", fontsize=11)
    fig.savefig(path, **PNG)
    plt.close(fig)


def synthetic_pool(rng: np.random.Generator, n: int = 1300, dim: int = 64) -> np.ndarray:
    """One class's candidate pool: (n, dim) float64 from a 3-component anisotropic Gaussian mixture.

    The spectrum decays like deep features' (a few strong directions), the components overlap,
    and distances to the class centre are about 5-15, the regime where 1/(d^k + 1) separates rows.
    """
    scales = 2.0 * np.exp(-np.arange(dim) / 12.0) + 0.3
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    means = rng.standard_normal((3, dim)) * scales * 0.8
    component = rng.choice(3, size=n, p=(0.5, 0.3, 0.2))
    return (means[component] + rng.standard_normal((n, dim)) * scales) @ basis.T


def compactness_figure(path: Path) -> None:
    """PCA of one class's pool with the 500 rows picked at k = 0, 10, 20 highlighted."""
    rng = np.random.default_rng(SEED)
    pool = synthetic_pool(rng)
    centred = pool - pool.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    distance = np.linalg.norm(centred, axis=1)
    labels = np.zeros(len(pool), dtype=np.int64)
    floor = np.sort(distance)[:500].mean()  # the 500 rows nearest the centre: no k can go below this
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), sharex=True, sharey=True, constrained_layout=True)
    for ax, k in zip(axes, (0, 10, 20)):
        chosen = diversity_sample(pool, labels, n_per_class=500, compactness=k, num_sampling=10,
                                  rng=np.random.default_rng([SEED, k]))
        ax.scatter(*xy.T, s=6, c="0.8", label=f"pool ({len(pool)})", rasterized=True)
        ax.scatter(*xy[chosen].T, s=8, c="tab:blue", label="selected (500)", rasterized=True)
        ax.scatter(0, 0, marker="x", s=80, c="tab:red", label="class centre")
        ax.set_title(f"k = {k}: mean distance to centre {distance[chosen].mean():.2f}\n"
                     f"(whole pool {distance.mean():.2f}; 500 nearest {floor:.2f})", fontsize=11)
        ax.set_xlabel("PC 1")
        ax.set_aspect("equal")
    axes[0].set_ylabel("PC 2")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=10, markerscale=2)
    fig.suptitle("Compactness k in diversity_sample (num_sampling = 10): 500 of one class's 1,300 rows — "
                 "SYNTHETIC 64-D features (Gaussian mixture;\nreal model weights can't be downloaded here), "
                 "projected on the pool's first two principal components; distances in the full 64-D space", fontsize=11)
    fig.savefig(path, **PNG)
    plt.close(fig)


def main():
    DOCS.mkdir(exist_ok=True)
    for name, make in (("corruptions.png", corruption_grid), ("audio_noise_spectrogram.png", audio_spectrogram),
                       ("compactness.png", compactness_figure)):
        make(DOCS / name)
        print(DOCS / name)


if __name__ == "__main__":
    main()
