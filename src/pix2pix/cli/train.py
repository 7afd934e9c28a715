"""``pix2pix train``, ``pix2pix quickstart`` and ``pix2pix bench``: the commands that train, or time training.

Also the options shared by all three and how they become a :class:`~pix2pix.config.TrainConfig`
(:func:`build_train_config`: defaults < --preset < --config file < explicit options).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from . import _opt, command

log = logging.getLogger("pix2pix")


# ----- train ------------------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    _opt(g, "--netG", help="generator unet_N, N a power of two >= 32 (depth log2 N); default unet_256")
    _opt(g, "--ngf", type=int, help="generator width (64)")
    _opt(g, "--ndf", type=int, help="discriminator width (64)")
    _opt(g, "--norm", choices=["batch", "instance", "none"], help="normalisation (batch)")
    _opt(g, "--patch", type=int, choices=[1, 16, 34, 70, 142, 286],
         help="PatchGAN receptive field in pixels; 1 = PixelGAN (70)")
    _opt(g, "--input-nc", dest="input_nc", type=int, choices=[1, 3], help="input channels (3)")
    _opt(g, "--output-nc", dest="output_nc", type=int, choices=[1, 3], help="output channels (3)")
    _opt(g, "--dropout", type=float, help="dropout in the three innermost decoder blocks (0.5)")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    _opt(p, "--data", dest="data_root", metavar="DIR", help="dataset folder with train/ (and val/) splits")
    _opt(p, "--out", metavar="RUN_DIR", help="run folder for checkpoints, samples and logs (runs/pix2pix)")
    _opt(p, "--preset", choices=["cityscapes", "facades", "maps", "edges2shoes", "edges2handbags", "night2day"],
         help="the paper's settings for a dataset; explicit options override it")
    _opt(p, "--config", metavar="FILE", help="JSON or YAML file of options (explicit options override it)")
    d = p.add_argument_group("data")
    _opt(d, "--direction", choices=["AtoB", "BtoA"], help="which side is the input (AtoB)")
    _opt(d, "--load-size", dest="load_size", type=int, help="resize to this before cropping (286)")
    _opt(d, "--crop-size", dest="crop_size", type=int, help="random crop size = training size (256)")
    _opt(d, "--preprocess", choices=["resize_and_crop", "resize", "crop", "none"], help="jitter mode")
    _opt(d, "--no-flip", dest="flip", action="store_const", const=False, help="no random horizontal flips")
    _opt(d, "--max-items", dest="max_items", type=int, help="use only the first N training pairs")
    _opt(d, "--strict", action="store_const", const=True, help="stop on unreadable images instead of skipping")
    _opt(d, "--train-split", dest="train_split", help="training split folder name (train)")
    _opt(d, "--val-split", dest="val_split", help="split for sample grids (val)")
    _model_args(p)
    t = p.add_argument_group("training")
    _opt(t, "--epochs", type=int, help="epochs at the initial learning rate (100)")
    _opt(t, "--epochs-decay", dest="epochs_decay", type=int, help="epochs of learning-rate decay (100)")
    _opt(t, "--lr-policy", dest="lr_policy", choices=["linear", "step", "cosine"], help="schedule (linear)")
    _opt(t, "--lr-step", dest="lr_step", type=int, help="epochs per x0.1 with --lr-policy step (50)")
    _opt(t, "--batch-size", dest="batch_size", type=int, help="images per step per process (1)")
    _opt(t, "--lr", type=float, help="Adam learning rate (2e-4)")
    _opt(t, "--beta1", type=float, help="Adam beta1 (0.5)")
    _opt(t, "--gan-loss", dest="gan_loss", choices=["vanilla", "lsgan", "hinge"], help="adversarial loss")
    _opt(t, "--lambda-l1", dest="lambda_l1", type=float, help="weight of the L1 term (100)")
    _opt(t, "--lambda-gan", dest="lambda_gan", type=float,
         help="weight of the cGAN term (1); 0 = L1 alone, the paper's ablation (no discriminator)")
    _opt(t, "--seed", type=int, help="random seed (0)")
    _opt(t, "--device", help="auto, cpu, cuda, cuda:N or mps (auto)")
    _opt(t, "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="autocast precision (auto = fp32)")
    _opt(t, "--channels-last", dest="channels_last", action="store_const", const=True, help="NHWC memory format")
    _opt(t, "--compile", action="store_const", const=True, help="torch.compile both networks")
    _opt(t, "--sync-bn", dest="sync_bn", action="store_const", const=True, help="SyncBatchNorm under torchrun")
    _opt(t, "--save-every", dest="save_every", type=int, help="epochs between numbered checkpoints (20)")
    _opt(t, "--latest-every", dest="latest_every", type=float,
         help="minutes between latest.pt writes at epoch ends; 0 = every epoch (1)")
    _opt(t, "--sample-every", dest="sample_every", type=int, help="steps between sample grids (500)")
    _opt(t, "--log-every", dest="log_every", type=int, help="steps between loss read-backs (50)")
    _opt(t, "--n-samples", dest="n_samples", type=int, help="validation pairs per sample grid (4)")
    _opt(t, "--skip-nonfinite", dest="skip_nonfinite", action="store_const", const=True,
         help="skip batches whose loss is NaN/inf instead of stopping")
    _opt(t, "--time-limit", dest="time_limit", type=float, help="stop cleanly after this many minutes")
    _opt(t, "--tensorboard", action="store_const", const=True, help="also log to RUN_DIR/tensorboard")


def build_train_config(args: argparse.Namespace):
    """defaults < --preset < --config file < explicit options."""
    from ..config import TrainConfig, preset_and_file

    flat = preset_and_file(getattr(args, "preset", None), getattr(args, "config", None))
    flat.update(_config_flags(args))
    return TrainConfig.from_flat(flat)


def _config_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user typed that are config fields (absent options leave no attribute)."""
    from ..config import option_names

    names = option_names()
    return {k: v for k, v in vars(args).items() if k in names}


