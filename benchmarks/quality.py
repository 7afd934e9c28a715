"""The paper's Cityscapes protocol, end to end, from one command: train, evaluate, tabulate.

    python benchmarks/quality.py --data ../shared/data/cityscapes --out runs/quality            # paper setting
    python benchmarks/quality.py --data ../shared/data/cityscapes --out runs/quality-cpu \
        --netG unet_128 --size 128 --batch-size 4 --epochs 10 --epochs-decay 10 --tasks photo2label,label2photo

Steps (each skipped when its result already exists, so an interrupted run continues where it stopped):

1. the label2photo segmenter (our FCN-score stand-in), trained on the real training photos at
   ``--size`` (or reused with ``--segmenter FILE``);
2. for each task, ``pix2pix train`` (resumed if the run folder holds a partial run):
   ``photo2label`` (AtoB, L1 + cGAN), ``photo2label_l1`` (AtoB, L1 alone: ``lambda_gan`` 0),
   ``label2photo`` (BtoA, L1 + cGAN);
3. ``pix2pix evaluate`` of each run on the val split, in eval mode and with the paper's sampling;
4. ``OUT/results.json`` (every figure, wall times, settings, SHA-256 of each generator) and
   ``OUT/results.md`` (the table beside the paper's), and a figure per task of the first val pairs
   (input | ours | target) in ``OUT/figures/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from pix2pix.config import TrainConfig
from pix2pix.evaluate import evaluate_files
from pix2pix.fileio import save_image, save_json
from pix2pix.training import RunFolder, resume, train
from pix2pix.training.checkpoint import load_checkpoint

PAPER = {  # per-pixel acc, per-class acc, class IoU (paper tables 1 and 6, Cityscapes)
    "photo2label": (0.83, 0.36, 0.29),
    "photo2label_l1": (0.86, 0.42, 0.35),
    "photo2label_gan": (0.74, 0.28, 0.22),
    "label2photo": (0.66, 0.23, 0.17),
    "label2photo_l1": (0.42, 0.15, 0.11),
    "label2photo_gan": (0.57, 0.22, 0.16),
    "label2photo_real": (0.80, 0.26, 0.21),
}
TASKS = {  # name -> (evaluation task, direction, extra options): L1 + cGAN, L1 alone, cGAN alone
    "photo2label": ("photo2label", "AtoB", {}),
    "photo2label_l1": ("photo2label", "AtoB", {"lambda_gan": 0.0}),
    "photo2label_gan": ("photo2label", "AtoB", {"lambda_l1": 0.0}),
    "label2photo": ("label2photo", "BtoA", {}),
    "label2photo_l1": ("label2photo", "BtoA", {"lambda_gan": 0.0}),
    "label2photo_gan": ("label2photo", "BtoA", {"lambda_l1": 0.0}),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generator_sha256(run: Path) -> str:
    """Checksum of the trained generator's weights alone (safetensors bytes of its state dict)."""
    from safetensors.torch import save

    weights = load_checkpoint(run)["generator"]
    return hashlib.sha256(save({k: v.contiguous() for k, v in sorted(weights.items())})).hexdigest()


def train_task(name: str, args, base: dict) -> tuple[Path, float]:
    """Train (or finish) the run for ``name``; returns (run folder, training wall seconds so far)."""
    _, direction, extra = TASKS[name]
    run = Path(args.out) / name
    timing = run / "wall_seconds.json"
    spent = json.loads(timing.read_text())["train"] if timing.exists() else 0.0
    state = load_checkpoint(run) if RunFolder.is_run_folder(run) else None
    cfg = TrainConfig.from_flat({**base, **extra, "direction": direction, "out": str(run)})
    if state is not None and state["epoch"] >= cfg.total_epochs:
        return run, spent
    t0 = time.monotonic()
    if state is None:
        train(cfg)
    else:
        resume(run, {"epochs": cfg.epochs, "epochs_decay": cfg.epochs_decay})
    spent += time.monotonic() - t0
    save_json({"train": spent}, timing)
    return run, spent


