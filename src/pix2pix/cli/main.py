"""``pix2pix <command>``: the parser and the entry point. Every problem with the user's input is
reported as one line ``error: ...`` (exit status 2)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from .._version import __version__
from ..errors import Pix2PixError, printable
from . import data, deploy, evaluate, train
from .options import Command

# `pix2pix --help` lists the commands in this order: the main job first, then by module.
COMMANDS: dict[str, Command] = {c.name: c for module in (train, deploy, evaluate, data) for c in module.COMMANDS}


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear progress bars; warnings are prefixed 'warning: '."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        msg = printable(record.getMessage())  # non-UTF-8 file names as \xNN, never an encoding error
        if record.levelno >= logging.WARNING:
            msg = f"{record.levelname.lower()}: {msg}"
        tqdm.write(msg, file=sys.stderr)


class _CommandList(argparse.HelpFormatter):
    """``pix2pix --help``: one line per command (argparse leaves the sub-commands' indent out of its
    column width, so a name as long as ``quickstart`` would push its summary onto the next line)."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=18)
        self._action_max_length = 16
def _known_to_rank0(e: Pix2PixError) -> bool:
    """Rank 0 prints this error too: one agreed by all ranks, or a check of the command line itself."""
    from ..errors import ConfigError
    from ..training.distributed import ProcessFailed

    return isinstance(e, (ProcessFailed, ConfigError))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2pix", description="Paired image-to-image translation (pix2pix).",
                                     formatter_class=_CommandList)
    parser.add_argument("--version", action="version", version=f"pix2pix {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors (no progress bars)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for c in COMMANDS.values():
        p = sub.add_parser(c.name, help=c.summary, description=c.summary, epilog=f"example:\n  {c.example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_args(p)
        p.set_defaults(func=c.run)
    return parser


def _out_of_memory(e: BaseException) -> bool:
    """torch's OutOfMemoryError (GPU), its CPU allocator's failure, or Python's MemoryError."""
    text = str(e)
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "CUDA out of memory" in text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logger = logging.getLogger("pix2pix")
    if not logger.handlers:
        logger.addHandler(_TqdmHandler())
    # under torchrun only rank 0 speaks: the other ranks' warnings, notes and agreed errors are its own
    other_rank = int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0"
    logger.setLevel(logging.ERROR if other_rank else logging.WARNING if args.quiet else logging.INFO)
    func = args.func
    del args.func, args.quiet
    try:
        return func(args)
    except Pix2PixError as e:
        if not (other_rank and _known_to_rank0(e)):
            print(f"error: {e}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # an allocation the checks before it could not foresee
        if not _out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        print(f"error: out of memory ({first}); lower --batch-size or the image size, or use a smaller model",
              file=sys.stderr)
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
