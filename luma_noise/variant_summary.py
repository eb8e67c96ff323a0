"""What a built LUMA variant did, computed from its examples (not from its config); and, for the
report, what a variant's image noise is, in words, from its config (`describe_images`).

`summarize(dataset_dict, config)` reads the built splits' columns: rows per split, labels
switched (`original_label != label`), sample noise drawn per modality (the `noise` column),
conflicted examples per modality (`conflict_modality`) and, for a diversity draw, the drawn
train rows' mean distance to their class centre in the deep feature space. `format_summary`
prints it for people.
"""

import collections
import dataclasses
import io
import types

import numpy as np

from .classes import CLASSES, MODALITIES

_BATCH = 1000


def _columns(dataset, names: list) -> dict:
    """{column: python list} of a Dataset's columns, read from Arrow without decoding."""
    return dataset.select_columns(names).with_format("arrow")[:].to_pydict()


def summarize(dataset_dict, config=None, feature_cache_dir=None, progress: bool = True) -> dict:
    """Figures of a built variant (a DatasetDict of split -> Dataset).

    Returns {"rows": {split: n}, "labels_switched": {split: n}, "noise": {split: {modality:
    {noise name: n}}}, "conflict": {split: {modality: n}}, "diversity": {modality: {...}}}; keys
    of columns the variant lacks are absent. The diversity figure needs `config` (its
    compactness and feature models) and the features of the train rows, read from the feature
    cache the draw filled (`feature_cache_dir`; rows missing there are extracted, with progress).
    """
    columns = set(next(iter(dataset_dict.values())).column_names)
    summary = {"rows": {split: len(ds) for split, ds in dataset_dict.items()}}
    if "original_label" in columns:
        summary["labels_switched"] = {}
        for split, ds in dataset_dict.items():
            got = _columns(ds, ["label", "original_label"])
            summary["labels_switched"][split] = sum(a != b for a, b in zip(got["label"], got["original_label"]))
    if "noise" in columns:
        summary["noise"] = {split: _noise_counts(_columns(ds, ["noise"])["noise"]) for split, ds in dataset_dict.items()}
    if "conflict_modality" in columns:
        summary["conflict"] = {}
        for split, ds in dataset_dict.items():
            counts = collections.Counter(m for m in _columns(ds, ["conflict_modality"])["conflict_modality"] if m)
            summary["conflict"][split] = dict(sorted(counts.items()))
    if config is not None and "train" in dataset_dict:
        diversity = _diversity(dataset_dict["train"], config, feature_cache_dir, progress)
        if diversity:
            summary["diversity"] = diversity
    return summary


def _noise_counts(records: list) -> dict:
    """{modality: {noise name: examples}} of a split's `noise` column."""
    counts = {m: collections.Counter() for m in MODALITIES}
    for record in records:
        for modality in MODALITIES:
            drawn = (record or {}).get(modality)
            if drawn is not None:
                counts[modality][drawn["name"]] += 1
    return {m: dict(sorted(c.items())) for m, c in counts.items()}


def _diversity(train, config, feature_cache_dir, progress: bool) -> dict:
    """{modality: {"compactness": k, "mean_distance": d, "computed": n}} for each re-drawn
    modality whose train content is not noised (noised content would not be the drawn rows')."""
    noised = _noise_counts(_columns(train, ["noise"])["noise"]) if "noise" in train.column_names else {}
    result = {}
    for modality in MODALITIES:
        k = getattr(config, f"{modality}_compactness")
        if k is None:
            continue
        if sum(noised.get(modality, {}).values()):
            result[modality] = {"compactness": k, "skipped": "train content is noised"}
            continue
        features, labels, computed = _train_features(train, modality, config, feature_cache_dir, progress)
        result[modality] = {"compactness": k, "mean_distance": mean_distance_to_centre(features, labels),
                            "computed": computed}
    return result


