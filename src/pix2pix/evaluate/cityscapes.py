"""The Cityscapes label table and the rule that turns a colour label map into class indices.

The table is the one in the Cityscapes scripts (``cityscapesscripts/helpers/labels.py``): 34 labels
with an id, a trainId (0..18 for the 19 classes that are evaluated, 255 for void), and a colour.
The paper's ``cityscapes`` dataset stores the label side as these colours in 256x256 JPEGs, so
colours are blurred at class borders (resizing and 4:2:0 chroma subsampling) and need a rule:

    ids = colours_to_train_ids(rgb)     # (H, W, 3) uint8 -> (H, W) uint8 in 0..18 or 255

The rule: each pixel takes the class of the nearest colour in the palette (squared RGB distance),
where the palette holds every *distinct* colour of the table, void colours included; a pixel
whose nearest colour belongs to a void label gets :data:`IGNORE`. Including the void colours
means a black (unlabelled / ego-vehicle) pixel is not forced into the nearest evaluated class.
Three colours are shared by several labels; each is given to the evaluated label:
``(153, 153, 153)`` pole (not polegroup), ``(0, 0, 142)`` car (not license plate), and
``(0, 0, 0)``, shared only by void labels, stays void. Ties go to the earlier palette entry.
See docs/evaluation.md for what this does on the real val maps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

IGNORE = 255  # trainId of pixels that are not scored


class Label(NamedTuple):
    name: str
    id: int
    train_id: int  # 0..18 for evaluated classes, 255 for void
    category: str
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", (0, 0, 0)),
    Label("rectification border", 2, 255, "void", (0, 0, 0)),
    Label("out of roi", 3, 255, "void", (0, 0, 0)),
    Label("static", 4, 255, "void", (0, 0, 0)),
    Label("dynamic", 5, 255, "void", (111, 74, 0)),
    Label("ground", 6, 255, "void", (81, 0, 81)),
    Label("road", 7, 0, "flat", (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", (244, 35, 232)),
    Label("parking", 9, 255, "flat", (250, 170, 160)),
    Label("rail track", 10, 255, "flat", (230, 150, 140)),
    Label("building", 11, 2, "construction", (70, 70, 70)),
    Label("wall", 12, 3, "construction", (102, 102, 156)),
    Label("fence", 13, 4, "construction", (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", (180, 165, 180)),
    Label("bridge", 15, 255, "construction", (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", (150, 120, 90)),
    Label("pole", 17, 5, "object", (153, 153, 153)),
    Label("polegroup", 18, 255, "object", (153, 153, 153)),
    Label("traffic light", 19, 6, "object", (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", (107, 142, 35)),
    Label("terrain", 22, 9, "nature", (152, 251, 152)),
    Label("sky", 23, 10, "sky", (70, 130, 180)),
    Label("person", 24, 11, "human", (220, 20, 60)),
    Label("rider", 25, 12, "human", (255, 0, 0)),
    Label("car", 26, 13, "vehicle", (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", (0, 0, 110)),
    Label("train", 31, 16, "vehicle", (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", (119, 11, 32)),
    Label("license plate", -1, -1, "vehicle", (0, 0, 142)),
)

# The 19 evaluated classes in trainId order (the paper's and the Cityscapes benchmark's list).
EVAL_LABELS: tuple[Label, ...] = tuple(sorted((lb for lb in LABELS if 0 <= lb.train_id < 255),
                                              key=lambda lb: lb.train_id))
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVAL_LABELS)
NUM_CLASSES = len(CLASS_NAMES)  # 19
CLASS_COLORS = np.array([lb.color for lb in EVAL_LABELS], dtype=np.uint8)  # (19, 3), index = trainId


def _palette() -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours of the table (first occurrence order) and the trainId each one stands for."""
    colours: dict[tuple[int, int, int], int] = {}
    for lb in LABELS:
        tid = lb.train_id if 0 <= lb.train_id < 255 else IGNORE
        if lb.color not in colours or (colours[lb.color] == IGNORE and tid != IGNORE):
            colours[lb.color] = tid  # a shared colour goes to the evaluated label
    return np.array(list(colours), dtype=np.uint8), np.array(list(colours.values()), dtype=np.uint8)


PALETTE, PALETTE_TRAIN_IDS = _palette()  # (29, 3) uint8, (29,) uint8


def nearest_colour(rgb: np.ndarray | torch.Tensor, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest ``palette`` colour (squared RGB distance) for every pixel.

    rgb: (..., 3) uint8 (HWC); palette: (K, 3). Returns an int64 array of shape (...). Exact in
    float32 (every term is an integer below 2**24); ties go to the lower index.
    """
    x = rgb.cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    flat = x.reshape(-1, 3).astype(np.float32)
    p = np.asarray(palette, dtype=np.float32)
    # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is the same for every p, so it is left out.
    d = (p * p).sum(1)[None, :] - 2.0 * (flat @ p.T)
    return d.argmin(1).reshape(x.shape[:-1])


def colours_to_train_ids(rgb: np.ndarray | torch.Tensor) -> np.ndarray:
    """Colour label map (H, W, 3) uint8 -> trainIds (H, W) uint8: 0..18, or 255 (void, not scored).

    The rule is in the module docstring. Works for targets and for generated label maps alike.
    """
    return PALETTE_TRAIN_IDS[nearest_colour(rgb, PALETTE)]


def train_ids_to_colours(ids: np.ndarray) -> np.ndarray:
    """trainIds (H, W) -> colour map (H, W, 3) uint8; void (255) is black."""
    out = np.zeros((*ids.shape, 3), dtype=np.uint8)
    valid = ids < NUM_CLASSES
    out[valid] = CLASS_COLORS[ids[valid]]
    return out


UNKNOWN = 254  # not a trainId: a colour whose class is not yet in the table
_TABLES: dict[str, torch.Tensor] = {}  # per device: 24-bit colour -> trainId, 2**24 entries (16 MB)


def batch_train_ids(rgb: torch.Tensor) -> torch.Tensor:
    """:func:`colours_to_train_ids` for a batch where it lies: uint8 (B, 3, H, W) colour maps ->
    uint8 (B, H, W) trainIds on the same device. A 2**24-entry table (kept per device) maps every
    24-bit colour to its class; the rule runs only for colours the table has not seen yet (a JPEG
    label map has a few thousand, nearly all shared with the maps before it), with distances exact
    in float64 (ties to the lower palette index, as there). One gather gives every pixel its class."""
    key = str(rgb.device)
    if key not in _TABLES:
        _TABLES[key] = torch.full((1 << 24,), UNKNOWN, dtype=torch.uint8, device=rgb.device)
    table = _TABLES[key]
    c = rgb.to(torch.int32)
    codes = ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).long()  # (B, H, W), the 24-bit colour
    ids = table[codes]
    missing = ids == UNKNOWN
    if bool(missing.any()):  # one host sync per batch, none once the table knows the colours
        new = torch.unique(codes[missing])
        colours = torch.stack([new >> 16, (new >> 8) & 255, new & 255], dim=1).double()  # (U, 3)
        palette = torch.from_numpy(PALETTE).to(rgb.device, torch.float64)
        d = (palette * palette).sum(1) - 2 * colours @ palette.T  # |x - p|^2 - |x|^2: exact integers
        table[new] = torch.from_numpy(PALETTE_TRAIN_IDS).to(rgb.device)[d.argmin(1)]
        ids = table[codes]
    return ids
