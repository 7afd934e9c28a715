"""Decoding speed of a split into shared memory: forked worker processes against a thread pool.

    python benchmarks/decode.py --data ../shared/data/cityscapes --pairs 1000 --rounds 3

The same worker (``data/decode.py``: Pillow decode, rows written in place with NumPy) in both
pools, interleaved over ``--rounds`` rounds; prints pairs per second for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pix2pix.data.decode import decode_into, shared_rows, workers_available  # noqa: E402
from pix2pix.data.pairs import find_pairs, pair_size  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    pairs = find_pairs(a.data, a.split)[: a.pairs]
    w, h = pair_size(pairs[0])
    print(f"{len(pairs)} pairs of {w}x{h}, {workers_available()} CPUs")
    for r in range(a.rounds):
        for processes in (True, False):
            rows = shared_rows((len(pairs), 6, h, w))
            t0 = time.perf_counter()
            decode_into(rows, pairs, 3, (w, h), processes=processes)
            dt = time.perf_counter() - t0
            print(f"round {r + 1}  {'processes' if processes else 'threads  '}  {len(pairs) / dt:7.0f} pairs/s", flush=True)


if __name__ == "__main__":
    main()
