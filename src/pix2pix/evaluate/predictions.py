"""Predictions to score: generated images paired with their targets, from a model or from folders.

    source = from_model(translator, "datasets/cityscapes", "val")             # translate, then score
    source = from_folders("out/", "datasets/cityscapes/val", paired=True, direction="AtoB")
    for batch in source.batches(16):                                           # Batch of uint8 tensors
        ...

Folders are matched by file stem (with optional suffixes, so the reference implementation's
``NAME_fake_B.png`` / ``NAME_real_B.png`` / ``NAME_real_A.png`` can be scored). Images are compared
at the target's size: a prediction of another size is resized to it (bicubic for photos,
nearest-neighbour for label maps) and counted in ``settings["resized_predictions"]``.

Speed: every file is decoded once, by a pool of threads (Pillow decodes without the GIL), and the
next batch is decoded while the current one is scored. A :class:`Batch` holds uint8 (B, C, H, W)
tensors of one size; from a model, its predictions never leave the model's device (the generator's
output is quantised to 8 bits there, as a saved PNG would be).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from ..config import source_and_target
from ..data.convert import to_uint8, to_unit_range
from ..data.images import BadImage, is_image_file, read_image, resize_array
from ..data.pairs import cached_sides, find_pairs, natural_key, pairs_in_folder, read_pair
from ..errors import DataError

log = logging.getLogger("pix2pix")


@dataclass
class Batch:
    """Images scored together, all of one size: uint8 (B, C, H, W) tensors on any one device.
    ``prediction`` is already at the target's size; ``source`` is the model's input (for
    label2photo: the label maps), or None."""

    names: list[str]
    prediction: torch.Tensor
    target: torch.Tensor
    source: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Predictions:
    """Predictions to score, produced in batches (``batches(n)``), plus a record of where they came from."""

    count: int
    batches: Callable[[int], Iterator[Batch]]
    settings: dict[str, Any] = field(default_factory=dict)


Item = Tuple[str, np.ndarray, np.ndarray, Optional[np.ndarray]]  # name, prediction / source, target, source


def _tensor(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    # (B, C, H, W) in channels-last memory: one copy (the stack); the metrics' convolutions want it
    return torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())


def same_size_runs(items: Sequence[Item]) -> Iterator[list[Item]]:
    """Consecutive items whose images have the same shapes (a Batch holds one size)."""
    run: list[Item] = []
    for item in items:
        key = tuple(None if a is None else a.shape for a in item[1:])
        if run and key != tuple(None if a is None else a.shape for a in run[0][1:]):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def decoded(chunks: Iterable[Sequence], load: Callable[[Any], Any]) -> Iterator[list]:
    """``[load(x) for x in chunk]`` for each chunk, decoded by a thread pool; the next chunk is
    decoding while the caller works on the current one. Exceptions surface in order."""
    workers = min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="pix2pix-decode") as pool:
        pending: list[Future] | None = None
        for chunk in chunks:
            futures = [pool.submit(load, x) for x in chunk]
            if pending is not None:
                yield [f.result() for f in pending]
            pending = futures
        if pending is not None:
            yield [f.result() for f in pending]


def _fit(pred: np.ndarray, target: np.ndarray, label_map: bool, name: str) -> tuple[np.ndarray, bool]:
    """The prediction at the target's size (resized if needed) and whether it was resized."""
    ph, pw = pred.shape[:2]
    th, tw = target.shape[:2]
    if (ph, pw) == (th, tw):
        return pred, False
    if ph == th and pw in (2 * tw, 3 * tw):
        raise DataError(f"{name}: the prediction is {pw}x{ph}, {pw // tw} times as wide as its {tw}x{th} target: "
                        "it looks like a side-by-side image; translate without --side-by-side to score it")
    if label_map:
        im = Image.fromarray(pred if pred.shape[2] == 3 else pred[:, :, 0]).resize((tw, th), Image.NEAREST)
        out = np.asarray(im)
        return (out[:, :, None] if out.ndim == 2 else out), True
    return resize_array(pred, (tw, th)), True


