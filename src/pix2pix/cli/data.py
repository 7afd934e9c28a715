"""``pix2pix show``, ``pix2pix download`` and ``pix2pix prepare``: the commands that get and inspect data.

show writes a grid of a dataset's pairs (optionally after the training jitter), download installs
one of the paper's datasets (or, with ``--model``, a pretrained generator), prepare builds the
Cityscapes pairs from the official archives.
"""

from __future__ import annotations

import argparse
import logging

from ..config import PRESETS
from .options import Command, add_config_options

log = logging.getLogger("pix2pix")


# ----- show -------------------------------------------------------------------------------------
def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (train/ val/ ... in either layout)")
    p.add_argument("--split", default="train", help="split to show (train)")
    p.add_argument("--n", type=int, default=16, help="pairs to show, spread evenly over the split (16)")
    p.add_argument("--augmented", action="store_true",
                   help="show the pairs after the training jitter: A' | B' | 50%% blend, to check alignment")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the grid")
    p.add_argument("--columns", type=int, default=None, help="pairs per row (about sqrt(n))")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter with --augmented (0)")
    p.add_argument("--config", metavar="FILE", help="take the jitter settings from this JSON/YAML (a run's config.json)")
    p.add_argument("--preset", choices=list(PRESETS), default=argparse.SUPPRESS,
                   help="take the jitter settings from a paper preset")
    add_config_options(p, only=JITTER_OPTIONS)


JITTER_OPTIONS = ("load_size", "crop_size", "preprocess", "flip", "cache", "cache_dir")


def _data_config(args: argparse.Namespace):
    """The jitter settings: defaults < --preset < --config file < explicit options (data fields only,
    so no model constraint applies)."""
    import dataclasses

    from ..config import DataConfig, preset_and_file

    flat = preset_and_file(getattr(args, "preset", None), getattr(args, "config", None))
    flat.update({k: getattr(args, k) for k in JITTER_OPTIONS if hasattr(args, k)})
    names = {f.name for f in dataclasses.fields(DataConfig)}
    return DataConfig(**{k: v for k, v in flat.items() if k in names})


def cmd_show(args: argparse.Namespace) -> int:
    """Write a grid of a dataset's pairs (A | B), optionally as the training jitter makes them."""
    from ..fileio import check_writable, save_image, writing
    from ..pictures import show_pairs

    check_writable(args.out, what="--out file")
    image = show_pairs(args.data, args.split, args.n, augmented=args.augmented, data=_data_config(args),
                       seed=args.seed, columns=args.columns)
    with writing(args.out):
        save_image(image, args.out)
    log.info("wrote %s (%dx%d)", args.out, image.width, image.height)
    return 0


# ----- download ---------------------------------------------------------------------------------
def _download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="facades, cityscapes, maps, edges2shoes, edges2handbags or night2day")
    p.add_argument("--model", metavar="MODEL",
                   help="a pretrained generator instead of a dataset: facades_label2photo, sat2map, map2sat, "
                        "edges2shoes or day2night (cached; then --checkpoint MODEL works anywhere)")
    p.add_argument("--root", default="datasets", metavar="DIR", help="install into DIR/NAME (datasets)")
    p.add_argument("--from", dest="archive", metavar="FILE",
                   help="install this NAME.tar.gz (or, with --model, NAME.pth) fetched some other way (same "
                        "checks, no network)")
    p.add_argument("--url", help="download from this address instead of the registry's (checks still apply)")
    p.add_argument("--sha256", metavar="HEX", help="the archive's expected SHA-256 (overrides the registry)")
    p.add_argument("--keep-archive", action="store_true", help="keep DIR/NAME.tar.gz after extracting it")
    p.add_argument("--list", action="store_true", help="list the known datasets and pretrained models, and exit")


def cmd_download(args: argparse.Namespace) -> int:
    """Download one of the paper's datasets (resumable, checksummed, safely extracted), or a pretrained model."""
    from ..data.sources import SOURCES, describe_sources, install_dataset
    from ..deploy.registry import describe_models, install_model
    from ..errors import ConfigError

    if args.list:
        print(describe_sources() + "\n\n" + describe_models())
        return 0
    if args.model:
        if args.name or args.sha256 or args.keep_archive:
            raise ConfigError("--model installs a pretrained generator: leave out the dataset NAME, --sha256 and "
                              "--keep-archive")
        install_model(args.model, from_file=args.archive, url=args.url)
        return 0
    if not args.name:
        raise ConfigError(f"name the dataset to download: {', '.join(SOURCES)} (--list describes them)")
    install_dataset(args.name, args.root, archive=args.archive, url=args.url, sha256=args.sha256,
                    keep_archive=args.keep_archive)
    return 0


# ----- prepare ----------------------------------------------------------------------------------
def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["cityscapes"], help="the dataset to build from its official archives")
    p.add_argument("--gtfine", required=True, metavar="DIR", help="the unpacked gtFine folder (train/, val/ inside)")
    p.add_argument("--leftimg", required=True, metavar="DIR", help="the unpacked leftImg8bit folder")
    p.add_argument("--out", default="datasets/cityscapes", metavar="DIR",
                   help="where to write train/ and val/ (datasets/cityscapes)")
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="splits to build (train val)")
    p.add_argument("--size", type=int, default=256, help="side of each half, in pixels (256, as the paper)")


def cmd_prepare(args: argparse.Namespace) -> int:
    """Build the paper's Cityscapes pairs from the official gtFine and leftImg8bit folders."""
    from ..data.prepare import prepare_cityscapes

    prepare_cityscapes(args.gtfine, args.leftimg, args.out, splits=args.splits, size=args.size)
    return 0


COMMANDS = [
    Command("show", _show_args, cmd_show, "Write a grid of a dataset's pairs, optionally jittered.",
            "pix2pix show --data datasets/facades --augmented --out pairs.png"),
    Command("download", _download_args, cmd_download, "Download a paper dataset or a pretrained model.",
            "pix2pix download facades --root datasets\n  pix2pix download --model facades_label2photo"),
    Command("prepare", _prepare_args, cmd_prepare, "Build the Cityscapes pairs from the official archives.",
            "pix2pix prepare cityscapes --gtfine gtFine --leftimg leftImg8bit --out datasets/cityscapes"),
]
