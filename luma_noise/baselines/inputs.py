"""Model inputs from LUMA's raw columns: image tensors, mel spectrograms, text embeddings.

- image: (3, 32, 32) float32, pixels in [0, 1] normalised per channel with the paper's
  mean and std (BASELINES.md §1); no augmentation.
- audio: (1, 128, 128) float32 mel spectrogram (mel bands × frames; n_fft 400, hop 200,
  128 HTK mel bands, centred with reflect padding: torchaudio's defaults). Computed with
  `torch.stft` and `transformers.audio_utils.mel_filter_bank` (not torchaudio, whose wheels
  pin torch). `fixed` mode resamples the clip from its true rate to 16 kHz, takes the log
  power in dB, standardises it over the clip's frames, then crops or zero-pads the time axis
  to 128 frames (1.6 s). `faithful` mode reproduces the reference: the clip's samples at an
  assumed 16 kHz, raw power, zero-padded to 128 frames. The reference's crop cut the mel axis
  (BASELINES.md §6 defect 7), so it leaves a clip of more than 128 frames (N >= 25,600 samples:
  1.6 s at 16 kHz, 0.53 s at 48 kHz) at its full length, which it can neither batch nor feed to
  its audio net; faithful mode keeps such a clip's first 128 frames (what the crop meant to do)
  and `reference_frames` tells which clips those are (`train` counts them in results.json).
- text: (768,) float32 for bert-base: BERT's last hidden state averaged over the tokens, the
  class word masked first (`luma_noise.variants.deep_features`). Only texts of equal token count share a
  BERT call, so no padding enters and an embedding does not depend on its batch.
"""

import functools
import io

import numpy as np

from ..variants import deep_features
from ..classes import CLASSES

IMAGE_MEAN = (0.51, 0.49, 0.44)
IMAGE_STD = (0.27, 0.26, 0.28)
SAMPLE_RATE = 16_000  # Hz, what the spectrogram assumes
N_FFT, HOP, N_MELS, FRAMES = 400, 200, 128, 128
MODES = ("fixed", "faithful")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def image_tensor(image):
    """(3, 32, 32) float32 torch tensor of a PIL image or (H, W, 3) uint8 array."""
    import torch

    pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float32) / 255.0
    mean, std = np.asarray(IMAGE_MEAN, np.float32), np.asarray(IMAGE_STD, np.float32)
    return torch.from_numpy(((pixels - mean) / std).transpose(2, 0, 1).copy())


def decode_audio(audio) -> tuple:
    """(float32 mono samples in [-1, 1], sample rate in Hz) of an `audio` cell.

    Accepts what `datasets` gives: a decoded `{"array", "sampling_rate"}` dict, or the
    undecoded `{"bytes", "path"}` struct (datasets >= 4 without torchcodec, `decode=False`).
    """
    if isinstance(audio, dict) and audio.get("array") is not None:
        samples, rate = np.asarray(audio["array"], dtype=np.float32), int(audio["sampling_rate"])
    elif isinstance(audio, dict) and (audio.get("bytes") or audio.get("path")):
        import soundfile

        source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio["path"]
        samples, rate = soundfile.read(source, dtype="float32", always_2d=False)
    else:
        raise ValueError(f"an audio cell must be a dict with 'array' and 'sampling_rate' or with 'bytes', "
                         f"got {type(audio).__name__}")
    return (samples.mean(axis=1) if samples.ndim == 2 else samples), rate


@functools.cache
def _mel_filters():
    """(201, 128) float32 HTK mel filter bank, 0-8 kHz, no normalisation (torchaudio's defaults)."""
    import warnings

    import torch
    from transformers.audio_utils import mel_filter_bank

    with warnings.catch_warnings():  # the lowest bands are empty at 201 bins, as in torchaudio
        warnings.simplefilter("ignore", UserWarning)
        bank = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=0.0,
                               max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm=None, mel_scale="htk")
    return torch.from_numpy(bank.astype(np.float32))


