"""The speed options of `train` and `sweep`: `--precision bf16` (the Trainer's bfloat16 autocast,
recorded in run.json), `--memory-format` (the convolutions' layout, recorded unless contiguous),
`--dataloader-workers` (speed only: not recorded, same results); and no training step waits for
the device (no tensor turned into a Python value)."""

import functools
import json
import sys

import pytest
import torch

from luma_noise.baselines import MethodModel
from luma_noise.baselines.__main__ import main
from luma_noise.baselines.train import bf16_cpu_supported, check_run


@pytest.fixture(scope="module")
def luma_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("speed-cache"))


def _train(mirror, out, cache, *extra):
    return main(["train", "clean", "--mirror", str(mirror[0]), "--output-dir", str(out), "--methods", "mcd",
                 "--modalities", "image", "--max-epochs", "1", "--mc-samples", "2", "--batch-size", "32",
                 "--device", "cpu", "--cache-dir", cache, *extra])


@pytest.mark.skipif(not bf16_cpu_supported(), reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX)")
def test_bf16_trains_under_autocast_and_is_recorded(mirror, luma_cache, tmp_path, monkeypatch):
    seen = []
    forward = MethodModel.forward

    @functools.wraps(forward)  # the Trainer reads `labels` from its signature
    def spy(self, *args, **kwargs):  # what the Trainer's training steps run under
        if self.training:
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MethodModel, "forward", spy)
    assert _train(mirror, tmp_path / "bf16", luma_cache, "--precision", "bf16") == 0
    assert seen and set(seen) == {(True, torch.bfloat16)}
    assert json.loads((tmp_path / "bf16/run.json").read_text())["precision"] == "bf16"
    row = json.loads((tmp_path / "bf16/results.json").read_text())["results"][0]
    assert all(row[k] == row[k] for k in ("accuracy", "nll", "ece"))  # finite, not NaN
    seen.clear()
    assert _train(mirror, tmp_path / "fp32", luma_cache) == 0
    assert seen and not any(enabled for enabled, _ in seen)
    assert json.loads((tmp_path / "fp32/run.json").read_text())["precision"] == "fp32"
    # a folder trained in bf16 refuses an fp32 rerun, naming the option
    _, problems = check_run("clean", tmp_path / "bf16", methods=("mcd",), modalities=("image",), max_epochs=1,
                            mc_samples=2, batch_size=32, device="cpu", mirror=str(mirror[0]), cache_dir=luma_cache)
    assert any("precision" in p for p in problems)


def test_memory_format_lays_out_the_trained_convolutions_and_is_recorded(mirror, luma_cache, tmp_path, monkeypatch):
    """channels_last (the default): the Trainer's steps run on channels-last convolution weights and
    run.json records it; contiguous: contiguous weights and no record (as folders made before the
    option), so each refuses the other's folder, naming the option."""
    seen = []
    forward = MethodModel.forward

    @functools.wraps(forward)  # the Trainer reads `labels` from its signature
    def spy(self, *args, **kwargs):
        if self.training:
            weights = [p for p in self.parameters() if p.ndim == 4 and p.shape[1] > 1]
            seen.append(all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                            for p in weights))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MethodModel, "forward", spy)
    assert _train(mirror, tmp_path / "last", luma_cache) == 0
    assert seen and all(seen)
    assert json.loads((tmp_path / "last/run.json").read_text())["memory_format"] == "channels_last"
    row = json.loads((tmp_path / "last/results.json").read_text())["results"][0]
    assert all(row[k] == row[k] for k in ("accuracy", "nll", "ece"))  # finite, not NaN
    seen.clear()
    assert _train(mirror, tmp_path / "contiguous", luma_cache, "--memory-format", "contiguous") == 0
    assert seen and not any(seen)
    assert "memory_format" not in json.loads((tmp_path / "contiguous/run.json").read_text())
    same = dict(methods=("mcd",), modalities=("image",), max_epochs=1, mc_samples=2, batch_size=32, device="cpu",
                mirror=str(mirror[0]), cache_dir=luma_cache)
    _, problems = check_run("clean", tmp_path / "contiguous", **same)
    assert any('memory_format: not recorded there, "channels_last" asked' in p for p in problems), problems
    _, problems = check_run("clean", tmp_path / "last", **same, memory_format="contiguous")
    assert any('memory_format: "channels_last" there, not asked' in p for p in problems), problems
    assert check_run("clean", tmp_path / "contiguous", **same, memory_format="contiguous")[1] == []


