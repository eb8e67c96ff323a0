"""Image sample noise for LUMA: the 15 corruptions of the paper, through `imagecorruptions`.

`imagecorruptions` draws from numpy's global state (`np.random`), except `impulse_noise`
(scikit-image, seeded through its `seed` argument, else fresh OS entropy) and `glass_blur`
(a numba kernel that seeds numba's own per-thread generator from its `seed` argument, else
from fresh OS entropy). `corrupt_image` therefore takes one 32-bit seed, passes it as `seed=`
to those two and seeds `np.random` with it for the rest, restoring the caller's global state
afterwards. The severity tables are the library's, i.e. ImageNet-C's (tuned for 224 px
images); see `damage_table` for what they do to 32x32 images. `tables="cifar10-c"` selects
CIFAR-10-C's instead, as LUMA's reference tool applies them (`luma_noise.noise.cifar10c`, seeded
through a `numpy.random.Generator`, no global state).
"""

import numbers
import threading

import numpy as np
from PIL import Image

from luma_noise.records import NoiseRecord
from luma_noise.rng import derive_rng

# The paper's names, in the paper's order; values are the library's names.
_LIBRARY_NAME = {
    "gaussian_noise": "gaussian_noise",
    "shot_noise": "shot_noise",
    "impulse_noise": "impulse_noise",
    "defocus_blur": "defocus_blur",
    "frosted_glass_blur": "glass_blur",
    "motion_blur": "motion_blur",
    "zoom_blur": "zoom_blur",
    "snow": "snow",
    "frost": "frost",
    "fog": "fog",
    "brightness": "brightness",
    "contrast": "contrast",
    "elastic": "elastic_transform",
    "pixelate": "pixelate",
    "jpeg_compression": "jpeg_compression",
}
IMAGE_CORRUPTIONS = tuple(_LIBRARY_NAME)
SEVERITIES = (1, 2, 3, 4, 5)
# Severity tables: ImageNet-C's through imagecorruptions (the default), or CIFAR-10-C's (32x32 only).
TABLES = ("imagenet-c", "cifar10-c")
# Library functions that take their own `seed=` and ignore `np.random.seed`.
_OWN_SEED = {"impulse_noise", "glass_blur"}
MIN_SIDE_PX = 32  # the library refuses smaller images

# `np.random`'s state is one per process: two threads corrupting at once would interleave
# draws (irreproducible) and restore each other's state. The lock serialises our calls;
# code elsewhere that draws from `np.random` in another thread meanwhile can still shift
# our stream, which is why builds should use processes (`num_proc`), as `datasets` does.
_GLOBAL_STATE_LOCK = threading.Lock()


def check_corruption(name) -> None:
    """Raise ValueError unless `name` is one of `IMAGE_CORRUPTIONS`."""
    if name not in _LIBRARY_NAME:
        raise ValueError(f"corruption must be one of {list(IMAGE_CORRUPTIONS)}, got {name!r}")


def check_severity(severity) -> None:
    """Raise ValueError unless `severity` is an int in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an int in {list(SEVERITIES)}, got {severity!r}")


def check_tables(tables) -> None:
    """Raise ValueError unless `tables` is one of `TABLES`."""
    if tables not in TABLES:
        raise ValueError(f"severity tables must be one of {list(TABLES)}, got {tables!r}")


def _check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 numpy array, got {type(image).__name__} "
                         f"of dtype {getattr(image, 'dtype', None)}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < MIN_SIDE_PX:
        raise ValueError(f"image must have shape (H, W, 3) with H, W >= {MIN_SIDE_PX}, got {image.shape}")


def corrupt_image(image: np.ndarray, name: str, severity: int, seed: int, tables: str = "imagenet-c") -> np.ndarray:
    """Apply one corruption; the same (image, name, severity, seed, tables) always gives the same output.

    image: (H, W, 3) uint8 RGB, H, W >= 32 (LUMA's are 32x32; exactly 32x32 for "cifar10-c").
    name: one of `IMAGE_CORRUPTIONS`. severity: 1..5. seed: int in [0, 2**32).
    tables: one of `TABLES`. Returns a new (H, W, 3) uint8 array.
    The global `np.random` state is the same after the call as before it.
    """
    _check_image(image)
    check_corruption(name)
    check_severity(severity)
    check_tables(tables)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if tables == "cifar10-c":
        from . import cifar10c

        return _finish(cifar10c.corrupt(image, name, int(severity), np.random.default_rng(seed)), image, name, severity, seed)
    library_name = _LIBRARY_NAME[name]
    kwargs = {"seed": int(seed)} if library_name in _OWN_SEED else {}
    import imagecorruptions  # only configs with image noise pay its import

    function = imagecorruptions.corruption_dict[library_name]
    with _GLOBAL_STATE_LOCK:
        saved = np.random.get_state()
        try:
            np.random.seed(seed)
            out = function(Image.fromarray(image), int(severity), **kwargs)
        finally:
            np.random.set_state(saved)
    return _finish(out, image, name, severity, seed)


def _finish(out, image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """A corruption's output (float array on 0-255, or a PIL image) as (H, W, 3) uint8, checked."""
    # The functions return float arrays in [0, 255] (a PIL image for pixelate and jpeg);
    # `imagecorruptions.corrupt` casts with np.uint8, which truncates (a -0.5 level bias),
    # so we round instead. Every corruption keeps the input size (checked at 32x32, 1..5).
    out = np.asarray(out, dtype=np.float64)
    if not np.isfinite(out).all():
        raise RuntimeError(f"{name} at severity {severity} (seed {seed}) returned NaN or inf")
    out = np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8)
    if out.shape != image.shape:
        raise RuntimeError(f"{name} at severity {severity} returned shape {out.shape} for {image.shape}")
    return out


