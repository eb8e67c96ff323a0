"""Audio sample noise for LUMA: ESC-50 background sounds mixed in at a drawn SNR.

The mixing is `audiomentations.AddBackgroundNoise` (relative noise level, p=1). Its own
parameter draws use the global `random` module, so we never let it draw: `AudioNoise`
draws the background file, the offset into it and the SNR from the `numpy.random.Generator`
it is given, writes them into the transform's frozen `parameters` and calls it. The
library's loader resamples the background segment to the clip's rate (librosa, soxr_hq).

Also here: extracting the ESC-50 wavs from the upstream `master.zip` as `datasets`'
`iter_archive` yields it, and 16-bit wav encoding/decoding for the loading script.
"""

import io
import math
import numbers
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import soundfile

from luma_noise.records import NoiseRecord

NOISE_NAME = "esc50_background"
ESC50_LAYOUT = "ESC-50-master/audio/<fold>-<clip>-<take>-<target>.wav and ESC-50-master/meta/esc50.csv"
MIN_LOAD_S = 0.1  # shortest background segment read, so very short clips still get a full period
MAX_DRAWS = 10  # redraws allowed when a drawn background segment is digital silence
_SILENT_RMS = 1e-9  # AddBackgroundNoise returns its input unchanged below this noise RMS


def esc50_wavs(folder) -> list:
    """ESC-50's wav paths in `folder`, an extracted `master.zip`, sorted by file name.

    The layout is ESC50_LAYOUT; the top folder may be named after another ref
    (e.g. `ESC-50-<commit>/`). Extraction is `datasets`' own (`dl_manager.extract`).
    """
    folder = Path(folder)
    paths = sorted((p for p in folder.glob("*/audio/*") if p.suffix.lower() == ".wav"), key=lambda p: p.name)
    if not paths:
        seen = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))[:5]
        raise FileNotFoundError(f"no ESC-50 wavs in the archive: expected members {ESC50_LAYOUT} "
                                f"(ESC-50's GitHub master.zip); first members seen: {seen}")
    return paths


def _check_snr(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of dB, got {value!r}")
    return float(value)


def check_snr_range(min_snr_db, max_snr_db) -> tuple:
    """(min_snr_db, max_snr_db) as floats; ValueError naming the field unless finite and min <= max."""
    low, high = _check_snr("min_snr_db", min_snr_db), _check_snr("max_snr_db", max_snr_db)
    if low > high:
        raise ValueError(f"min_snr_db ({min_snr_db}) must be <= max_snr_db ({max_snr_db})")
    return low, high


def _check_clip(samples, sample_rate) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.dtype.kind != "f":
        raise ValueError(f"samples must be a 1-D float array (mono), got shape {samples.shape} dtype {samples.dtype}")
    if not np.isfinite(samples).all():
        raise ValueError("samples must be finite (no NaN or inf)")
    return samples.astype(np.float32, copy=False)


def _check_backgrounds(background_paths) -> list:
    if isinstance(background_paths, (str, os.PathLike)):
        raise ValueError(f"background_paths must be a sequence of files, got the single path {background_paths!r}")
    paths = sorted((Path(p) for p in background_paths), key=lambda p: (p.name, str(p)))
    if not paths:
        raise ValueError("background_paths must list at least one wav file, got none")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"background_paths: {len(missing)} not a file, e.g. {missing[:3]}")
    if len({p.name for p in paths}) != len(paths):
        raise ValueError("background_paths must have distinct file names (records name the file)")
    from audiomentations.core.utils import SUPPORTED_EXTENSIONS  # here: the import (scipy.signal) is slow

    unreadable = [str(p) for p in paths if not p.name.lower().endswith(SUPPORTED_EXTENSIONS)]
    if unreadable:
        raise ValueError(f"background_paths must be audio files ({', '.join(SUPPORTED_EXTENSIONS)}), "
                         f"got e.g. {unreadable[:3]}")
    return paths


