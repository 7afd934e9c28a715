"""The paper's Cityscapes ablation, end to end, from one command: train, evaluate, keep the evidence.

    python benchmarks/quality.py --data ../shared/data/cityscapes --out runs/quality            # paper setting
    python benchmarks/quality.py --data ../shared/data/cityscapes --out runs/quality-cpu \\
        --netG unet_128 --ngf 32 --ndf 32 --size 128 --batch-size 4 --epochs 4 --epochs-decay 4 --device cpu

Runs (``--tasks``; the paper's tables 1 and 6): L1 + cGAN, L1 alone (``lambda_gan`` 0) and cGAN
alone (``lambda_l1`` 0), for labels -> photo (BtoA) and photo -> labels (AtoB), all at one setting.
Steps, each skipped when its result exists, so an interrupted run continues where it stopped:

1. the label2photo segmenter (our FCN-score stand-in), at ``--segmenter-size`` (256), trained on
   the real training photos (or reused with ``--segmenter FILE``);
2. ``pix2pix train`` for each task (resumed if its run folder holds a partial run);
3. ``pix2pix evaluate`` of each run on the val split, in eval mode and with the paper's per-image
   sampling (``--sampling-seed``): segmentation scores, PSNR / SSIM / L1, for labels -> photo the
   segmenter-feature Frechet distance and KID with their real-vs-real floor, and FID / KID when
   Inception weights are at hand (``--inception-weights``, or the cache);
4. the results bundle ``OUT/bundle/`` (``--bundle``), small enough to copy back from any machine
   (the size is checked: 16 MiB at most) and to commit: ``results.json`` (every figure, wall
   times, settings, SHA-256 of each generator and of the segmenter), ``results.md`` (the tables
   beside the paper's), ``evals/`` (each evaluation's JSON), ``runs/`` (each run's config and loss
   log), ``figures/`` (JPEG: input | L1 | cGAN | L1 + cGAN | target, first val pairs) and
   ``commands.txt`` (every invocation of this script on OUT). No generator or segmenter weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

from pix2pix.config import TrainConfig
from pix2pix.data.download import sha256_file
from pix2pix.evaluate import evaluate_files
from pix2pix.evaluate.report import json_ready
from pix2pix.fileio import save_json
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
LOSS = {"": "L1 + cGAN", "_l1": "L1", "_gan": "cGAN"}
BUNDLE_LIMIT = 16 * 2**20
SCORES = ("images", "pixel_accuracy", "class_accuracy", "class_iou", "psnr", "ssim", "l1", "real", "ratio_to_real",
          "segmenter_realism", "inception", "fid", "kid")


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


def train_segmenter_once(args, out: Path) -> tuple[str, float | None]:
    path = out / f"segmenter{args.segmenter_size}.safetensors"
    if path.exists():
        return str(path), None
    from pix2pix.evaluate.segmenter import SegmenterConfig
    from pix2pix.evaluate.segmenter_training import SegmenterTraining, train_segmenter

    t0 = time.monotonic()
    train_segmenter(args.data, path, arch=SegmenterConfig(size=args.segmenter_size, width=args.segmenter_width),
                    train=SegmenterTraining(epochs=args.segmenter_epochs, batch_size=args.segmenter_batch_size,
                                            time_limit=args.segmenter_minutes), device=args.device)
    return str(path), time.monotonic() - t0


def evaluate_task(name: str, run: Path, args, segmenter: str | None, evals: Path) -> dict:
    task = TASKS[name][0]
    entry: dict = {}
    for mode, paper_sampling in (("eval", False), ("paper_sampling", True)):
        path = evals / f"{name}_{mode}.json"
        if path.exists() and not args.rescore:
            r = json.loads(path.read_text())
        else:
            t0 = time.monotonic()
            r = evaluate_files(task, checkpoint=str(run), data=args.data, split="val",
                               segmenter=segmenter if task == "label2photo" else None, json_path=str(path),
                               paper_sampling=paper_sampling, sampling_seed=args.sampling_seed if paper_sampling else None,
                               device=args.device, batch_size=16, inception_weights=args.inception_weights,
                               progress=False)
            r["settings"]["wall_seconds"] = round(time.monotonic() - t0, 1)
            save_json(json_ready(r), path)
            r = json.loads(path.read_text())
        entry[mode] = {k: r[k] for k in SCORES if k in r}
        entry[mode]["notes"] = r["settings"].get("notes", [])
        entry[mode]["seconds"] = r["settings"].get("wall_seconds", r["settings"].get("seconds"))
    return entry


def ablation_figure(runs: dict[str, Path], data: str, out: Path, n: int = 4) -> Path:
    """A JPEG: one row per val pair, input | each run's output (eval mode) | target, at the data's size."""

    from pix2pix import load
    from pix2pix.config import source_and_target
    from pix2pix.data.convert import array_to_image
    from pix2pix.data.pairs import find_pairs, read_pair
    from pix2pix.fileio import save_image
    from pix2pix.pictures import grid

    translators = {name: load(run, device="cpu") for name, run in runs.items()}
    first = next(iter(translators.values()))
    rows = []
    for pair in find_pairs(data, "val")[:n]:
        src, tgt = source_and_target(first.config.data.direction, *read_pair(pair, 3, 3))
        source = array_to_image(src)
        rows.append([source, *(t(source) for t in translators.values()), array_to_image(tgt)])
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid(rows).convert("RGB"), out, format="JPEG", quality=85)
    return out


def write_bundle(results: dict, out: Path, bundle: Path) -> int:
    """Copy the small files into ``bundle`` and return its size in bytes (an error above 16 MiB)."""
    for name, entry in results["tasks"].items():
        run = Path(entry["run"])
        dest = bundle / "runs" / name
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "losses.jsonl", "wall_seconds.json"):
            if (run / f).exists():
                shutil.copy2(run / f, dest / f)
    (bundle / "results.md").write_text(table(results))
    save_json(json_ready(results), bundle / "results.json")
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    if size > BUNDLE_LIMIT:
        raise SystemExit(f"{bundle}: the bundle is {size / 2**20:.1f} MiB, over the 16 MiB it must stay under")
    return size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="paired Cityscapes folder (train/ val/, photo | label map)")
    p.add_argument("--out", required=True, help="folder for runs, scores and the bundle")
    p.add_argument("--bundle", help="where the results bundle goes (OUT/bundle)")
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
    p.add_argument("--segmenter-width", type=int, default=32, help="the segmenter's base width (32)")
    p.add_argument("--segmenter-epochs", type=int, default=30)
    p.add_argument("--segmenter-minutes", type=float, default=None, help="time limit for training the segmenter")
    p.add_argument("--segmenter-batch-size", type=int, default=8)
    p.add_argument("--inception-weights", help="FID / KID weights file (else the cached file, if any)")
    p.add_argument("--sampling-seed", type=int, default=0, help="per-image dropout seed of the paper-sampling runs")
    p.add_argument("--rescore", action="store_true", help="evaluate again even where an evaluation exists")
    p.add_argument("--train-only", action="store_true", help="train the runs of --tasks, then stop")
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "commands.txt", "a") as f:  # every invocation on OUT, as typed (goes into the bundle)
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} "
                f"python {' '.join(shlex.quote(a) for a in sys.argv)}\n")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    base = dict(data_root=args.data, netG=args.netG, ngf=args.ngf, ndf=args.ndf, crop_size=args.size,
                load_size=round(args.size * 286 / 256), batch_size=args.batch_size, lr=args.lr,
                epochs=args.epochs, epochs_decay=args.epochs_decay, precision=args.precision,
                channels_last=args.channels_last, device=args.device, max_items=args.max_items,
                sample_every=1000, save_every=max(1, (args.epochs + args.epochs_decay) // 4), latest_every=5)
    if args.train_only:
        for name in tasks:
            train_task(name, args, base)
        return 0

    bundle = Path(args.bundle) if args.bundle else out / "bundle"
    evals = bundle / "evals"
    evals.mkdir(parents=True, exist_ok=True)
    results: dict = {"settings": {**vars(args), "torch": torch.__version__, "machine": platform.machine(),
                                  "processor": platform.processor(), "cpus": os.cpu_count(),
                                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
                     "paper": PAPER, "tasks": {}}
    segmenter, seg_seconds = args.segmenter, None
    if any(TASKS[t][0] == "label2photo" for t in tasks) and not segmenter:
        segmenter, seg_seconds = train_segmenter_once(args, out)
    if segmenter:
        from pix2pix.evaluate.segmenter import Segmenter

        seg = Segmenter.load(segmenter, device="cpu")
        results["segmenter"] = {"file": Path(segmenter).name, "sha256": sha256_file(segmenter),
                                "config": seg.cfg.to_dict(), "trained": seg.info,
                                "train_seconds": seg_seconds or seg.info.get("train_time_s")}
    runs: dict[str, Path] = {}
    for name in tasks:
        run, train_s = train_task(name, args, base)
        runs[name] = run
        state = load_checkpoint(run)
        entry = {"run": str(run), "loss": LOSS[name[len(TASKS[name][0]):]], "direction": TASKS[name][1],
                 "train_seconds": train_s, "generator_sha256": generator_sha256(run), "epochs": state["epoch"],
                 **evaluate_task(name, run, args, segmenter, evals)}
        results["tasks"][name] = entry
        save_json(json_ready(results), bundle / "results.json")
    for task in ("label2photo", "photo2label"):
        done = {n: r for n, r in runs.items() if TASKS[n][0] == task}
        if done:
            order = sorted(done, key=lambda n: ["_l1", "_gan", ""].index(n[len(task):]))
            results.setdefault("figures", {})[task] = {
                "file": f"figures/{task}.jpg", "columns": ["input", *(LOSS[n[len(task):]] for n in order), "target"]}
            ablation_figure({n: done[n] for n in order}, args.data, bundle / "figures" / f"{task}.jpg")
    shutil.copy2(out / "commands.txt", bundle / "commands.txt")
    size = write_bundle(results, out, bundle)
    print(table(results))
    print(f"bundle: {bundle} ({size / 2**20:.2f} MiB)")
    return 0


def _fmt(r: dict | None) -> str:
    if not r or r.get("pixel_accuracy") is None:
        return "n/a"
    return f"{r['pixel_accuracy']:.2f} / {r['class_accuracy']:.2f} / {r['class_iou']:.2f}"


def _realism(r: dict) -> str:
    """Segmenter-feature Frechet distance of the halves, generated vs real, and the real floor."""
    h = (r.get("segmenter_realism") or {}).get("halves")
    if not h:
        return ""
    return f"{h['generated_vs_real']['frechet']:.3g} (floor {h['real_vs_real']['frechet']:.3g}, x{h['frechet_ratio']:.2f})"


def _fid(r: dict) -> str:
    if "fid" in r:
        return f"{r['fid']:.1f} / {1000 * r['kid']:.1f}"
    return "not computed" if r.get("notes") else ""


def table(results: dict) -> str:
    s = results["settings"]
    hw = s["gpu"] or f"{s['cpus']}-core CPU ({s['processor'] or s['machine']})"
    lines = ["| run | loss | paper | ours, eval mode | ours, paper sampling | segmenter Frechet, eval "
             "(real floor, ratio) | FID / KID x1000, eval | train time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, e in results["tasks"].items():
        paper = "{:.2f} / {:.2f} / {:.2f}".format(*PAPER[name])
        lines.append(f"| {name} | {e['loss']} | {paper} | {_fmt(e['eval'])} | {_fmt(e['paper_sampling'])} | "
                     f"{_realism(e['eval'])} | {_fid(e['eval'])} | {e['train_seconds'] / 3600:.2f} h |")
    images = next((e["eval"].get("images") for e in results["tasks"].values()), None)
    real = next((e["eval"]["real"] for e in results["tasks"].values() if e["eval"].get("real")), None)
    if real:
        seg = results.get("segmenter", {}).get("trained", {})
        lines.append("| real photos (segmenter ceiling) | | {:.2f} / {:.2f} / {:.2f} | {} | | | | {} |".format(
            *PAPER["label2photo_real"], _fmt(real), f"segmenter {seg.get('train_time_s', 0) / 3600:.2f} h"))
    lines.append(f"\nSetting: {s['netG']} ngf {s['ngf']} ndf {s['ndf']}, {s['size']} px, batch {s['batch_size']}, "
                 f"lr {s['lr']}, {s['epochs']} + {s['epochs_decay']} epochs, precision {s['precision']}; "
                 f"segmenter {s['segmenter_size']} px; {hw}, torch {s['torch']}. Figures: pixel / class accuracy / "
                 f"class IoU on the {images} val pairs.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
