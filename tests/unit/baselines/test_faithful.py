"""`mode="faithful"` against the reference's own outputs (`tests/data/reference_values/`).

The reference values were produced by running the reference code on fixed inputs
(`cases.npz`, `mel.npz`, copied from the project's shared `reference_values/`, whose README
describes every field). Monte Carlo outputs are expectations over
R = 2000 reference calls with their standard errors (SE); we average N of our own calls and
accept a difference up to 4 combined SE (README §7):
- per example: 4·√(X_se² + X_sd1²/N);
- batch mean: 4·√(X_batchmean_se² + sd_call²/N), sd_call our own single-call scatter.
Four SE puts a false failure at about 6e-5 per comparison (about 1 % over the 128 per-example
comparisons of a test); the draws are seeded, so the outcome does not vary between runs. Each
test also asserts that the
previous (or the usual mistaken) behaviour falls outside that tolerance. Deterministic
values (intermediates, RCML's loss, the mel spectrogram) use rtol 1e-5 (float32 vs float64
evaluations of the reference agree to 1.5e-6) and 1e-4 of the maximum for the STFT.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from luma_noise.baselines import LumaModel, LumaModelConfig, compute_metrics, inputs, losses, uncertainty

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference_values"
CALLS, CHUNK, SAMPLES = 100, 50, 100  # N calls (vectorised CHUNK at a time), S noise samples


@pytest.fixture(scope="module")
def cases():
    with np.load(REFERENCE / "cases.npz") as data:
        return {k: data[k] for k in data.files}


def _tolerance(cases, key, calls_sd, n=CALLS):
    """Per-example and batch-mean tolerances of `key` for n calls (see the module docstring)."""
    per_example = 4 * np.sqrt(cases[f"{key}_se"] ** 2 + cases[f"{key}_sd1"] ** 2 / n)
    batch_mean = 4 * np.sqrt(cases[f"{key}_batchmean_se"] ** 2 + calls_sd ** 2 / n)
    return per_example, batch_mean


def _calls(mu, sigma, ensemble, seed=0, sampler=None):
    """(aleatoric, epistemic), each (N, B): N independent faithful evaluations of mu, sigma (T, B, C).

    The N calls run as an extra axis of `uncertainty.disentangle` (T, N, B, C), CHUNK at a time.
    """
    generator = torch.Generator().manual_seed(seed)
    mu, sigma = torch.from_numpy(mu), torch.from_numpy(sigma)  # float32, as the reference
    out = []
    for _ in range(CALLS // CHUNK):
        stacked = [x[:, None].expand(-1, CHUNK, -1, -1) for x in (mu, sigma)]
        out.append((sampler or uncertainty.disentangle)(*stacked, SAMPLES, faithful=True, ensemble=ensemble,
                                                        generator=generator)[1:])
    return tuple(torch.cat(parts).numpy() for parts in zip(*out))


def _agrees(cases, key, values):
    """Does the mean over calls of `values` (N, B) agree with the reference's expectation?"""
    per_example, batch_mean = _tolerance(cases, key, values.mean(1).std(ddof=1))
    return (np.abs(values.mean(0) - cases[key]) <= per_example).all() and \
        abs(values.mean() - cases[f"{key}_batchmean"]) <= batch_mean


def _case(cases, method, first32):
    rows = slice(0, 32) if first32 else slice(None)
    prefix = f"{method}_first32" if first32 else method
    return cases[f"{method}_mu"][:, rows], cases[f"{method}_sigma"][:, rows], prefix


@pytest.mark.parametrize("first32", [False, True], ids=["batch64", "first32"])
@pytest.mark.parametrize("method", ["mcd", "de"])
def test_faithful_uncertainties_match_the_reference(cases, method, first32):
    """Defects 1, 2, 3 and 12 together, per example and on the batch mean, on the full batch
    of 64 and on its first 32 examples as a batch of their own (the batch dependence)."""
    mu, sigma, prefix = _case(cases, method, first32)
    aleatoric, epistemic = _calls(mu, sigma, ensemble=method == "de")
    assert _agrees(cases, f"{prefix}_aleatoric", aleatoric)
    assert _agrees(cases, f"{prefix}_epistemic", epistemic)


def _shared_noise(mu, sigma, ensemble, generator):
    """The previous faithful aleatoric entropy (B,): one ε (S, 1, C) for the whole batch,
    softmax over the batch axis of the (S, B, C) samples."""
    mean, log_sigma, _ = uncertainty.vtm_sigmas(mu, sigma, correction=1)
    if ensemble:
        log_sigma = uncertainty.reference_ensemble_log_sigma(mu)
    return uncertainty._reference_entropy(uncertainty._sampled_probs(mean, log_sigma.exp(), SAMPLES, 1, generator))


