"""Losses and uncertainty formulas of the baselines against closed forms and brute force."""

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch.nn import functional as F

from luma_noise.baselines import LumaModel, LumaModelConfig, losses, uncertainty


def test_sampling_softmax_loss_is_cross_entropy_at_zero_sigma():
    torch.manual_seed(0)
    mu, labels = torch.randn(6, 42), torch.randint(0, 42, (6,))
    for faithful in (False, True):
        loss = losses.sampling_softmax_loss(mu, torch.zeros_like(mu), labels, samples=7, faithful=faithful)
        torch.testing.assert_close(loss, F.cross_entropy(mu, labels))


def _loss_at(sigma_value, mu, labels, faithful=False):
    generator = torch.Generator().manual_seed(1)  # the same ε for every σ
    return losses.sampling_softmax_loss(mu, torch.full_like(mu, sigma_value), labels, samples=20_000,
                                        faithful=faithful, generator=generator).item()


def test_sampling_softmax_loss_decreases_with_sigma_for_a_misclassified_example():
    mu, labels = torch.tensor([[4.0, 0.0, -1.0, 1.0]]), torch.tensor([2])
    values = [_loss_at(s, mu, labels) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_faithful_loss_never_rewards_noise():
    """Defect 4: mean cross-entropy over noisy logits is >= the noiseless one (Jensen), so σ -> 0."""
    mu, labels = torch.tensor([[4.0, 0.0, -1.0, 1.0]]), torch.tensor([2])
    values = [_loss_at(s, mu, labels, faithful=True) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def _opinion(evidence):
    strength = evidence.sum(-1, keepdim=True) + evidence.shape[-1]
    return evidence / strength, evidence.shape[-1] / strength


def test_evidence_averaging_is_the_pairwise_averaging_opinion_formula():
    """Jøsang's averaging fusion: b = (b_A u_B + b_B u_A) / (u_A + u_B), u = 2 u_A u_B / (u_A + u_B)."""
    torch.manual_seed(0)
    e_a, e_b = torch.rand(5, 42) * 10, torch.rand(5, 42) * 3
    (b_a, u_a), (b_b, u_b) = _opinion(e_a), _opinion(e_b)
    b, u = _opinion(losses.fuse_evidence([e_a, e_b]))
    torch.testing.assert_close(b, (b_a * u_b + b_b * u_a) / (u_a + u_b))
    torch.testing.assert_close(u, 2 * u_a * u_b / (u_a + u_b))


def test_three_views_are_fused_in_order_text_weighing_half():
    img, aud, txt = (torch.full((1, 3), v) for v in (1.0, 2.0, 8.0))
    torch.testing.assert_close(losses.fuse_evidence([img, aud, txt]), torch.full((1, 3), (1.5 + 8.0) / 2))


@pytest.mark.parametrize("alpha", [(2.0, 5.0), (1.5, 3.0)])
def test_kl_to_uniform_dirichlet_matches_a_numeric_integral_two_classes(alpha):
    density = stats.beta(*alpha)  # Dir(a, b) on the simplex is Beta(a, b); Dir(1, 1) has density 1
    expected, _ = integrate.quad(lambda x: density.pdf(x) * density.logpdf(x), 0, 1)
    got = losses.kl_dirichlet_uniform(torch.tensor([alpha], dtype=torch.float64)).item()
    assert got == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("alpha", [(2.0, 3.0, 1.5), (0.5, 0.7, 4.0, 9.0), tuple(np.linspace(0.2, 12, 42))])
def test_kl_to_uniform_dirichlet_matches_scipys_dirichlet_entropy(alpha):
    """Dir(1, ..., 1) has the constant density Γ(K), so KL = -H(Dir(α)) - log Γ(K)."""
    expected = -stats.dirichlet(np.array(alpha)).entropy() - special.gammaln(len(alpha))
    got = losses.kl_dirichlet_uniform(torch.tensor([alpha], dtype=torch.float64)).item()
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_evidential_fit_term_is_the_expected_cross_entropy_under_the_dirichlet():
    alpha = np.array([3.0, 1.2, 6.0, 2.0])
    draws = np.random.default_rng(0).dirichlet(alpha, size=400_000)
    expected = -np.log(draws[:, 2]).mean()
    got = losses.evidential_loss(torch.from_numpy(alpha[None]), torch.tensor([2]), kl_weight=0.0).item()
    assert got == pytest.approx(expected, abs=5e-3)
    # the KL weight multiplies the KL of the Dirichlet with the label's evidence removed
    with_kl = losses.evidential_loss(torch.from_numpy(alpha[None]), torch.tensor([2]), kl_weight=0.5).item()
    removed = torch.tensor([[3.0, 1.2, 1.0, 2.0]], dtype=torch.float64)
    assert with_kl - got == pytest.approx(0.5 * losses.kl_dirichlet_uniform(removed).item())


def test_conflict_term_matches_a_brute_force_sum_over_ordered_pairs():
    torch.manual_seed(0)
    views = [torch.rand(4, 6) * s for s in (1.0, 5.0, 20.0)]
    expected = 0.0
    for i in range(3):
        for j in range(3):
            if i != j:
                (p_i, u_i), (p_j, u_j) = _dirichlet_mean(views[i]), _dirichlet_mean(views[j])
                expected = expected + 0.5 * (p_i - p_j).abs().sum(-1) * (1 - u_i) * (1 - u_j) / 2
    torch.testing.assert_close(losses.conflict_loss(views), expected.mean())
    assert losses.conflict_loss(views[:1]).item() == 0.0


def _dirichlet_mean(evidence):
    alpha = evidence + 1
    return alpha / alpha.sum(-1, keepdim=True), evidence.shape[-1] / alpha.sum(-1)


def test_rcml_loss_combines_fused_and_per_view_terms():
    torch.manual_seed(0)
    views, labels = [torch.rand(3, 5) * 4 for _ in range(3)], torch.tensor([0, 4, 2])
    fused = losses.fuse_evidence(views) + 1
    terms = [losses.evidential_loss(a, labels, 0.3) for a in [fused] + [v + 1 for v in views]]
    expected = torch.stack(terms).sum(0).mean() / 4 + 2.0 * losses.conflict_loss(views)
    torch.testing.assert_close(losses.rcml_loss(views, labels, 0.3, conflict_weight=2.0), expected)
    assert [losses.annealing_weight(t) for t in (0, 25, 50, 80)] == [0.0, 0.5, 1.0, 1.0]


def test_dirichlet_uncertainty_expected_entropy_and_k_over_alpha0():
    alpha = np.array([4.0, 1.5, 2.5])
    draws = np.random.default_rng(1).dirichlet(alpha, size=400_000)
    expected_entropy = -(draws * np.log(draws)).sum(1).mean()
    probs, aleatoric, epistemic = uncertainty.dirichlet_uncertainty(torch.from_numpy(alpha[None]))
    assert aleatoric.item() == pytest.approx(expected_entropy, abs=5e-3)
    assert epistemic.item() == pytest.approx(3 / alpha.sum())
    np.testing.assert_allclose(probs.numpy()[0], alpha / alpha.sum())


def test_epistemic_spread_is_zero_when_passes_agree():
    torch.manual_seed(0)
    mu = torch.randn(1, 5, 42).expand(10, 5, 42)
    sigma = torch.rand(10, 5, 42)
    _, _, sigma_epi = uncertainty.vtm_sigmas(mu, sigma)
    assert torch.equal(sigma_epi, torch.zeros_like(sigma_epi))
    # so the epistemic entropy is exactly that of the mean prediction: no disagreement added
    probs, _, epistemic = uncertainty.disentangle(mu, sigma, samples=50)
    torch.testing.assert_close(epistemic, -(probs * probs.log()).sum(-1))
    # and it vanishes for agreeing, confident passes
    confident = torch.full((10, 5, 42), -30.0)
    confident[..., 3] = 30.0
    assert uncertainty.disentangle(confident, sigma, samples=50)[2].max().item() < 1e-6
    # passes that disagree around the same mean raise it
    spread = torch.randn(5, 5, 42) * 20
    disagreeing = confident + torch.cat([spread, -spread])
    assert uncertainty.disentangle(disagreeing, sigma, samples=50)[2].min().item() > 0.1


def _uncertainties(mu, sigma, faithful, ensemble=False):
    generator = torch.Generator().manual_seed(0)
    return uncertainty.disentangle(mu, sigma, samples=100, faithful=faithful, ensemble=ensemble, generator=generator)


def test_fixed_uncertainty_does_not_depend_on_the_batch_faithful_does():
    torch.manual_seed(0)
    mu, sigma = torch.randn(8, 32, 42) * 2, torch.rand(8, 32, 42)
    alone, batch = _uncertainties(mu[:, :1], sigma[:, :1], False), _uncertainties(mu, sigma, False)
    for a, b in zip(alone, batch):
        torch.testing.assert_close(a[0], b[0])
    alone, batch = _uncertainties(mu[:, :1], sigma[:, :1], True), _uncertainties(mu, sigma, True)
    assert abs(alone[1][0].item() - batch[1][0].item()) > 0.1  # defect 1: aleatoric entropy moves with the batch


def test_faithful_ensemble_sigma_comes_from_the_third_members_logits():
    """Defect 3: σ heads ignored; defect 2: σ exponentiated. Changing σ heads changes nothing."""
    torch.manual_seed(0)
    mu = torch.randn(4, 6, 42)
    first = _uncertainties(mu, torch.rand(4, 6, 42), True, ensemble=True)[1]
    second = _uncertainties(mu, torch.rand(4, 6, 42) * 5, True, ensemble=True)[1]
    torch.testing.assert_close(first, second)


def test_fixed_model_uncertainty_does_not_depend_on_the_batch():
    """End to end through a deep ensemble (no dropout at evaluation) on the same RNG state."""
    torch.manual_seed(0)
    model = LumaModel(LumaModelConfig(method="de", modalities=("text",), text_dim=8, ensemble_size=3,
                                      softmax_samples=64)).eval()
    texts = torch.randn(16, 8)
    for mode, dependent in (("fixed", False), ("faithful", True)):
        model.config.mode = mode
        torch.manual_seed(1)
        alone = model(text_embeddings=texts[:1])
        torch.manual_seed(1)
        batch = model(text_embeddings=texts)
        same = torch.allclose(alone.aleatoric[0], batch.aleatoric[0]) and torch.allclose(alone.epistemic[0],
                                                                                         batch.epistemic[0])
        assert same != dependent, mode


def test_mc_dropout_vectorised_passes_match_a_loop_of_passes():
    """Repeating the batch gives T independent dropout passes: same statistics as a loop."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Dropout(0.5), torch.nn.Linear(64, 3)).train()
    x = {"x": torch.randn(2, 4)}
    with torch.no_grad():
        (vectorised,) = uncertainty.repeated_passes(lambda d: (net(d["x"]),), x, passes=500, max_rows=150)
        looped = torch.stack([net(x["x"]) for _ in range(500)])
    assert vectorised.shape == (500, 2, 3)
    assert len(torch.unique(vectorised[:, 0], dim=0)) > 490  # masks differ between passes
    torch.testing.assert_close(vectorised.mean(0), looped.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(vectorised.std(0), looped.std(0), atol=0.1, rtol=0)


def test_config_errors_name_every_bad_field():
    with pytest.raises(ValueError) as err:
        LumaModelConfig(method="mcd", mode="exact", dropout=1.5, mc_samples=0, modalities=("smell",))
    for field in ("mode", "dropout", "mc_samples", "modalities"):
        assert field in str(err.value)
    with pytest.raises(ValueError, match="unknown method 'svm'"):  # a hyper-parameter of no method is not checked
        LumaModelConfig(method="svm", mode="exact")


def test_special_functions_agree_with_scipy():
    alpha = np.array([0.7, 2.0, 9.0])
    total = alpha.sum()
    expected = (special.gammaln(total) - special.gammaln(3) - special.gammaln(alpha).sum()
                + ((alpha - 1) * (special.digamma(alpha) - special.digamma(total))).sum())
    assert losses.kl_dirichlet_uniform(torch.from_numpy(alpha[None])).item() == pytest.approx(expected)
