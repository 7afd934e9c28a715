"""The decoded-pair cache: later loads map it, any change to the files re-decodes, a damaged or
foreign file is rebuilt with a warning, and nothing is written inside the dataset folder."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from conftest import noise_image, write_ab
from pix2pix.data import decode as decode_module
from pix2pix.data.pairs import PairedImages
from pix2pix.errors import DataError


def make_split(root, n=6, size=16, seed=0):
    for i in range(n):
        write_ab(root / "train" / f"{i}.png", noise_image(size, size, seed + 2 * i), noise_image(size, size, seed + 2 * i + 1))
    return root


def load(root, cache_dir, **kw):
    kw.setdefault("load_size", 286)
    return PairedImages.load(root, "train", preprocess="resize_and_crop", cache=True, cache_dir=cache_dir, **kw)


def cache_files(folder):
    return sorted(folder.glob("*.pairs"))


def same(d1, d2):
    return d1.names == d2.names and torch.equal(d1.source, d2.source) and torch.equal(d1.target, d2.target)


def test_second_load_maps_the_cache_and_gives_the_decoded_pairs(tmp_path, monkeypatch):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    before = sorted(p.name for p in (root / "train").iterdir())
    plain = PairedImages.load(root, "train", cache=False)
    first = load(root, cache)
    assert same(first, plain) and len(cache_files(cache)) == 1
    assert sorted(p.name for p in (root / "train").iterdir()) == before  # nothing written beside the data

    monkeypatch.setattr("pix2pix.data.pairs.decode_into", lambda *a, **k: pytest.fail("decoded again"))
    second = load(root, cache)
    assert same(second, plain)
    # stored by side, so the other direction maps the same file
    swapped = load(root, cache, direction="BtoA")
    assert torch.equal(swapped.source, plain.target) and len(cache_files(cache)) == 1


@pytest.mark.parametrize("change", ["content", "added", "removed"])
def test_a_changed_added_or_removed_file_is_decoded_again(tmp_path, change):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    load(root, cache)
    if change == "content":
        path = root / "train" / "2.png"
        write_ab(path, noise_image(16, 16, 99), noise_image(16, 16, 98))
        os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    elif change == "added":
        write_ab(root / "train" / "6.png", noise_image(16, 16, 97), noise_image(16, 16, 96))
    else:
        (root / "train" / "3.png").unlink()
    got = load(root, cache)
    assert same(got, PairedImages.load(root, "train", cache=False))
    assert len(cache_files(cache)) == 1  # the old version of the split was removed


def test_decoding_options_are_part_of_the_key(tmp_path):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    load(root, cache)
    gray = load(root, cache, input_nc=1)
    assert gray.source.shape[1] == 1 and len(cache_files(cache)) == 2
    small = load(root, cache, load_size=8, crop_size=8)  # resized while decoding: another file
    assert small.size == (8, 8) and len(cache_files(cache)) == 3


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "foreign"])
def test_a_damaged_or_foreign_cache_file_is_rebuilt_with_one_warning(tmp_path, caplog, damage):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    want = load(root, cache).subset(range(6))  # a copy: the damage below is done in place, under the map
    (path,) = cache_files(cache)
    raw = bytearray(path.read_bytes())
    if damage == "flipped byte":
        raw[100] ^= 0xFF
    elif damage == "truncated":
        raw = raw[:-50]
    else:
        raw = bytearray(np.random.default_rng(0).integers(0, 256, len(raw), dtype=np.uint8).tobytes())
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        got = load(root, cache)
    assert same(got, want)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "decoding the images again" in warnings[0]
    assert "\n" not in warnings[0]
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        caplog.clear()
        assert same(load(root, cache), want) and not caplog.records  # rebuilt: trusted again


def test_an_unwritable_cache_folder_warns_and_still_loads(tmp_path, caplog):
    root = make_split(tmp_path / "data")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        got = load(root, blocker / "cache")
    assert same(got, PairedImages.load(root, "train", cache=False))
    assert "cannot write the decoded-pair cache" in caplog.text


def test_skipped_files_are_remembered_and_strict_still_refuses(tmp_path, caplog):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    (root / "train" / "bad.png").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        first = load(root, cache)
    assert len(first) == 6 and len(first.skipped) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        second = load(root, cache)
    assert same(first, second) and "bad.png" in caplog.text  # the warning is repeated from the cache
    with pytest.raises(DataError, match="bad.png"):
        load(root, cache, strict=True)


def test_decoding_in_processes_and_threads_gives_the_same_rows(tmp_path):
    root = make_split(tmp_path / "data", n=40)
    from pix2pix.data.pairs import find_pairs

    pairs = find_pairs(root, "train")
    rows = [decode_module.shared_rows((40, 6, 16, 16)) for _ in range(2)]
    for r, processes in zip(rows, (True, False)):
        assert decode_module.decode_into(r, pairs, 3, (16, 16), processes=processes) == {}
    assert np.array_equal(rows[0], rows[1]) and rows[0].any()


def test_show_maps_the_cache(tmp_path, monkeypatch):
    from pix2pix.config import DataConfig
    from pix2pix.pictures import show_pairs

    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    want = show_pairs(root, "train", 4, data=DataConfig(cache=False))
    load(root, cache)
    monkeypatch.setattr("pix2pix.data.pairs.read_pair", lambda *a: pytest.fail("decoded"))
    got = show_pairs(root, "train", 4, data=DataConfig(cache_dir=str(cache)))
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_evaluate_maps_the_cache(tmp_path, monkeypatch, trained_run, synthetic_root):
    from pix2pix import load as load_model
    from pix2pix.evaluate.predictions import from_model

    translator = load_model(trained_run, device="cpu")
    want = list(from_model(translator, synthetic_root, "val", cache=False).batches(2))
    PairedImages.load(synthetic_root, "val", cache=True, cache_dir=tmp_path / "cache")
    monkeypatch.setattr("pix2pix.evaluate.predictions.read_pair", lambda *a: pytest.fail("decoded"))
    got = list(from_model(translator, synthetic_root, "val", cache_dir=tmp_path / "cache").batches(2))
    assert [n for b in got for n in b.names] == [n for b in want for n in b.names] and sum(map(len, got)) == 4
    assert all(torch.equal(g.target, w.target) and torch.equal(g.prediction, w.prediction)
               for g, w in zip(got, want))


def test_a_killed_build_leaves_nothing_that_is_used_and_its_leftover_is_cleared(tmp_path, monkeypatch):
    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("pix2pix.data.pairs.decode_into", killed)
    with pytest.raises(KeyboardInterrupt):
        load(root, cache)
    assert not list(cache.iterdir())  # the temporary file went with the interrupted build
    old = cache / ".x.pairs.123.tmp"
    old.write_bytes(b"left by a process killed with SIGKILL")
    os.utime(old, (0, 0))
    monkeypatch.undo()
    assert len(load(root, cache)) == 6 and not old.exists() and len(cache_files(cache)) == 1


def test_a_cache_that_would_fill_the_disk_is_not_written(tmp_path, monkeypatch, caplog):
    import collections

    root, cache = make_split(tmp_path / "data"), tmp_path / "cache"
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("pix2pix.data.cache.shutil.disk_usage", lambda p: usage(100 << 30, 99 << 30, 1 << 30))
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        got = load(root, cache)
    assert len(got) == 6 and not cache_files(cache) and "GiB free" in caplog.text
