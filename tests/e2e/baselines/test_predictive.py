"""The predictive distribution behind NLL, ECE, Brier, conformal sets and reliability, and seeded evaluation.

fixed MCD/DE: the mean over passes or members and noise samples of softmax(μ_t + σ_t ⊙ ε_s)
("sampling-softmax-mean"); faithful MCD/DE: softmax of the mean logits (the reference's);
RCML: α/α₀ ("dirichlet-mean"). Checked against a brute-force loop, through the model, and
end to end through the train command and the report.
"""

import json

import numpy as np
import pytest
import torch

from tests.support.helpers import load
from luma_noise.baselines import LumaModel, LumaModelConfig, inputs, losses, uncertainty
from luma_noise.baselines.report import write_report
from luma_noise.baselines.train import run_training


def test_predictive_probs_is_the_mean_over_passes_and_noise_samples():
    torch.manual_seed(0)
    mu, sigma = torch.randn(5, 3, 7) * 2, torch.rand(5, 3, 7) * 3
    got = uncertainty.predictive_probs(mu, sigma, samples=11, generator=torch.Generator().manual_seed(4),
                                       max_floats=2000)  # chunks of two passes
    eps = torch.randn((11, 1, 1, 7), generator=torch.Generator().manual_seed(4))[:, 0, 0]
    brute = sum(torch.softmax(mu[t] + sigma[t] * eps[s], -1) for t in range(5) for s in range(11)) / 55
    torch.testing.assert_close(got, brute)
    torch.testing.assert_close(got.sum(-1), torch.ones(3))
    assert (got - torch.softmax(mu.mean(0), -1)).abs().max() > 0.05  # not the softmax of the mean logits
    alone = uncertainty.predictive_probs(mu[:, :1], sigma[:, :1], 11, torch.Generator().manual_seed(4))
    torch.testing.assert_close(alone[0], got[0])  # an example's distribution does not depend on its batch


def test_fixed_evaluation_loss_is_the_per_pass_sampling_softmax_loss_on_the_predictive_draws():
    """`predictive_and_loss`: the predictive distribution as `predictive_probs` (the same draws, to
    float rounding: exp of the log-softmax), and the mean over passes of VT&M's loss on those draws."""
    torch.manual_seed(0)
    mu, sigma, labels = torch.randn(5, 3, 7) * 2, torch.rand(5, 3, 7) * 3, torch.tensor([0, 6, 2])
    probs, loss = uncertainty.predictive_and_loss(mu, sigma, labels, 11, torch.Generator().manual_seed(4),
                                                  max_floats=2000)  # chunks of two passes
    torch.testing.assert_close(probs, uncertainty.predictive_probs(mu, sigma, 11, torch.Generator().manual_seed(4)))
    eps = torch.randn((11, 1, 1, 7), generator=torch.Generator().manual_seed(4))[:, 0, 0]
    brute = -sum(torch.stack([torch.softmax(mu[t, b] + sigma[t, b] * eps[s], -1)[labels[b]] for s in range(11)])
                 .mean().log() for t in range(5) for b in range(3)) / 15
    torch.testing.assert_close(loss, brute)
    assert uncertainty.predictive_and_loss(mu, sigma, None, 11)[1] is None


def test_fixed_evaluation_loss_has_the_expectation_of_the_training_loss():
    """Drawn per example (training) or shared by the examples and passes (evaluation), ε gives the
    loss the same expectation: the means of 400 seeded draws of each agree within 4 standard errors
    of their difference."""
    torch.manual_seed(1)
    mu, sigma, labels = torch.randn(1, 16, 5), torch.rand(1, 16, 5) * 2, torch.randint(0, 5, (16,))
    shared = torch.stack([uncertainty.predictive_and_loss(mu, sigma, labels, 20, torch.Generator().manual_seed(i))[1]
                          for i in range(400)])
    apart = torch.stack([losses.sampling_softmax_loss(mu[0], sigma[0], labels, 20,
                                                      generator=torch.Generator().manual_seed(i)) for i in range(400)])
    error = (shared.var() / 400 + apart.var() / 400).sqrt()
    assert abs(shared.mean() - apart.mean()) <= 4 * error
    assert shared.std() > 0 and apart.std() > 0


