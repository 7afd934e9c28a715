"""``pix2pix <command>``: parses options and calls the library; no logic of its own.

    pix2pix quickstart
    pix2pix train --data datasets/facades --preset facades --out runs/facades
    pix2pix train --resume runs/facades --epochs 150
    pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side
    pix2pix export --checkpoint runs/facades --format onnx torchscript --output export/
    pix2pix serve --checkpoint runs/facades --port 8000
    pix2pix show --data datasets/facades --augmented --out pairs.png
    pix2pix evaluate --checkpoint runs/cityscapes --data datasets/cityscapes --task label2photo --segmenter seg.safetensors

Every problem with the user's input is reported as one line ``error: ...`` (exit status 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Sequence

from .errors import Pix2PixError, printable

log = logging.getLogger("pix2pix")
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``fn(args) -> exit code`` as ``pix2pix NAME`` with options from ``add_args``."""

    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, fn)
        return fn

    return register


def _opt(p: argparse.ArgumentParser, *flags: str, **kw: Any) -> None:
    """An option whose absence leaves no attribute, so presets and config files are not overridden."""
    p.add_argument(*flags, default=argparse.SUPPRESS, **kw)


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
    from .config import TrainConfig, load_config_file, preset_overrides

    flags = _config_flags(args)
    flat: dict[str, Any] = {}
    if getattr(args, "preset", None):
        flat.update(preset_overrides(args.preset))
    if getattr(args, "config", None):
        from_file = load_config_file(args.config)
        if "preset" in from_file:
            flat.update(preset_overrides(from_file.pop("preset")))
        flat.update(from_file)
    flat.update(flags)
    return TrainConfig.from_flat(flat)


def _config_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user typed that are config fields (absent options leave no attribute)."""
    from .config import option_names

    names = option_names()
    return {k: v for k, v in vars(args).items() if k in names}


@command("train", _train_args)
def cmd_train(args: argparse.Namespace) -> int:
    from .training import resume, train

    if args.resume:
        run_dir = resume(args.resume, _config_flags(args))
    else:
        run_dir = train(build_train_config(args))
    log.info("run folder: %s (checkpoint: %s/latest.pt)", run_dir, run_dir)
    return 0


# ----- translate --------------------------------------------------------------------------------
def _translate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="run folder, checkpoint file, or exported .safetensors / .onnx / .pt2 / .ts file")
    p.add_argument("--input", required=True, nargs="+", metavar="FILE|DIR|GLOB", help="images to translate")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the results (STEM.png each)")
    p.add_argument("--side-by-side", action="store_true", help="write input | output (| target)")
    p.add_argument("--paired", action="store_true",
                   help="inputs are pairs in the training layout (AB files or A/ B/ folders): the model's "
                        "input side is translated and the other side shown as target")
    p.add_argument("--native-size", action="store_true", help="translate at each image's own size (padded)")
    p.add_argument("--paper-sampling", action="store_true", help="dropout and batch statistics on, as the paper")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--report", action="store_true",
                   help="also write OUTPUT/index.html: input | output | target per image, with scores where a "
                        "target exists (--paired)")


@command("translate", _translate_args)
def cmd_translate(args: argparse.Namespace) -> int:
    from .inference import collect_inputs, load, translate_files

    # without --paper-sampling an exported program keeps the mode it was exported in
    translator = load(args.checkpoint, device=args.device, paper_sampling=args.paper_sampling or None)
    translator.batch_size = args.batch_size
    items = collect_inputs(args.input, paired=args.paired)
    report = translate_files(translator, items, args.output, side_by_side=args.side_by_side,
                             native_size=args.native_size, strict=args.strict)
    log.info("translated %d images into %s%s", report.written, args.output,
             f"; skipped {len(report.skipped)} unreadable" if report.skipped else "")
    if args.report:
        from .report import write_translate_report

        log.info("report: %s", write_translate_report(args.output, items, report, translator, args.side_by_side))
    return 0


# ----- quickstart -------------------------------------------------------------------------------
def _quickstart_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/quickstart", help="folder for the data, run and results")
    p.add_argument("--epochs", type=int, default=None, help="override the epoch count (about 2 minutes on a CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


@command("quickstart", _quickstart_args)
def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import quickstart

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
    from .bench import bench, format_results
    from .fileio import save_json

    results = bench(build_train_config(args), steps=args.steps, warmup=args.warmup,
                    infer_batch_size=args.infer_batch_size)
    print(format_results(results))
    if args.json:
        save_json(results, args.json)
    return 0


# ----- show -------------------------------------------------------------------------------------
def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (train/ val/ ... in either layout)")
    p.add_argument("--split", default="train", help="split to show (train)")
    p.add_argument("--n", type=int, default=16, help="pairs to show, spread evenly over the split (16)")
    p.add_argument("--augmented", action="store_true",
                   help="show the pairs after the training jitter: A' | B' | 50%% blend, to check alignment")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the grid")
    p.add_argument("--columns", type=int, default=None, help="pairs per row (about sqrt(n))")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter with --augmented (0)")
    p.add_argument("--config", metavar="FILE", help="take the jitter settings from this JSON/YAML (a run's config.json)")
    _opt(p, "--preset", choices=["cityscapes", "facades", "maps", "edges2shoes", "edges2handbags", "night2day"],
         help="take the jitter settings from a paper preset")
    _opt(p, "--load-size", dest="load_size", type=int, help="resize to this before cropping (286)")
    _opt(p, "--crop-size", dest="crop_size", type=int, help="random crop size (256)")
    _opt(p, "--preprocess", choices=["resize_and_crop", "resize", "crop", "none"], help="jitter mode")
    _opt(p, "--no-flip", dest="flip", action="store_const", const=False, help="no random horizontal flips")


def _data_config(args: argparse.Namespace):
    """The jitter settings: defaults < --preset < --config file < explicit options (data fields only,
    so no model constraint applies)."""
    import dataclasses

    from .config import DataConfig, load_config_file, preset_overrides

    flat: dict[str, Any] = {}
    if getattr(args, "preset", None):
        flat.update(preset_overrides(args.preset))
    if getattr(args, "config", None):
        from_file = load_config_file(args.config)
        if "preset" in from_file:
            flat.update(preset_overrides(from_file.pop("preset")))
        flat.update(from_file)
    flat.update({k: getattr(args, k) for k in ("load_size", "crop_size", "preprocess", "flip") if hasattr(args, k)})
    names = {f.name for f in dataclasses.fields(DataConfig)}
    return DataConfig(**{k: v for k, v in flat.items() if k in names})


@command("show", _show_args)
def cmd_show(args: argparse.Namespace) -> int:
    """Write a grid of a dataset's pairs (A | B), optionally as the training jitter makes them."""
    from .fileio import save_image
    from .visualize import show_pairs

    image = show_pairs(args.data, args.split, args.n, augmented=args.augmented, data=_data_config(args),
                       seed=args.seed, columns=args.columns)
    save_image(image, args.out)
    log.info("wrote %s (%dx%d)", args.out, image.width, image.height)
    return 0


