"""benchmarks/bench_perf.py: the deep ensemble's members in one vmapped call give each member's own
outputs (so the ratio it reports compares equal work)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))


@pytest.mark.parametrize("run_modality", ["image", "text"])
def test_batched_members_equal_one_call_per_member(run_modality):
    from bench_perf import batch_of, batched_members, modalities

    from luma_noise.baselines import LumaModel, LumaModelConfig

    torch.manual_seed(0)
    mods = modalities(run_modality)
    model = LumaModel(LumaModelConfig(method="de", modalities=mods, ensemble_size=3)).eval()
    inputs = batch_of(mods, 5)
    with torch.no_grad():
        mu, sigma = batched_members(model.members, inputs, randomness="error")
        for i, member in enumerate(model.members):
            own_mu, own_sigma, _ = member(inputs)
            # float32 summation order may differ between the batched and the single kernels
            torch.testing.assert_close(mu[i], own_mu, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(sigma[i], own_sigma, rtol=1e-5, atol=1e-5)