def _model(method, mode="fixed", **extra):
    torch.manual_seed(0)
    config = LumaModelConfig(method=method, modalities=("text",), text_dim=8, mode=mode, ensemble_size=3,
                             mc_samples=6, softmax_samples=50, **extra)
    model = LumaModel(config).eval()
    with torch.no_grad():  # σ heads large enough for the noise to matter
        for member in model.members:
            if member.branches["text"].sigma is not None:
                member.branches["text"].sigma.bias.fill_(2.0)
    return model


@pytest.mark.parametrize("method", ["mcd", "de"])
def test_model_probs_are_the_methods_predictive_distribution(method):
    texts = torch.randn(9, 8, generator=torch.Generator().manual_seed(1))
    fixed = _model(method)
    with torch.no_grad():
        out = fixed(text_embeddings=texts, generator=torch.Generator().manual_seed(5))
        generator = torch.Generator().manual_seed(5)  # the same draws, in the model's order
        mu, sigma = fixed.method.passes(fixed, {"text_embeddings": texts}, generator)
        uncertainty.disentangle(mu, sigma, 50, generator=generator)
        expected = uncertainty.predictive_probs(mu, sigma, 50, generator)
        labels = torch.arange(9) % 3
        validated = fixed(text_embeddings=texts, labels=labels, generator=torch.Generator().manual_seed(5))
        generator = torch.Generator().manual_seed(5)  # again: the loss follows the same draws
        fixed.method.passes(fixed, {"text_embeddings": texts}, generator)
        uncertainty.disentangle(mu, sigma, 50, generator=generator)
        _, loss = uncertainty.predictive_and_loss(mu, sigma, labels, 50, generator)
    assert fixed.predictive == "sampling-softmax-mean"
    torch.testing.assert_close(out.probs, expected)
    torch.testing.assert_close(validated.probs, out.probs)  # the loss takes no draws of its own
    torch.testing.assert_close(validated.loss, loss)  # the mean of the per-pass losses on those draws
    torch.testing.assert_close(out.logits, mu.mean(0))
    assert (out.probs - torch.softmax(out.logits, -1)).abs().max() > 0.01
    faithful = _model(method, "faithful")
    with torch.no_grad():
        out = faithful(text_embeddings=texts)
    assert faithful.predictive == "softmax-of-mean-logits"
    torch.testing.assert_close(out.probs, torch.softmax(out.logits, -1))


def _rcml(mode="fixed"):
    """RCML fuses two or more views: image and text."""
    torch.manual_seed(0)
    return LumaModel(LumaModelConfig(method="rcml", modalities=("image", "text"), text_dim=8, mode=mode)).eval()


def test_rcml_probs_are_the_dirichlet_mean():
    model = _rcml()
    inputs = {"pixel_values": torch.randn(4, 3, 32, 32), "text_embeddings": torch.randn(4, 8)}
    with torch.no_grad():
        out = model(**inputs)
        evidences = [torch.nn.functional.softplus(x) for x in model.members[0](inputs)[2].values()]
        alpha = losses.fuse_evidence(evidences) + 1
    assert model.predictive == "dirichlet-mean"
    torch.testing.assert_close(out.probs, alpha / alpha.sum(-1, keepdim=True))


@pytest.mark.parametrize("method", ["mcd", "de"])
def test_evaluation_noise_comes_from_the_configured_seed_not_the_global_rng(method):
    """Dropout masks and ε are drawn from generators derived from eval_seed (the run's seed in
    `train`): the same seed gives the same outputs whatever the global RNG, another seed other
    outputs, and the global RNG is left where it was."""
    texts = torch.randn(6, 8)
    model = _model(method, eval_seed=7)
    with torch.no_grad():
        torch.manual_seed(1)
        state = torch.get_rng_state()
        first = model(text_embeddings=texts)
        assert torch.equal(torch.get_rng_state(), state)
        torch.manual_seed(2)
        again = model(text_embeddings=texts)
        explicit = model(text_embeddings=texts, generator=torch.Generator().manual_seed(7))
        model.config.eval_seed = 8
        other = model(text_embeddings=texts)
    for key in ("probs", "aleatoric", "epistemic"):
        assert torch.equal(first[key], again[key]) and torch.equal(first[key], explicit[key]), key
        assert not torch.equal(first[key], other[key]), key
    with pytest.raises(ValueError, match="eval_seed"):
        LumaModelConfig(eval_seed=-1)