def mean_distance_to_centre(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean over rows of ‖F_i − mean of F over the row's class‖ (Euclidean, feature units);
    features: (N, D); labels: (N,) int."""
    features = np.asarray(features, dtype=np.float64)
    distances = np.empty(len(features))
    for c in np.unique(labels):
        rows = labels == c
        distances[rows] = np.linalg.norm(features[rows] - features[rows].mean(axis=0), axis=1)
    return float(distances.mean())


def _train_features(train, modality: str, config, feature_cache_dir, progress: bool):
    """(features (N, D), true labels (N,), rows extracted now) of the train split's examples,
    keyed by content exactly as the builder's draw keys them (`deep_features.content_key`)."""
    from PIL import Image

    from .noise import audio
    from .variants import deep_features

    true_label = "original_label" if "original_label" in train.column_names else "label"
    got = _columns(train, [modality, true_label])
    labels = np.asarray(got[true_label], dtype=np.int64)
    if modality == "image":
        items = [np.asarray(Image.open(io.BytesIO(value["bytes"])).convert("RGB")) for value in got["image"]]
        keys = [deep_features.content_key(str(item.shape), item.tobytes()) for item in items]
        size_of = None
    elif modality == "audio":
        wavs = [value["bytes"] for value in got["audio"]]
        keys = [deep_features.content_key(wav) for wav in wavs]
        items = _Decoded(wavs, audio.decode_wav)
        size_of = lambda i: len(wavs[i])  # noqa: E731 (bytes ~ duration: batches of similar length)
    else:
        items = [(text, CLASSES[label]) for text, label in zip(got["text"], labels)]
        keys = [deep_features.content_key(text, word) for text, word in items]
        size_of = lambda i: len(items[i][0])  # noqa: E731
    model_id = getattr(config, f"{modality}_feature_model")
    revision = getattr(config, f"{modality}_feature_revision", None)  # as the builder's FeatureSource reads it
    cache = deep_features.FeatureCache(feature_cache_dir, modality, model_id, revision)
    computed = len(set(keys) - set(cache.read(set(keys))))
    extractor = deep_features.Extractor(modality, model_id, revision)
    return deep_features.cached_features(keys, items, extractor, feature_cache_dir, size_of, progress=progress), labels, computed


class _Decoded:
    """Sequence whose item i is `decode(raw[i])`, decoded when asked for."""

    def __init__(self, raw: list, decode):
        self.raw, self.decode = raw, decode

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, i):
        return self.decode(self.raw[int(i)])


def format_summary(summary: dict) -> str:
    """The summary as lines for a terminal."""
    rows = summary["rows"]
    lines = ["rows: " + ", ".join(f"{split} {n}" for split, n in rows.items())]
    for split, n in summary.get("labels_switched", {}).items():
        lines.append(f"labels switched ({split}): {n} of {rows[split]} ({_percent(n, rows[split])})")
    for split, per_modality in summary.get("noise", {}).items():
        for modality, names in per_modality.items():
            total = sum(names.values())
            drawn = ", ".join(f"{name} {count}" for name, count in names.items()) or "none"
            share = _percent(total, rows[split])
            lines.append(f"noise ({split}, {modality}): {total} of {rows[split]} noised ({share}): {drawn}")
    for split, per_modality in summary.get("conflict", {}).items():
        total = sum(per_modality.values())
        detail = ", ".join(f"{m} {n}" for m, n in per_modality.items()) or "none"
        lines.append(f"conflicted ({split}): {total} of {rows[split]} ({_percent(total, rows[split])}): {detail}")
    for modality, figure in summary.get("diversity", {}).items():
        if "skipped" in figure:
            lines.append(f"diversity ({modality}, k={figure['compactness']}): not computed, {figure['skipped']}")
        else:
            lines.append(f"diversity ({modality}, k={figure['compactness']}): train rows' mean distance to their "
                         f"class centre {figure['mean_distance']:.4g} (feature units; {figure['computed']} rows' "
                         "features not in the cache were extracted)")
    return "\n".join(lines)


def _percent(n: int, total: int) -> str:
    return f"{100 * n / total:.1f} %" if total else "-"


def describe_images(config_name: str, fields: dict) -> str:
    """The image noise of a named config with field overrides (as results.json records them), in
    words: which data a run was trained on, for the report."""
    from .builder import LumaConfig
    from .options import NAMED_CONFIGS
    from .noise.sample_noise import image_settings

    values = {f.name: f.default for f in dataclasses.fields(LumaConfig) if f.default is not dataclasses.MISSING}
    values.update({**NAMED_CONFIGS.get(config_name, {}), **(fields or {})})
    images = image_settings(types.SimpleNamespace(**values))
    splits = ", ".join(["train"] * images.train + ["test", "ood"] * images.test)
    if not images.ratio or not splits:
        return "clean images"
    how = "as the reference tool effectively built them" if values["reference_effective"] else "as configured"
    return (f"images {how}: {images.ratio:.0%} corrupted ({splits}), severity {images.severity} "
            f"of {'CIFAR-10-C' if images.tables == 'cifar10-c' else 'ImageNet-C'}'s tables")