def from_model(translator, root: str | os.PathLike, split: str = "val", *, max_items: int | None = None,
               native_size: bool = False, cache: bool = True, cache_dir: str | None = None) -> Predictions:
    """Translate the pairs of ``root/split`` with ``translator`` (its own direction and channels), in
    order, on its device; unreadable pairs are skipped with a warning. With ``cache``, pairs come from
    the decoded-pair cache when it holds the split at its own size."""
    pairs = find_pairs(root, split)
    if pairs is None:
        raise DataError(f"{root}: no '{split}' split (expected {Path(root) / split}/)")
    direction = translator.config.data.direction
    a_nc, b_nc = translator.config.side_channels
    cached = cached_sides(root, split, pairs, a_nc, b_nc, cache_dir) if cache else {}
    pairs = pairs[:max_items] if max_items else pairs
    a_nc, b_nc = translator.config.side_channels
    cached = cached_sides(root, split, pairs, a_nc, b_nc, cache_dir) if cache else {}
    pairs = pairs[:max_items] if max_items else pairs

    def load(pair) -> Item | None:
        try:
            a, b = cached[pair.name] if pair.name in cached else read_pair(pair, a_nc, b_nc)
        except BadImage as e:
            log.warning("skipped %s", e)
            return None
        src, tgt = source_and_target(direction, a, b)
        return pair.name, src, tgt, None

    def batches(size: int) -> Iterator[Batch]:
        chunks = (pairs[i:i + size] for i in range(0, len(pairs), size))
        for loaded in decoded(chunks, load):
            for run in same_size_runs([item for item in loaded if item is not None]):
                src = _tensor([s for _, s, _, _ in run]).to(translator.device)
                out = translator.translate_tensor(to_unit_range(src), native_size=native_size)
                yield Batch([n for n, *_ in run], to_uint8(out), _tensor([t for _, _, t, _ in run]), src)

    settings = {"source": "checkpoint", "data": str(root), "split": split, "direction": direction,
                "native_size": native_size, "paper_sampling": bool(getattr(translator, "paper_sampling", False)),
                "sampling_seed": getattr(translator, "seed", None)}
    return Predictions(len(pairs), batches, settings)


def _by_stem(folder: Path, suffix: str, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder not found")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and is_image_file(p) and p.stem.endswith(suffix):
            stem = p.stem[:len(p.stem) - len(suffix)] if suffix else p.stem
            if stem in found:
                raise DataError(f"{folder}: two {what} files share the name {stem!r} ({found[stem].name}, {p.name})")
            found[stem] = p
    if not found:
        raise DataError(f"{folder}: no {what} images" + (f" whose name ends in {suffix!r}" if suffix else ""))
    return found


def from_folders(predictions: str | os.PathLike, targets: str | os.PathLike, *, paired: bool = False,
                 inputs: str | os.PathLike | None = None, direction: str = "AtoB", pred_suffix: str = "",
                 target_suffix: str = "", input_suffix: str = "", label_maps: bool = False,
                 max_items: int | None = None) -> Predictions:
    """Existing images matched by file stem: ``predictions/NAME<pred_suffix>.*`` against

    - ``targets/NAME<target_suffix>.*`` (and ``inputs/NAME<input_suffix>.*`` when given), or
    - with ``paired``, the pairs of the dataset split folder ``targets`` (AB files or A/ B/):
      ``direction`` says which side was the model's input; the other side is the target.

    Every prediction needs its target (an error names the first one without); targets without a
    prediction are left out with a warning. ``label_maps``: predictions are label maps (resized
    nearest-neighbour if their size differs).
    """
    preds = _by_stem(Path(predictions), pred_suffix, "prediction")
    if paired:
        pairs = {p.name: p for p in pairs_in_folder(Path(targets))}
        tgt_names = set(pairs)
    else:
        tgt_files = _by_stem(Path(targets), target_suffix, "target")
        in_files = _by_stem(Path(inputs), input_suffix, "input") if inputs else {}
        tgt_names = set(tgt_files)
    names = list(preds)
    for name in names:
        if name not in tgt_names:
            where = f"a pair named {name} in {targets}" if paired else f"{Path(targets) / (name + target_suffix)}.<ext>"
            raise DataError(f"{preds[name]}: no target for this prediction (expected {where})")
        if not paired and inputs and name not in in_files:
            raise DataError(f"{preds[name]}: no input for this prediction in {inputs}")
    if len(tgt_names) > len(names):
        log.warning("%s: %d targets have no prediction in %s and are not scored", targets,
                    len(tgt_names) - len(names), predictions)
    names.sort(key=natural_key)
    names = names[:max_items] if max_items else names
    settings = {"source": "predictions", "predictions": str(predictions), "targets": str(targets),
                "paired": paired, "inputs": str(inputs) if inputs else None,
                "direction": direction if paired else None, "suffixes": [pred_suffix, target_suffix, input_suffix],
                "resized_predictions": 0}

    def load(name: str) -> tuple[Item, bool]:
        pred = read_image(preds[name], 3)
        if paired:
            src, tgt = source_and_target(direction, *read_pair(pairs[name], 3, 3))
        else:
            tgt = read_image(tgt_files[name], 3)
            src = read_image(in_files[name], 3) if inputs else None
        pred, was_resized = _fit(pred, tgt, label_maps, str(preds[name]))
        return (name, pred, tgt, src), was_resized

    def batches(size: int) -> Iterator[Batch]:
        chunks = (names[i:i + size] for i in range(0, len(names), size))
        for loaded in decoded(chunks, load):
            settings["resized_predictions"] += sum(resized for _, resized in loaded)
            for run in same_size_runs([item for item, _ in loaded]):
                src = None if run[0][3] is None else _tensor([s for *_, s in run])
                yield Batch([n for n, *_ in run], _tensor([p for _, p, _, _ in run]),
                            _tensor([t for _, _, t, _ in run]), src)
        if settings["resized_predictions"]:
            log.info("resized %d predictions to their target's size", settings["resized_predictions"])

    return Predictions(len(names), batches, settings)