# ----- evaluate ---------------------------------------------------------------------------------
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=["photo2label", "label2photo", "generic"],
                   help="photo2label (label accuracy, IoU), label2photo (FCN-score with --segmenter), generic")
    w = p.add_argument_group("what to score (one of)")
    w.add_argument("--checkpoint", help="translate --data's --split with this model and score the results")
    w.add_argument("--predictions", metavar="DIR", help="score existing images, matched to --targets by file stem")
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="DIR", help="dataset folder (with --checkpoint or --train-segmenter)")
    d.add_argument("--split", default=None, help="split to score (val), or to train the segmenter on (train)")
    d.add_argument("--targets", metavar="DIR", help="target images (or, with --paired, a dataset split folder)")
    d.add_argument("--paired", action="store_true", help="--targets is a split in pair layout (AB files or A/ B/)")
    d.add_argument("--inputs", metavar="DIR", help="the model inputs by stem (label2photo: the label maps)")
    d.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="side of the pairs that is the model's input (photo2label AtoB, label2photo BtoA: "
                        "the Cityscapes layout; a checkpoint uses its own; --train-segmenter: AtoB = photos on A)")
    d.add_argument("--pred-suffix", default="", help="prediction files are NAME<suffix>.* (e.g. _fake_B)")
    d.add_argument("--target-suffix", default="", help="target files are NAME<suffix>.* (e.g. _real_B)")
    d.add_argument("--input-suffix", default="", help="input files are NAME<suffix>.* (e.g. _real_A)")
    d.add_argument("--max-items", type=int, default=None, help="score only the first N images")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write every figure, per class and per image, as JSON")
    o.add_argument("--report", metavar="DIR", help="write an HTML page with every image and its scores")
    m = p.add_argument_group("model")
    m.add_argument("--segmenter", metavar="FILE", help="label2photo's segmenter (with --train-segmenter: where to save it)")
    m.add_argument("--native-size", action="store_true", help="translate at each image's own size (padded)")
    m.add_argument("--paper-sampling", action="store_true", help="dropout and batch statistics on, as the paper")
    m.add_argument("--batch-size", type=int, default=8, help="images per forward pass / training batch (8)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    s = p.add_argument_group("segmenter training (--train-segmenter --data DIR --segmenter FILE)")
    s.add_argument("--train-segmenter", action="store_true",
                   help="train the label2photo segmenter on the real photos of --data --split (train)")
    s.add_argument("--val-split", default="val", help="split whose real photos score the segmenter (val)")
    s.add_argument("--epochs", type=int, default=30, help="segmenter epochs (30)")
    s.add_argument("--time-limit", type=float, default=None, help="stop segmenter training after this many minutes")
    s.add_argument("--size", type=int, default=256, help="segmenter input size; photos are resized to it (256)")
    s.add_argument("--width", type=int, default=32, help="segmenter U-Net base width (32)")
    s.add_argument("--depth", type=int, default=4, help="segmenter U-Net depth (4)")
    s.add_argument("--lr", type=float, default=1e-3, help="segmenter AdamW learning rate (1e-3)")
    s.add_argument("--seed", type=int, default=0, help="segmenter seed (0)")


@command("evaluate", _evaluate_args)
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score translations: the paper's Cityscapes metrics, PSNR / SSIM / L1; train the segmenter."""
    if args.train_segmenter:
        return _train_segmenter(args)
    from .evaluation import evaluate_files, format_results

    results = evaluate_files(
        args.task, checkpoint=args.checkpoint, data=args.data, split=args.split or "val",
        predictions=args.predictions, targets=args.targets, paired=args.paired, inputs=args.inputs,
        direction=args.direction, pred_suffix=args.pred_suffix, target_suffix=args.target_suffix,
        input_suffix=args.input_suffix, segmenter=args.segmenter, report_dir=args.report, json_path=args.json,
        max_items=args.max_items, native_size=args.native_size, paper_sampling=args.paper_sampling,
        batch_size=args.batch_size, device=args.device)
    print(format_results(results))
    for written in (args.json, args.report and f"{args.report}/index.html"):
        if written:
            log.info("wrote %s", written)
    return 0


def _train_segmenter(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .models.segmenter import SegmenterConfig
    from .segmenter import SegmenterTraining, train_segmenter

    if not args.data or not args.segmenter:
        raise ConfigError("--train-segmenter needs --data DIR (paired photos and label maps) and "
                          "--segmenter FILE (where to save it)")
    try:
        arch = SegmenterConfig(width=args.width, depth=args.depth, size=args.size)
    except ValueError as e:
        raise ConfigError(f"segmenter: {e}") from None
    train = SegmenterTraining(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              time_limit=args.time_limit, seed=args.seed)
    seg = train_segmenter(args.data, args.segmenter, split=args.split or "train", val_split=args.val_split or None,
                          direction=args.direction or "AtoB", arch=arch, train=train, max_items=args.max_items,
                          device=args.device)
    log.info("segmenter saved to %s", seg.path)
    return 0


# ----- export -----------------------------------------------------------------------------------
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder, checkpoint file, or a .safetensors export")
    p.add_argument("--format", dest="formats", nargs="+", action="extend", default=[], metavar="FORMAT",
                   choices=["safetensors", "torchscript", "torch-export", "onnx", "all"],
                   help="safetensors, torchscript (.ts), torch-export (.pt2), onnx, or all; several allowed "
                        "(optional when --output ends in one of those suffixes)")
    p.add_argument("--output", required=True, metavar="FILE|DIR",
                   help="a file (model.onnx, model.ts, ...) for one format, or a folder that receives "
                        "generator[-paper][-fp16].SUFFIX per format")
    p.add_argument("--paper-sampling", action="store_true",
                   help="export the paper's test-time behaviour (dropout on, batch statistics) instead of eval mode")
    p.add_argument("--half", action="store_true", help="fp16 weights (onnx, safetensors); the cost is reported")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest allowed difference from PyTorch (1e-3; 2e-2 with --half)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (the exporter's default)")
    p.add_argument("--json", metavar="FILE", help="also write the verification results as JSON")


@command("export", _export_args)
def cmd_export(args: argparse.Namespace) -> int:
    """Export the generator to safetensors, TorchScript, torch.export or ONNX, verified against PyTorch."""
    from .export import export_model, format_results
    from .fileio import save_json

    results = export_model(args.checkpoint, args.formats, args.output, paper_sampling=args.paper_sampling,
                           half=args.half, tolerance=args.tolerance, opset=args.opset)
    print(format_results(results))
    if args.json:
        save_json([r.to_dict() for r in results], args.json)
    return 0


# ----- serve ------------------------------------------------------------------------------------
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="run folder, checkpoint file, or exported .safetensors / .onnx / .pt2 / .ts file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--max-bytes", type=int, default=20 * 2**20, help="largest request body in bytes (20 MiB)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image in pixels (4096 x 4096)")
    p.add_argument("--max-batch", type=int, default=8, help="requests that may share one forward pass (8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--paper-sampling", action="store_true",
                   help="dropout and batch statistics on, as the paper (each request then runs alone)")


@command("serve", _serve_args)
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model over HTTP: POST /translate, GET /health, GET /info, and a web page at /."""
    from .inference import load
    from .serve import serve  # raises a one-line ConfigError when the serve extra is missing

    translator = load(args.checkpoint, device=args.device, paper_sampling=args.paper_sampling or None)
    serve(translator, host=args.host, port=args.port, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
          max_batch=args.max_batch)
    return 0


# ----- download ---------------------------------------------------------------------------------
def _download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="facades, cityscapes, maps, edges2shoes, edges2handbags or night2day")
    p.add_argument("--root", default="datasets", metavar="DIR", help="install into DIR/NAME (datasets)")
    p.add_argument("--from", dest="archive", metavar="ARCHIVE",
                   help="install this NAME.tar.gz fetched some other way (same checks, no network)")
    p.add_argument("--url", help="download from this address instead of the registry's (checks still apply)")
    p.add_argument("--sha256", metavar="HEX", help="the archive's expected SHA-256 (overrides the registry)")
    p.add_argument("--keep-archive", action="store_true", help="keep DIR/NAME.tar.gz after extracting it")
    p.add_argument("--list", action="store_true", help="list the known datasets and exit")


@command("download", _download_args)
def cmd_download(args: argparse.Namespace) -> int:
    """Download one of the paper's datasets (resumable, checksummed, safely extracted)."""
    from .data.sources import SOURCES, describe_sources, install_dataset
    from .errors import ConfigError

    if args.list:
        print(describe_sources())
        return 0
    if not args.name:
        raise ConfigError(f"name the dataset to download: {', '.join(SOURCES)} (--list describes them)")
    install_dataset(args.name, args.root, archive=args.archive, url=args.url, sha256=args.sha256,
                    keep_archive=args.keep_archive)
    return 0


# ----- prepare ----------------------------------------------------------------------------------
def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["cityscapes"], help="the dataset to build from its official archives")
    p.add_argument("--gtfine", required=True, metavar="DIR", help="the unpacked gtFine folder (train/, val/ inside)")
    p.add_argument("--leftimg", required=True, metavar="DIR", help="the unpacked leftImg8bit folder")
    p.add_argument("--out", default="datasets/cityscapes", metavar="DIR",
                   help="where to write train/ and val/ (datasets/cityscapes)")
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="splits to build (train val)")
    p.add_argument("--size", type=int, default=256, help="side of each half, in pixels (256, as the paper)")