def test_predict_takes_a_generator_for_the_whole_split():
    """`predict(generator=)`: noise drawn batch after batch from one generator (reproducible
    from its seed); without it, every batch draws the model's eval_seed noise."""
    from luma_noise.baselines import predict

    model = _model("mcd")
    rows = [{"text_embeddings": torch.randn(8), "label": 0}] * 4  # four identical rows, batches of 2

    def collate(batch):
        return {"text_embeddings": torch.stack([r["text_embeddings"] for r in batch]),
                "labels": torch.tensor([r["label"] for r in batch])}

    default = predict(model, rows, collate, batch_size=2)
    seeded = [predict(model, rows, collate, batch_size=2, generator=torch.Generator().manual_seed(9))
              for _ in range(2)]
    np.testing.assert_array_equal(default["aleatoric"][:2], default["aleatoric"][2:])  # the same noise per batch
    np.testing.assert_array_equal(seeded[0]["probs"], seeded[1]["probs"])
    assert not np.array_equal(seeded[0]["aleatoric"][:2], seeded[0]["aleatoric"][2:])  # fresh noise per batch


def test_mc_dropout_masks_are_seeded_per_call():
    """Two MC-dropout calls with one generator draw different masks; the same seed, the same masks."""
    model = _model("mcd")
    texts = torch.randn(4, 8)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        a, _ = model.method.passes(model, {"text_embeddings": texts}, generator)
        b, _ = model.method.passes(model, {"text_embeddings": texts}, generator)
        c, _ = model.method.passes(model, {"text_embeddings": texts}, torch.Generator().manual_seed(3))
    assert torch.equal(a, c) and not torch.equal(a, b)
    assert len(torch.unique(a[:, 0], dim=0)) == len(a)  # the passes differ from each other


@pytest.fixture(scope="module")
def luma_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("predictive-cache"))


def test_train_command_records_the_predictive_distribution(mirror, tiny_bert, luma_cache, tmp_path):
    """results.json rows and prediction files name their predictive distribution, NLL is computed
    from it, faithful audio runs record the clips the reference cannot batch, and the report
    names the distribution behind its calibration columns."""
    common = dict(mirror=str(mirror[0]), max_epochs=1, ensemble_size=2, mc_samples=2, batch_size=64, device="cpu",
                  cache_dir=luma_cache, text_model=tiny_bert, progress=lambda event: None)
    fixed = run_training("clean", tmp_path / "fixed", methods=("de",), modalities=("text",), **common)
    faithful = run_training("clean", tmp_path / "faithful", methods=("mcd",), modalities=("audio",),
                            mode="faithful", **common)
    rows = {(r["method"], faithful is results): r for results in (fixed, faithful) for r in results["results"]}
    assert {k: r["predictive"] for k, r in rows.items()} == {
        ("de", False): "sampling-softmax-mean", ("mcd", True): "softmax-of-mean-logits"}
    for (method, is_faithful), row in rows.items():
        folder = tmp_path / ("faithful" if is_faithful else "fixed")
        with np.load(folder / row["predictions"]) as arrays:
            assert str(arrays["predictive"]) == row["predictive"]
            probs, labels = arrays["test_probs"].astype(np.float64), arrays["test_labels"]
            nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()
            assert row["nll"] == pytest.approx(nll, rel=1e-5)
    test = load("clean", mirror=str(mirror[0]), cache_dir=luma_cache)
    longer = {split: sum(inputs.reference_frames(len(inputs.decode_audio(a)[0])) > 128 for a in test[split]["audio"])
              for split in ("train", "test", "ood")}
    assert faithful["faithful_audio"]["clips_longer_than_128_frames"] == longer
    assert "faithful_audio" not in fixed
    written = json.loads((tmp_path / "faithful" / "results.json").read_text())
    assert written["faithful_audio"] == faithful["faithful_audio"]
    write_report([tmp_path / "fixed"], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Predictive distribution behind ECE, NLL, Brier" in text
    assert "`sampling-softmax-mean` for DE text" in text


def test_faithful_rcml_loss_is_what_the_model_validates_on():
    """The RCML validation loss (λ = 1, defect 9 corrected in both modes) follows the mode."""
    inputs, labels = {"pixel_values": torch.randn(5, 3, 32, 32), "text_embeddings": torch.randn(5, 8)}, \
        torch.tensor([0, 3, 3, 9, 41])
    for mode in ("fixed", "faithful"):
        model = _rcml(mode)
        with torch.no_grad():
            loss = model(**inputs, labels=labels).loss
            evidences = [torch.nn.functional.softplus(x) for x in model.members[0](inputs)[2].values()]
        torch.testing.assert_close(loss, losses.rcml_loss(evidences, labels, 1.0, faithful=mode == "faithful"))
