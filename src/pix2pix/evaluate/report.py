"""Presenting scores: the console table, the JSON-ready results and the HTML results pages of
``evaluate --report`` and ``translate --report``."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from ..pages import ResultRow, fmt, table, write_results_page
from ..pictures import save_preview
from .metrics import image_scores

if TYPE_CHECKING:
    from ..deploy.files import InputItem, TranslateReport
    from ..deploy.translator import Translator
    from .evaluator import Evaluator


def format_results(r: dict[str, Any]) -> str:
    """The console table: the paper's figures (beside the real photos' for label2photo), PSNR / SSIM /
    L1, and the per-class table for the segmentation tasks."""

    lines = [f"task {r['task']}: {r['images']} images"]
    if r["task"] != "generic":
        names = (("pixel_accuracy", "per-pixel accuracy"), ("class_accuracy", "per-class accuracy"),
                 ("class_iou", "class IoU"))
        if r["task"] == "label2photo":
            lines.append(f"{'':22s}{'generated':>11s}{'real photos':>13s}{'generated/real':>16s}")
            for k, label in names:
                lines.append(f"{label:22s}{fmt(r[k]):>11s}{fmt(r['real'][k]):>13s}{fmt(r['ratio_to_real'][k], 3):>16s}")
        else:
            for k, label in names:
                lines.append(f"{label:22s}{fmt(r[k]):>11s}")
        lines.append(f"{'(not scored: void)':22s}{fmt(r['ignored_pixel_fraction']):>11s}  of target pixels")
    lines.append(f"{'PSNR (dB)':22s}{fmt(r['psnr'], 2):>11s}")
    lines.append(f"{'SSIM':22s}{fmt(r['ssim']):>11s}")
    lines.append(f"{'L1 ([-1, 1] scale)':22s}{fmt(r['l1']):>11s}")
    lines += realism_lines(r)
    if r["task"] != "generic":
        real = r.get("real", {}).get("per_class")
        head = f"\n{'class':15s}{'pixels':>10s}{'accuracy':>10s}{'IoU':>8s}"
        lines.append(head + (f"{'real acc':>10s}{'real IoU':>10s}" if real else ""))
        for i, c in enumerate(r["per_class"]):
            line = f"{c['name']:15s}{c['pixels']:>10d}{fmt(c['accuracy'], 3):>10s}{fmt(c['iou'], 3):>8s}"
            if real:
                line += f"{fmt(real[i]['accuracy'], 3):>10s}{fmt(real[i]['iou'], 3):>10s}"
            lines.append(line)
    return "\n".join(lines)


def realism_lines(r: dict[str, Any]) -> list[str]:
    """FID / KID and the segmenter-feature distances, each beside its real-vs-real floor (the two
    halves of the real photos), or the line saying why FID / KID were not computed."""
    lines = []
    rows = []
    if "inception" in r:
        inc = r["inception"]
        rows.append(("FID (Inception)", inc["fid"], inc.get("halves", {}), "fid", "fid"))
        rows.append(("KID (Inception)", inc["kid"]["mean"], inc.get("halves", {}), "kid", "kid"))
    if "segmenter_realism" in r:
        seg = r["segmenter_realism"]
        rows.append(("Frechet (segmenter)", seg["frechet"], seg.get("halves", {}), "frechet", "frechet"))
        rows.append(("KID (segmenter)", seg["kid"]["mean"], seg.get("halves", {}), "kid", "kid"))
    if rows:
        lines.append(f"\n{'realism':22s}{'all images':>11s}{'halves: generated':>19s}{'real (floor)':>14s}{'ratio':>8s}")
    for label, value, halves, key, _ in rows:
        gen, floor = (halves.get(k, {}).get(key) for k in ("generated_vs_real", "real_vs_real"))
        if isinstance(gen, dict):
            gen, floor = gen["mean"], floor["mean"]
        ratio = gen / floor if gen is not None and floor else None
        lines.append(f"{label:22s}{fmt(value, 4):>11s}{fmt(gen, 4):>19s}{fmt(floor, 4):>14s}{fmt(ratio, 2):>8s}")
    for note in r.get("settings", {}).get("notes", []):
        lines.append(note)
    return lines


def write_evaluation_page(ev: "Evaluator", results: dict[str, Any]) -> Path:
    summary = f"<pre>{html.escape(format_results(results))}</pre>"
    settings = results.get("settings", {})
    summary += table(["setting", "value"], [[k, str(v)] for k, v in settings.items()])
    return write_results_page(ev.report_dir / "index.html", f"pix2pix evaluate: {ev.task}", ev.report_columns(),
                              ev.report_rows(results["per_image"]), summary)


def json_ready(obj: Any) -> Any:
    """Replace NaN / inf floats (not valid JSON) by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return json_ready(obj.item())
    return obj


def write_translate_report(out_dir: str | os.PathLike, items: Sequence["InputItem"], translated: "TranslateReport",
                           translator: "Translator", side_by_side: bool = False) -> Path:
    """``OUT/index.html`` over the results of ``translate_files``: input | output | target per image
    (previews in ``OUT/report/``) and PSNR / SSIM / L1 where the item has a target (``--paired``)."""
    from ..deploy.files import read_item, unique_names

    out = Path(out_dir)
    previews = out / "report"
    previews.mkdir(parents=True, exist_ok=True)
    by_name = {name: item for name, item in zip(unique_names(items), items)}
    rows, totals = [], {}
    for path in translated.outputs:
        item = by_name.get(path.stem)
        if item is None:
            continue
        src, tgt = read_item(item, translator)
        result = Image.open(path).convert("RGB")
        if side_by_side:  # input | output (| target): the output is the second panel
            result = result.crop((src.width, 0, 2 * src.width, src.height))
        cells = [save_preview(src, previews / f"{path.stem}_input.jpg"), path]
        scores: dict[str, float | None] = {}
        if tgt is not None:
            cells.append(save_preview(tgt, previews / f"{path.stem}_target.jpg"))
            pred, target = np.asarray(result), np.asarray(tgt.convert("RGB"))
            scores = image_scores(pred, target) if pred.shape == target.shape else {}
            for k, v in scores.items():
                totals.setdefault(k, []).append(v)
        rows.append(ResultRow(path.stem, [os.path.relpath(c, out) for c in cells], scores))
    summary = f"<p>checkpoint model: {html.escape(translator.config.model.netG)}, " \
              f"direction {html.escape(translator.config.data.direction)}; {len(rows)} images in " \
              f"{html.escape(str(out))}</p>"
    if totals:
        summary += table(["metric", "mean over images with a target"],
                         [[k, float(np.mean(v))] for k, v in totals.items()])
    columns = ["input", "output (input | output | target)" if side_by_side else "output", "target"]
    return write_results_page(out / "index.html", "pix2pix translate", columns, rows, summary)
