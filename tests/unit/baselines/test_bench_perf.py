"""The benchmarks' wiring: bench_perf's vmapped ensemble members give each member's own outputs (so
the ratio it reports compares equal work), its training path keeps the fused optimiser and the
flat inputs, and bench_methods runs every built-in method."""

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


def test_training_path_uses_the_fused_optimiser_and_flat_numpy_inputs(tmp_path):
    """What bench_perf measured as the Trainer's overheads stays removed: `train`'s arguments give a
    fused AdamW, and the model inputs are stored flat and read as numpy, shaped by the collator."""
    import transformers

    from bench_perf import _dataset

    from luma_noise.baselines import LumaCollator, MethodConfig, MethodModel
    from luma_noise.baselines.methods.runner import training_arguments
    from luma_noise.baselines.settings import RunSettings

    args = training_arguments(tmp_path, 0, RunSettings(batch_size=4, max_epochs=1, device="cpu"))
    cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(args, MethodModel(MethodConfig(method="mcd")))
    assert cls is torch.optim.AdamW and kwargs.get("fused") is True
    data = _dataset(("image", "text"), 6)
    assert data.format["type"] == "numpy" and data.format["output_all_columns"]
    row = data[0]
    assert row["pixel_values"].shape == (3 * 32 * 32,) and isinstance(row["label"], int)
    batch = LumaCollator(text_model="unused", modalities=("image", "text"))([data[i] for i in range(6)])
    assert batch["pixel_values"].shape == (6, 3, 32, 32) and batch["text_embeddings"].shape == (6, 768)
    assert batch["pixel_values"].dtype == torch.float32 and batch["labels"].tolist() == list(data["label"])


def test_memory_format_section_times_both_layouts():
    """Section 7 times the same MC dropout model contiguous and channels-last (tiny batch: wiring)."""
    from bench_perf import memory_format

    r = memory_format("image", val_passes=2, batch_size=4, rounds=1)
    assert r["run"] == "mcd-image"
    for name in ("train", "validation"):
        assert r[f"{name}_contiguous_cpu_s"] > 0 and r[f"{name}_channels_last_cpu_s"] > 0
        assert r[f"{name}_speedup"] == r[f"{name}_contiguous_cpu_s"] / r[f"{name}_channels_last_cpu_s"]


def test_predictive_section_compares_with_the_evaluation_it_replaced():
    """Section 8's plain path is the evaluation before `predictive_and_loss`: the same predictive
    distribution from the same draws (to float rounding), and each pass's loss on its own draws."""
    from bench_perf import plain_predictive_and_loss, predictive

    from luma_noise.baselines import losses, uncertainty

    torch.manual_seed(0)
    mu, sigma, labels = torch.randn(3, 4, 5), torch.rand(3, 4, 5), torch.tensor([0, 1, 4, 2])
    probs, loss = plain_predictive_and_loss(mu, sigma, labels, 7, torch.Generator().manual_seed(1), max_floats=300)
    torch.testing.assert_close(probs, uncertainty.predictive_probs(mu, sigma, 7, torch.Generator().manual_seed(1)))
    generator = torch.Generator().manual_seed(1)
    torch.randn((7, 1, 1, 5), generator=generator)  # the predictive's draws come first
    expected = torch.stack([losses.sampling_softmax_loss(m, s, labels, 7, generator=generator)
                            for m, s in zip(mu, sigma)])
    torch.testing.assert_close(loss, expected.mean())
    assert plain_predictive_and_loss(mu, sigma, None, 7)[1] is None  # the final evaluation: no loss
    r = predictive(2, batch_size=4, classes=5, rounds=1)
    for kind in ("validation", "final"):
        assert r[f"{kind}_now_ms"] > 0 and r[f"{kind}_ratio"] == r[f"{kind}_plain_ms"] / r[f"{kind}_now_ms"]


def test_bench_methods_runs_every_builtin_method(capsys):
    """benchmarks/bench_methods.py builds, steps and evaluates every built-in method (tiny sizes: a
    smoke test of the benchmark's wiring, not a timing)."""
    import bench_methods

    from luma_noise.baselines.methods import registry

    assert bench_methods.main(["--modality", "image+text", "--batch-size", "4", "--eval-size", "4",
                               "--min-seconds", "0", "--passes", "2", "--ensemble-size", "2"]) == 0
    printed = {line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]}
    assert printed == set(registry.BUILTIN)
