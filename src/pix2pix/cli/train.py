"""``pix2pix train``, ``pix2pix quickstart`` and ``pix2pix bench``: the commands that train, or time
training. Their config options are generated from the config fields (``options.py``)."""

from __future__ import annotations

import argparse
import logging

from .options import (Command, add_config_options, add_preset_and_config, build_train_config, build_train_options,
                      config_overrides)

log = logging.getLogger("pix2pix")


# ----- train ------------------------------------------------------------------------------------
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in --out even if it holds another run's files: removes that run's "
                        "checkpoints, log, samples and page first (nothing else in the folder)")
    p.add_argument("--auto-resume", action="store_true",
                   help="continue --out when it holds a checkpoint of the same settings, else start it (for "
                        "torchrun --max-restarts and job schedulers that restart the same command)")
    add_preset_and_config(p)
    add_config_options(p, resume_note=True)


def cmd_train(args: argparse.Namespace) -> int:
    from ..deploy.finetune import auto_resume_from_options, train_from_options  # open --init-from models
    from ..errors import ConfigError
    from ..training import resume

    progress = log.isEnabledFor(logging.INFO)  # -q: no progress bars either
    if args.resume and args.auto_resume:
        raise ConfigError("give either --resume RUN_DIR or --auto-resume (which resumes --out)")
    if args.resume:
        if args.overwrite:
            raise ConfigError("--overwrite starts a new run; it cannot be combined with --resume")
        run_dir = resume(args.resume, config_overrides(args), progress=progress)
    elif args.auto_resume:
        if args.overwrite:
            raise ConfigError("--overwrite and --auto-resume contradict each other: choose one")
        run_dir = auto_resume_from_options(build_train_options(args), progress=progress)
    else:
        run_dir = train_from_options(build_train_options(args), overwrite=args.overwrite, progress=progress)
    log.info("run folder: %s (checkpoint: %s/latest.pt)", run_dir, run_dir)
    return 0


# ----- quickstart -------------------------------------------------------------------------------
def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/quickstart", help="folder for the data, run and results")
    p.add_argument("--epochs", type=int, default=None, help="override the epoch count (about 2 minutes on a CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import quickstart

    quickstart(args.out, epochs=args.epochs, device=args.device)
    return 0


# ----- bench ------------------------------------------------------------------------------------
BENCH_OPTIONS = ("netG", "ngf", "ndf", "norm", "patch", "input_nc", "output_nc", "dropout", "batch_size",
                 "crop_size", "load_size", "preprocess", "gan_loss", "lambda_gan", "device", "precision",
                 "channels_last", "compile", "data_root", "direction", "max_items", "cache_dir")


def _bench_args(p: argparse.ArgumentParser) -> None:
    add_preset_and_config(p)
    add_config_options(p, only=BENCH_OPTIONS)
    p.add_argument("--steps", type=int, default=10, help="timed steps (10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    p.add_argument("--infer-batch-size", type=int, default=None, help="inference batch (the training batch)")
    p.add_argument("--peak-tflops", type=float, default=None, metavar="X",
                   help="the device's peak TFLOP/s at this precision, for the MFU (known for H100, H200, A100)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def cmd_bench(args: argparse.Namespace) -> int:
    from ..fileio import check_writable, save_json, writing
    from ..training.bench import bench, format_results

    cfg = build_train_config(args)
    if args.json:
        check_writable(args.json, what="--json file")
    results = bench(cfg, steps=args.steps, warmup=args.warmup, infer_batch_size=args.infer_batch_size,
                    peak=args.peak_tflops, startup=bool(cfg.data.data_root))
    print(format_results(results))
    if args.json:
        with writing(args.json):
            save_json(results, args.json)
    return 0


COMMANDS = [
    Command("train", _train_args, cmd_train, "Train a model; --resume continues, --init-from fine-tunes.",
            "pix2pix train --data datasets/facades --preset facades --out runs/facades"),
    Command("quickstart", _quickstart_args, cmd_quickstart, "Synthetic data to translated images in ~2 minutes.",
            "pix2pix quickstart --out runs/quickstart"),
    Command("bench", _bench_args, cmd_bench, "Time training, inference and (with --data) start-up.",
            "pix2pix bench --netG unet_256 --batch-size 1 --device cpu --json bench.json"),
]
