"""The Trainer every run trains with: the stock `transformers.Trainer` less host work it repeats at
every step without changing what is trained, saved or logged.

On this CPU that work was about 0.7 ms of a single-pass text network's 6 ms step (the step is
small; a GPU's steps are smaller still), which put the stock Trainer 1.21-1.24x behind a bare loop
(1.14-1.15x with this class; docs/performance.md, "The Trainer's host work per step"):
- the gradient norm the Trainer logs is computed at every step even without clipping
  (`max_grad_norm=0`), though an epoch's log shows its last step's: under `logging_strategy="epoch"`
  it is computed at that step only (the same number in the log);
- the FLOP count behind `total_flos` counts the model's parameters again at every step: counted once;
- `accelerate`'s optimiser step asks `find_spec("lomo_optim")` twice per step, uncached (1.16.0):
  answered once per `train()` call (the answer cannot change while a process trains).
A MethodModel trains the same through the stock Trainer (`methods/__init__.py`); this class only
makes the protocol's runs cheaper. tests/e2e/baselines/test_luma_trainer.py checks both give the
same weights and log, and counts the work done once.
"""

import contextlib
import functools

import accelerate.optimizer
import transformers


class LumaTrainer(transformers.Trainer):
    """`transformers.Trainer` with the per-step host work above removed; same arguments."""

    _steps_per_epoch = None
    _parameter_count = None

    def train(self, *args, **kwargs):
        with _answered_once(accelerate.optimizer, "is_lomo_available"):
            return super().train(*args, **kwargs)

    def set_initial_training_values(self, *args, **kwargs):  # its arguments vary across releases
        values = super().set_initial_training_values(*args, **kwargs)
        self._steps_per_epoch = values[1]  # num_update_steps_per_epoch (4.50 to 5.x)
        return values

    def _get_grad_norm(self, model, grad_norm=None):
        if grad_norm is None and not self._logs_after_this_step():
            return None  # not clipped, and no log shows it
        return super()._get_grad_norm(model, grad_norm)

    def _logs_after_this_step(self) -> bool:
        """Whether a log follows the optimiser step under way: under `logging_strategy="epoch"`
        (the protocol's) at the last step of an epoch or of training; assumed at every step otherwise."""
        if self.args.logging_strategy != "epoch" or self.args.logging_first_step or not self._steps_per_epoch:
            return True
        step = self.state.global_step + 1
        return step % self._steps_per_epoch == 0 or step >= self.state.max_steps

    def floating_point_ops(self, inputs) -> int:
        """The stock estimate (6 x the main input's elements x the parameters, without embeddings)
        with the parameters counted once."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return 0
        if self._parameter_count is None:
            self._parameter_count = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main_input].numel() * self._parameter_count


@contextlib.contextmanager
def _answered_once(module, name: str):
    """Within the block, `module.name` (a function without arguments) is called once and its answer kept."""
    original = getattr(module, name, None)
    if original is None:  # a release without it: nothing to cache
        yield
        return
    setattr(module, name, functools.cache(original))
    try:
        yield
    finally:
        setattr(module, name, original)