@command("train", _train_args)
def cmd_train(args: argparse.Namespace) -> int:
    from ..training import resume, train

    if args.resume:
        run_dir = resume(args.resume, _config_flags(args))
    else:
        run_dir = train(build_train_config(args))
    log.info("run folder: %s (checkpoint: %s/latest.pt)", run_dir, run_dir)
    return 0


# ----- quickstart -------------------------------------------------------------------------------
def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/quickstart", help="folder for the data, run and results")
    p.add_argument("--epochs", type=int, default=None, help="override the epoch count (about 2 minutes on a CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


@command("quickstart", _quickstart_args)
def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import quickstart

    quickstart(args.out, epochs=args.epochs, device=args.device)
    return 0


# ----- bench ------------------------------------------------------------------------------------
def _bench_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    _opt(p, "--batch-size", dest="batch_size", type=int, help="images per training step (1)")
    _opt(p, "--crop-size", dest="crop_size", type=int, help="training image size (256)")
    _opt(p, "--load-size", dest="load_size", type=int, help="resize before cropping (286)")
    _opt(p, "--preprocess", choices=["resize_and_crop", "resize", "crop", "none"], help="jitter mode")
    _opt(p, "--gan-loss", dest="gan_loss", choices=["vanilla", "lsgan", "hinge"], help="adversarial loss")
    _opt(p, "--device", help="auto, cpu, cuda, cuda:N or mps (auto)")
    _opt(p, "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="as pix2pix train (auto = fp32)")
    _opt(p, "--channels-last", dest="channels_last", action="store_const", const=True, help="NHWC memory format")
    _opt(p, "--compile", action="store_const", const=True, help="torch.compile both networks")
    _opt(p, "--config", metavar="FILE", help="JSON or YAML file of options")
    _opt(p, "--preset", choices=["cityscapes", "facades", "maps", "edges2shoes", "edges2handbags", "night2day"])
    p.add_argument("--steps", type=int, default=10, help="timed steps (10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    p.add_argument("--infer-batch-size", type=int, default=None, help="inference batch (the training batch)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


@command("bench", _bench_args)
def cmd_bench(args: argparse.Namespace) -> int:
    """Time training steps and inference on synthetic data (no disk)."""
    from ..bench import bench, format_results
    from ..fileio import save_json

    results = bench(build_train_config(args), steps=args.steps, warmup=args.warmup,
                    infer_batch_size=args.infer_batch_size)
    print(format_results(results))
    if args.json:
        save_json(results, args.json)
    return 0
