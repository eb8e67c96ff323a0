"""A config's sample noise, applied to batches of examples while they are yielded.

For each example and modality two generators are derived from (seed, modality, split,
example key): one decides whether the example is noised (probability
`<modality>_noise_ratio`), the other draws the noise. So every example's noise is the
same whatever the batch, shard or streaming order, and changing one modality's
settings leaves the other modalities' draws alone.

`image_settings` says which image noise a config builds: its image fields, or with
`reference_effective` the image noise LUMA's reference tool applies whatever its configs say
(LUMA_SOURCES.md, "What the reference tool actually produces").
"""

import dataclasses
import os
from typing import Optional, Protocol

from .audio import AudioNoise
from ..classes import MODALITIES
from .image import ImageNoise
from ..records import NoiseRecord
from ..rng import derive_rng


class ModalityNoise(Protocol):
    """One modality's sample noise (`ImageNoise`, `AudioNoise`, `TextNoise`), as `SampleNoise`
    drives it: for each content, its parameters are drawn from that content's generator only,
    applied, and recorded. Contents are in the planned examples' form: (H, W, 3) uint8 images,
    wav file bytes, texts. Called on a batch: back-translation runs its models on batches."""

    def noise(self, contents: list, rngs: list) -> list[tuple[object, NoiseRecord]]:
        """(noised content, NoiseRecord) per (content, numpy.random.Generator) pair."""


# The planned example's key holding each modality's content.
CONTENT_FIELDS = {"image": "image", "audio": "audio_bytes", "text": "text"}


# The reference tool's image noise: its image noise function never receives the configured
# ratio (a misnamed keyword), so it corrupts with its default probability on every split, at
# the severity of the config it runs (its default config: 1), with CIFAR-10-C's tables.
REFERENCE_IMAGE_RATIO = 0.1
REFERENCE_DEFAULT_SEVERITY = 1


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    """The image noise a config builds: fraction noised, splits (train; test and ood), the
    corruptions drawn from, severity 1..5 and severity tables ("imagenet-c" or "cifar10-c")."""

    ratio: float
    train: bool
    test: bool
    corruptions: tuple
    severity: int
    tables: str


def image_settings(config) -> ImageSettings:
    """The config's image fields; with `reference_effective`, what the reference tool builds:
    ratio 0.1 on every split, CIFAR-10-C tables, the configured corruptions, and the configured
    severity if the config noises images (sample_noise: 4), else the reference's default, 1."""
    if not config.reference_effective:
        return ImageSettings(config.image_noise_ratio, config.image_noise_train, config.image_noise_test,
                             tuple(config.image_corruptions), config.image_severity, config.image_severity_tables)
    severity = config.image_severity if config.image_noise_ratio else REFERENCE_DEFAULT_SEVERITY
    return ImageSettings(REFERENCE_IMAGE_RATIO, True, True, tuple(config.image_corruptions), severity, "cifar10-c")


def splits_noised(train: bool, test: bool) -> tuple:
    """Split names a modality's noise applies to: train and/or test+ood."""
    return (("train",) if train else ()) + (("test", "ood") if test else ())


def noises_audio(config) -> bool:
    """Whether the config noises the audio of some split (so the build needs ESC-50)."""
    return bool(config.audio_noise_ratio and (config.audio_noise_train or config.audio_noise_test))


@dataclasses.dataclass
class SampleNoise:
    """Per modality: the noise (None when off), the fraction noised and the splits noised."""

    seed: int
    noises: dict
    ratios: dict
    splits: dict

    @classmethod
    def from_config(cls, config, esc50_files=()) -> Optional["SampleNoise"]:
        """The config's sample noise, or None when no modality is noised."""
        images = image_settings(config)
        ratios = {m: getattr(config, f"{m}_noise_ratio") for m in MODALITIES} | {"image": images.ratio}
        if not any(ratios.values()):
            return None
        splits = {m: splits_noised(getattr(config, f"{m}_noise_train"), getattr(config, f"{m}_noise_test")) for m in MODALITIES}
        splits["image"] = splits_noised(images.train, images.test)
        noises = {m: None for m in MODALITIES}
        if ratios["image"]:
            noises["image"] = ImageNoise(images.corruptions, images.severity, images.tables)
        if ratios["audio"] and splits["audio"]:  # no split noised: no ESC-50 (the builder skips it)
            noises["audio"] = AudioNoise(esc50_files, config.audio_min_snr_db, config.audio_max_snr_db)
        if ratios["text"]:
            from .text import TextNoise

            noises["text"] = TextNoise(config.text_noises, config.text_noise_params)
        return cls(config.seed, noises, ratios, splits)

    def _rng(self, purpose: str, modality: str, split: str, key: str):
        return derive_rng(self.seed, purpose, modality, split, key)

    def is_noised(self, modality: str, split: str, key: str) -> bool:
        """Whether this example's `modality` is noised."""
        if self.noises[modality] is None or split not in self.splits[modality]:
            return False
        return bool(self._rng("noise-select", modality, split, key).random() < self.ratios[modality])

    def apply(self, batch: list, split: str) -> list:
        """The batch's examples noised (new dicts; `batch` is left as it is): the content of each
        modality (`CONTENT_FIELDS`) of the examples drawn for it, and `noise` set to {modality:
        record feature or None}. One call per modality for the batch (`ModalityNoise.noise`)."""
        out = [{**example, "noise": {m: None for m in MODALITIES}} for example in batch]
        for modality, noise in self.noises.items():
            chosen = [example for example in out if self.is_noised(modality, split, example["key"])]
            if not chosen:
                continue
            field = CONTENT_FIELDS[modality]
            rngs = [self._rng("noise", modality, split, example["key"]) for example in chosen]
            for example, (content, record) in zip(chosen, noise.noise([e[field] for e in chosen], rngs)):
                example[field], example["noise"][modality] = content, record.to_feature()
        return out


_PER_PROCESS = {}  # {process id: (config key, SampleNoise)}: models and dictionaries load once per process


def for_process(config, esc50_files) -> Optional[SampleNoise]:
    """`SampleNoise.from_config`, built once per process and config (every shard reuses it).

    Kept per process id: a forked worker builds its own and leaves its parent's alone (their
    models' thread pools don't survive the fork; even deleting them there can hang)."""
    key = (repr(config), tuple(esc50_files))
    cached = _PER_PROCESS.get(os.getpid())
    if cached is None or cached[0] != key:
        _PER_PROCESS[os.getpid()] = (key, SampleNoise.from_config(config, esc50_files))
    return _PER_PROCESS[os.getpid()][1]
