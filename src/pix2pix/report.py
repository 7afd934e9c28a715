"""HTML pages: a training run's ``index.html`` and results pages (translate --report, evaluate --report).

Pages are static, self-contained HTML (no scripts, no network) that reference image files next to
them by relative paths, so a folder can be copied or served as it is::

    RUN/index.html            latest loss curves (RUN/curves.png) and every sample grid, newest first
    OUT/index.html            one row per image: input | output | target (| ...) and its scores

Training refreshes the run page whenever it writes a sample grid (:func:`refresh_run_report`).
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence
from urllib.parse import quote

import numpy as np
from PIL import Image

from .fileio import atomic_write_bytes

if TYPE_CHECKING:
    from .inference import InputItem, TranslateReport, Translator

log = logging.getLogger("pix2pix")

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 4px 8px; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; image-rendering: auto; } .results img { max-width: 256px; }
.muted { color: #777; } figure { margin: 0 0 1.5em 0; } figcaption { color: #555; margin-bottom: .3em; }
"""


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
            f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _src(rel: str) -> str:
    return html.escape(quote(rel.replace(os.sep, "/")), quote=True)


def fmt(value: float | None, digits: int = 4) -> str:
    """A score for a page or the console: NaN/None as '-', inf as 'inf'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; floats are formatted with :func:`fmt` and right-aligned."""
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, (int, float)) or v is None:
                cells.append(f"<td class=\"num\">{fmt(v)}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out + ["</table>"])


def save_preview(image: Image.Image | np.ndarray, path: str | os.PathLike, quality: int = 92) -> Path:
    """A JPEG preview for a page (scores are always computed on the full-quality images)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


# ----- results pages ----------------------------------------------------------------------------
@dataclass
class ResultRow:
    """One image of a results page: ``images`` are paths relative to the page (None = empty cell)."""

    name: str
    images: list[str | None]
    scores: dict[str, float | None] = field(default_factory=dict)


def write_results_page(path: str | os.PathLike, title: str, columns: Sequence[str], rows: Sequence[ResultRow],
                       summary: str = "") -> Path:
    """A page with ``summary`` (HTML) on top and one table row per image: name, images, scores."""
    score_keys = list(dict.fromkeys(k for r in rows for k in r.scores))
    head = ["name", *columns, *score_keys]
    lines = ["<table class=\"results\">", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = [f"<td>{html.escape(r.name)}</td>"]
        for img in r.images:
            cells.append(f"<td><img loading=\"lazy\" src=\"{_src(img)}\" alt=\"\"></td>" if img else "<td></td>")
        cells += [f"<td class=\"num\">{fmt(r.scores.get(k))}</td>" for k in score_keys]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    body = summary + f"\n<h2>{len(rows)} images</h2>\n" + "\n".join(lines)
    atomic_write_bytes(path, page(title, body).encode())
    return Path(path)


def write_translate_report(out_dir: str | os.PathLike, items: Sequence["InputItem"], translated: "TranslateReport",
                           translator: "Translator", side_by_side: bool = False) -> Path:
    """``OUT/index.html`` over the results of ``translate_files``: input | output | target per image
    (previews in ``OUT/report/``) and PSNR / SSIM / L1 where the item has a target (``--paired``)."""
    from .inference import _read_item, _unique_names
    from .metrics import image_scores

    out = Path(out_dir)
    previews = out / "report"
    previews.mkdir(parents=True, exist_ok=True)
    by_name = {name: item for name, item in zip(_unique_names(items), items)}
    rows, totals = [], {}
    for path in translated.outputs:
        item = by_name.get(path.stem)
        if item is None:
            continue
        src, tgt = _read_item(item, translator)
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


# ----- the training run page --------------------------------------------------------------------
_STEP = re.compile(r"step_(\d+)\.png$")


def write_run_page(run_dir: str | os.PathLike) -> Path:
    """``RUN/index.html``: the run's settings, its latest losses, ``curves.png`` and every sample grid
    in ``RUN/samples/``, newest first. Only reads the run folder; cheap enough to call often."""
    from .visualize import read_loss_log

    run = Path(run_dir)
    records = read_loss_log(run / "losses.jsonl")
    samples = sorted(((int(m.group(1)), p) for p in (run / "samples").glob("step_*.png")
                      if (m := _STEP.search(p.name))), reverse=True)
    parts = []
    try:
        cfg = json.loads((run / "config.json").read_text())
        flat = {**cfg.get("data", {}), **cfg.get("model", {}), **{k: v for k, v in cfg.items()
                                                                  if not isinstance(v, dict)}}
        keys = ("data_root", "direction", "netG", "patch", "gan_loss", "lambda_l1", "batch_size", "epochs",
                "epochs_decay", "lr")
        parts.append(table(["setting", "value"], [[k, str(flat[k])] for k in keys if k in flat]))
    except (OSError, ValueError):
        pass
    if records:
        last = records[-1]
        parts.append("<h2>latest</h2>" + table(
            ["step", "epoch", "G_gan", "G_L1", "D_real", "D_fake", "lr", "images/s"],
            [[last.get("step"), last.get("epoch"), *(last.get(k) for k in ("G_gan", "G_L1", "D_real", "D_fake")),
              f"{last.get('lr', 0):.2e}", last.get("images_per_sec")]]))
    if (run / "curves.png").exists():
        stamp = records[-1]["step"] if records else 0
        parts.append(f"<h2>loss curves</h2><img src=\"curves.png?step={stamp}\" alt=\"loss curves\">")
    parts.append(f"<h2>samples ({len(samples)}), newest first</h2>"
                 "<p class=\"muted\">fixed validation pairs, generator in eval mode: input | output | target</p>")
    for step, p in samples:
        parts.append(f"<figure><figcaption>step {step}</figcaption>"
                     f"<img loading=\"lazy\" src=\"{_src('samples/' + p.name)}\" alt=\"step {step}\"></figure>")
    parts.append(f"<p class=\"muted\">updated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>")
    atomic_write_bytes(run / "index.html", page(f"pix2pix run {run.name}", "\n".join(parts)).encode())
    return run / "index.html"


def refresh_run_report(run_dir: str | os.PathLike) -> None:
    """Redraw ``RUN/curves.png`` from ``losses.jsonl`` and rewrite ``RUN/index.html``.

    Called by training after each sample grid; a failure here (a full disk, a broken matplotlib)
    is logged as a warning and never stops training.
    """
    from .visualize import plot_loss_curves, read_loss_log

    run = Path(run_dir)
    try:
        records = read_loss_log(run / "losses.jsonl")
        if records:
            plot_loss_curves(records, run / "curves.png")
        write_run_page(run)
    except Exception as e:  # reporting must never end a long training run
        log.warning("could not refresh %s/index.html: %s: %s", run, type(e).__name__, e)
