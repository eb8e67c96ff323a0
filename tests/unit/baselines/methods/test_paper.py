"""MC dropout, the deep ensemble and RCML as method objects: the deep ensemble's batched members,
hyper-parameters validated by their Config, models saved under the old names loading, and every
method's model in either memory format of the convolutions."""

import json

import pytest
import torch

from luma_noise.baselines.methods import MethodConfig, MethodModel
from luma_noise.baselines.methods.de import batched_members

INPUTS = {"image": ("pixel_values", (3, 32, 32)), "text": ("text_embeddings", (8,))}


def _inputs(modalities, rows=6):
    g = torch.Generator().manual_seed(0)
    return {INPUTS[m][0]: torch.randn(rows, *INPUTS[m][1], generator=g) for m in modalities}


@pytest.mark.parametrize("modalities", [("text",), ("image",), ("image", "text")])
def test_batched_members_equal_one_call_per_member(modalities):
    """One vmapped call over the stacked members gives each member's own (μ, σ); float32 sums may
    run in another order in the batched kernels, hence 1e-5 (values are O(1))."""
    torch.manual_seed(0)
    model = MethodModel(MethodConfig(method="de", method_config={"ensemble_size": 3}, modalities=modalities,
                                     text_dim=8)).eval()
    inputs = _inputs(modalities)
    with torch.no_grad():
        mu, sigma = batched_members(model.members, inputs)
        for i, member in enumerate(model.members):
            own_mu, own_sigma, _ = member(inputs)
            torch.testing.assert_close(mu[i], own_mu, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(sigma[i], own_sigma, rtol=1e-5, atol=1e-5)
        # the whole prediction through the model: batched ("always") and looped ("never") agree
        outputs = {}
        for batched in ("always", "never"):
            model.method.config.batched = batched
            outputs[batched] = model(**inputs, generator=torch.Generator().manual_seed(1))
    for key in ("probs", "aleatoric", "epistemic", "logits"):
        torch.testing.assert_close(outputs["always"][key], outputs["never"][key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["mcd", "de", "rcml", "softmax", "ts", "tmc", "etmc", "dbf", "qmf", "edl"])
def test_channels_last_gives_the_contiguous_outputs(method):
    """`use_memory_format("channels_last")` lays out every convolution's weights (and so its
    outputs) channels-last; without dropout the predictions equal the contiguous model's up to
    float32 rounding (the convolutions sum in another order: 1e-5 on values of order 1), and a
    training step runs. MC dropout's passes are compared on its network: its masks are drawn in
    memory order, so they differ between layouts (by design, recorded in run.json)."""
    modalities = ("image",) if method == "edl" else ("image", "audio")
    g = torch.Generator().manual_seed(0)
    inputs = {"pixel_values": torch.randn(3, 3, 32, 32, generator=g),
              "audio_features": torch.randn(3, 1, 128, 128, generator=g)}
    inputs = {k: v for k, v in inputs.items() if k != "audio_features" or "audio" in modalities}
    models = []
    for memory_format in ("contiguous", "channels_last"):
        torch.manual_seed(0)
        config = MethodConfig(method=method, modalities=modalities, ensemble_size=2, num_train_examples=3)
        models.append(MethodModel(config).use_memory_format(memory_format).eval())
    convolutions = [p for p in models[1].parameters() if p.ndim == 4 and p.shape[1] > 1]
    assert convolutions and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                                for p in convolutions)
    with torch.no_grad():
        if method == "mcd":
            outputs = [model.members[0](inputs)[0] for model in models]
        else:
            outputs = [model(**inputs, generator=torch.Generator().manual_seed(1)).probs for model in models]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    models[1].train()
    models[1](**inputs, labels=torch.tensor([0, 1, 2]), example_index=torch.arange(3)).loss.backward()
    assert all(p.grad is None or p.grad.is_contiguous(memory_format=torch.channels_last) for p in convolutions)


def test_auto_batches_the_members_unless_the_network_has_audio(monkeypatch):
    from luma_noise.baselines.methods import de

    calls = []
    monkeypatch.setattr(de, "batched_members", lambda members, inputs: calls.append(1) or (None, None))
    text = MethodModel(MethodConfig(method="de", ensemble_size=2, modalities=("text",), text_dim=8)).eval()
    text.method.passes(text, _inputs(("text",)), None)
    assert calls == [1]
    audio = MethodModel(MethodConfig(method="de", ensemble_size=2, modalities=("audio",))).eval()
    mu, _ = audio.method.passes(audio, {"audio_features": torch.randn(2, 1, 128, 128)}, None)
    assert calls == [1] and mu.shape == (2, 2, 42)


def test_hyper_parameters_are_validated_by_each_methods_config():
    with pytest.raises(ValueError) as err:
        MethodConfig(method="de", ensemble_size=0, ensemble_training="apart", batched="sometimes")
    for text in ("ensemble_size must be an integer >= 1", "ensemble_training must be one of",
                 "batched must be one of"):
        assert text in str(err.value)
    with pytest.raises(ValueError, match="mc_samples must be an integer >= 1"):
        MethodConfig(method="mcd", mc_samples=0)
    with pytest.raises(ValueError, match="conflict_weight must be a number >= 0"):
        MethodConfig(method="rcml", modalities=("image", "text"), conflict_weight=-1)


def test_a_model_saved_by_luma_model_loads_as_a_method_model(tmp_path):
    """A folder written by the old `LumaModel` (config model_type "luma_baseline", every paper
    hyper-parameter as a key, the same `members.*` weights) loads with its predictions unchanged."""
    from transformers import AutoModel

    torch.manual_seed(0)
    model = MethodModel(MethodConfig(method="de", ensemble_size=2, modalities=("text",), text_dim=8)).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    old = {k: v for k, v in config.items() if k not in ("method_config", "num_train_examples",
                                                          "calibration_temperature", "model_type")}
    old.update(model_type="luma_baseline", ensemble_size=2, ensemble_training="joint", mc_samples=100,
               softmax_samples=100, kl_anneal_epochs=50, conflict_weight=1.0, mc_chunk_floats=2 ** 22,
               architectures=["LumaModel"])
    (tmp_path / "config.json").write_text(json.dumps(old))
    for loaded in (MethodModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert isinstance(loaded, MethodModel) and loaded.config.method_config == {  # the DE's own keys only
            "ensemble_size": 2, "ensemble_training": "joint", "softmax_samples": 100, "mc_chunk_floats": 2 ** 22}
        texts = torch.randn(3, 8)
        with torch.no_grad():
            torch.testing.assert_close(loaded.eval()(text_embeddings=texts).probs, model(text_embeddings=texts).probs)
