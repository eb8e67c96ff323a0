"""Run `python -m luma_noise.baselines ...` in this process and send it a signal at a named point.

    python tests/support/signal_at.py POINT SIGNAL -- train clean --output-dir ...

The points patch the real code paths in this (child) process only, so a test can kill -9 a
run exactly where a crash would hurt:

- `checkpoint:K`: while the Trainer writes its K-th checkpoint of this process: after the
  weights, optimizer and scheduler, before the RNG state and trainer_state.json;
- `rename:NAME`: just before a file named NAME is renamed into place (done.json, sweep.json,
  a predictions file `<run>.npz`): its temporary file is left behind;
- `renamed:NAME`: just after it;
- `epoch:E`: at the Trainer's evaluation of epoch E (its checkpoint not written yet).

SIGNAL: KILL (the process dies on the spot) or STOP (it freezes, holding whatever it holds).
"""

import os
import signal
import sys
from pathlib import Path


def _send(sig) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), sig)


def install(point: str, sig) -> None:
    kind, _, arg = point.partition(":")
    if kind == "checkpoint":
        import transformers

        real, calls = transformers.Trainer._save_rng_state, []

        def save_rng_state(self, output_dir):
            calls.append(output_dir)
            if len(calls) == int(arg):
                _send(sig)
            return real(self, output_dir)

        transformers.Trainer._save_rng_state = save_rng_state
    elif kind in ("rename", "renamed"):
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if Path(dst).name == arg and kind == "rename":
                _send(sig)
            result = real_replace(src, dst, *args, **kwargs)
            if Path(dst).name == arg and kind == "renamed":
                _send(sig)
            return result

        os.replace = replace
    elif kind == "epoch":
        from luma_noise.baselines.methods import runner

        real_evaluate = runner.ProgressCallback.on_evaluate

        def on_evaluate(self, args, state, control, **kwargs):
            real_evaluate(self, args, state, control, **kwargs)
            if round(state.epoch or 0) == int(arg):
                _send(sig)

        runner.ProgressCallback.on_evaluate = on_evaluate
    else:
        raise SystemExit(f"unknown point {point!r}")


if __name__ == "__main__":
    point, sig, separator, *argv = sys.argv[1:]
    assert separator == "--"
    install(point, getattr(signal, f"SIG{sig}"))
    from luma_noise.baselines.__main__ import main

    sys.exit(main(argv))
