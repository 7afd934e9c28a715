"""How fast ``pix2pix evaluate`` scores, against the time it takes just to decode the same files.

    python benchmarks/scoring.py --data ../shared/data/cityscapes --json scoring.json
    python benchmarks/scoring.py --data ../shared/data/cityscapes --checkpoint runs/city_l2p --device cuda \\
        --segmenter seg.safetensors     # the GPU target: 500 pairs, generator included, in < 5 s

1. Predictions to score are written once to a temporary folder: for photo2label, each val label map
   with a few pixels repainted (PNG); for generic, the val photos slightly shifted (PNG).
2. **decode**: the files ``evaluate --predictions`` reads (each prediction and its val pair), read
   by the same parallel, prefetching reader, stacked into batches, nothing scored (and, for
   reference, the same files decoded by plain Pillow in one thread).
3. **evaluate --predictions**: the whole command's work (``evaluate_files``) for photo2label
   (colour rule, confusion matrix, PSNR / SSIM / L1) and generic (PSNR / SSIM / L1); label2photo
   with ``--segmenter`` (the segmenter then runs on 1000 photos).
4. With ``--checkpoint``: ``evaluate --checkpoint`` on the split (generator included), on ``--device``.

Each is timed ``--repeat`` times after one warm-up; the best time is reported (page cache warm).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix.data.images import read_image
from pix2pix.data.pairs import find_pairs, read_pair
from pix2pix.evaluate import evaluate_files
from pix2pix.evaluate.predictions import from_folders


def write_predictions(data: str, split: str, folder: Path, task: str, limit: int | None) -> int:
    """Plausible predictions for ``task`` (label maps or photos) as PNG files named like the pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pairs = find_pairs(data, split)[:limit]
    for pair in pairs:
        photo, labels = read_pair(pair, 3, 3)  # Cityscapes: photo A, labels B
        if task == "photo2label":
            out = labels.copy()
            y, x = rng.integers(0, labels.shape[0] - 16), rng.integers(0, labels.shape[1] - 16)
            out[y:y + 16, x:x + 16] = labels[0, 0]
        else:
            out = np.roll(photo, 2, axis=1)
        Image.fromarray(out).save(folder / f"{pair.name}.png")
    return len(pairs)


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up: page cache, lazy imports, thread pools
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="paired Cityscapes folder")
    p.add_argument("--split", default="val")
    p.add_argument("--max-items", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--segmenter", help="also time label2photo with this segmenter")
    p.add_argument("--checkpoint", help="also time evaluate --checkpoint with this run (generator included)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="write the timings here")
    args = p.parse_args(argv)

    split_dir = Path(args.data) / args.split
    # (older versions, timed for comparison, have no FID and no ``fid`` argument)
    no_fid = {"fid": False} if "fid" in inspect.signature(evaluate_files).parameters else {}
    results: dict = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                     "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": args.device,
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "timings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for task, pred_task in (("photo2label", "photo2label"), ("generic", "generic"), ("label2photo", "generic")):
            if task == "label2photo" and not args.segmenter:
                continue
            folder = Path(tmp) / pred_task
            if not folder.exists():
                n = write_predictions(args.data, args.split, folder, pred_task, args.max_items)
            direction = {"photo2label": "AtoB", "generic": "AtoB", "label2photo": "BtoA"}[task]

            def decode() -> None:
                source = from_folders(folder, split_dir, paired=True, direction=direction,
                                      label_maps=task == "photo2label", max_items=args.max_items)
                for _ in source.batches(args.batch_size):
                    pass

            def decode_one_thread() -> None:  # plain Pillow, one file after the other
                names = sorted(f.stem for f in folder.iterdir())[:args.max_items]
                pairs = {pf.name: pf for pf in find_pairs(args.data, args.split)}
                for name in names:
                    read_image(folder / f"{name}.png", 3)
                    read_pair(pairs[name], 3, 3)

            def score() -> None:
                evaluate_files(task, predictions=str(folder), targets=str(split_dir), paired=True,
                               segmenter=args.segmenter if task == "label2photo" else None, device=args.device,
                               batch_size=args.batch_size, max_items=args.max_items, progress=False, **no_fid)

            t_decode, t_score = best_of(decode, args.repeat), best_of(score, args.repeat)
            t_serial = best_of(decode_one_thread, 1)
            results["timings"][task] = {"images": n, "decode_seconds": round(t_decode, 3),
                                        "decode_one_thread_seconds": round(t_serial, 3),
                                        "evaluate_seconds": round(t_score, 3), "ratio": round(t_score / t_decode, 2),
                                        "images_per_second": round(n / t_score, 1)}
            print(f"{task:12s} {n} pairs: decode {t_decode:6.2f} s (one thread {t_serial:5.2f} s), evaluate "
                  f"--predictions {t_score:6.2f} s ({t_score / t_decode:.2f}x decode, {n / t_score:.0f} images/s)",
                  flush=True)
    if args.checkpoint:
        from pix2pix import load

        task = "label2photo" if load(args.checkpoint, device="cpu").config.data.direction == "BtoA" else "photo2label"

        def translate_and_score() -> None:
            evaluate_files(task, checkpoint=args.checkpoint, data=args.data, split=args.split,
                           segmenter=args.segmenter if task == "label2photo" else None, device=args.device,
                           batch_size=args.batch_size, max_items=args.max_items, progress=False, **no_fid)

        t = best_of(translate_and_score, args.repeat)
        n = len(find_pairs(args.data, args.split)[:args.max_items])
        results["timings"]["checkpoint"] = {"task": task, "images": n, "evaluate_seconds": round(t, 3),
                                            "images_per_second": round(n / t, 1)}
        print(f"evaluate --checkpoint ({task}, generator included): {n} pairs in {t:.2f} s on {args.device}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
