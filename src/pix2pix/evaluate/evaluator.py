"""Evaluation: score generated images against their targets, as the paper's Cityscapes tables do.

    pix2pix evaluate --checkpoint runs/city_p2l --data datasets/cityscapes --split val --task photo2label
    pix2pix evaluate --checkpoint runs/city_l2p --data datasets/cityscapes --task label2photo \\
        --segmenter seg.safetensors --json scores.json --report eval_html/
    pix2pix evaluate --predictions out/ --targets datasets/cityscapes/val --paired --task photo2label

Tasks (docs/evaluation.md has the definitions):

- ``photo2label``: generated label maps -> classes by the nearest Cityscapes colour; compared with
  the target label map's classes (same rule, void not scored): pixel / class accuracy, class IoU.
- ``label2photo``: generated photos are segmented by a :class:`~pix2pix.evaluate.segmenter.Segmenter`
  and compared with the classes of the input label map (the FCN-score); the real photos are scored
  the same way (the ceiling, the paper's "ground truth" row).
- ``generic``: PSNR, SSIM and L1 only. PSNR / SSIM / L1 are reported for every task.

Where the predictions come from (a model, or folders of existing images) is
:mod:`pix2pix.evaluate.predictions`; the console table and the pages are ``report.py``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._version import __version__
from ..data.convert import array_to_tensor
from ..errors import ConfigError, DataError, OutputError
from ..fileio import check_writable, writing
from ..pages import ResultRow
from ..pictures import save_preview
from .cityscapes import CLASS_NAMES, IGNORE, NUM_CLASSES, colours_to_train_ids, train_ids_to_colours
from .metrics import SegmentationScores, confusion_matrix, image_scores
from .predictions import Prediction, Predictions

log = logging.getLogger("pix2pix")
TASKS = ("photo2label", "label2photo", "generic")
# Which side of a pair is the model's input when none is given: the Cityscapes layout (photo A, labels B).
DEFAULT_DIRECTION = {"photo2label": "AtoB", "label2photo": "BtoA", "generic": "AtoB"}
COLOUR_RULE = ("nearest colour of the 29 distinct Cityscapes label colours (void colours included); "
               "a target pixel nearest to a void colour is not scored, a generated one counts as wrong")


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")


# ----- scoring ----------------------------------------------------------------------------------
class Evaluator:
    """Accumulates the scores of batches of examples for one task; optionally writes report images."""

    def __init__(self, task: str, segmenter=None, report_dir: str | os.PathLike | None = None):
        check_task(task)
        if task == "label2photo" and segmenter is None:
            raise ConfigError("--task label2photo needs --segmenter FILE (train one with "
                              "pix2pix evaluate --train-segmenter --data DIR --segmenter FILE)")
        self.task, self.segmenter = task, segmenter
        self.conf = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
        self.conf_real = np.zeros_like(self.conf)
        self.target_pixels = self.ignored_pixels = 0
        self.per_image: list[dict[str, Any]] = []
        self.report_dir = Path(report_dir) if report_dir else None
        self.rows: list = []
        if self.report_dir:
            check_writable(self.report_dir / "images", folder=True, what="--report folder")

    def add(self, batch: Sequence[Prediction]) -> None:
        if self.task == "photo2label":
            for ex in batch:
                self._require_rgb(ex)
                pred_ids, tgt_ids = colours_to_train_ids(ex.prediction), colours_to_train_ids(ex.target)
                self._score(ex, {"pred": pred_ids}, tgt_ids, {"pred": self.conf})
        elif self.task == "label2photo":
            for ex in batch:
                self._require_rgb(ex)
                if ex.source is None:
                    raise DataError(f"{ex.name}: label2photo needs the input label map of each prediction "
                                    "(--targets DIR --paired, or --inputs DIR)")
            fake = self.segmenter.segment([array_to_tensor(ex.prediction) for ex in batch])
            real = self.segmenter.segment([array_to_tensor(ex.target) for ex in batch])
            for ex, f, r in zip(batch, fake, real):
                tgt_ids = colours_to_train_ids(ex.source)
                self._score(ex, {"pred": f.numpy(), "real": r.numpy()}, tgt_ids,
                            {"pred": self.conf, "real": self.conf_real})
        else:
            for ex in batch:
                self._score(ex, {}, None, {})

    def _require_rgb(self, ex: Prediction) -> None:
        if ex.prediction.shape[2] != 3 or ex.target.shape[2] != 3:
            raise DataError(f"{ex.name}: --task {self.task} needs RGB images (the Cityscapes colours)")

    def _score(self, ex: Prediction, class_maps: dict[str, np.ndarray], tgt_ids: np.ndarray | None,
               confs: dict[str, np.ndarray]) -> None:
        row: dict[str, Any] = {"name": ex.name, **image_scores(ex.prediction, ex.target)}
        if tgt_ids is not None:
            self.target_pixels += tgt_ids.size
            self.ignored_pixels += int((tgt_ids == IGNORE).sum())
        for key, ids in class_maps.items():
            c = confusion_matrix(ids, tgt_ids, NUM_CLASSES)
            confs[key] += c
            row["pixel_accuracy" if key == "pred" else "real_pixel_accuracy"] = \
                SegmentationScores.from_confusion(c).pixel_accuracy
        self.per_image.append(row)
        if self.report_dir:
            self._preview(ex, class_maps, row)

    def _preview(self, ex: Prediction, class_maps: dict[str, np.ndarray], row: dict[str, Any]) -> None:
        folder, stem = self.report_dir / "images", _safe(ex.name)
        cells: list[str | None] = []

        def put(image: np.ndarray | None, tag: str) -> None:
            if image is None:
                cells.append(None)
                return
            with writing(folder / f"{stem}_{tag}.jpg", "the report is incomplete"):
                save_preview(image, folder / f"{stem}_{tag}.jpg")
            cells.append(f"images/{stem}_{tag}.jpg")

        put(ex.source, "input")
        put(ex.prediction, "output")
        if self.task == "photo2label":
            put(train_ids_to_colours(class_maps["pred"]), "output_classes")
        if self.task == "label2photo":
            put(train_ids_to_colours(class_maps["pred"]), "output_segmented")
        put(ex.target, "target")
        if self.task == "label2photo":
            put(train_ids_to_colours(class_maps["real"]), "target_segmented")
        self.rows.append(ResultRow(ex.name, cells, {k: v for k, v in row.items() if k != "name"}))

    def report_columns(self) -> list[str]:
        return {"photo2label": ["input", "output", "output classes", "target"],
                "label2photo": ["input labels", "output", "output segmented", "real photo", "real segmented"],
                "generic": ["input", "output", "target"]}[self.task]

    def results(self) -> dict[str, Any]:
        """All figures; keys as documented in docs/evaluation.md."""
        n = len(self.per_image)
        if n == 0:
            raise DataError("nothing was scored: no readable prediction / target pairs")
        out: dict[str, Any] = {"task": self.task, "images": n}
        if self.task != "generic":
            s = SegmentationScores.from_confusion(self.conf)
            out.update(s.as_dict())
            out["per_class"] = s.per_class(CLASS_NAMES)
            out["scored_pixels"] = s.scored_pixels
            out["ignored_pixel_fraction"] = self.ignored_pixels / max(self.target_pixels, 1)
        if self.task == "label2photo":
            r = SegmentationScores.from_confusion(self.conf_real)
            out["real"] = {**r.as_dict(), "per_class": r.per_class(CLASS_NAMES)}
            out["ratio_to_real"] = {k: (out[k] / v if v else math.nan) for k, v in r.as_dict().items()}
        for key in ("psnr", "ssim", "l1"):
            out[key] = float(np.mean([row[key] for row in self.per_image]))
        out["per_image"] = self.per_image
        return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def evaluate(source: Predictions, task: str, *, segmenter=None, report_dir: str | os.PathLike | None = None,
             batch_size: int = 8, progress: bool = True) -> dict[str, Any]:
    """Score every prediction of ``source`` for ``task``; returns the results dict (see :meth:`Evaluator.results`)
    with ``settings`` recording the data, the model and the rules used. Writes ``report_dir/index.html``."""
    from tqdm.auto import tqdm

    from .report import write_evaluation_page

    ev = Evaluator(task, segmenter, report_dir)
    with tqdm(total=source.count, desc=f"evaluate {task}", unit="img", disable=not progress, leave=False) as bar:
        for batch in source.batches(max(1, batch_size)):
            ev.add(batch)
            bar.update(len(batch))
    results = ev.results()
    settings = dict(source.settings)
    settings.update(task=task, pix2pix_version=__version__, psnr_ssim="8-bit RGB at the target's size; "
                    "SSIM: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03; L1 on the [-1, 1] scale")
    if task != "generic":
        settings.update(classes="Cityscapes, 19 evaluated classes (trainIds 0-18)", colour_rule=COLOUR_RULE)
    if segmenter is not None and task == "label2photo":
        settings["segmenter"] = {"file": str(segmenter.path) if segmenter.path else None,
                                 "config": segmenter.cfg.to_dict(), "trained": segmenter.info}
    results["settings"] = settings
    if ev.report_dir:
        with writing(ev.report_dir / "index.html", "the scores were computed"):
            write_evaluation_page(ev, results)
    return results


def evaluate_files(task: str | None, *, checkpoint: str | None = None, data: str | None = None,
                   split: str = "val", predictions: str | None = None, targets: str | None = None,
                   paired: bool = False, inputs: str | None = None, direction: str | None = None,
                   pred_suffix: str = "", target_suffix: str = "", input_suffix: str = "",
                   segmenter: str | None = None, report_dir: str | None = None, json_path: str | None = None,
                   max_items: int | None = None, native_size: bool = False, paper_sampling: bool = False,
                   batch_size: int = 8, device: str = "auto", progress: bool = True,
                   trust_program: bool = False, cache: bool = True, cache_dir: str | None = None) -> dict[str, Any]:
    """All of ``pix2pix evaluate`` but the printing: check the options, translate ``data``'s ``split``
    with ``checkpoint`` or read ``predictions`` / ``targets``, score, and write ``json_path``.

    ``direction`` (which side of a pair is the model's input) defaults per task to the Cityscapes
    layout, photos on side A: photo2label AtoB, label2photo BtoA; a checkpoint uses its own.
    """
    from ..fileio import save_json
    from .predictions import from_folders, from_model
    from .report import json_ready

    if not task:
        raise ConfigError("--task is required: photo2label, label2photo or generic")
    check_task(task)
    if json_path:  # unwritable places are found before the scoring, not after it
        check_writable(json_path, what="--json file")
    if report_dir:
        check_writable(report_dir, folder=True, what="--report folder")
    if bool(checkpoint) == bool(predictions):
        raise ConfigError("give either --checkpoint (with --data) or --predictions (with --targets)")
    seg = None
    if segmenter:
        from .segmenter import Segmenter

        seg = Segmenter.load(segmenter, device=device)
    elif task == "label2photo":
        raise ConfigError("--task label2photo needs --segmenter FILE (train one with "
                          "pix2pix evaluate --train-segmenter --data DIR --segmenter FILE)")
    if checkpoint:
        from ..deploy import load

        if not data:
            raise ConfigError("--checkpoint needs --data DIR (the dataset whose --split is translated and scored)")
        translator = load(checkpoint, device=device, paper_sampling=paper_sampling, trust_program=trust_program)
        translator.batch_size = batch_size
        source = from_model(translator, data, split, max_items=max_items, native_size=native_size, cache=cache,
                            cache_dir=cache_dir)
        source.settings["checkpoint"] = str(checkpoint)
    else:
        if not targets:
            raise ConfigError("--predictions needs --targets DIR (target images, or a dataset split with --paired)")
        source = from_folders(predictions, targets, paired=paired, inputs=inputs,
                              direction=direction or DEFAULT_DIRECTION[task], pred_suffix=pred_suffix,
                              target_suffix=target_suffix, input_suffix=input_suffix,
                              label_maps=task == "photo2label", max_items=max_items)
    results = evaluate(source, task, segmenter=seg, report_dir=report_dir, batch_size=batch_size, progress=progress)
    if json_path:
        try:
            done = "the scores were computed (above)" + (" and the report written" if report_dir else "")
            with writing(json_path, done):
                save_json(json_ready(results), json_path)
        except OutputError:
            from .report import format_results

            log.info("%s", format_results(results))  # the work is not lost: the scores go to the screen
            raise
    return results