class ImageNoise:
    """LUMA's image sample noise: one corruption, chosen uniformly, at a fixed severity.

    corruptions: non-empty sequence of distinct names from `IMAGE_CORRUPTIONS` (default: all 15).
    severity: int in 1..5 (default 4, the paper's).
    tables: one of `TABLES` (default "imagenet-c"); recorded per example when "cifar10-c".
    """

    def __init__(self, corruptions=IMAGE_CORRUPTIONS, severity: int = 4, tables: str = "imagenet-c"):
        if isinstance(corruptions, str):
            raise ValueError(f"corruptions must be a sequence of names, got the string {corruptions!r}")
        corruptions = tuple(corruptions)
        if not corruptions:
            raise ValueError(f"corruptions must name at least one of {list(IMAGE_CORRUPTIONS)}")
        for name in corruptions:
            check_corruption(name)
        if len(set(corruptions)) != len(corruptions):
            raise ValueError(f"corruptions must be distinct, got {list(corruptions)}")
        check_severity(severity)
        check_tables(tables)
        self.corruptions = corruptions
        self.severity = int(severity)
        self.tables = tables

    def __repr__(self) -> str:
        return f"ImageNoise(corruptions={self.corruptions!r}, severity={self.severity}, tables={self.tables!r})"

    def __call__(self, image: np.ndarray, rng: np.random.Generator):
        """Corrupt `image` ((H, W, 3) uint8) with draws from `rng` only.

        Returns (noised (H, W, 3) uint8, NoiseRecord("image", name, {"severity", "seed"})), the
        record with "tables": "cifar10-c" too for those tables (ImageNet-C's records are unchanged).
        """
        name = self.corruptions[int(rng.integers(len(self.corruptions)))]
        seed = int(rng.integers(2**32))
        noised = corrupt_image(image, name, self.severity, seed, self.tables)
        params = {"severity": self.severity, "seed": seed}
        if self.tables != "imagenet-c":
            params["tables"] = self.tables
        return noised, NoiseRecord("image", name, params)

    def noise(self, images: list, rngs: list) -> list:
        """`self(image, rng)` for each pair: the `sample_noise.ModalityNoise` protocol."""
        return [self(image, rng) for image, rng in zip(images, rngs)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two same-shape 8-bit images (peak 255); inf if equal."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(255.0**2 / mse)


def damage_table(images, severities=SEVERITIES, corruptions=IMAGE_CORRUPTIONS, seed: int = 0,
                 tables: str = "imagenet-c") -> dict:
    """Mean PSNR (dB) of corrupted vs clean image, per (corruption, severity), with `tables`.

    images: iterable of (H, W, 3) uint8. Image i gets the same corruption seed at every
    corruption and severity (common random numbers), so columns differ by severity only.
    Returns {(name, severity): mean PSNR in dB}; inf only if every image came back unchanged.
    """
    images = list(images)
    seeds = derive_rng(seed, "damage_table").integers(2**32, size=len(images))
    for s in severities:
        check_severity(s)
    return {
        (name, s): float(np.mean([psnr(img, corrupt_image(img, name, s, int(k), tables)) for img, k in zip(images, seeds)]))
        for name in corruptions
        for s in severities
    }
