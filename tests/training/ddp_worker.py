"""Run ``pix2pix`` under torchrun and dump each rank's final generator weights to $DUMP_DIR.

    torchrun --standalone --nproc_per_node 2 tests/training/ddp_worker.py train --data ... --out ...

Used by test_distributed.py; the training itself is the real CLI path. Faults for the tests, each
"RANK:STEP" (the step about to run, counted from 1 in this process):
P2P_NAN (that rank's batch is NaN), P2P_HANG (that rank sleeps), P2P_CRASH (that rank exits at
once, only while the file $P2P_CRASH_MARK does not exist: it is created first). P2P_OUT_PER_RANK=1
gives each rank its own run folder (``--resume DIR`` becomes ``DIR<rank>``), as on nodes without a
shared filesystem.
"""

import os
import sys
import time

import torch

from pix2pix import cli, training
from pix2pix.data import loader, pairs
from pix2pix.training import loop

RANK = int(os.environ.get("RANK", "0"))
seen: list[list[int]] = []  # the sample indices of every batch this rank trained on
decoded = []


def fault(name: str, step: int) -> bool:
    spec = os.environ.get(name)
    return bool(spec) and spec.split(":")[:2] == [str(RANK), str(step)]


_run, _batch, _decode, _step = training.Trainer.run, loader.BatchSource.batch, pairs.decode_into, loop.train_step
calls = [0]


def run_and_dump(self):
    result = _run(self)
    torch.save({"generator": self.nets.G_plain.state_dict(), "step": self.state.step,
                "batches_per_epoch": self.source.batches_per_epoch, "seen": seen, "decoded": len(decoded)},
               os.path.join(os.environ["DUMP_DIR"], f"rank{RANK}.pt"))
    return result


def batch(self, index, generator):
    seen.append(index.tolist())
    return _batch(self, index, generator)


def decode_into(*a, **k):
    decoded.append(1)
    return _decode(*a, **k)


def train_step(nets, src, tgt, *a, **k):
    calls[0] += 1
    if fault("P2P_NAN", calls[0]):
        src = src * float("nan")
    if fault("P2P_HANG", calls[0]):
        time.sleep(3600)
    mark = os.environ.get("P2P_CRASH_MARK")
    if fault("P2P_CRASH", calls[0]) and mark and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(1)
    return _step(nets, src, tgt, *a, **k)


training.Trainer.run = run_and_dump
loader.BatchSource.batch = batch
pairs.decode_into = decode_into
loop.train_step = train_step
argv = sys.argv[1:]
if os.environ.get("P2P_OUT_PER_RANK") and "--resume" in argv:
    i = argv.index("--resume") + 1
    argv[i] = f"{argv[i]}{RANK}"
sys.exit(cli.main(argv))
