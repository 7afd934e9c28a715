"""HTML pages: a training run's page and results pages (translate --report, evaluate --report).

Pages are static, self-contained HTML (no scripts, no network) that reference image files next to
them by relative paths, so a folder can be copied or served as it is::

    RUN/index.html            latest loss curves (RUN/curves.png) and every sample grid, newest first
    OUT/index.html            one row per image: input | output | target (| ...) and its scores

This module builds the HTML; where it is written is its caller's business (the run page:
``RunFolder.write_page``; results pages: :func:`write_results_page`).
"""

from __future__ import annotations

import html
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from .fileio import atomic_write_bytes

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


def src(rel: str) -> str:
    """A relative path as an HTML attribute value (URL-quoted, escaped)."""
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
            cells.append(f"<td><img loading=\"lazy\" src=\"{src(img)}\" alt=\"\"></td>" if img else "<td></td>")
        cells += [f"<td class=\"num\">{fmt(r.scores.get(k))}</td>" for k in score_keys]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    body = summary + f"\n<h2>{len(rows)} images</h2>\n" + "\n".join(lines)
    atomic_write_bytes(path, page(title, body).encode())
    return Path(path)


# ----- the training run page --------------------------------------------------------------------
RUN_SETTINGS = ("data_root", "direction", "netG", "patch", "gan_loss", "lambda_l1", "batch_size", "epochs",
                "epochs_decay", "lr")


def run_page(name: str, config: dict | None, records: Sequence[dict], samples: Sequence[tuple[int, str]],
             curves: str | None) -> str:
    """The HTML of a run's ``index.html``: its settings (``config``, a config.json dict), the latest
    loss record, the curves image and the sample grids (step, relative path), newest first."""
    parts = []
    if isinstance(config, dict):
        flat = {**config.get("data", {}), **config.get("model", {}),
                **{k: v for k, v in config.items() if not isinstance(v, dict)}}
        parts.append(table(["setting", "value"], [[k, str(flat[k])] for k in RUN_SETTINGS if k in flat]))
    if records:
        last = records[-1]
        parts.append("<h2>latest</h2>" + table(
            ["step", "epoch", "G_gan", "G_L1", "D_real", "D_fake", "lr", "images/s"],
            [[last.get("step"), last.get("epoch"), *(last.get(k) for k in ("G_gan", "G_L1", "D_real", "D_fake")),
              f"{last.get('lr', 0):.2e}", last.get("images_per_sec")]]))
    if curves:
        stamp = records[-1]["step"] if records else 0
        parts.append(f"<h2>loss curves</h2><img src=\"{src(curves)}?step={stamp}\" alt=\"loss curves\">")
    parts.append(f"<h2>samples ({len(samples)}), newest first</h2>"
                 "<p class=\"muted\">fixed validation pairs, generator in eval mode: input | output | target</p>")
    for step, rel in samples:
        parts.append(f"<figure><figcaption>step {step}</figcaption>"
                     f"<img loading=\"lazy\" src=\"{src(rel)}\" alt=\"step {step}\"></figure>")
    parts.append(f"<p class=\"muted\">updated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>")
    return page(f"pix2pix run {name}", "\n".join(parts))
