"""`methods.trainer.LumaTrainer`, the Trainer `train` uses: the stock Trainer's weights, log and
FLOP count, with the per-step host work it removes done once (the gradient norm at the logged
step, the parameter count, accelerate's `find_spec("lomo_optim")`)."""

import importlib.util

import accelerate.optimizer
import datasets
import pytest
import torch
import transformers

from luma_noise.baselines.methods import MethodConfig, MethodModel
from luma_noise.baselines.methods.runner import training_arguments
from luma_noise.baselines.methods.trainer import LumaTrainer
from luma_noise.baselines.settings import RunSettings

ROWS, BATCH = 40, 16  # 3 steps per epoch, the last one short
TIMING = ("runtime", "per_second")  # log entries that differ from run to run


def _rows():
    generator = torch.Generator().manual_seed(0)
    return datasets.Dataset.from_dict({
        "text_embeddings": torch.randn(ROWS, 8, generator=generator).tolist(),
        "labels": torch.randint(0, 42, (ROWS,), generator=generator).tolist()}).with_format("torch")


def _train(trainer_cls, folder, monkeypatch, **overrides):
    """Train softmax on text with the protocol's arguments (`overrides` on top); -> (trainer, calls),
    calls: how often the gradient norm, the find_spec of lomo_optim and the parameter count ran."""
    settings = RunSettings(batch_size=BATCH, max_epochs=3, device="cpu", dataloader_workers=0, precision="fp32")
    args = training_arguments(folder, 0, settings)
    args.eval_strategy, args.save_strategy, args.load_best_model_at_end = "no", "no", False
    for name, value in overrides.items():
        setattr(args, name, value)
    transformers.set_seed(0)
    model = MethodModel(MethodConfig(method="softmax", modalities=("text",), text_dim=8, num_train_examples=ROWS))
    trainer = trainer_cls(model=model, args=args, train_dataset=_rows(),
                          data_collator=transformers.default_data_collator)
    calls = {"grad_norm": 0, "lomo": 0, "parameters": 0}
    clip, find_spec, count = trainer.accelerator.clip_grad_norm_, importlib.util.find_spec, model.num_parameters

    def counted_clip(*a, **k):
        calls["grad_norm"] += 1
        return clip(*a, **k)

    def counted_find_spec(name, *a, **k):
        calls["lomo"] += name == "lomo_optim"
        return find_spec(name, *a, **k)

    def counted_parameters(*a, **k):
        calls["parameters"] += 1
        return count(*a, **k)

    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", counted_clip)
    monkeypatch.setattr(model, "num_parameters", counted_parameters)
    monkeypatch.setattr(importlib.util, "find_spec", counted_find_spec)
    trainer.train()
    return trainer, calls


def _log(trainer):
    return [{k: v for k, v in entry.items() if not any(t in k for t in TIMING)} for entry in trainer.state.log_history]


@pytest.mark.parametrize("overrides, steps, logs", [
    ({}, 9, 3),  # the protocol's: a log per epoch
    ({"max_steps": 5}, 5, 2),  # training stops inside the second epoch, which still logs
    ({"logging_strategy": "steps", "logging_steps": 2}, 9, 4),  # not the protocol's: every step's norm
])
def test_same_weights_and_log_as_the_stock_trainer_with_the_host_work_done_once(overrides, steps, logs, tmp_path,
                                                                                 monkeypatch):
    stock, stock_calls = _train(transformers.Trainer, tmp_path / "stock", monkeypatch, **overrides)
    lean, lean_calls = _train(LumaTrainer, tmp_path / "lean", monkeypatch, **overrides)

    assert lean.state.global_step == stock.state.global_step == steps
    for a, b in zip(stock.model.state_dict().values(), lean.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the norm without clipping multiplies the gradients by exactly 1
    assert _log(lean) == _log(stock)  # grad_norm, loss, learning rate, epoch, total_flos: equal
    assert sum("grad_norm" in entry for entry in _log(lean)) == logs
    assert _log(lean)[-1]["total_flos"] > 0
    assert stock_calls["grad_norm"] == steps and stock_calls["lomo"] >= 2 * steps
    assert lean_calls["grad_norm"] == (steps if overrides.get("logging_strategy") == "steps" else logs)
    assert lean_calls["lomo"] <= 2  # accelerate.prepare's, then the first optimiser step's
    assert stock_calls["parameters"] >= steps and lean_calls["parameters"] == 1


def test_the_lomo_check_is_restored_after_training(tmp_path, monkeypatch):
    original = accelerate.optimizer.is_lomo_available
    _train(LumaTrainer, tmp_path, monkeypatch, max_steps=1)
    assert accelerate.optimizer.is_lomo_available is original
