"""Deep features of upstream rows for the variants that need them (diversity, label noise).

A `FeatureSource` computes each row's features once per (modality, model, row content) and caches
them on disk (`deep_features.cached_features`); audio rows are read through the build's `Fetcher`.
"""

import dataclasses

import numpy as np
import soundfile

from . import deep_features
from ..upstream.fetcher import Fetcher
from ..plan import Upstream


class _LazyRows:
    """A read-only sequence whose item i is `get(i)`, computed when asked for."""

    def __init__(self, n: int, get):
        self._n, self._get = n, get

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        return self._get(int(i))


@dataclasses.dataclass
class FeatureSource:
    """Deep features of upstream rows, cached per row by content (`deep_features.cached_features`),
    so any seed, config or split reuses the rows already computed.

    fetcher: the build's files (audio rows' wavs); cache_dir: the feature cache folder. A model is
    loaded only when a row is missing, and only one is kept in memory: asked modality by modality
    (as the variants do), each is loaded at most once per FeatureSource (one per build).
    """

    config: object
    upstream: Upstream
    fetcher: Fetcher
    cache_dir: object
    extractors: dict = dataclasses.field(default_factory=dict)

    def extractor(self, modality: str) -> deep_features.Extractor:
        """The modality's extractor; the other modalities' models are unloaded first, so at most
        one model is in memory (Wav2Vec 2.0 large alone holds 1.3 GB)."""
        for other, extractor in self.extractors.items():
            if other != modality:
                extractor.unload()
        if modality not in self.extractors:
            model_id = getattr(self.config, f"{modality}_feature_model")
            revision = getattr(self.config, f"{modality}_feature_revision")
            self.extractors[modality] = deep_features.Extractor(modality, model_id, revision)
        return self.extractors[modality]

    def __call__(self, modality: str, frame: str, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of `rows` of the modality's table (`frame`: "train"
        or "test" picks the image frame). Keys: image pixels, wav file bytes, text and the
        class word it is masked with."""
        rows = np.asarray(rows, dtype=np.int64)
        if modality == "image":
            images = self.upstream.image_frame(frame).images
            keys = [deep_features.content_key(str(images.shape[1:]), images[r].tobytes()) for r in rows]
            items, size_of = _LazyRows(len(rows), lambda i: images[rows[i]]), None
        elif modality == "text":
            texts = self.upstream.text["text"].to_numpy()[rows]
            labels = self.upstream.text["label"].to_numpy()[rows]
            keys = [deep_features.content_key(text, label) for text, label in zip(texts, labels)]
            items, size_of = list(zip(texts, labels)), lambda i: len(texts[i])
        else:
            paths = self.fetcher.wav_files(self.upstream.audio["path"].to_numpy()[rows])
            keys = [deep_features.content_key(self.fetcher.read_wav(path)) for path in paths]
            items = _LazyRows(len(paths), lambda i: self.fetcher.decoded_wav(paths[i]))  # read again only on a cache miss
            size_of = lambda i: soundfile.info(paths[i]).duration  # noqa: E731 (header only)
        return deep_features.cached_features(keys, items, self.extractor(modality), self.cache_dir, size_of)
