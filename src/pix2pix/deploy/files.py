"""Files in, files out: ``pix2pix translate`` on images, folders and globs, and its report page.

    items = collect_inputs(["photos/", "more/*.png"])
    report = translate_files(load("runs/facades"), items, "out/", side_by_side=True)

Results are ``OUT/NAME.png`` (a repeated name gets ``_2``, ``_3``, ...), each written atomically;
unreadable inputs are skipped with a warning, or stop the run with ``strict``.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..config import source_and_target
from ..data.convert import array_to_image
from ..data.images import is_image_file, open_image, to_array
from ..data.pairs import PairFile, pairs_in_folder, read_pair
from ..errors import DataError, OutputError
from ..fileio import check_writable, save_image
from ..pictures import side_by_side as side_by_side_image
from .translator import Translator

log = logging.getLogger("pix2pix")


@dataclass(frozen=True)
class InputItem:
    """One thing to translate: an image file, or a pair (input side + target) in a dataset layout."""

    name: str
    path: Path
    pair: PairFile | None = None


@dataclass
class TranslateReport:
    written: int = 0
    outputs: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def collect_inputs(specs: Sequence[str], paired: bool = False) -> list[InputItem]:
    """Expand FILE / DIR / GLOB arguments into items, in a stable order; errors name the argument.

    With ``paired``, a DIR may be a split in either dataset layout and files are AB images.
    """
    items: list[InputItem] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            if paired:
                items += [InputItem(pf.name, pf.a, pf) for pf in pairs_in_folder(p)]
            else:
                files = sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
                if not files:
                    raise DataError(f"{p}: no image files to translate")
                items += [InputItem(f.stem, f) for f in files]
        elif p.is_file():
            items.append(InputItem(p.stem, p, PairFile(p.stem, p) if paired else None))
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            matches = [m for m in matches if m.is_file() and is_image_file(m)]
            if not matches:
                raise DataError(f"{spec}: no such file or folder, and no image files match it as a pattern")
            items += [InputItem(m.stem, m, PairFile(m.stem, m) if paired else None) for m in matches]
    return items


def unique_names(items: Sequence[InputItem]) -> list[str]:
    """Output stems; a repeated stem gets _2, _3, ... so no result overwrites another."""
    seen: dict[str, int] = {}
    names = []
    for it in items:
        n = seen.get(it.name, 0) + 1
        seen[it.name] = n
        names.append(it.name if n == 1 else f"{it.name}_{n}")
    return names


def refuse_overwriting_inputs(items: Sequence[InputItem], results: Sequence[Path]) -> None:
    """Stop before any work when a result path is one of the inputs: the same path (through any
    symbolic link) or the same file (a hard link); :class:`OutputError` names both."""
    inputs: dict[object, Path] = {}
    for item in items:
        for p in {item.path, *((item.pair.a, item.pair.b) if item.pair else ())} - {None}:
            inputs[os.path.realpath(p)] = p
            try:
                st = os.stat(p)
                inputs[(st.st_dev, st.st_ino)] = p
            except OSError:
                pass
    for result in results:
        keys: list[object] = [os.path.realpath(result)]
        try:
            st = os.stat(result)
            keys.append((st.st_dev, st.st_ino))
        except OSError:
            pass
        hit = next((inputs[k] for k in keys if k in inputs), None)
        if hit is not None:
            raise OutputError(f"{result}: this result would overwrite the input {hit}; choose an --output folder "
                              "that holds none of the inputs (nothing was written)")


def read_item(item: InputItem, translator: Translator) -> tuple[Image.Image, Image.Image | None]:
    """(input image, target image or None) for one item; raises BadImage/DataError naming the file."""
    if item.pair is None:  # converted as training data is (16-bit, CMYK, palette ...): see data/images.py
        return array_to_image(to_array(open_image(item.path), translator.input_channels)), None
    cfg = translator.config
    src, tgt = source_and_target(cfg.data.direction, *read_pair(item.pair, *cfg.side_channels))
    return array_to_image(src), array_to_image(tgt)


def translate_files(translator: Translator, items: Sequence[InputItem], out_dir: str | os.PathLike, *,
                    side_by_side: bool = False, native_size: bool = False, strict: bool = False,
                    progress: bool = True) -> TranslateReport:
    """Translate ``items`` in batches and write ``out_dir/NAME.png`` for each (atomically).

    Unreadable inputs are skipped with a warning (or raise with ``strict``); nothing partial is
    ever written.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    check_writable(out, folder=True, what="output folder")
    report = TranslateReport()
    names = unique_names(items)
    refuse_overwriting_inputs(items, [out / f"{name}.png" for name in names])
    bs = max(1, translator.batch_size)
    with tqdm(total=len(items), desc="translate", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(items), bs):
            chunk, loaded = list(zip(items[start:start + bs], names[start:start + bs])), []
            for item, name in chunk:
                try:
                    loaded.append((name, *read_item(item, translator)))
                except DataError as e:
                    if strict:
                        raise
                    report.skipped.append(str(e))
                    log.warning("skipped %s", e)
            if loaded:
                outputs = translator.translate_images([x[1] for x in loaded], native_size=native_size)
                for (name, src, tgt), result in zip(loaded, outputs):
                    if side_by_side:
                        result = side_by_side_image([src, result] + ([tgt] if tgt is not None else []))
                    try:
                        path = save_image(result, out / f"{name}.png")  # atomic: never a partial file
                    except OSError as e:
                        raise OutputError(f"could not write {out / f'{name}.png'}: {e.strerror or e}; "
                                          f"{report.written} results were written before it") from None
                    report.outputs.append(path)
                    report.written += 1
            bar.update(len(chunk))
    if report.skipped:
        log.warning("skipped %d of %d inputs that could not be read (use --strict to stop instead)",
                    len(report.skipped), len(items))
    return report
