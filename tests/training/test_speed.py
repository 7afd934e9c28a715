"""Speed options change how fast, not what is computed; bench reports what it measured."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from conftest import tiny_config
from pix2pix.cli import main
from pix2pix.data.loader import BatchSource
from pix2pix.data.pairs import PairedImages
from pix2pix.errors import ConfigError
from pix2pix.training.bench import bench, count_step_flops
from pix2pix.training.losses import Objective
from pix2pix.training.nets import build_nets
from pix2pix.training.step import train_step


def one_step(cfg, src, tgt):
    nets = build_nets(cfg, torch.device("cpu"))
    torch.manual_seed(1)  # same dropout masks
    losses = train_step(nets, src, tgt, Objective.of(cfg))
    return nets, losses


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


def test_channels_last_computes_the_same_step(tmp_path, batch):
    # dropout off: its mask is drawn in memory order, so NHWC gets a different (equally random) mask
    cfg = tiny_config(tmp_path, tmp_path / "r", dropout=0.0)
    ref, l_ref = one_step(cfg, *batch)
    cl, l_cl = one_step(dataclasses.replace(cfg, channels_last=True),
                        *(x.contiguous(memory_format=torch.channels_last) for x in batch))
    for k in ("G_L1", "G_gan", "D_real", "D_fake"):
        torch.testing.assert_close(l_cl[k], l_ref[k], rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(ref.G_plain.state_dict().items(), cl.G_plain.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5, msg=name)


def test_bf16_autocast_trains_close_to_fp32_and_fp16_needs_a_gpu(tmp_path, batch):
    cfg = tiny_config(tmp_path, tmp_path / "r")
    _, l32 = one_step(cfg, *batch)
    nets, l16 = one_step(dataclasses.replace(cfg, precision="bf16"), *batch)
    assert nets.precision == "bf16"
    assert abs(l16["G_L1"].item() - l32["G_L1"].item()) < 0.02  # bf16 keeps ~3 significant digits
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        build_nets(dataclasses.replace(cfg, precision="fp16"), torch.device("cpu"))


def test_compile_matches_eager(tmp_path, batch):
    cfg = tiny_config(tmp_path, tmp_path / "r", dropout=0.0)
    eager, l_eager = one_step(cfg, *batch)
    compiled, l_comp = one_step(dataclasses.replace(cfg, compile=True), *batch)
    assert compiled.G is not compiled.G_plain  # really wrapped by torch.compile
    torch.testing.assert_close(l_comp["G_L1"], l_eager["G_L1"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled.G_plain.downs[1].conv.weight, eager.G_plain.downs[1].conv.weight,
                               rtol=1e-3, atol=1e-5)
    assert list(compiled.G_plain.state_dict()) == list(eager.G_plain.state_dict())  # clean keys


def test_compile_falls_back_to_eager_when_unavailable(tmp_path, batch, monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken)
    cfg = tiny_config(tmp_path, tmp_path / "r", compile=True)
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        nets, losses = one_step(cfg, *batch)
    assert nets.G is nets.G_plain and torch.isfinite(losses["G_L1"])
    assert "torch.compile is not usable here (RuntimeError: no C++ compiler found); training eagerly" in caplog.text


def test_streaming_gives_the_same_batches_as_device_resident(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = PairedImages(torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8),
                        torch.randint(0, 256, (10, 3, 32, 32), generator=g, dtype=torch.uint8), list("abcdefghij"))
    cfg = tiny_config(tmp_path, tmp_path / "r", batch_size=3)
    resident = BatchSource(data, cfg, torch.device("cpu"), resident=True)
    streamed = BatchSource(data, cfg, torch.device("cpu"), resident=False)
    assert resident.batches_per_epoch == streamed.batches_per_epoch == 4
    o1, o2 = resident.order(5), streamed.order(5)
    assert torch.equal(o1, o2) and sorted(o1.tolist()) == list(range(10))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for b in range(4):
        x1 = resident.batch(resident.batch_index(o1, b), g1)
        x2 = streamed.batch(streamed.batch_index(o2, b), g2)
        assert torch.equal(x1[0], x2[0]) and torch.equal(x1[1], x2[1])


def test_ranks_get_disjoint_equal_shards(tmp_path):
    data = PairedImages(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.zeros(10, 3, 8, 8, dtype=torch.uint8),
                        [str(i) for i in range(10)])
    cfg = tiny_config(tmp_path, tmp_path / "r", batch_size=2)
    shards = [BatchSource(data, cfg, torch.device("cpu"), rank=r, world=3).order(7).tolist() for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # 10 padded to 12 by wrapping
    assert set(sum(shards, [])) == set(range(10))


def test_bench_reports_flops_speed_and_settings(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "r", batch_size=2)
    r = bench(cfg, steps=2, warmup=1)
    assert r["train_images_per_second"] > 0 and r["infer_images_per_second"] > 0
    assert r["peak_memory_bytes"] > 10 * 2**20 and r["peak_memory_kind"] == "process_peak_rss"
    assert r["settings"]["precision"] == "fp32" and r["settings"]["batch_size"] == 2  # train's CPU default
    # FLOPs grow with the batch: twice the images, twice the work
    flops1 = count_step_flops(dataclasses.replace(cfg, batch_size=1), torch.device("cpu"))
    assert r["flops_per_step"] == pytest.approx(2 * flops1, rel=1e-6)
    assert r["achieved_tflops"] == pytest.approx(r["flops_per_step"] / r["train_seconds_per_step"] / 1e12)


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--netG", "unet_32", "--ngf", "8", "--ndf", "8", "--patch", "16", "--batch-size", "1",
                 "--crop-size", "32", "--load-size", "32", "--device", "cpu", "--steps", "2", "--warmup", "1",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert {"train_images_per_second", "infer_images_per_second", "peak_memory_bytes", "settings"} <= set(r)
    assert r["settings"]["patch"] == 16 and r["settings"]["crop_size"] == 32
    assert "img/s" in capsys.readouterr().out


def test_paper_network_flop_count():
    # unet_256 + 70x70 PatchGAN at 256x256: about 87 GFLOP per training step and image
    from pix2pix.config import TrainConfig

    flops = count_step_flops(TrainConfig(device="cpu"), torch.device("cpu"))
    assert 80e9 < flops < 95e9


def test_train_step_reads_nothing_back_to_the_host(tmp_path, batch, monkeypatch):
    # Losses stay on the device between log points: any .item()/bool()/tolist() inside the step
    # (a host-device sync on a GPU) makes this test fail.
    cfg = tiny_config(tmp_path, tmp_path / "r")
    nets = build_nets(cfg, torch.device("cpu"))

    def forbidden(*a, **k):
        raise AssertionError("host read-back inside train_step")

    for name in ("item", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    torch.manual_seed(1)
    losses = train_step(nets, *batch, Objective.of(cfg))
    monkeypatch.undo()
    # the step really ran, and computed what an unwatched step computes
    _, want = one_step(cfg, *batch)
    assert {k: v.item() for k, v in losses.items()} == {k: v.item() for k, v in want.items()}
    assert losses["G_L1"].item() > 0 and losses["skipped"].item() == 0


def test_bench_times_the_start_up_with_and_without_the_cache_and_the_mfu(tmp_path, synthetic_root):
    cfg = tiny_config(synthetic_root, tmp_path / "r", batch_size=2, max_items=8)
    r = bench(cfg, steps=1, warmup=0, peak=0.5, startup=True)
    t = r["startup_seconds"]
    assert t["pairs"] == 8 and min(t["no_cache"], t["cache_first"], t["cache_second"]) > 0
    assert r["mfu"] == pytest.approx(r["achieved_tflops"] / 0.5)
    plain = bench(cfg, steps=1, warmup=0)
    assert plain["mfu"] is None and plain["startup_seconds"] is None  # a CPU's peak is not known without --peak-tflops
