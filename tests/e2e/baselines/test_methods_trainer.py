"""Every new method through the stock `transformers.Trainer` on the fixture mirror, prepared and
streaming, and back through `save_pretrained` / `from_pretrained`."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoModel, Trainer, TrainingArguments

from luma_noise import baselines
from luma_noise.baselines import methods
from luma_noise.baselines.methods import MethodConfig, MethodModel

CHEAP = ("image", "text")  # the audio trunk is the costly one; one test runs all three


def _model(method, modalities, num_train_examples=16, **hyper):
    """A small model; an evidential method's KL weight is kept near 0, so that a few steps lower its loss
    (every step is an epoch of these 16 examples)."""
    torch.manual_seed(0)
    if method in ("edl", "tmc", "etmc", "dbf"):
        hyper.setdefault("anneal_epochs", 1000)
    return MethodModel(MethodConfig(method=method, method_config=hyper, modalities=modalities, text_dim=16,
                                    num_train_examples=num_train_examples))


def _train(model, train_dataset, collator, output_dir, steps):
    """`steps` steps of the stock Trainer; the logged training losses."""
    args = TrainingArguments(str(output_dir), per_device_train_batch_size=16, max_steps=steps, learning_rate=3e-3,
                             logging_steps=1, save_strategy="no", lr_scheduler_type="constant", report_to="none",
                             remove_unused_columns=False, use_cpu=True, disable_tqdm=True,
                             dataloader_pin_memory=False, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train_dataset, data_collator=collator,
                      compute_metrics=methods.compute_metrics_for(model), callbacks=[baselines.AnnealingCallback()])
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


CASES = [("softmax", CHEAP), ("softmax", ("audio",)), ("ts", CHEAP), ("edl", ("image",)), ("tmc", CHEAP),
         ("etmc", CHEAP), ("dbf", CHEAP), ("qmf", ("image", "audio", "text"))]


@pytest.mark.parametrize("method, modalities", CASES)
def test_every_method_trains_with_the_trainer_and_round_trips(method, modalities, clean, tiny_bert, tmp_path):
    collator = baselines.LumaCollator(text_model=tiny_bert, modalities=modalities)
    train = methods.with_example_index(clean["train"].select(range(16)))
    model = _model(method, modalities)
    losses = _train(model, train, collator, tmp_path / "out", steps=4)
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    if method == "ts":
        temperature = methods.fit_model_temperature(model, clean["train"].select(range(16, 32)), collator)
        assert temperature != 1.0 and model.config.calibration_temperature == temperature
    report = methods.evaluate(model, clean["test"], ood=clean["ood"], collator=collator,
                              validation=clean["train"].select(range(16, 32)), return_predictions=True)
    test = report["predictions"]["test"]
    assert test["probs"].shape == (len(clean["test"]), 42)
    np.testing.assert_allclose(test["probs"].sum(1), 1, atol=1e-4)
    assert report["accuracy"] == pytest.approx(np.mean(test["probs"].argmax(1) == test["labels"]))
    for name in model.method.score_names():
        for measure in ("auroc", "aupr_in", "aupr_out", "fpr95"):
            assert 0 <= report[f"ood_{name}_{measure}"] <= 1
    assert all(math.isfinite(report[k]) for k in ("nll", "ece", "brier", "aurc_total", "conformal_set_size"))
    has_split = model.method.has_epistemic
    assert (report["epistemic"] is not None) == has_split and (report["aleatoric"] is not None) == has_split
    model.save_pretrained(tmp_path / "model")
    loaded = AutoModel.from_pretrained(tmp_path / "model")
    assert isinstance(loaded, MethodModel)
    for field in ("method", "method_config", "modalities", "num_train_examples", "calibration_temperature"):
        assert getattr(loaded.config, field) == getattr(model.config, field), field
    rows = clean["test"].select(range(8))
    before, after = methods.predict(model, rows, collator), methods.predict(loaded, rows, collator)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    if method == "qmf":  # the history of past losses is part of the saved model
        assert loaded.extra.history.abs().sum() > 0
        torch.testing.assert_close(loaded.extra.history, model.extra.history)


@pytest.mark.parametrize("method, modalities", [("tmc", CHEAP), ("qmf", CHEAP), ("edl", ("text",))])
def test_methods_train_from_the_streaming_dataset(method, modalities, clean_streaming, tiny_bert, tmp_path):
    collator = baselines.LumaCollator(text_model=tiny_bert, modalities=modalities)
    train = methods.with_example_index(clean_streaming["train"].take(16))
    model = _model(method, modalities)
    losses = _train(model, train, collator, tmp_path, steps=4)
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    if method == "qmf":  # every streamed example got its own slot in the history
        assert (model.extra.history > 0).all()


def test_config_names_every_bad_value_at_once():
    with pytest.raises(ValueError) as err:
        MethodConfig(method="tmc", modalities=("image",), dropout=1.5, calibration_temperature=0)
    message = str(err.value)
    assert "tmc fuses 2 to 3 modalities" in message and "dropout" in message and "calibration_temperature" in message
    with pytest.raises(ValueError, match="num_train_examples"):
        MethodConfig(method="qmf", modalities=CHEAP)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        MethodConfig(method="nope")
    with pytest.raises(ValueError, match="kl_anneal_epochs must be an integer >= 1"):  # the paper's methods too
        MethodConfig(method="rcml", modalities=CHEAP, kl_anneal_epochs=0)
    with pytest.raises(ValueError, match="variant must be one of"):
        MethodConfig(method="qmf", method_config={"variant": "rgb"}, modalities=CHEAP, num_train_examples=4)


def test_temperature_scaling_applies_on_top_of_any_logits_method():
    """QMF's fused logits, scaled: argmax and energy unchanged, the validation NLL at its minimum."""
    generator = torch.Generator().manual_seed(0)
    rows = [{"pixel_values": torch.randn(3, 32, 32, generator=generator),
             "text_embeddings": torch.randn(16, generator=generator), "label": i % 42} for i in range(48)]

    def collate(batch):
        return {"pixel_values": torch.stack([r["pixel_values"] for r in batch]),
                "text_embeddings": torch.stack([r["text_embeddings"] for r in batch]),
                "labels": torch.tensor([r["label"] for r in batch])}

    model = _model("qmf", CHEAP).eval()
    before = methods.predict(model, rows, collate)
    temperature = methods.fit_model_temperature(model, rows, collate)
    after = methods.predict(model, rows, collate)
    assert temperature != 1.0 and model.config.calibration_temperature == temperature
    assert (before["probs"].argmax(1) == after["probs"].argmax(1)).all()
    np.testing.assert_allclose(before["score_energy"], after["score_energy"], rtol=1e-6)

    def nll(t):
        logits = torch.log(torch.as_tensor(before["probs"], dtype=torch.float64)) / t
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(before["labels"])).item()

    assert nll(temperature) <= min(nll(temperature * 1.01), nll(temperature / 1.01), nll(1.0))