def mel_power(samples: np.ndarray):
    """(128, frames) float32 mel power spectrogram of mono samples taken at 16 kHz."""
    import torch

    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if wave.numel() <= N_FFT // 2:  # reflect padding needs more samples than the half window
        wave = torch.nn.functional.pad(wave, (0, N_FFT // 2 + 1 - wave.numel()))
    spec = torch.stft(wave, N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT), center=True,
                      pad_mode="reflect", return_complex=True).abs().pow(2)
    return _mel_filters().T @ spec


def reference_frames(num_samples: int) -> int:
    """Frames F = 1 + ⌊N / 200⌋ of the reference's spectrogram of N samples (centred STFT, hop 200)."""
    return 1 + int(num_samples) // HOP


def long_clips(dataset) -> dict:
    """What faithful mode does with clips the reference cannot batch, for results.json.

    dataset: a prepared split (or DatasetDict) with an `audio` column. Counts, per split, the
    clips whose reference spectrogram has more than 128 frames (`reference_frames`), reading
    only the wav headers.
    """
    import datasets
    import soundfile

    splits = dataset if isinstance(dataset, dict) else {"data": dataset}
    counts = {}
    for name, split in splits.items():
        if isinstance(split.features["audio"], datasets.Audio):  # else already the {bytes, path} struct
            split = split.cast_column("audio", datasets.Audio(decode=False))
        cells = split["audio"]
        lengths = [soundfile.info(io.BytesIO(c["bytes"]) if c.get("bytes") else c["path"]).frames for c in cells]
        counts[name] = int(sum(reference_frames(n) > FRAMES for n in lengths))
    return {"clips_longer_than_128_frames": counts,
            "handling": "cut to their first 128 frames; the reference keeps them at full length and cannot batch "
                        "them (BASELINES.md §6 defect 7)"}


def _fit_frames(spec):
    """Crop or zero-pad the time (last) axis to FRAMES."""
    import torch

    spec = spec[:, :FRAMES]
    return torch.nn.functional.pad(spec, (0, FRAMES - spec.shape[1]))


def audio_tensor(audio, mode: str = "fixed"):
    """(1, 128, 128) float32 torch tensor of an `audio` cell (see the module docstring)."""
    samples, rate = decode_audio(audio)
    if mode == "faithful":
        return _fit_frames(mel_power(samples))[None]
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = np.gcd(rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // g, rate // g).astype(np.float32)
    log_power = 10.0 * mel_power(samples).clamp(min=1e-10).log10()
    standard = (log_power - log_power.mean()) / (log_power.std(correction=0) + 1e-5)
    return _fit_frames(standard)[None]


def class_word(row: dict) -> str:
    """The class word to mask in a row's text: its original class under label noise."""
    label = row.get("original_label", row["label"])
    return CLASSES[label] if isinstance(label, (int, np.integer)) else str(label)


class TextEmbedder:
    """Mean BERT embeddings of (text, class word) pairs, memoised per pair in memory.

    text_model: Hub id or local folder of a BERT-like encoder (`from_pretrained`), run on
    CPU through `luma_noise.variants.deep_features.Extractor` (its masking and pooling). Only texts of
    the same token count share a forward pass (up to `batch_size`): without padding, a
    text's embedding does not depend on the others. Embeddings are (D,) float32 tensors.
    """

    def __init__(self, text_model: str, revision: str | None = None, batch_size: int = 32):
        self.text_model, self.revision, self.batch_size = text_model, revision, batch_size
        self._memo = {}
        self._extractor = None

    def __call__(self, pairs) -> list:
        import torch

        missing = list(dict.fromkeys(p for p in pairs if p not in self._memo))
        if missing:
            if self._extractor is None:
                self._extractor = deep_features.Extractor("text", self.text_model, self.revision, device="cpu")
            for positions, rows in self._extractor.run(missing, self._equal_length_batches(missing)):
                for position, row in zip(positions, rows):
                    self._memo[missing[position]] = torch.from_numpy(row)
        return [self._memo[p] for p in pairs]

    def _equal_length_batches(self, pairs) -> list:
        """Positions of `pairs` grouped by token count after masking, in chunks of batch_size."""
        tokenizer = self._extractor.load()[0]
        masked = [deep_features.mask_label_words(text, word, tokenizer.mask_token) for text, word in pairs]
        lengths = [len(ids) for ids in tokenizer(masked, truncation=True)["input_ids"]]
        groups = {}
        for position, length in enumerate(lengths):
            groups.setdefault(length, []).append(position)
        return [np.array(group[i:i + self.batch_size]) for group in groups.values()
                for i in range(0, len(group), self.batch_size)]

    def __getstate__(self):  # DataLoader workers and datasets' fingerprinting pickle the collator
        return {**self.__dict__, "_memo": {}, "_extractor": None}
