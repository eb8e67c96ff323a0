"""`python -m luma_noise.baselines train ...` under torchrun, with a spy: every process writes
{rank, world_size, global_step, parameter checksum, mean training loss, last validation loss} of each
Trainer.train to <SPY_DIR>/rank<r>.jsonl
(the test's record, not an output of `train`). Usage: torchrun ... tests/support/ddp_train.py SPY_DIR train ARGS."""

import json
import os
import sys

import transformers

from luma_noise.baselines.__main__ import main

spy_dir, argv = sys.argv[1], sys.argv[2:]
train = transformers.Trainer.train


def spied_train(self, *args, **kwargs):
    out = train(self, *args, **kwargs)
    checksum = float(sum(p.detach().double().sum() for p in self.model.parameters()))
    eval_loss = [entry["eval_loss"] for entry in self.state.log_history if "eval_loss" in entry][-1]
    with open(os.path.join(spy_dir, f"rank{os.environ.get('RANK', '0')}.jsonl"), "a") as f:
        f.write(json.dumps({"world_size": self.args.world_size, "global_step": self.state.global_step,
                            "checksum": checksum, "train_loss": out.training_loss,
                            "eval_loss": eval_loss, "backend": str(self.args.ddp_backend)}) + "\n")
    return out


transformers.Trainer.train = spied_train
sys.exit(main(argv))
