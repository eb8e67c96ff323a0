"""Diversity sampling, label noise and conflict applied to split plans.

These variants change which rows an example holds or which label it carries, never the
content of a row; they run in `_split_generators`, before any example is yielded.
Deep features come from a `FeatureSource`, computed once per (modality, model, row content)
and cached on disk.
"""

import dataclasses

import numpy as np
import soundfile

from . import features as deep
from . import sampling
from .classes import ID_CLASSES, MODALITIES
from .plan import SplitPlan, Upstream, align
from .rng import derive_rng


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
    """Deep features of upstream rows, cached per row by content (`features.cached_features`),
    so any seed, config or split reuses the rows already computed.

    audio_files(rows) -> local paths of those datalist rows' wav files; decode_wav(path) ->
    (float32 samples, sample rate); cache_dir: the feature cache folder. A model is loaded
    only when a row is missing, and only one is kept in memory: asked modality by modality
    (as the builder does), each is loaded at most once per FeatureSource (one per build).
    """

    config: object
    upstream: Upstream
    audio_files: object
    decode_wav: object
    cache_dir: object
    extractors: dict = dataclasses.field(default_factory=dict)

    def extractor(self, modality: str) -> deep.Extractor:
        """The modality's extractor; the other modalities' models are unloaded first, so at most
        one model is in memory (Wav2Vec 2.0 large alone holds 1.3 GB)."""
        for other, extractor in self.extractors.items():
            if other != modality:
                extractor.unload()
        if modality not in self.extractors:
            model_id = getattr(self.config, f"{modality}_feature_model")
            revision = getattr(self.config, f"{modality}_feature_revision")
            self.extractors[modality] = deep.Extractor(modality, model_id, revision)
        return self.extractors[modality]

    def __call__(self, modality: str, frame: str, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of `rows` of the modality's table (`frame`: "train"
        or "test" picks the image frame). Keys: image pixels, wav file bytes, text and the
        class word it is masked with."""
        rows = np.asarray(rows, dtype=np.int64)
        if modality == "image":
            images = self.upstream.image_frame(frame).images
            keys = [deep.content_key(str(images.shape[1:]), images[r].tobytes()) for r in rows]
            items, size_of = _LazyRows(len(rows), lambda i: images[rows[i]]), None
        elif modality == "text":
            texts = self.upstream.text["text"].to_numpy()[rows]
            labels = self.upstream.text["label"].to_numpy()[rows]
            keys = [deep.content_key(text, label) for text, label in zip(texts, labels)]
            items, size_of = list(zip(texts, labels)), lambda i: len(texts[i])
        else:
            paths = list(self.audio_files(rows))
            keys = [deep.content_key(_read(path)) for path in paths]
            items = _LazyRows(len(paths), lambda i: self.decode_wav(paths[i]))
            size_of = lambda i: soundfile.info(paths[i]).duration  # noqa: E731 (header only)
        return deep.cached_features(keys, items, self.extractor(modality), self.cache_dir, size_of)


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def diversity_pool(upstream: Upstream, modality: str, include_edm: bool) -> np.ndarray:
    """Candidate train rows of a modality: in-distribution rows not in the test split
    (images: the train frame, EDM images only when `include_edm`)."""
    labels = upstream.labels(modality, "train")
    keep = (labels >= 0) & (labels < len(ID_CLASSES))
    if modality == "image":
        if not include_edm:
            keep &= upstream.image_train.sources != "edm"
    else:
        keep[upstream.splits[f"{modality}_test"]] = False
    return np.flatnonzero(keep)


def diversity_train_plan(upstream: Upstream, config, feature_source: FeatureSource) -> SplitPlan:
    """The train split re-drawn per modality with compactness k (None: the published rows)."""
    published = upstream.splits
    per_class = len(published["audio_train_clean"]) // len(ID_CLASSES)
    pools = {}
    for modality in MODALITIES:
        k = getattr(config, f"{modality}_compactness")
        labels = upstream.labels(modality, "train")
        if k is None:
            rows = published[f"{modality}_train_clean"]
        else:
            pool = diversity_pool(upstream, modality, include_edm=k > 0)
            feats = feature_source(modality, "train", pool)
            rng = derive_rng(config.seed, "diversity", modality)
            rows = pool[sampling.diversity_sample(feats, labels[pool], per_class, float(k), config.num_sampling, rng)]
        pools[modality] = (rows, labels[rows])
    return align("train", pools, ID_CLASSES, config.seed)


def add_label_noise(plans: list, config, feature_source: FeatureSource) -> None:
    """Switch each example's label, in each of `plans`, with probability `label_noise` to its
    nearest other class in its split (distances over `label_noise_modality`'s features);
    keeps `original_labels`. Features are gathered modality by modality over all plans, so
    each model is loaded once even though only one is kept in memory at a time."""
    modalities = MODALITIES if config.label_noise_modality == "all" else (config.label_noise_modality,)
    feats = {plan.split: [] for plan in plans}
    for modality in modalities:
        for plan in plans:
            frame = "test" if plan.split == "test" else "train"
            feats[plan.split].append(feature_source(modality, frame, plan.rows(modality)))
    for plan in plans:
        rng = derive_rng(config.seed, "label-noise", plan.split)
        new_labels, _ = sampling.switch_labels(plan.labels, feats[plan.split], config.label_noise, rng,
                                               config.label_noise_neighbours)
        plan.original_labels, plan.labels = plan.labels, new_labels


def add_conflict(plan: SplitPlan, config) -> None:
    """Replace one drawn modality of a `conflict_ratio` fraction of each class's examples by
    the same-position example of the next class; records `conflict_modality`."""
    true_labels = plan.original_labels if plan.original_labels is not None else plan.labels
    rng = derive_rng(config.seed, "conflict", plan.split)
    modality, partner = sampling.conflict_plan(true_labels, config.conflict_ratio, rng, len(ID_CLASSES))
    originals = {m: plan.rows(m).copy() for m in MODALITIES}
    for index, name in enumerate(MODALITIES):
        chosen = np.flatnonzero(modality == index)
        getattr(plan, f"{name}_rows")[chosen] = originals[name][partner[chosen]]
    plan.conflict_modality = np.array([MODALITIES[m] if m >= 0 else None for m in modality], dtype=object)
