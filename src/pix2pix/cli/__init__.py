"""The command line: ``pix2pix <command>`` parses options and calls the library; no logic of its own.

    pix2pix quickstart
    pix2pix train --data datasets/facades --preset facades --out runs/facades
    pix2pix train --resume runs/facades --epochs 150
    pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side
    pix2pix export --checkpoint runs/facades --format onnx torchscript --output export/
    pix2pix serve --checkpoint runs/facades --port 8000
    pix2pix show --data datasets/facades --augmented --out pairs.png
    pix2pix evaluate --checkpoint runs/cityscapes --data datasets/cityscapes --task label2photo --segmenter seg.safetensors

One module per group of commands: ``train.py`` (train, quickstart, bench), ``deploy.py``
(translate, export, serve), ``evaluate.py`` (evaluate), ``data.py`` (show, download, prepare);
``options.py`` generates the config options from the config dataclasses; ``main.py`` is the parser.
"""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
