"""benchmarks/bench_epoch.py trains each run of the plan for one epoch through `runner.fit` (the
Trainer, the per-epoch validation, the checkpoint) and reports the validation's time apart: a
smoke test of its wiring on a few hundred random rows, not a timing."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))


def test_bench_epoch_times_training_and_validation_of_each_run(tmp_path, capsys):
    import bench_epoch

    out = tmp_path / "epoch.json"
    assert bench_epoch.main(["--rows", "300", "--runs", "de-text", "mcd-text", "--device", "cpu",
                             "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["run"] for r in report["rows"]] == ["mcd-text", "de-text"]  # the quick ones first
    for r in report["rows"]:
        assert (r["rows"], r["validation_rows"]) == (240, 60)  # train_run's 80/20 split
        assert 0 < r["validation_s"] < r["epoch_s"] and 0 < r["validation_share"] < 1
        assert abs(r["training_s"] + r["validation_s"] - r["epoch_s"]) < 1e-9
    assert report["val_mc_samples"] == 4 and report["memory_format"] == "channels_last"  # train's defaults
    printed = capsys.readouterr().out
    assert "one epoch of 2 runs" in printed
    # the first validation's metric imports (about a second, once per process) happen before any timing
    assert printed.index("importing the measures' libraries") < printed.index("  mcd-text ")


def test_prefix_per_pass_times_the_same_mc_dropout_evaluation():
    """`--prefix-per-pass` (the validation as before issue 19) moves the layers before the first
    dropout back into every pass: the same masks are drawn, so the same outputs (up to float32
    rounding: the same operations in the same order, only on inputs repeated earlier)."""
    import bench_epoch
    import torch

    from luma_noise.baselines.methods.model import MethodConfig, MethodModel

    torch.manual_seed(0)
    config = MethodConfig(method="mcd", modalities=("image", "text"), num_train_examples=3, mc_samples=5)
    model = MethodModel(config).eval()
    g = torch.Generator().manual_seed(0)
    inputs = {"pixel_values": torch.randn(3, 3, 32, 32, generator=g),
              "text_embeddings": torch.randn(3, 768, generator=g)}
    with torch.no_grad():
        once = model(**inputs, generator=torch.Generator().manual_seed(1))
        with bench_epoch.prefix_per_pass():
            assert all(branch.cut == 0 for branch in model.members[0].branches.values())
            every = model(**inputs, generator=torch.Generator().manual_seed(1))
    assert model.members[0].branches["image"].cut > 0  # restored
    for key in ("probs", "aleatoric", "epistemic", "logits"):
        torch.testing.assert_close(getattr(every, key), getattr(once, key), rtol=1e-5, atol=1e-6)
