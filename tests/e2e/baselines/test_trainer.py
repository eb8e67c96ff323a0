"""The baselines through the stock `transformers.Trainer`, from LUMA as `load_dataset` returns it.

The text model is a tiny random BERT saved to a temporary folder and loaded by path, the
way a Hub checkpoint is loaded.
"""

import math

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from tests.support.helpers import load
from luma_noise import baselines
from luma_noise.baselines.collator import featurize_dataset
from luma_noise.baselines.inputs import TextEmbedder

METHODS = ("mcd", "de", "rcml")
# The audio net is the costly one (about 0.1 GMAC per clip): tests fuse image and text, and one
# test per path runs the three modalities.
CHEAP = ("image", "text")
ALL = ("image", "audio", "text")


def _model(method, modalities=CHEAP):
    """A small model; RCML's KL weight is kept near 0 so that a few steps lower the loss."""
    torch.manual_seed(0)
    return baselines.LumaModel(baselines.LumaModelConfig(
        method=method, modalities=modalities, text_dim=16, ensemble_size=2, mc_samples=4, softmax_samples=32,
        kl_anneal_epochs=1000))


def _train(model, train_dataset, collator, output_dir, steps):
    """Train with the stock Trainer on `train_dataset` for `steps` steps; the logged losses."""
    args = TrainingArguments(str(output_dir), per_device_train_batch_size=16, max_steps=steps, learning_rate=3e-3,
                             logging_steps=1, save_strategy="no", lr_scheduler_type="constant", report_to="none", remove_unused_columns=False,
                             use_cpu=True, disable_tqdm=True, dataloader_pin_memory=False, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train_dataset, data_collator=collator,
                      compute_metrics=baselines.compute_metrics, callbacks=[baselines.AnnealingCallback()])
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _check_report(report, method):
    assert set(report) >= {"accuracy", "aleatoric", "epistemic", "ood_auroc", "ece", "nll", "brier"}
    assert all(math.isfinite(v) for k, v in report.items() if k != "predictions")
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["ood_auroc"] <= 1 and 0 <= report["ece"] <= 1
    assert 0 <= report["aleatoric"] <= math.log(42) + 1e-4 and 0 < report["nll"] and 0 <= report["brier"] <= 2
    assert 0 <= report["epistemic"] <= (1 if method == "rcml" else math.log(42) + 1e-4)


@pytest.mark.parametrize("method, modalities", [("mcd", CHEAP), ("de", CHEAP), ("rcml", ALL)])
def test_trainer_trains_every_method_from_the_prepared_dataset(method, modalities, clean, tiny_bert, tmp_path):
    collator = baselines.LumaCollator(text_model=tiny_bert, modalities=modalities)
    model = _model(method, modalities)
    losses = _train(model, clean["train"].select(range(16)), collator, tmp_path / "out", steps=8)
    assert losses[-1] < losses[0], losses
    report = baselines.evaluate(model, clean["test"], ood=clean["ood"], collator=collator, batch_size=64,
                                return_predictions=True)
    _check_report(report, method)
    assert report["predictions"]["test"]["probs"].shape == (len(clean["test"]), 42)
    np.testing.assert_allclose(report["predictions"]["ood"]["probs"].sum(1), 1, atol=1e-5)
    # save_pretrained / from_pretrained round-trip: identical predictions
    model.save_pretrained(tmp_path / "model")
    loaded = baselines.LumaModel.from_pretrained(tmp_path / "model")
    rows = clean["test"].select(range(8))
    torch.manual_seed(3)
    before = baselines.predict(model, rows, collator)
    torch.manual_seed(3)
    after = baselines.predict(loaded, rows, collator)
    for key in ("probs", "aleatoric", "epistemic"):
        np.testing.assert_array_equal(before[key], after[key])


@pytest.mark.parametrize("method, modalities", [("mcd", ALL), ("de", CHEAP), ("rcml", CHEAP)])
def test_trainer_trains_every_method_from_the_streaming_dataset(method, modalities, clean_streaming, tiny_bert,
                                                                tmp_path):
    collator = baselines.LumaCollator(text_model=tiny_bert, modalities=modalities)
    losses = _train(_model(method, modalities), clean_streaming["train"].take(16), collator, tmp_path, steps=6)
    assert len(losses) == 6 and losses[-1] < losses[0], losses


@pytest.mark.parametrize("mode", ["fixed", "faithful"])
def test_collator_on_raw_rows_equals_the_cached_inputs(mode, clean, tiny_bert):
    collator = baselines.LumaCollator(text_model=tiny_bert, mode=mode)
    rows = clean["test"].select(range(6))
    raw = collator(list(rows))
    cached = featurize_dataset(rows, baselines.LumaCollator(text_model=tiny_bert, mode=mode))
    again = featurize_dataset(rows, baselines.LumaCollator(text_model=tiny_bert, mode=mode))
    assert cached.cache_files == again.cache_files  # computed once, read back from the map cache
    from_cache = collator(list(cached))
    assert set(raw) == {"pixel_values", "audio_features", "text_embeddings", "labels"}
    assert raw["pixel_values"].shape == (6, 3, 32, 32) and raw["audio_features"].shape == (6, 1, 128, 128)
    assert raw["text_embeddings"].shape == (6, 16)
    for key in raw:
        assert torch.equal(raw[key], from_cache[key]), key