class AudioNoise:
    """LUMA's audio sample noise: one ESC-50 background mixed in at an SNR in [min_snr_db, max_snr_db].

    background_paths: non-empty sequence of wav files with distinct file names (any rate,
    any channel count: backgrounds are downmixed and resampled to the clip's rate).
    min_snr_db, max_snr_db: SNR range in dB, min <= max (defaults 3 and 5, the paper's).

    The SNR is 20*log10(rms(clean) / rms(noised - clean)). The background starts at a drawn
    offset and is repeated if shorter than the clip. A drawn segment that is digital silence
    (ESC-50 pads many clips with zeros) is redrawn, at most MAX_DRAWS times.
    Silent (all-zero) and zero-length clips come back unchanged, with "applied": False in the
    record: with the level relative to the clip, no noise level gives the drawn SNR, and
    adding noise at a fixed level would make an example whose SNR is -inf rather than 3-5 dB.
    """

    def __init__(self, background_paths, min_snr_db: float = 3.0, max_snr_db: float = 5.0):
        self.min_snr_db, self.max_snr_db = check_snr_range(min_snr_db, max_snr_db)
        paths = _check_backgrounds(background_paths)
        self._path_of = {p.name: p for p in paths}
        self.backgrounds = tuple(self._path_of)  # file names, sorted: draws never depend on input order
        from audiomentations import AddBackgroundNoise  # only configs with audio noise pay its import

        self._transform = AddBackgroundNoise(sounds_path=[str(p) for p in paths], min_snr_db=self.min_snr_db,
                                             max_snr_db=self.max_snr_db, noise_transform=self._fit_noise, p=1.0)
        self._transform.freeze_parameters()  # it must never draw from global `random`
        self._durations = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"AudioNoise({len(self.backgrounds)} backgrounds, min_snr_db={self.min_snr_db}, "
                f"max_snr_db={self.max_snr_db})")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def __call__(self, samples: np.ndarray, sample_rate: int, rng: np.random.Generator):
        """Mix a background into `samples` (1-D float, mono, nominally in [-1, 1]) at `sample_rate` Hz.

        Every draw comes from `rng`. Returns (noised: float32, same length; it may exceed
        [-1, 1], see `encode_wav`; NoiseRecord("audio", "esc50_background", {"snr_db",
        "background" (file name), "offset_s" (start in the background, seconds), "applied"})).
        `self.apply(samples, sample_rate, record.params)` reproduces the output.
        """
        samples = _check_clip(samples, sample_rate)
        for _ in range(MAX_DRAWS):
            params = self._draw(len(samples) / sample_rate, rng)
            if not np.any(samples):  # silent or empty: see the class docstring
                return samples.copy(), NoiseRecord("audio", NOISE_NAME, {**params, "applied": False})
            noised, noise_rms = self._mix(samples, sample_rate, params)
            if noise_rms >= _SILENT_RMS:
                return noised, NoiseRecord("audio", NOISE_NAME, {**params, "applied": True})
        raise RuntimeError(f"{MAX_DRAWS} drawn background segments were all digital silence "
                           f"(last: {params['background']} at {params['offset_s']:.3f} s); check background_paths")

    def noise(self, wavs: list, rngs: list) -> list:
        """(noised wav bytes, record) of each pair of wav file bytes and generator (`self(...)` on
        its decoded samples, encoded as 16-bit PCM): the `sample_noise.ModalityNoise` protocol."""
        out = []
        for data, rng in zip(wavs, rngs):
            samples, rate = decode_wav(data)
            noised, record = self(samples, rate, rng)
            out.append((encode_wav(noised, rate), record))
        return out

    def apply(self, samples: np.ndarray, sample_rate: int, params: dict) -> np.ndarray:
        """Mix with given parameters (a record's `params`: snr_db, background, offset_s); float32 out."""
        samples = _check_clip(samples, sample_rate)
        if not params.get("applied", True) or not np.any(samples):
            return samples.copy()
        if params["background"] not in self._path_of:
            raise ValueError(f"background {params['background']!r} is not one of this AudioNoise's backgrounds")
        return self._mix(samples, sample_rate, params)[0]

    def _draw(self, clip_s: float, rng: np.random.Generator) -> dict:
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        room_s = max(0.0, self._duration(background) - max(clip_s, MIN_LOAD_S))
        offset_s = float(rng.uniform(0.0, room_s))
        snr_db = float(rng.uniform(self.min_snr_db, self.max_snr_db))
        return {"snr_db": snr_db, "background": background, "offset_s": offset_s}

    def _duration(self, background: str) -> float:
        if background not in self._durations:
            info = soundfile.info(str(self._path_of[background]))
            self._durations[background] = info.frames / info.samplerate
        return self._durations[background]

    def _mix(self, samples, sample_rate, params):
        with self._lock:
            self._target_len, self._noise_rms = len(samples), 0.0
            self._transform.parameters = {
                "should_apply": True,
                "snr_db": params["snr_db"],
                "rms_db": None,  # only read when noise_rms="absolute"
                "noise_file_path": str(self._path_of[params["background"]]),
                "offset": params["offset_s"],
                "duration": max(len(samples) / sample_rate, MIN_LOAD_S),
            }
            # Not thread-safe before Python 3.14 (the filter list is global); builds use processes.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*had to be resampled")
                warnings.filterwarnings("ignore", message=".*too silent to be added")
                noised = self._transform(samples, sample_rate)
            return np.asarray(noised, dtype=np.float32), self._noise_rms

    def _fit_noise(self, noise: np.ndarray, sample_rate: int) -> np.ndarray:
        # Runs inside AddBackgroundNoise before it measures the noise RMS: cutting or repeating
        # the segment to the clip's length here makes the measured SNR exactly the drawn one.
        noise = np.resize(noise, self._target_len) if noise.size else np.zeros(self._target_len, np.float32)
        self._noise_rms = float(np.sqrt(np.mean(np.square(noise, dtype=np.float64))))
        return noise.astype(np.float32, copy=False)


def decode_wav(data: bytes):
    """Decode wav bytes to (samples: 1-D float32 in [-1, 1], sample_rate: int Hz); channels are averaged."""
    samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1, dtype=np.float32), int(sample_rate)


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode 1-D float samples as mono 16-bit PCM wav bytes; the same input always gives the same bytes.

    Samples outside [-1, 1] (a noised clip can overshoot) are clipped to full scale.
    """
    samples = np.clip(_check_clip(samples, sample_rate), -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()