@command("prepare", _prepare_args)
def cmd_prepare(args: argparse.Namespace) -> int:
    """Build the paper's Cityscapes pairs from the official gtFine and leftImg8bit folders."""
    from .data.prepare import prepare_cityscapes

    prepare_cityscapes(args.gtfine, args.leftimg, args.out, splits=args.splits, size=args.size)
    return 0


# ----- entry point ------------------------------------------------------------------------------
class _TqdmHandler(logging.Handler):
    """Log lines that do not tear progress bars; warnings are prefixed 'warning: '."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        msg = printable(record.getMessage())  # non-UTF-8 file names as \xNN, never an encoding error
        if record.levelno >= logging.WARNING:
            msg = f"{record.levelname.lower()}: {msg}"
        tqdm.write(msg, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pix2pix", description="Paired image-to-image translation (pix2pix).")
    parser.add_argument("--version", action="version", version=f"pix2pix {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_args, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None)
        add_args(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logger = logging.getLogger("pix2pix")
    if not logger.handlers:
        logger.addHandler(_TqdmHandler())
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    func = args.func
    del args.func, args.quiet
    try:
        return func(args)
    except Pix2PixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        try:
            sys.stdout = open(os.devnull, "w")  # keep Python's exit flush from failing again
        except OSError:
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
