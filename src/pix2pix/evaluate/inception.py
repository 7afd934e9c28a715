"""The Inception-v3 of FID and KID (TensorFlow's ``inception-2015-12-05`` graph), without torchvision.

    net = InceptionFeatures.from_file(path)       # the published weights file, read safely
    feats = net(images_uint8)                      # (N, 3, H, W) uint8 -> (N, 2048) float32, pool3

The protocol is torch-fidelity's, the reference implementation of FID/KID in PyTorch (and that of
torchmetrics with ``antialias=False``), which reproduces the original TTUR/TensorFlow numbers:

1. 8-bit RGB images (N, 3, H, W) in [0, 255], as saved to disk;
2. resized to 299 x 299 with TensorFlow 1.x's bilinear rule (``align_corners=False``, no half-pixel
   centres, no antialiasing): output pixel i samples input position ``i * in / 299``;
3. scaled to (x - 128) / 128;
4. the network up to the 2048-d average pool ("pool3").

The network is the TF graph's layout, as ported to PyTorch by pytorch-fid and torch-fidelity (both
Apache-2.0): average pools that leave the zero padding out of the mean, and a max pool in the last
block's pooling branch (``Mixed_7c``), where torchvision's Inception has an average pool. Parameter
names follow torch-fidelity's port, so its published file
(``weights-inception-2015-12-05-6726825d.pth``, about 91 MB) loads with every key checked. The
1008-way classifier (``fc``) is kept only so that it does: FID and KID read the pool.

Why our own module: every maintained FID library builds this network on torchvision, which this
project does not use (and whose PyPI build does not load beside a CPU-only torch). The arithmetic
of FID and KID comes from torchmetrics (``realism.py``), which accepts any feature module.

Weights (:func:`find_weights`): ``--inception-weights FILE``; else the file in torch's hub cache
(``torch.hub.get_dir()/checkpoints``, where torch-fidelity and torchmetrics keep it) or in
``user_cache_dir()/inception``; else it is downloaded from torch-fidelity's release into the hub
cache, and its SHA-256 must start with the ``6726825d`` in its name (torch.hub's convention).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, DownloadError
from ..fileio import user_cache_dir

log = logging.getLogger("pix2pix")
WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
HASH_PREFIX = "6726825d"  # of the file's SHA-256, as torch.hub names files
SIZE = 299
FEATURES = 2048


# ----- input ------------------------------------------------------------------------------------
def resize_tf1_bilinear(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """float (N, C, H, W) -> (N, C, size, size) by TensorFlow 1.x's ``resize_bilinear``
    (``align_corners=False``, ``half_pixel_centers=False``): output pixel i reads input position
    ``i * H / size``, between rows ``floor`` and ``floor + 1`` (clamped at the edge). Rows of the
    two neighbouring input rows are first interpolated along W, then the results along H."""

    def taps(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(
            n_in / size, dtype=torch.float32, device=x.device)
        lo = pos.long()
        return lo, (lo + 1).clamp(max=n_in - 1), (pos - lo.float()).to(x.dtype)

    h, w = x.shape[-2:]
    xl, xh, dx = taps(w)
    yl, yh, dy = taps(h)
    top, bottom = x[:, :, yl], x[:, :, yh]
    top = top[..., xl] + (top[..., xh] - top[..., xl]) * dx
    bottom = bottom[..., xl] + (bottom[..., xh] - bottom[..., xl]) * dx
    return top + (bottom - top) * dy[:, None]


# ----- the network ------------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # TF leaves padding out


class Block(nn.Module):
    """A mixed block: named branches (lists of attribute names applied in turn) concatenated on
    channels. A branch may start with a pool ("avg" / "max" / "max_s2") before its convolutions;
    a branch that ends in a pair ``(a, b)`` concatenates a and b applied to the same input."""

    def __init__(self, convs: dict[str, BasicConv2d], branches: Sequence[Sequence]):
        super().__init__()
        for name, conv in convs.items():
            self.add_module(name, conv)
        self.branches = [list(b) for b in branches]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in self.branches:
            h = x
            for step in branch:
                if step == "avg":
                    h = _avg_pool(h)
                elif step == "max":
                    h = F.max_pool2d(h, 3, stride=1, padding=1)
                elif step == "max_s2":
                    h = F.max_pool2d(h, 3, stride=2)
                elif isinstance(step, tuple):
                    h = torch.cat([getattr(self, s)(h) for s in step], 1)
                else:
                    h = getattr(self, step)(h)
            outs.append(h)
        return torch.cat(outs, 1)


def _block_a(cin: int, pool: int) -> Block:  # Mixed_5b/c/d: 35 x 35
    c = BasicConv2d
    return Block({"branch1x1": c(cin, 64, 1), "branch5x5_1": c(cin, 48, 1), "branch5x5_2": c(48, 64, 5, padding=2),
                  "branch3x3dbl_1": c(cin, 64, 1), "branch3x3dbl_2": c(64, 96, 3, padding=1),
                  "branch3x3dbl_3": c(96, 96, 3, padding=1), "branch_pool": c(cin, pool, 1)},
                 [["branch1x1"], ["branch5x5_1", "branch5x5_2"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                  ["avg", "branch_pool"]])


def _block_b(cin: int) -> Block:  # Mixed_6a: 35 -> 17
    c = BasicConv2d
    return Block({"branch3x3": c(cin, 384, 3, stride=2), "branch3x3dbl_1": c(cin, 64, 1),
                  "branch3x3dbl_2": c(64, 96, 3, padding=1), "branch3x3dbl_3": c(96, 96, 3, stride=2)},
                 [["branch3x3"], ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ["max_s2"]])


def _block_c(cin: int, c7: int) -> Block:  # Mixed_6b..e: 17 x 17, factorised 7x7
    c = BasicConv2d
    row, col = dict(padding=(0, 3)), dict(padding=(3, 0))
    return Block({"branch1x1": c(cin, 192, 1), "branch7x7_1": c(cin, c7, 1), "branch7x7_2": c(c7, c7, (1, 7), **row),
                  "branch7x7_3": c(c7, 192, (7, 1), **col), "branch7x7dbl_1": c(cin, c7, 1),
                  "branch7x7dbl_2": c(c7, c7, (7, 1), **col), "branch7x7dbl_3": c(c7, c7, (1, 7), **row),
                  "branch7x7dbl_4": c(c7, c7, (7, 1), **col), "branch7x7dbl_5": c(c7, 192, (1, 7), **row),
                  "branch_pool": c(cin, 192, 1)},
                 [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
                  [f"branch7x7dbl_{i}" for i in range(1, 6)], ["avg", "branch_pool"]])


def _block_d(cin: int) -> Block:  # Mixed_7a: 17 -> 8
    c = BasicConv2d
    return Block({"branch3x3_1": c(cin, 192, 1), "branch3x3_2": c(192, 320, 3, stride=2),
                  "branch7x7x3_1": c(cin, 192, 1), "branch7x7x3_2": c(192, 192, (1, 7), padding=(0, 3)),
                  "branch7x7x3_3": c(192, 192, (7, 1), padding=(3, 0)), "branch7x7x3_4": c(192, 192, 3, stride=2)},
                 [["branch3x3_1", "branch3x3_2"], [f"branch7x7x3_{i}" for i in range(1, 5)], ["max_s2"]])


def _block_e(cin: int, pool: str) -> Block:  # Mixed_7b (average pool), Mixed_7c (max pool: the TF graph's)
    c = BasicConv2d
    return Block({"branch1x1": c(cin, 320, 1), "branch3x3_1": c(cin, 384, 1),
                  "branch3x3_2a": c(384, 384, (1, 3), padding=(0, 1)), "branch3x3_2b": c(384, 384, (3, 1), padding=(1, 0)),
                  "branch3x3dbl_1": c(cin, 448, 1), "branch3x3dbl_2": c(448, 384, 3, padding=1),
                  "branch3x3dbl_3a": c(384, 384, (1, 3), padding=(0, 1)),
                  "branch3x3dbl_3b": c(384, 384, (3, 1), padding=(1, 0)), "branch_pool": c(cin, 192, 1)},
                 [["branch1x1"], ["branch3x3_1", ("branch3x3_2a", "branch3x3_2b")],
                  ["branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")], [pool, "branch_pool"]])


class InceptionFeatures(nn.Module):
    """uint8 (N, 3, H, W) in [0, 255] -> float32 (N, 2048): the FID protocol above. Always in eval
    mode (batch norm with the file's statistics), no gradients."""

    num_features = FEATURES  # read by torchmetrics instead of running a dummy image

    def __init__(self):
        super().__init__()
        c = BasicConv2d
        self.Conv2d_1a_3x3 = c(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = c(32, 32, 3)
        self.Conv2d_2b_3x3 = c(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = c(64, 80, 1)
        self.Conv2d_4a_3x3 = c(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _block_a(192, 32), _block_a(256, 64), _block_a(288, 64)
        self.Mixed_6a = _block_b(288)
        self.Mixed_6b, self.Mixed_6c = _block_c(768, 128), _block_c(768, 160)
        self.Mixed_6d, self.Mixed_6e = _block_c(768, 160), _block_c(768, 192)
        self.Mixed_7a = _block_d(768)
        self.Mixed_7b, self.Mixed_7c = _block_e(1280, "avg"), _block_e(2048, "max")
        self.fc = nn.Linear(FEATURES, 1008)  # the TF graph's classifier: unused, kept for the file's keys
        self.size = SIZE  # the protocol's 299; the tests alone use less to run faster
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features need uint8 (N, 3, H, W) images, got {images.dtype} "
                             f"{tuple(images.shape)}")
        x = (resize_tf1_bilinear(images.float(), self.size) - 128.0) / 128.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # pool3: (N, 2048)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "InceptionFeatures":
        """Load a state dict (``torch.load(weights_only=True)``: no code runs) with every key checked;
        errors name the file."""
        path = Path(path)
        model = cls()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no such Inception weights file") from None
        except (OSError, RuntimeError, pickle.UnpicklingError, AttributeError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{path}: not the TF-FID Inception weights ({first[:200]})") from None
        return model


# ----- the weights file -------------------------------------------------------------------------
def cached_weights() -> list[Path]:
    """Where the published file is looked for, in order: torch's hub cache, then ours."""
    return [Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME, user_cache_dir() / "inception" / WEIGHTS_NAME]


def how_to_get_weights() -> str:
    return (f"download {WEIGHTS_NAME} (torch-fidelity's release v0.2.0) on a networked machine and pass "
            f"--inception-weights FILE, or put it in {cached_weights()[0].parent}")


def download_weights(progress: bool = True) -> Path:
    """Fetch the published file into the first writable cache folder; its SHA-256 must start with
    :data:`HASH_PREFIX`. Raises :class:`DownloadError` (one line) when it cannot."""
    from ..data.download import fetch, sha256_file

    for dest in cached_weights():
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        path = fetch(WEIGHTS_URL, dest, progress=progress)
        digest = sha256_file(path)
        if not digest.startswith(HASH_PREFIX):
            path.unlink()
            raise DownloadError(f"{WEIGHTS_URL}: the downloaded file's SHA-256 is {digest[:16]}..., not "
                                f"{HASH_PREFIX}...; removed")
        return path
    raise DownloadError(f"no writable cache folder for the Inception weights ({', '.join(map(str, cached_weights()))})")


def find_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file: ``path`` if given, else a cached copy, else a fresh download. Raises
    :class:`DownloadError` when there is none (offline, no cached file)."""
    if path is not None:
        return Path(path)
    for candidate in cached_weights():
        if candidate.is_file():
            return candidate
    if not download:
        raise DownloadError(f"no Inception weights in {cached_weights()[0].parent}")
    log.info("downloading the FID Inception weights (%s, about 91 MB) ...", WEIGHTS_URL)
    return download_weights()


def random_weights_file(path: str | os.PathLike, seed: int = 0) -> Path:
    """A randomly initialised network saved in the published file's layout, for tests. Its batch
    norms take the statistics of a batch of random images, so features do not vanish (with
    PyTorch's default initialisation they shrink to about 1e-8 through the ~95 layers)."""
    torch.manual_seed(seed)
    model = InceptionFeatures()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 1.0  # running statistics := this batch's
        nn.Module.train(m, True)
    model(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    for m in bns:
        m.momentum = 0.1
        nn.Module.train(m, False)
    torch.save(model.state_dict(), path)
    return Path(path)
