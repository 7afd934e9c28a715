"""Run ``pix2pix`` under torchrun and dump each rank's final generator weights to $DUMP_DIR.

    torchrun --standalone --nproc_per_node 2 tests/training/ddp_worker.py train --data ... --out ...

Used by test_distributed.py; the training itself is the real CLI path.
"""

import os
import sys

import torch

from pix2pix import cli, training

_run = training.Trainer.run


def run_and_dump(self):
    result = _run(self)
    rank = os.environ.get("RANK", "0")
    torch.save({"generator": self.nets.G_plain.state_dict(), "step": self.state.step,
                "batches_per_epoch": self.source.batches_per_epoch},
               os.path.join(os.environ["DUMP_DIR"], f"rank{rank}.pt"))
    return result


training.Trainer.run = run_and_dump
sys.exit(cli.main(sys.argv[1:]))