def result_figure(run: Path, data: str, out: Path, n: int = 4) -> Path:
    """input | ours | target for the first ``n`` val pairs, at the dataset's resolution."""
    from PIL import Image

    from pix2pix import load
    from pix2pix.deploy.files import collect_inputs, translate_files
    from pix2pix.pictures import grid

    t = load(run, device="cpu")
    items = collect_inputs([str(Path(data) / "val")], paired=True)[:n]
    tmp = out.parent / f".{out.stem}_rows"
    rep = translate_files(t, items, tmp, side_by_side=True, progress=False)
    rows = [[Image.open(p).convert("RGB")] for p in rep.outputs]
    image = grid(rows)
    save_image(image, out)
    for p in rep.outputs:
        p.unlink()
    tmp.rmdir()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="paired Cityscapes folder (train/ val/, photo | label map)")
    p.add_argument("--out", required=True, help="folder for runs, scores and figures")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated")
    p.add_argument("--netG", default="unet_256")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--size", type=int, default=256, help="training crop size (load size = size * 286 / 256)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--epochs-decay", type=int, default=100)
    p.add_argument("--precision", default="auto")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-items", type=int, default=None, help="use only the first N training pairs")
    p.add_argument("--segmenter", help="reuse this segmenter (else one is trained into OUT/)")
    p.add_argument("--segmenter-size", type=int, default=256, help="the segmenter's input size (256)")
    p.add_argument("--segmenter-epochs", type=int, default=30)
    p.add_argument("--segmenter-minutes", type=float, default=None, help="time limit for training the segmenter")
    p.add_argument("--segmenter-batch-size", type=int, default=8)
    p.add_argument("--train-only", action="store_true", help="train the runs of --tasks, then stop")
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    base = dict(data_root=args.data, netG=args.netG, ngf=args.ngf, ndf=args.ndf, crop_size=args.size,
                load_size=round(args.size * 286 / 256), batch_size=args.batch_size, lr=args.lr,
                epochs=args.epochs, epochs_decay=args.epochs_decay, precision=args.precision,
                channels_last=args.channels_last, device=args.device, max_items=args.max_items,
                sample_every=1000, save_every=max(1, (args.epochs + args.epochs_decay) // 4), latest_every=5)

    results: dict = {"settings": {**vars(args), "torch": torch.__version__, "machine": platform.machine(),
                                  "processor": platform.processor(), "cpus": os.cpu_count(),
                                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
                     "tasks": {}}
    segmenter = args.segmenter
    if args.train_only:
        for name in tasks:
            train_task(name, args, base)
        return 0
    if any(TASKS[t][0] == "label2photo" for t in tasks) and not segmenter:
        segmenter = str(out / f"segmenter{args.segmenter_size}.safetensors")
        if not Path(segmenter).exists():
            from pix2pix.evaluate.segmenter import SegmenterConfig
            from pix2pix.evaluate.segmenter_training import SegmenterTraining, train_segmenter

            t0 = time.monotonic()
            train_segmenter(args.data, segmenter, arch=SegmenterConfig(size=args.segmenter_size),
                            train=SegmenterTraining(epochs=args.segmenter_epochs, batch_size=args.segmenter_batch_size,
                                                    time_limit=args.segmenter_minutes), device=args.device)
            results["segmenter_train_seconds"] = time.monotonic() - t0
    if segmenter:
        results["segmenter"] = {"file": segmenter, "sha256": sha256(Path(segmenter))}

    for name in tasks:
        task = TASKS[name][0]
        run, train_s = train_task(name, args, base)
        entry = {"run": str(run), "train_seconds": train_s, "generator_sha256": generator_sha256(run),
                 "epochs": load_checkpoint(run)["epoch"]}
        for mode, paper_sampling in (("eval", False), ("paper_sampling", True)):
            t0 = time.monotonic()
            r = evaluate_files(task, checkpoint=str(run), data=args.data, split="val",
                               segmenter=segmenter if task == "label2photo" else None,
                               json_path=str(out / f"{name}_{mode}.json"), paper_sampling=paper_sampling,
                               device=args.device, batch_size=16)
            entry[mode] = {k: r.get(k) for k in ("pixel_accuracy", "class_accuracy", "class_iou", "psnr", "ssim",
                                                 "l1", "real", "ratio_to_real") if k in r}
            entry[mode]["seconds"] = time.monotonic() - t0
        entry["figure"] = str(result_figure(run, args.data, out / "figures" / f"{name}.png"))
        results["tasks"][name] = entry
        save_json(results, out / "results.json")
    (out / "results.md").write_text(table(results))
    print(table(results))
    return 0


def _fmt(r: dict | None) -> str:
    if not r or r.get("pixel_accuracy") is None:
        return "n/a"
    return f"{r['pixel_accuracy']:.2f} / {r['class_accuracy']:.2f} / {r['class_iou']:.2f}"


def table(results: dict) -> str:
    s = results["settings"]
    hw = s["gpu"] or f"{s['cpus']}-core CPU ({s['processor'] or s['machine']})"
    lines = ["| task | paper | ours (eval mode) | ours (paper sampling) | setting | hardware | train time |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, e in results["tasks"].items():
        setting = (f"{s['netG']} ngf {s['ngf']}, {s['size']}px, batch {s['batch_size']}, "
                   f"{e['epochs']} epochs, {s['precision']}")
        paper = "{:.2f} / {:.2f} / {:.2f}".format(*PAPER[name])
        lines.append(f"| {name} | {paper} | {_fmt(e['eval'])} | {_fmt(e['paper_sampling'])} | {setting} | {hw} | "
                     f"{e['train_seconds'] / 3600:.2f} h |")
        real = e["eval"].get("real")
        if name == "label2photo" and real:
            lines.append("| label2photo: real photos (segmenter ceiling) | "
                         "{:.2f} / {:.2f} / {:.2f} | {} | | segmenter at {}px | | |".format(
                             *PAPER["label2photo_real"], _fmt(real), s["size"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
