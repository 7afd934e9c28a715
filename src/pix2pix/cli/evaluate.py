"""``pix2pix evaluate``: score translations (the paper's Cityscapes metrics, PSNR / SSIM / L1) and,
with ``--train-segmenter``, train the network behind label2photo's FCN-score."""

from __future__ import annotations

import argparse
import logging

from .options import PAPER_SAMPLING_HELP, SEED_HELP, Command

log = logging.getLogger("pix2pix")


# ----- evaluate ---------------------------------------------------------------------------------
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=["photo2label", "label2photo", "generic"],
                   help="photo2label (label accuracy, IoU), label2photo (FCN-score with --segmenter), generic")
    w = p.add_argument_group("what to score (one of)")
    w.add_argument("--checkpoint", metavar="MODEL",
                   help="translate --data's --split with this model (anything translate takes) and score the results")
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
    d.add_argument("--cache-dir", metavar="DIR", help="decoded-pair cache folder to read (the user's cache)")
    d.add_argument("--no-cache", action="store_true", help="decode every image, even when the cache holds the split")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write every figure, per class and per image, as JSON")
    o.add_argument("--report", metavar="DIR", help="write an HTML page with every image and its scores")
    m = p.add_argument_group("model")
    m.add_argument("--segmenter", metavar="FILE", help="label2photo's segmenter (with --train-segmenter: where to save it)")
    m.add_argument("--native-size", action="store_true", help="translate at each image's own size (padded)")
    m.add_argument("--paper-sampling", action="store_true", help=PAPER_SAMPLING_HELP)
    m.add_argument("--sampling-seed", type=int, default=None, help=SEED_HELP)
    m.add_argument("--trust-program", action="store_true",
                   help="allow a .pt2 or .ts --checkpoint (programs that can run code or touch files)")
    m.add_argument("--batch-size", type=int, default=8, help="images per forward pass / training batch (8)")
    m.add_argument("--inception-weights", metavar="FILE",
                   help="FID / KID Inception weights (weights-inception-2015-12-05-6726825d.pth); default: the "
                        "cached file, else a download on first use")
    m.add_argument("--no-fid", action="store_true", help="skip FID / KID (label2photo and generic compute them)")
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.train_segmenter:
        return _train_segmenter(args)
    from ..evaluate import evaluate_files
    from ..evaluate.report import format_results

    results = evaluate_files(
        args.task, checkpoint=args.checkpoint, data=args.data, split=args.split or "val",
        predictions=args.predictions, targets=args.targets, paired=args.paired, inputs=args.inputs,
        direction=args.direction, pred_suffix=args.pred_suffix, target_suffix=args.target_suffix,
        input_suffix=args.input_suffix, segmenter=args.segmenter, report_dir=args.report, json_path=args.json,
        max_items=args.max_items, native_size=args.native_size, paper_sampling=args.paper_sampling,
        sampling_seed=args.sampling_seed, batch_size=args.batch_size, device=args.device,
        inception_weights=args.inception_weights, fid=not args.no_fid, trust_program=args.trust_program,
        cache=not args.no_cache, cache_dir=args.cache_dir)
    print(format_results(results))
    for written in (args.json, args.report and f"{args.report}/index.html"):
        if written:
            log.info("wrote %s", written)
    return 0


def _train_segmenter(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluate.segmenter import SegmenterConfig
    from ..evaluate.segmenter_training import SegmenterTraining, train_segmenter

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


COMMANDS = [
    Command("evaluate", _evaluate_args, cmd_evaluate, "Score translations (Cityscapes metrics, PSNR, SSIM).",
            "pix2pix evaluate --checkpoint runs/city_p2l --data datasets/cityscapes --task photo2label"),
]
