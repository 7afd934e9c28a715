"""Decoding a split into one uint8 array, in parallel processes where the platform can fork.

    errors = decode_into(rows, pairs, a_channels, stored_size, progress=True)

``rows`` is (N, a + b channels, H, W) uint8 in shared memory (the cache file being written, or an
anonymous shared map): each worker decodes its pairs with Pillow and writes their rows in place,
so nothing is pickled back but the messages of unreadable files.

Why processes: a thread pool of Pillow decodes does not scale with cores. Pillow releases the GIL
only inside the codec; opening the file, parsing the JPEG markers, cropping and converting hold
it, and with many threads they contend for it (on a 2-core Zen 4 the old 6-thread pool decoded 689
Cityscapes pairs/s and 455 with the 20 threads a 16-core host got, while the codec alone ran at
2,280 on 2 threads). Copies made with torch inside the threads made it worse: each thread opened an
OpenMP team of ``torch.get_num_threads()`` for a 200 KB copy (0.40 ms on 2 threads against 0.07 ms on
one). Workers here use only Pillow and NumPy. Where fork is unavailable (macOS, Windows) the same
work runs in a thread pool.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from .images import BadImage, resize_array

_JOB: dict[str, Any] = {}  # what forked workers decode (inherited, not pickled)
BLOCK = 16  # pairs per task


def workers_available() -> int:
    """CPUs this process may run on (the affinity mask, e.g. under taskset or a batch system)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _decode_block(start: int) -> tuple[int, list[tuple[int, str]]]:
    from .pairs import read_pair

    rows, pairs, a_nc, size = _JOB["rows"], _JOB["pairs"], _JOB["a_channels"], _JOB["size"]
    b_nc = rows.shape[1] - a_nc
    bad, end = [], min(start + BLOCK, len(pairs))
    for i in range(start, end):
        try:
            a, b = read_pair(pairs[i], a_nc, b_nc)
            rows[i, :a_nc] = resize_array(a, size).transpose(2, 0, 1)
            rows[i, a_nc:] = resize_array(b, size).transpose(2, 0, 1)
        except BadImage as e:
            bad.append((i, str(e)))
    return end - start, bad


def decode_into(rows: np.ndarray, pairs: Sequence, a_channels: int, size: tuple[int, int], *,
                desc: str = "decode", progress: bool = False, processes: bool | None = None) -> dict[int, str]:
    """Decode ``pairs`` into ``rows`` (shared memory when ``processes``); returns {index: message}
    of the pairs that could not be read. ``size`` = (width, height) every image is stored at."""
    from tqdm.auto import tqdm

    n = len(pairs)
    workers = min(workers_available(), max(1, n // BLOCK))
    if processes is None:
        processes = workers > 1 and "fork" in multiprocessing.get_all_start_methods()
    _JOB.update(rows=rows, pairs=pairs, a_channels=a_channels, size=size)
    bad: dict[int, str] = {}
    starts = range(0, n, BLOCK)
    try:
        with tqdm(total=n, desc=desc, unit="pair", disable=not progress, leave=False) as bar:
            if processes:
                with warnings.catch_warnings():
                    # Python 3.12+ warns about forking a process with threads; the workers run
                    # only Pillow and NumPy (never torch, whose locks a thread could hold).
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pool = multiprocessing.get_context("fork").Pool(workers)
                with pool:
                    for done, found in pool.imap_unordered(_decode_block, starts):
                        bad.update(found)
                        bar.update(done)
            else:
                with ThreadPoolExecutor(max(workers, 2)) as pool:
                    for done, found in pool.map(_decode_block, starts):
                        bad.update(found)
                        bar.update(done)
    finally:
        _JOB.clear()
    return bad


def shared_rows(shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed uint8 array in anonymous shared memory, writable by forked workers."""
    import mmap

    nbytes = int(np.prod(shape))
    buf = mmap.mmap(-1, max(nbytes, 1))
    return np.frombuffer(buf, dtype=np.uint8, count=nbytes).reshape(shape)
