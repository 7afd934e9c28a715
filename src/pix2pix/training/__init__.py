"""Training: the paper's step, the loop around it, the run folder it writes, and ``bench``.

    losses.py     the objective (vanilla / lsgan / hinge + L1) and its settings (Objective)
    step.py       train_step: one update of D, then one of G, as the paper writes it
    nets.py       the networks, optimisers and grad scaler, placed, DDP-wrapped, compiled
    schedule.py   learning-rate schedule and per-epoch seeds
    distributed.py torchrun / DDP: process group and the few collectives the loop needs
    run_folder.py RunFolder: every path and file of a run folder
    checkpoint.py the checkpoint format; safe loading
    state.py      what a checkpoint saves of a run in progress, and restoring it
    meter.py      loss means between log points
    restart.py    where a resumed run starts (--resume, --auto-resume)
    loop.py       Trainer, train(), resume(), auto_resume()
    bench.py      pix2pix bench
"""

from .loop import Trainer, auto_resume, resume, train
from .run_folder import RunFolder

__all__ = ["train", "resume", "auto_resume", "Trainer", "RunFolder"]