def test_sweep_records_the_memory_format_as_run_json_does():
    """sweep.json (what a finished run ran with) keeps memory_format unless contiguous, so the
    sweep folders finished before the option existed are still seen as finished with contiguous."""
    from luma_noise.baselines.sweep import _record
    from luma_noise.baselines.train import RUN_DEFAULTS

    assert _record("clean", {}, 42, None, dict(RUN_DEFAULTS))["memory_format"] == "channels_last"
    assert "memory_format" not in _record("clean", {}, 42, None, {**RUN_DEFAULTS, "memory_format": "contiguous"})


def test_dataloader_workers_give_the_same_results_and_are_not_recorded(mirror, luma_cache, tmp_path):
    assert _train(mirror, tmp_path / "w0", luma_cache) == 0
    assert _train(mirror, tmp_path / "w2", luma_cache, "--dataloader-workers", "2") == 0
    same = [json.loads((tmp_path / f"{w}/results.json").read_text())["results"] for w in ("w0", "w2")]
    assert same[0] == same[1]
    assert "dataloader_workers" not in json.loads((tmp_path / "w2/run.json").read_text())


def test_bad_speed_options_are_named(tmp_path):
    _, problems = check_run("clean", tmp_path / "x", precision="fp16", dataloader_workers=-1, memory_format="nhwc")
    assert any("precision must be one of ('fp32', 'bf16')" in p for p in problems)
    assert any("memory_format must be one of ('channels_last', 'contiguous'), got 'nhwc'" in p for p in problems)
    assert any("dataloader_workers must be an integer >= 0" in p for p in problems)


def test_validation_uses_its_own_number_of_dropout_passes(mirror, luma_cache, tmp_path, monkeypatch):
    """fixed: every epoch's validation runs --val-mc-samples passes (default 4), the final
    evaluation --mc-samples; both recorded in run.json; faithful validates with all of them."""
    from luma_noise.baselines import uncertainty

    passes, real = [], uncertainty.repeated_passes
    monkeypatch.setattr(uncertainty, "repeated_passes", lambda f, x, t, *a, **k: passes.append(t) or real(f, x, t, *a, **k))
    assert _train(mirror, tmp_path / "fixed", luma_cache, "--mc-samples", "12", "--max-epochs", "2") == 0
    record = json.loads((tmp_path / "fixed/run.json").read_text())
    assert (record["mc_samples"], record["val_mc_samples"]) == (12, 4)
    assert set(passes) == {4, 12} and passes[-1] == 12 and passes.index(12) > 0  # validation first, then T
    _, problems = check_run("clean", tmp_path / "x", mode="faithful", mc_samples=12)
    assert not [p for p in problems if "val_mc_samples" in p]
    from luma_noise.baselines.train import validation_passes

    assert validation_passes({"mode": "faithful", "mc_samples": 100, "val_mc_samples": None}) == 100
    assert validation_passes({"mode": "fixed", "mc_samples": 100, "val_mc_samples": None}) == 4
    assert validation_passes({"mode": "fixed", "mc_samples": 100, "val_mc_samples": 3}) == 3
    _, problems = check_run("clean", tmp_path / "x", val_mc_samples=0)
    assert any("val_mc_samples must be an integer >= 1" in p for p in problems)


def test_training_steps_make_no_host_round_trip(mirror, luma_cache, tmp_path, monkeypatch):
    """Between a step's begin and end (forward, loss, backward, optimiser) nothing turns a tensor
    into a Python value: each such call (`bool`, `item`, ...) would wait for a GPU. Every built-in
    method, on one and on two modalities; the conversions are counted per step through the
    Trainer's callbacks."""
    import transformers

    in_step, seen, steps = [False], [], [0]
    handler = transformers.trainer_callback.CallbackHandler
    for event, inside in (("on_step_begin", True), ("on_step_end", False)):
        def hook(self, *args, _real=getattr(handler, event), _inside=inside, **kwargs):
            in_step[0], steps[0] = _inside, steps[0] + _inside
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(handler, event, hook)
    for name in ("__bool__", "__float__", "__int__", "item", "tolist", "cpu", "numpy"):
        def spy(self, *args, _real=getattr(torch.Tensor, name), _name=name, **kwargs):
            if in_step[0] and self.device.type != "meta":
                caller = sys._getframe(1)
                seen.append(f"{_name} in {caller.f_code.co_filename}:{caller.f_lineno}")
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    for modality in ("image", "image+audio"):
        out = tmp_path / modality.replace("+", "-")
        assert main(["train", "clean", "--mirror", str(mirror[0]), "--output-dir", str(out), "--methods", "all",
                     "--modalities", modality, "--max-epochs", "1", "--mc-samples", "2", "--ensemble-size", "2",
                     "--batch-size", "32", "--device", "cpu", "--cache-dir", luma_cache]) == 0
    assert steps[0] > 20 and not in_step[0]  # every run's steps seen, each ended
    assert not seen, sorted(set(seen))
