"""The model card (``README.md``) of a Hugging Face folder: what the model is, how it was trained,
its scores where the run folder has them, what it is for, and how to load it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from .._version import __version__
from ..config import TrainConfig

SCORE_KEYS = ("pixel_accuracy", "class_accuracy", "class_iou", "psnr", "ssim", "l1")


def find_scores(source: str | os.PathLike | None) -> list[tuple[str, dict[str, Any]]]:
    """``pix2pix evaluate --json`` results kept in the run folder of ``source`` (a run folder, or a
    checkpoint in one): (file name, figures) for every ``*.json`` there with a ``task`` and scores."""
    if source is None:
        return []
    path = Path(source)
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else path.parent
    found = []
    for f in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "task" in doc and any(k in doc for k in SCORE_KEYS):
            found.append((f.name, {k: doc[k] for k in ("task", "images", *SCORE_KEYS) if k in doc}))
    return found


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    return "\n".join(f"| {k} | {v} |" for k, v in pairs)


def model_card(cfg: TrainConfig, meta: dict[str, Any], scores: list[tuple[str, dict[str, Any]]],
               parameters: int) -> str:
    m, d, source = cfg.model, cfg.data, meta.get("source") or {}
    imported = "reference" in str(source.get("format", ""))
    arch = (f"ResNet generator, {m.n_blocks} residual blocks" if m.n_blocks is not None
            else f"U-Net generator, {m.depth} downsamplings (dropout placement: {m.dropout_placement})")
    lines = [
        "---", "library_name: pix2pix", "pipeline_tag: image-to-image",
        "tags:", "- pix2pix", "- image-to-image", "- conditional-gan", "---", "",
        f"# pix2pix generator: {source.get('task') or m.netG}", "",
        "A conditional-GAN image-to-image generator (Isola et al., *Image-to-Image Translation with "
        "Conditional Adversarial Networks*, CVPR 2017), saved by the pix2pix toolkit "
        f"{__version__}.", "",
        "## Use", "", "```python", "import pix2pix", "from PIL import Image", "",
        't = pix2pix.load("THIS_FOLDER")          # or pix2pix.Translator.from_pretrained("OWNER/REPO")',
        'out = t(Image.open("input.png"))         # PIL in, PIL out, same size', "```", "",
        "`pix2pix translate --checkpoint THIS_FOLDER --input images/ --output out/` does the same on the "
        "command line. Inputs are resized to the training size and the result back to the input's size.", "",
        "## Architecture", "", "| | |", "| --- | --- |",
        _rows([("generator", f"`{m.netG}`: {arch}"), ("width (ngf)", m.ngf), ("normalisation", m.norm),
               ("channels", f"{m.input_nc} in, {m.output_nc} out"), ("dropout", m.dropout),
               ("parameters", f"{parameters:,}"), ("input sides", f"multiples of {m.multiple}"),
               ("tensors", "NCHW float32 in [-1, 1], in and out")]), "",
        "## Training data and settings", "",
    ]
    if imported:
        lines += ["Imported from a generator file of the reference implementation "
                  f"(`{source.get('file', '?')}`)"
                  + (f", the released `{source['pretrained']}` model trained on the paper's "
                     f"`{source.get('dataset')}` set" if source.get("pretrained") else "")
                  + ". The file holds weights only: the training settings below are the reference's "
                  "defaults, assumed, not known.", ""]
    lines += ["| | |", "| --- | --- |",
              _rows([("data", f"`{Path(d.data_root).name or '(not recorded)'}`"), ("direction", d.direction),
                     ("training size", d.model_size), ("jitter", f"{d.preprocess} (load {d.load_size}, crop "
                                                                 f"{d.crop_size}, flip {d.flip})"),
                     ("epochs", f"{cfg.epochs} + {cfg.epochs_decay} decay"
                                + (f" + {cfg.extra_epochs} extra" if cfg.extra_epochs else "")),
                     ("batch size", cfg.batch_size), ("learning rate", f"{cfg.lr:g} ({cfg.lr_policy})"),
                     ("loss", f"{cfg.gan_loss} GAN x {cfg.lambda_gan:g} + L1 x {cfg.lambda_l1:g}"),
                     ("PatchGAN", f"{m.patch}x{m.patch}, ndf {m.ndf}"),
                     ("fine-tuned from", cfg.init_from or "-")]
                    + [(k, source[k]) for k in ("file", "epoch", "step", "sha256") if source.get(k) is not None]),
              "", "## Scores", ""]
    if scores:
        for name, figures in scores:
            lines += [f"From `{name}` in the run folder (`pix2pix evaluate`):", "", "| | |", "| --- | --- |",
                      _rows((k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in figures.items()), ""]
    else:
        lines += ["None recorded: the run folder held no `pix2pix evaluate --json` results.", ""]
    lines += [
        "## Intended use", "",
        f"Translating images like its training data ({d.direction} pairs of `{Path(d.data_root).name or 'its dataset'}`)"
        " for research, illustration and as a starting point for fine-tuning (`pix2pix train --init-from`). "
        "Outputs are plausible renderings, not measurements: do not use them where the content must be true "
        "(maps for navigation, medical or forensic images). Quality falls on inputs unlike the training data.", "",
        "## Citation", "", "```bibtex",
        "@inproceedings{isola2017image,",
        "  title={Image-to-Image Translation with Conditional Adversarial Networks},",
        "  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},",
        "  booktitle={Computer Vision and Pattern Recognition (CVPR)},", "  year={2017}", "}", "```", ""]
    return "\n".join(lines)