@pytest.mark.parametrize("modalities, chunks", [(("text",), 1), (("image", "audio", "text"), 1),
                                                (("image", "audio", "text"), 4)])
def test_batch_reader_gives_the_batches_of_the_rows(modalities, chunks, clean, tiny_bert):
    """What the Trainer reads in `train` (collator.BatchReader, one gather per column and batch)
    equals the collated rows: over a train_test_split's index mapping, with the QMF index column,
    for a model that uses some of the collator's modalities, from a table of one or of several
    Arrow chunks (a cache file holds one per record batch)."""
    import datasets

    from luma_noise.baselines.collator import BatchReader, batch_reader
    from luma_noise.baselines.methods import with_example_index

    collator = baselines.LumaCollator(text_model=tiny_bert)  # featurises all three, as `train` does
    split = featurize_dataset(clean["train"], collator).train_test_split(test_size=0.2, seed=3)
    rows = with_example_index(split["train"])
    if chunks > 1:  # the same rows in several chunks, read through an index mapping again
        size = -(-len(rows) // chunks)
        rows = datasets.concatenate_datasets([rows.select(range(first, min(first + size, len(rows)))).flatten_indices()
                                              for first in range(0, len(rows), size)])
        rows = rows.select(range(len(rows) - 1, -1, -1))
    reader = batch_reader(rows, modalities)
    assert isinstance(reader, BatchReader) and len(reader) == len(rows)
    assert reader.table.column(baselines.collator.INPUT_NAMES[modalities[0]]).num_chunks == chunks
    indices = [7, 0, len(rows) - 1, 3, 7]
    batch = collator(reader.__getitems__(indices))
    expected = collator([rows[i] for i in indices])
    names = [baselines.collator.INPUT_NAMES[m] for m in modalities]
    assert set(batch) == {*names, "labels", "example_index"}
    for key in batch:
        assert torch.equal(batch[key], expected[key]), key
    assert batch_reader(clean["train"], modalities) is clean["train"]  # raw rows: the collator featurises them
    import pickle  # to DataLoader workers: by the dataset's cache files, not a copy of its Arrow data

    copied = pickle.loads(pickle.dumps(reader))
    assert len(pickle.dumps(reader)) < len(pickle.dumps(rows)) + 1000 < rows.data.nbytes
    assert all(torch.equal(collator(copied.__getitems__(indices))[k], batch[k]) for k in batch)


def test_audio_modes_differ_as_documented(clean):
    from luma_noise.baselines import inputs

    audio = clean["test"][0]["audio"]
    fixed, faithful = inputs.audio_tensor(audio, "fixed"), inputs.audio_tensor(audio, "faithful")
    assert fixed.shape == faithful.shape == (1, 128, 128)
    frames = math.ceil(len(audio["array"]) / inputs.HOP) + (len(audio["array"]) % inputs.HOP == 0)
    real = fixed[0, :, :min(frames, 128)]
    assert abs(real.mean().item()) < 1e-4 and abs(real.std(correction=0).item() - 1) < 1e-3  # standardised log power
    assert faithful.min().item() >= 0  # raw power
    assert (faithful[0, :, frames:] == 0).all()  # zero-padded time axis


def test_text_is_embedded_with_the_class_word_masked(clean, tiny_bert):
    embedder = TextEmbedder(tiny_bert)
    masked, by_hand, kept = embedder([("a horse runs", "horse"), ("a [MASK] runs", "dog"), ("a horse runs", "dog")])
    torch.testing.assert_close(masked, by_hand)
    assert not torch.allclose(masked, kept)


def test_text_embeddings_do_not_depend_on_the_batch(clean, tiny_bert):
    pairs = [(text, "horse") for text in clean["train"]["text"][:40]]
    together = TextEmbedder(tiny_bert, batch_size=32)(pairs)
    alone = [TextEmbedder(tiny_bert)([pair])[0] for pair in pairs[:6]]
    assert all(torch.equal(a, b) for a, b in zip(alone, together))


def test_conflict_modality_travels_to_the_predictions(mirror, luma_cache, tiny_bert):
    conflict = load("conflict", mirror=str(mirror[0]), cache_dir=luma_cache)["test"]
    model = _model("rcml").eval()
    collator = baselines.LumaCollator(text_model=tiny_bert, modalities=CHEAP)
    arrays = baselines.predict(model, featurize_dataset(conflict, collator), collator, batch_size=64)
    expected = [m or "" for m in conflict["conflict_modality"]]
    assert arrays["conflict_modality"].tolist() == expected and set(expected) > {""}
