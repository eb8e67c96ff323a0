"""The variants' wiring, end to end through `load_dataset`, on a mirror whose answers are known.

The planted mirror (luma_noise/fixtures/mirror.py, "planted content") and the planted models
(tests/planted_models.py) make each image's features its colour and each text's features
its planted words, so the nearest other class of every example is known per modality
(`image_partner`, `text_partner`), and within a class each CIFAR image's distance from the
class centre is its planted offset (EDM images sit on the centre). 16 candidate images and
6 test rows per class leave room for compactness, `num_sampling`, 5 neighbours and the
conflict ratio to matter.
"""

import collections

import numpy as np
import pytest

from tests.support.helpers import built_rows, wav_samples
from luma_noise.classes import CLASSES, ID_CLASSES, OOD_CLASSES
from luma_noise.fixtures.mirror import decode_audio_marker, image_partner, planted_colours, planted_offsets, text_partner, write_mirror
from luma_noise.fixtures.planted import save_planted_models

PER_CLASS_TRAIN, PER_CLASS_TEST, PER_CLASS_POOL = 3, 6, 16


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(mirror folder, manifest) of the planted mirror."""
    root = tmp_path_factory.mktemp("planted-mirror")
    return root, write_mirror(root, per_class_train=PER_CLASS_TRAIN, per_class_test=PER_CLASS_TEST,
                              per_class_pool=PER_CLASS_POOL, planted=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Config fields naming the planted models, with one feature cache for the module."""
    paths = save_planted_models(tmp_path_factory.mktemp("planted-models"))
    return {f"{m}_feature_model": path for m, path in paths.items()} | {
        "feature_cache_dir": str(tmp_path_factory.mktemp("planted-features"))}


def _build(planted, tmp_path, name, **kwargs):
    return built_rows(planted[0], tmp_path / "cache", name, **kwargs)


def _image_class(ex):
    return int(ex["image"][0, 0, 0])


def _audio_class(ex):
    return decode_audio_marker(wav_samples(ex["audio"]["bytes"]))[0]


def _text_class(ex):
    return CLASSES.index(ex["text"].split()[1])


def _true_classes(ex):
    """The class each modality's content belongs to, read from the content itself."""
    return {"image": _image_class(ex), "audio": _audio_class(ex), "text": _text_class(ex)}


# ---------------------------------------------------------------- label noise


@pytest.mark.parametrize("modality, partner", [("image", image_partner), ("text", text_partner)])
def test_label_noise_switches_to_the_nearest_class_of_the_chosen_modality(planted, models, tmp_path, modality, partner):
    """p = 1: every train and test label goes to its class's nearest class in that modality's
    features: the test split's own images, the text with its class word masked (unmasked,
    the class word would make it c - 1 or c + 1)."""
    got = _build(planted, tmp_path, "label_noise_0.1", label_noise=1.0, label_noise_modality=modality, **models)
    for split in ("train", "test"):
        assert len(got[split]) == len(ID_CLASSES) * (PER_CLASS_TRAIN if split == "train" else PER_CLASS_TEST)
        for ex in got[split]:
            assert set(_true_classes(ex).values()) == {ex["original_label"]}
            assert ex["label"] == partner(ex["original_label"]), (split, ex["original_label"], ex["label"])
    assert all(CLASSES[ex["label"]] in OOD_CLASSES and ex["original_label"] == ex["label"] for ex in got["ood"])


def test_conflict_groups_by_the_true_label_under_label_noise(planted, models, tmp_path):
    """Conflict takes its ratio per true class and its partner from the true next class,
    whatever label noise did to the labels."""
    got = _build(planted, tmp_path, "conflict", label_noise=0.5, label_noise_modality="image", **models)
    per_class = collections.Counter()
    switched = 0
    for ex in got["test"]:
        true, modality = ex["original_label"], ex["conflict_modality"]
        assert ex["label"] in (true, image_partner(true))
        switched += ex["label"] != true
        for name, found in _true_classes(ex).items():
            assert found == ((true + 1) % len(ID_CLASSES) if name == modality else true), (name, modality)
        per_class[true] += modality is not None
    assert 0 < switched < len(got["test"])
    assert per_class == {c: int(np.floor(0.4 * PER_CLASS_TEST + 0.5)) for c in range(len(ID_CLASSES))}


# ---------------------------------------------------------------- diversity


def _pool_offsets(manifest):
    """{class id: (frame rows, B offsets, is EDM)} of the train-frame candidates of every ID class."""
    frame = manifest["image_train_frame"]
    source_offsets = {s: planted_offsets(s, labels) for s, labels in manifest["source_labels"].items()}
    out = {}
    for class_id, name in enumerate(ID_CLASSES):
        members = [(i, source, row) for i, (source, row, label) in enumerate(frame) if label == name]
        offsets = np.array([source_offsets[source][row] for _, source, row in members], dtype=float)
        out[class_id] = (np.array([i for i, _, _ in members]), offsets, np.array([s == "edm" for _, s, _ in members]))
    return out


def _selected_offsets(ex):
    return int(ex["image"][16, 16, 2]) - int(planted_colours([ex["label"]])[0, 2])


def test_compactness_keeps_the_rows_nearest_the_class_centre_and_offers_edm(planted, models, tmp_path):
    """k = 20, one draw: per class the EDM image (on the centre) and otherwise the CIFAR
    images of the smallest planted offsets; audio and text keep their published rows."""
    _, manifest = planted
    got = _build(planted, tmp_path, "clean", image_compactness=20.0, num_sampling=1, **models)
    pools = _pool_offsets(manifest)
    chosen = collections.defaultdict(list)
    for ex in got["train"]:
        assert _image_class(ex) == ex["label"]
        chosen[ex["label"]].append(ex)
    edm_classes = [c for c, (_, _, edm) in pools.items() if edm.any()]
    assert len(edm_classes) > 20
    for class_id, (_, offsets, _) in pools.items():
        picked = chosen[class_id]
        assert len(picked) == PER_CLASS_TRAIN
        assert any(ex["image_source"] == "edm" for ex in picked) == (class_id in edm_classes), class_id
        centre = offsets.mean()
        distance = np.sort(np.abs(offsets - centre))
        picked_distance = sorted(abs(_selected_offsets(ex) - centre) for ex in picked)
        assert picked_distance[-1] <= distance[PER_CLASS_TRAIN - 1] + 1e-6, (class_id, picked_distance, distance)
    published = {m: set(manifest["splits"][f"{m}_train_clean"]) for m in ("audio", "text")}
    audio_rows = {p: i for i, p in enumerate(manifest["audio_paths"])}
    assert {audio_rows[ex["audio_path"]] for ex in got["train"]} == published["audio"]
    assert {ex["text_index"] for ex in got["train"]} == published["text"]


def test_num_sampling_keeps_the_most_spread_draw(planted, models, tmp_path):
    """k = 0 (uniform, no EDM), 1,000 draws: the most spread draw of 3 points on a line holds
    the class's smallest and largest offsets (mean pairwise distance 2/3 of the range);
    one draw in 40 holds both, so 10 draws would find it for about one class in five."""
    _, manifest = planted
    got = _build(planted, tmp_path, "clean", image_compactness=0.0, num_sampling=1000, **models)
    pools = _pool_offsets(manifest)
    chosen = collections.defaultdict(list)
    for ex in got["train"]:
        assert ex["image_source"] != "edm"
        chosen[ex["label"]].append(_selected_offsets(ex))
    for class_id, (_, offsets, edm) in pools.items():
        cifar = offsets[~edm]
        assert min(chosen[class_id]) == cifar.min() and max(chosen[class_id]) == cifar.max(), class_id
