"""``pix2pix <command>``: parses options and calls the library; no logic of its own.

    pix2pix quickstart
    pix2pix train --data datasets/facades --preset facades --out runs/facades
    pix2pix train --resume runs/facades --epochs 150
    pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side
    pix2pix export --checkpoint runs/facades --format onnx torchscript --output export/
    pix2pix serve --checkpoint runs/facades --port 8000
    pix2pix show --data datasets/facades --augmented --out pairs.png
    pix2pix evaluate --checkpoint runs/cityscapes --data datasets/cityscapes --task label2photo --segmenter seg.safetensors

Every problem with the user's input is reported as one line ``error: ...`` (exit status 2).

This module holds the command registry (:func:`command`), the parser and the entry point
(:func:`main`); the commands live beside it, grouped by job: ``train.py`` (train, quickstart,
bench), ``results.py`` (translate, evaluate), ``deploy.py`` (export, serve) and ``datasets.py``
(show, download, prepare).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Sequence

from ..errors import Pix2PixError, printable

log = logging.getLogger("pix2pix")
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``fn(args) -> exit code`` as ``pix2pix NAME`` with options from ``add_args``."""

    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, fn)
        return fn

    return register


def _opt(p: argparse.ArgumentParser, *flags: str, **kw: Any) -> None:
    """An option whose absence leaves no attribute, so presets and config files are not overridden."""
    p.add_argument(*flags, default=argparse.SUPPRESS, **kw)


# The command modules register themselves when imported; their public names stay importable from here.
from .datasets import cmd_download, cmd_prepare, cmd_show  # noqa: E402
from .deploy import cmd_export, cmd_serve  # noqa: E402
from .results import cmd_evaluate, cmd_translate  # noqa: E402
from .train import build_train_config, cmd_bench, cmd_quickstart, cmd_train  # noqa: E402

# The order of `pix2pix --help` (the modules above register their commands grouped by job); a
# command not listed here comes after these.
HELP_ORDER = ("train", "translate", "quickstart", "bench", "show", "evaluate", "export", "serve", "download",
              "prepare")


# ----- entry point ------------------------------------------------------------------------------
class _TqdmHandler(logging.Handler):
    """Log lines that do not tear progress bars; warnings are prefixed 'warning: '."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        msg = printable(record.getMessage())  # non-UTF-8 file names as \xNN, never an encoding error
        if record.levelno >= logging.WARNING:
            msg = f"{record.levelname.lower()}: {msg}"
        tqdm.write(msg, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="pix2pix", description="Paired image-to-image translation (pix2pix).")
    parser.add_argument("--version", action="version", version=f"pix2pix {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = [n for n in HELP_ORDER if n in COMMANDS] + [n for n in COMMANDS if n not in HELP_ORDER]
    for name in names:
        add_args, fn = COMMANDS[name]
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None)
        add_args(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logger = logging.getLogger("pix2pix")
    if not logger.handlers:
        logger.addHandler(_TqdmHandler())
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    func = args.func
    del args.func, args.quiet
    try:
        return func(args)
    except Pix2PixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        try:
            sys.stdout = open(os.devnull, "w")  # keep Python's exit flush from failing again
        except OSError:
            pass
        return 141


__all__ = ["COMMANDS", "command", "build_parser", "main", "build_train_config", "cmd_train", "cmd_translate",
           "cmd_quickstart", "cmd_bench", "cmd_show", "cmd_evaluate", "cmd_export", "cmd_serve", "cmd_download",
           "cmd_prepare"]
