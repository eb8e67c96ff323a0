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
import types
from typing import Optional

from . import audio as audio_noise
from . import image as image_noise
from .classes import MODALITIES
from .rng import derive_rng


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


def describe_images(config_name: str, fields: dict) -> str:
    """The image noise of a named config with field overrides (as results.json records them), in
    words: which data a run was trained on, for the report."""
    from .builder import LumaConfig
    from .options import NAMED_CONFIGS

    values = {f.name: f.default for f in dataclasses.fields(LumaConfig) if f.default is not dataclasses.MISSING}
    values.update({**NAMED_CONFIGS.get(config_name, {}), **(fields or {})})
    images = image_settings(types.SimpleNamespace(**values))
    splits = ", ".join(["train"] * images.train + ["test", "ood"] * images.test)
    if not images.ratio or not splits:
        return "clean images"
    how = "as the reference tool effectively built them" if values["reference_effective"] else "as configured"
    return (f"images {how}: {images.ratio:.0%} corrupted ({splits}), severity {images.severity} "
            f"of {'CIFAR-10-C' if images.tables == 'cifar10-c' else 'ImageNet-C'}'s tables")


def splits_noised(train: bool, test: bool) -> tuple:
    """Split names a modality's noise applies to: train and/or test+ood."""
    return (("train",) if train else ()) + (("test", "ood") if test else ())


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
            noises["image"] = image_noise.ImageNoise(images.corruptions, images.severity, images.tables)
        if ratios["audio"] and splits["audio"]:  # no split noised: no ESC-50 (the builder skips it)
            noises["audio"] = audio_noise.AudioNoise(esc50_files, config.audio_min_snr_db, config.audio_max_snr_db)
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

    def apply(self, batch: list, split: str) -> None:
        """Noise a batch in place: each example's `image` (uint8 array), `audio_bytes` (wav)
        and `text`, and set its `noise` to {modality: record feature or None}."""
        for example in batch:
            example["noise"] = {m: None for m in MODALITIES}
        for example in self._noised_examples(batch, "image", split):
            noised, record = self.noises["image"](example["image"], self._rng("noise", "image", split, example["key"]))
            example["image"], example["noise"]["image"] = noised, record.to_feature()
        for example in self._noised_examples(batch, "audio", split):
            samples, rate = audio_noise.decode_wav(example["audio_bytes"])
            noised, record = self.noises["audio"](samples, rate, self._rng("noise", "audio", split, example["key"]))
            example["audio_bytes"], example["noise"]["audio"] = audio_noise.encode_wav(noised, rate), record.to_feature()
        chosen = self._noised_examples(batch, "text", split)
        if chosen:  # one call for the batch: back-translation runs its models on batches
            rngs = [self._rng("noise", "text", split, example["key"]) for example in chosen]
            for example, (text, record) in zip(chosen, self.noises["text"]([e["text"] for e in chosen], rngs)):
                example["text"], example["noise"]["text"] = text, record.to_feature()

    def _noised_examples(self, batch: list, modality: str, split: str) -> list:
        return [example for example in batch if self.is_noised(modality, split, example["key"])]