@pytest.mark.parametrize("method", ["mcd", "de"])
def test_noise_shared_by_the_batch_is_rejected(cases, method):
    """Defect 1: a draw shared by the batch partly cancels under the batch-axis softmax
    (README §7: MCD aleatoric −0.21, DE −0.27)."""
    mu, sigma, prefix = _case(cases, method, False)
    generator = torch.Generator().manual_seed(0)
    shared = np.stack([_shared_noise(torch.from_numpy(mu), torch.from_numpy(sigma), method == "de", generator).numpy()
                       for _ in range(20)])
    assert not _agrees(cases, f"{prefix}_aleatoric", shared)
    assert cases[f"{prefix}_aleatoric_batchmean"] - shared.mean() > 0.15


def test_reference_intermediates_are_reproduced(cases):
    """μ̄, the σ handed to the sampler, member index 1 and the sample std (defects 2, 3, 12)."""
    for method in ("mcd", "de"):
        mu, sigma = torch.from_numpy(cases[f"{method}_mu"]), torch.from_numpy(cases[f"{method}_sigma"])
        mean, sigma_ale, sigma_epi = uncertainty.vtm_sigmas(mu, sigma, correction=1)
        np.testing.assert_allclose(mean.numpy(), cases[f"{method}_mu_bar"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sigma_epi.numpy(), cases[f"{method}_sigma_epi"], rtol=1e-5, atol=1e-6)
        population = uncertainty.vtm_sigmas(mu, sigma)[2].numpy()  # the previous divisor T
        assert not np.allclose(population, cases[f"{method}_sigma_epi"], rtol=1e-3)
    mcd_ale = uncertainty.vtm_sigmas(torch.from_numpy(cases["mcd_mu"]), torch.from_numpy(cases["mcd_sigma"]))[1]
    np.testing.assert_allclose(mcd_ale.numpy(), cases["mcd_sigma_ale_log"], rtol=1e-5, atol=1e-6)
    assert int(cases["de_sigma_member_index"]) == 1
    log_sigma = uncertainty.reference_ensemble_log_sigma(torch.from_numpy(cases["de_mu"]))
    assert log_sigma.shape == (64, 42)
    np.testing.assert_allclose(log_sigma.numpy(), np.broadcast_to(cases["de_sigma_ale_log"], (64, 42)), rtol=1e-5,
                               atol=1e-6)
    third = torch.from_numpy(cases["de_mu"][2]).mean(0).numpy()  # the previous member index 2
    assert np.abs(third - cases["de_sigma_ale_log"]).max() > 0.01


def test_ensemble_sigma_from_member_2_and_population_std_are_rejected(cases):
    """README §7: DE σ from member 2 moves DE aleatoric by +0.007; the population std moves
    MCD epistemic by −0.006 and DE epistemic by −0.013."""
    def previous(mu, sigma, samples, faithful, ensemble, generator):
        mean, log_sigma, sigma_epi = uncertainty.vtm_sigmas(mu, sigma, correction=0)
        if ensemble:
            log_sigma = mu[2].mean(-2, keepdim=True).expand(mu.shape[1:])
        entropy = uncertainty._reference_entropy
        return (None, entropy(uncertainty._reference_sampled_probs(mean, log_sigma.exp(), samples, generator)),
                entropy(uncertainty._reference_sampled_probs(mean, sigma_epi, samples, generator)))

    de_ale, de_epi = _calls(cases["de_mu"], cases["de_sigma"], True, sampler=previous)
    assert not _agrees(cases, "de_aleatoric", de_ale) and not _agrees(cases, "de_epistemic", de_epi)
    _, mcd_epi = _calls(cases["mcd_mu"], cases["mcd_sigma"], False, sampler=previous)
    assert not _agrees(cases, "mcd_epistemic", mcd_epi)


def _case_model(cases, method, mode="faithful"):
    """A model whose method's passes are the case's (μ_t, σ_t): the method's own evaluation code on them."""
    config = LumaModelConfig(method=method, modalities=("text",), text_dim=1, mode=mode,
                             ensemble_size=10, mc_samples=10, softmax_samples=SAMPLES)
    model = LumaModel(config).eval()
    case = torch.from_numpy(cases[f"{method}_mu"]), torch.from_numpy(cases[f"{method}_sigma"])

    def passes(model, inputs, generator):
        rows = next(iter(inputs.values()))[:, 0].long()  # the case's row numbers ride in the inputs
        return case[0][:, rows], case[1][:, rows]

    model.method.passes = passes
    return model


def _losses(model, labels, rows, calls):
    """The model's validation loss on the case's rows: the mean of `calls` independent calls,
    and the loss of one call through `forward`.

    The faithful losses are means over examples and noise draws, so the mean of N calls is one
    call on the batch repeated N times (vectorised)."""
    rows_in = torch.as_tensor(rows, dtype=torch.float32)[:, None]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mu, sigma = model.method.passes(model, {"text_embeddings": rows_in}, generator)
        mean = model.method.faithful_loss(mu.repeat(1, calls, 1), sigma.repeat(1, calls, 1), labels.repeat(calls),
                                           generator).item()
        return mean, model(text_embeddings=rows_in, labels=labels, generator=generator).loss.item()


@pytest.mark.parametrize("first32", [False, True], ids=["batch64", "first32"])
def test_faithful_mcd_validation_loss_is_computed_once_on_the_mean_outputs(cases, first32):
    """Defect 12 (and 4): one loss per batch on (μ̄, mean σ), the mean cross-entropy of the
    noisy logits; the previous per-pass mean (≈ 1.530 on the full batch) is rejected."""
    rows = np.arange(32 if first32 else 64)
    key = "mcd_first32_val_loss" if first32 else "mcd_val_loss"
    labels = torch.from_numpy(cases["labels"][rows])
    mean, one_call = _losses(_case_model(cases, "mcd"), labels, rows, CALLS)
    tolerance = 4 * np.sqrt(cases[f"{key}_se"] ** 2 + cases[f"{key}_sd1"] ** 2 / CALLS)
    assert abs(mean - cases[key]) <= tolerance
    assert abs(one_call - cases[key]) <= 4 * (cases[f"{key}_se"] + cases[f"{key}_sd1"])  # the wiring of forward
    mu, sigma = torch.from_numpy(cases["mcd_mu"][:, rows]), torch.from_numpy(cases["mcd_sigma"][:, rows])
    generator = torch.Generator().manual_seed(1)
    per_pass = np.mean([losses.sampling_softmax_loss(m, s, labels, SAMPLES, faithful=True, generator=generator).item()
                        for m, s in zip(mu, sigma)])
    assert abs(per_pass - cases[key]) > 20 * tolerance


def test_faithful_ensemble_validation_loss_is_the_members_sum(cases):
    rows = np.arange(64)
    labels = torch.from_numpy(cases["labels"])
    calls = 20  # ten members: already 10 × 20 × 64 × 42 × 100 draws
    mean, one_call = _losses(_case_model(cases, "de"), labels, rows, calls)
    tolerance = 4 * np.sqrt(cases["de_val_loss_se"] ** 2 + cases["de_val_loss_sd1"] ** 2 / calls)
    assert abs(mean - cases["de_val_loss"]) <= tolerance
    assert abs(one_call - cases["de_val_loss"]) <= 4 * (cases["de_val_loss_se"] + cases["de_val_loss_sd1"])
    assert abs(mean / 10 - cases["de_val_loss"]) > 100 * tolerance  # the previous members' mean


def test_epoch_validation_loss_is_the_plain_mean_of_batches_in_faithful_mcd(cases, tmp_path):
    """Through the stock Trainer: 20 rows in batches of 16 and 4. Faithful MC dropout's eval_loss
    is the plain mean of the two batch losses (what early stopping and the LR plateau see);
    fixed mode's stays the Trainer's mean weighted by batch size."""
    rows = [{"text_embeddings": torch.tensor([float(i)]), "label": int(cases["labels"][i])} for i in range(20)]

    def collate(batch):
        return {"text_embeddings": torch.stack([r["text_embeddings"] for r in batch]),
                "labels": torch.tensor([r["label"] for r in batch])}

    for mode in ("faithful", "fixed"):
        model = _case_model(cases, "mcd", mode)
        args = TrainingArguments(str(tmp_path / mode), per_device_eval_batch_size=16, report_to="none", use_cpu=True,
                                 remove_unused_columns=False, disable_tqdm=True)
        metrics = Trainer(model=model, args=args, eval_dataset=rows, data_collator=collate,
                          compute_metrics=compute_metrics).evaluate()
        with torch.no_grad():  # the same evaluation noise (eval_seed): the same batch losses
            batch_losses = [model(**collate(rows[i:i + 16])).loss.item() for i in (0, 16)]
        expected = np.mean(batch_losses) if mode == "faithful" else np.average(batch_losses, weights=[16, 4])
        assert metrics["eval_loss"] == pytest.approx(expected, rel=1e-5), mode
        assert abs(np.mean(batch_losses) - np.average(batch_losses, weights=[16, 4])) > 1e-3


@pytest.mark.parametrize("batch", [32, 64])
def test_faithful_rcml_loss_reproduces_the_reference(cases, batch):
    """Defect 11: the "fused" term on the stacked per-view tensor, sums over the batch axis."""
    evidences = list(torch.from_numpy(cases["rcml_evidence"][:, :batch]).double())
    labels = torch.from_numpy(cases["rcml_labels"][:batch])
    for i, epoch in enumerate(cases["rcml_epochs"]):
        weight = losses.annealing_weight(epoch)
        faithful = losses.rcml_loss(evidences, labels, weight, faithful=True).item()
        fixed = losses.rcml_loss(evidences, labels, weight).item()
        assert faithful == pytest.approx(cases[f"rcml_b{batch}_loss"][i], rel=1e-5)
        stacked = losses.reference_stacked_term(evidences, labels, weight).item()
        assert stacked == pytest.approx(cases[f"rcml_b{batch}_stacked_term"][i], rel=1e-5, abs=1e-5)
        assert fixed == pytest.approx(cases[f"rcml_b{batch}_official_loss"][i], rel=1e-5)
        assert abs(faithful - fixed) > 0.05
    views = [losses.evidential_loss(e + 1, labels, 1.0).mean().item() for e in evidences]
    np.testing.assert_allclose(views, cases[f"rcml_b{batch}_view_terms"][-1], rtol=1e-5)
    assert losses.conflict_loss(evidences).item() == pytest.approx(float(cases[f"rcml_b{batch}_conflict"]), rel=1e-5)


def test_faithful_rcml_model_trains_on_the_reference_loss():
    """End to end: the model's training loss in faithful mode is the reference's, in fixed mode the official."""
    torch.manual_seed(0)
    labels = torch.arange(12) % 42
    batch = {"pixel_values": torch.randn(12, 3, 32, 32), "text_embeddings": torch.randn(12, 8)}
    values = {}
    for mode in ("fixed", "faithful"):
        model = LumaModel(LumaModelConfig(method="rcml", modalities=("image", "text"), text_dim=8, mode=mode))
        model.load_state_dict(values.get("weights", model.state_dict()))
        values["weights"] = model.state_dict()
        model.train()
        model.annealing_epoch = 10.0
        torch.manual_seed(1)  # the same dropout masks in both modes
        values[mode] = model(**batch, labels=labels).loss
        torch.manual_seed(1)
        evidences = [torch.nn.functional.softplus(x) for x in model.members[0](batch)[2].values()]
        expected = losses.rcml_loss(evidences, labels, 0.2, faithful=mode == "faithful")
        torch.testing.assert_close(values[mode], expected)
    assert abs(values["fixed"].item() - values["faithful"].item()) > 1e-3


@pytest.fixture(scope="module")
def mel():
    with np.load(REFERENCE / "mel.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_faithful_audio_is_the_reference_mel_spectrogram(mel, rate):
    """Raw power at an assumed 16 kHz whatever the rate, zero-padded to 128 frames (defect 7)."""
    clip = mel[f"clip_{rate}"][0]
    got = inputs.audio_tensor({"array": clip, "sampling_rate": rate}, "faithful").numpy()
    expected = mel[f"mel_{rate}"]
    assert got.shape == expected.shape == (1, 128, 128)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * expected.max())
    fixed = inputs.audio_tensor({"array": clip, "sampling_rate": rate}, "fixed").numpy()
    assert np.abs(fixed - expected).max() > 0.1 * expected.max()


def test_long_clips_are_counted_and_cut_to_their_first_128_frames(mel):
    """The reference leaves clips of more than 128 frames at F frames (it cannot batch them);
    faithful mode keeps their first 128 frames and `reference_frames` says which clips those are."""
    for duration, rate, samples, frames, *shape in mel["shapes"]:
        assert inputs.reference_frames(int(samples)) == int(frames)
        assert tuple(int(x) for x in shape) == (1, 128, max(128, int(frames)))
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(48_000).astype(np.float32)  # 3 s at 16 kHz: 241 frames
    got = inputs.audio_tensor({"array": clip, "sampling_rate": 16_000}, "faithful")
    full = inputs.mel_power(clip)
    assert full.shape == (128, 241) and inputs.reference_frames(len(clip)) == 241
    torch.testing.assert_close(got[0], full[:, :128])


def test_long_clips_counts_the_clips_the_reference_cannot_batch():
    """`long_clips` (results.json's `faithful_audio`) reads only wav headers: 25,600 samples at
    any rate give 129 reference frames (counted), 25,599 give 128 (not counted)."""
    import io

    import datasets
    import soundfile

    def wav(samples, rate):
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(samples, dtype=np.float32), rate, format="WAV")
        return {"bytes": buffer.getvalue(), "path": None}

    cells = [wav(25_600, 16_000), wav(25_599, 16_000), wav(76_800, 48_000), wav(8_000, 16_000)]
    split = datasets.Dataset.from_dict({"audio": cells})
    report = inputs.long_clips({"test": split, "ood": split.select([1, 3])})
    assert report["clips_longer_than_128_frames"] == {"test": 2, "ood": 0}
    assert "first 128 frames" in report["handling"]
