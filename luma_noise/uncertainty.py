"""Diversity sampling, label noise and conflict applied to split plans.

These variants change which rows an example holds or which label it carries, never the
content of a row; they run in `_split_generators`, before any example is yielded.
Deep features come from a `FeatureSource`, computed once per (modality, model, rows,
upstream) and cached on disk.
"""

import dataclasses
import hashlib
import json

import numpy as np

from . import features as deep
from . import sampling
from .classes import ID_CLASSES, MODALITIES
from .plan import SplitPlan, Upstream, align
from .rng import derive_rng


@dataclasses.dataclass
class FeatureSource:
    """Deep features of upstream rows.

    read_audio(rows) -> list of (float32 samples, sample rate) for datalist rows;
    source_id names the upstream (mirror or revision) so another source gets other cache files.
    """

    config: object
    upstream: Upstream
    read_audio: object
    source_id: str

    def __call__(self, modality: str, frame: str, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 features of `rows` of the modality's table (`frame`: "train"
        or "test" picks the image frame)."""
        rows = np.asarray(rows, dtype=np.int64)
        content = hashlib.sha256(rows.tobytes())
        if modality == "image":
            content.update(self.upstream.image_frame(frame).images[rows].tobytes())
        elif modality == "text":
            content.update("\0".join(self.upstream.text["text"].to_numpy()[rows]).encode("utf-8"))
        else:
            content.update("\0".join(self.upstream.audio["path"].to_numpy()[rows]).encode("utf-8"))
        key = json.dumps([self.source_id, modality, frame, content.hexdigest()])
        config = self.config
        return deep.cached_features(
            modality, key, lambda: self._items(modality, frame, rows),
            getattr(config, f"{modality}_feature_model"), config.feature_revision, config.feature_cache_dir)

    def _items(self, modality: str, frame: str, rows: np.ndarray) -> list:
        if modality == "image":
            return list(self.upstream.image_frame(frame).images[rows])
        if modality == "audio":
            return self.read_audio(rows)
        texts = self.upstream.text["text"].to_numpy()[rows]
        return list(zip(texts, self.upstream.text["label"].to_numpy()[rows]))  # the label word gets masked


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


def add_label_noise(plan: SplitPlan, config, feature_source: FeatureSource) -> None:
    """Switch each example's label with probability `label_noise` to its nearest other
    class (distances over `label_noise_modality`'s features); keeps `original_labels`."""
    modalities = MODALITIES if config.label_noise_modality == "all" else (config.label_noise_modality,)
    frame = "test" if plan.split == "test" else "train"
    feats = [feature_source(m, frame, plan.rows(m)) for m in modalities]
    rng = derive_rng(config.seed, "label-noise", plan.split)
    new_labels, _ = sampling.switch_labels(plan.labels, feats, config.label_noise, rng, config.label_noise_neighbours)
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
