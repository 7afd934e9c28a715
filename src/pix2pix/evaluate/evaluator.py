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
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._version import __version__
from ..devices import resolve_device
from ..errors import ConfigError, DataError, DownloadError, OutputError
from ..fileio import check_writable, writing
from ..pages import ResultRow
from ..pictures import save_preview
from .cityscapes import CLASS_NAMES, NUM_CLASSES, batch_train_ids, train_ids_to_colours
from .metrics import SegmentationScores, batch_image_scores, confusion_counts
from .inception import HASH_PREFIX
from .predictions import Batch, Predictions
from .realism import inception_scores, realism

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
    """Accumulates the scores of batches for one task on ``device``: every figure stays there until
    :meth:`results` reads them back once. Report images are written by a background thread."""

    def __init__(self, task: str, segmenter=None, report_dir: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", inception=None):
        check_task(task)
        if task == "label2photo" and segmenter is None:
            raise ConfigError("--task label2photo needs --segmenter FILE (train one with "
                              "pix2pix evaluate --train-segmenter --data DIR --segmenter FILE)")
        self.task, self.segmenter, self.inception = task, segmenter, inception
        self.device = torch.device(device)
        zeros = lambda: torch.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=torch.int64, device=self.device)  # noqa: E731
        self.conf, self.conf_real = zeros(), zeros()
        self.target_pixels = self.ignored_pixels = 0
        self.names: list[str] = []
        self.scores: dict[str, list[torch.Tensor]] = {}  # per-image figures, one (B,) tensor per batch
        self.features: dict[str, list[torch.Tensor]] = {}  # "segmenter_fake", "inception_real", ...
        self.report_dir = Path(report_dir) if report_dir else None
        self.writer = ThreadPoolExecutor(2, thread_name_prefix="pix2pix-report") if self.report_dir else None
        self.written: list[Future] = []
        if self.report_dir:
            check_writable(self.report_dir / "images", folder=True, what="--report folder")

    def _keep(self, store: dict[str, list[torch.Tensor]], key: str, value: torch.Tensor) -> None:
        store.setdefault(key, []).append(value)

    def add(self, batch: Batch) -> None:
        pred, tgt = batch.prediction.to(self.device), batch.target.to(self.device)
        src = batch.source.to(self.device) if batch.source is not None else None
        for key, value in batch_image_scores(pred, tgt).items():
            self._keep(self.scores, key, value)
        maps: dict[str, torch.Tensor] = {}
        if self.task != "generic":
            if pred.shape[1] != 3 or tgt.shape[1] != 3:
                raise DataError(f"{batch.names[0]}: --task {self.task} needs RGB images (the Cityscapes colours)")
        if self.task == "photo2label":
            maps["pred"], tgt_ids = batch_train_ids(torch.cat([pred, tgt])).split(len(pred))  # one pass
            self._segmentation(maps["pred"], tgt_ids, self.conf, "pixel_accuracy")
        elif self.task == "label2photo":
            if src is None:
                raise DataError(f"{batch.names[0]}: label2photo needs the input label map of each prediction "
                                "(--targets DIR --paired, or --inputs DIR)")
            tgt_ids = batch_train_ids(src)
            maps["pred"], fake_features = self.segmenter.segment_with_features(pred)
            maps["real"], real_features = self.segmenter.segment_with_features(tgt)
            self._segmentation(maps["pred"], tgt_ids, self.conf, "pixel_accuracy")
            self._segmentation(maps["real"], tgt_ids, self.conf_real, "real_pixel_accuracy", count=False)
            self._keep(self.features, "segmenter_fake", fake_features)
            self._keep(self.features, "segmenter_real", real_features)
        if self.inception is not None:
            self._keep(self.features, "inception_fake", self.inception(_rgb(pred)))
            self._keep(self.features, "inception_real", self.inception(_rgb(tgt)))
        if self.writer is not None:
            self._previews(batch.names, pred, tgt, src, maps)
        self.names.extend(batch.names)

    def _segmentation(self, ids: torch.Tensor, tgt_ids: torch.Tensor, conf: torch.Tensor, key: str,
                      count: bool = True) -> None:
        conf += confusion_counts(ids.to(self.device), tgt_ids, NUM_CLASSES)
        scored = tgt_ids < NUM_CLASSES
        correct = ((ids.to(self.device) == tgt_ids) & scored).sum(dim=(1, 2))
        self._keep(self.scores, key, correct.double() / scored.sum(dim=(1, 2)).double())  # NaN: nothing scored
        if count:
            self.target_pixels += tgt_ids.numel()
            self._keep(self.scores, "ignored", (~scored).sum(dim=(1, 2)))

    # ----- report images (written off the critical path) ---------------------------------------
    def _previews(self, names, pred, tgt, src, maps) -> None:
        host = {k: (v.permute(0, 2, 3, 1).cpu().numpy() if v is not None else None)
                for k, v in (("input", src), ("output", pred), ("target", tgt))}
        classes = {k: v.cpu().numpy() for k, v in maps.items()}
        for i, name in enumerate(names):
            images = {tag: host[tag][i] for tag in ("input", "output", "target") if host[tag] is not None}
            if "pred" in classes:
                images["output_classes" if self.task == "photo2label" else "output_segmented"] = \
                    train_ids_to_colours(classes["pred"][i])
            if "real" in classes:
                images["target_segmented"] = train_ids_to_colours(classes["real"][i])
            self.written.append(self.writer.submit(self._save_previews, _safe(name), images))

    def _save_previews(self, stem: str, images: dict[str, np.ndarray]) -> None:
        for tag, image in images.items():
            path = self.report_dir / "images" / f"{stem}_{tag}.jpg"
            with writing(path, "the report is incomplete"):
                save_preview(image, path)

    def report_columns(self) -> list[str]:
        return {"photo2label": ["input", "output", "output classes", "target"],
                "label2photo": ["input labels", "output", "output segmented", "real photo", "real segmented"],
                "generic": ["input", "output", "target"]}[self.task]

    def report_rows(self, per_image: list[dict[str, Any]]) -> list[ResultRow]:
        tags = {"photo2label": ["input", "output", "output_classes", "target"],
                "label2photo": ["input", "output", "output_segmented", "target", "target_segmented"],
                "generic": ["input", "output", "target"]}[self.task]
        for f in self.written:  # every preview on disk (and any error raised) before the page links them
            f.result()
        self.writer.shutdown()
        rows = []
        for row in per_image:
            stem = _safe(row["name"])
            cells = [f"images/{stem}_{t}.jpg" if (self.report_dir / "images" / f"{stem}_{t}.jpg").exists() else None
                     for t in tags]
            rows.append(ResultRow(row["name"], cells, {k: v for k, v in row.items() if k != "name"}))
        return rows

    # ----- the figures --------------------------------------------------------------------------
    def results(self) -> dict[str, Any]:
        """All figures; keys as documented in docs/evaluation.md."""
        n = len(self.names)
        if n == 0:
            raise DataError("nothing was scored: no readable prediction / target pairs")
        scores = {k: torch.cat(v).cpu() for k, v in self.scores.items()}  # the one read-back
        out: dict[str, Any] = {"task": self.task, "images": n}
        if self.task != "generic":
            s = SegmentationScores.from_confusion(self.conf.cpu().numpy())
            out.update(s.as_dict())
            out["per_class"] = s.per_class(CLASS_NAMES)
            out["scored_pixels"] = s.scored_pixels
            out["ignored_pixel_fraction"] = int(scores.pop("ignored").sum()) / max(self.target_pixels, 1)
        if self.task == "label2photo":
            r = SegmentationScores.from_confusion(self.conf_real.cpu().numpy())
            out["real"] = {**r.as_dict(), "per_class": r.per_class(CLASS_NAMES)}
            out["ratio_to_real"] = {k: (out[k] / v if v else math.nan) for k, v in r.as_dict().items()}
        for key in ("psnr", "ssim", "l1"):
            out[key] = float(scores[key].mean())
        feats = {k: torch.cat(v) for k, v in self.features.items()}
        if "segmenter_fake" in feats:
            out["segmenter_realism"] = realism(feats["segmenter_fake"], feats["segmenter_real"])
        if "inception_fake" in feats:
            out["inception"] = inception_scores(feats["inception_fake"], feats["inception_real"])
            out["fid"], out["kid"] = out["inception"]["fid"], out["inception"]["kid"]["mean"]
        columns = {k: v.tolist() for k, v in scores.items()}
        out["per_image"] = [{"name": name, **{k: columns[k][i] for k in columns}} for i, name in enumerate(self.names)]
        return out


def _rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def evaluate(source: Predictions, task: str, *, segmenter=None, report_dir: str | os.PathLike | None = None,
             batch_size: int = 16, progress: bool = True, device: torch.device | str | None = None,
             inception=None, notes: Sequence[str] = ()) -> dict[str, Any]:
    """Score every prediction of ``source`` for ``task``; returns the results dict (see :meth:`Evaluator.results`)
    with ``settings`` recording the data, the model and the rules used. Writes ``report_dir/index.html``.
    ``device``: where the figures are computed (default: the segmenter's, else the CPU)."""
    from tqdm.auto import tqdm

    from .report import write_evaluation_page

    if device is None:
        device = segmenter.device if segmenter is not None else "cpu"
    ev = Evaluator(task, segmenter, report_dir, device, inception)
    start = time.perf_counter()
    with tqdm(total=source.count, desc=f"evaluate {task}", unit="img", disable=not progress, leave=False) as bar:
        for batch in source.batches(max(1, batch_size)):
            ev.add(batch)
            bar.update(len(batch))
    results = ev.results()
    settings = dict(source.settings)
    settings.update(task=task, pix2pix_version=__version__, psnr_ssim="8-bit RGB at the target's size; "
                    "SSIM: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03; L1 on the [-1, 1] scale",
                    device=str(ev.device), seconds=round(time.perf_counter() - start, 3))
    if task != "generic":
        settings.update(classes="Cityscapes, 19 evaluated classes (trainIds 0-18)", colour_rule=COLOUR_RULE)
    if segmenter is not None and task == "label2photo":
        settings["segmenter"] = {"file": str(segmenter.path) if segmenter.path else None,
                                 "config": segmenter.cfg.to_dict(), "trained": segmenter.info,
                                 "features": "mean over positions of the stem's and each encoder level's "
                                             f"activations ({segmenter.model.feature_dims} values)"}
    if inception is not None:
        settings["inception"] = dict(getattr(inception, "record", {}))
    if notes:
        settings["notes"] = list(notes)
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
                   sampling_seed: int | None = None, batch_size: int = 16, device: str = "auto",
                   inception_weights: str | None = None, fid: bool = True, progress: bool = True,
                   trust_program: bool = False, cache: bool = True, cache_dir: str | None = None) -> dict[str, Any]:
    """All of ``pix2pix evaluate`` but the printing: check the options, translate ``data``'s ``split``
    with ``checkpoint`` or read ``predictions`` / ``targets``, score, and write ``json_path``.

    ``direction`` (which side of a pair is the model's input) defaults per task to the Cityscapes
    layout, photos on side A: photo2label AtoB, label2photo BtoA; a checkpoint uses its own.
    FID / KID (label2photo, generic) unless ``fid`` is False: see :func:`open_inception`.
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
    dev = resolve_device(device)
    if segmenter:
        from .segmenter import Segmenter

        seg = Segmenter.load(segmenter, device=str(dev))
    elif task == "label2photo":
        raise ConfigError("--task label2photo needs --segmenter FILE (train one with "
                          "pix2pix evaluate --train-segmenter --data DIR --segmenter FILE)")
    if checkpoint:
        from ..deploy import load

        if not data:
            raise ConfigError("--checkpoint needs --data DIR (the dataset whose --split is translated and scored)")
        translator = load(checkpoint, device=str(dev), paper_sampling=paper_sampling, batch_size=batch_size,
                          seed=sampling_seed, trust_program=trust_program)
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
    inception, notes = open_inception(task, inception_weights, fid, dev) if task != "photo2label" else (None, [])
    results = evaluate(source, task, segmenter=seg, report_dir=report_dir, batch_size=batch_size, progress=progress,
                       device=dev, inception=inception, notes=notes)
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


def open_inception(task: str, weights: str | None, fid: bool, device: torch.device):
    """(the FID Inception on ``device``, []) or (None, [why not]) for a task with target photos.

    ``weights`` given: it must load (an error otherwise, before anything is scored). Not given: the
    cached file or a download; when neither works, or the metrics extra is missing, FID / KID are
    left out with one line saying how to get them, and every other figure is still computed.
    """
    from .inception import InceptionFeatures, find_weights, how_to_get_weights
    from .realism import metrics_extra

    if not fid:
        return None, ["FID / KID not computed (--no-fid)"]
    try:
        metrics_extra()
    except ConfigError as e:
        if weights:
            raise
        log.warning("FID / KID not computed: %s", e)
        return None, [f"FID / KID not computed: {e}"]
    try:
        path = find_weights(weights)
    except DownloadError as e:
        note = f"FID / KID not computed: no Inception weights ({e}); {how_to_get_weights()}"
        log.warning("%s", note)
        return None, [note]
    from ..data.download import sha256_file

    net = InceptionFeatures.from_file(path).to(device)
    digest = sha256_file(path)
    if not digest.startswith(HASH_PREFIX):
        log.warning("%s: its SHA-256 does not start with %s: not the published weights, so its FID / KID are "
                    "not comparable with published figures", path, HASH_PREFIX)
    net.record = {"file": str(path), "sha256": digest, "published_weights": digest.startswith(HASH_PREFIX),
                  "protocol": "torch-fidelity's: uint8 RGB, TF1 bilinear resize to 299, (x - 128) / 128, pool3 "
                              "2048-d; FID and KID by torchmetrics"}
    return net, []
