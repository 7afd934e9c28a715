"""FID / KID end to end: the TF-FID Inception (random weights saved to a file, read back through
--inception-weights), its resize, bad files, and what evaluate says without weights."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from pix2pix.cli import main
from pix2pix.evaluate.inception import InceptionFeatures, random_weights_file, resize_tf1_bilinear

pytest.importorskip("torchmetrics", reason="the metrics extra is not installed (pip install -e '.[metrics]')")
from test_realism import fid_low_rank, mmd_np  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised Inception in the published file's layout (about 91 MB, a few seconds)."""
    return random_weights_file(tmp_path_factory.mktemp("inception") / "random-inception.pth")


def test_the_weights_load_strictly_and_give_2048_features(weights, tmp_path):
    net = InceptionFeatures.from_file(weights)
    assert len(net.state_dict()) == 566  # the layout of weights-inception-2015-12-05-6726825d.pth
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = torch.randint(0, 256, (1, 3, 40, 56), dtype=torch.uint8)
    f = net(x)  # at the protocol's 299 x 299
    assert f.shape == (1, 2048) and torch.isfinite(f).all() and f.std() > 1e-3
    net.size = 96
    small = net(x.expand(2, -1, -1, -1))
    torch.testing.assert_close(net.train()(x), small[:1], atol=1e-4, rtol=1e-4)  # eval mode: no batch effect
    with pytest.raises(ValueError, match="uint8"):
        net(x.float())
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    for path, message in ((bad, "not the TF-FID Inception weights"), (tmp_path / "none.pth", "no such")):
        with pytest.raises(Exception, match=message) as e:
            InceptionFeatures.from_file(path)
        assert str(path) in str(e.value)


def test_tf1_bilinear_resize():
    same = torch.rand(1, 1, 299, 299) * 255
    assert torch.equal(resize_tf1_bilinear(same), same)  # scale 1: every tap on a pixel
    # output pixel i reads position i * in / out, between floor and floor + 1 (clamped): by hand
    small = torch.arange(3.0).reshape(1, 1, 1, 3).expand(1, 1, 2, 3)
    got = resize_tf1_bilinear(small, 4)[0, 0, 0]
    want = [0.0, 0.75, 1.5, 2.0]  # positions 0, 0.75, 1.5, 2.25 -> last clamps to the edge
    torch.testing.assert_close(got, torch.tensor(want))


def test_fid_and_kid_through_evaluate_match_numpy_on_the_same_features(weights, tmp_path, trained_run,
                                                                       synthetic_root, capsys, monkeypatch):
    from pix2pix import load
    from pix2pix.data.convert import to_uint8, to_unit_range
    from pix2pix.data.pairs import find_pairs, read_pair
    from pix2pix.evaluate import inception

    monkeypatch.setattr(inception, "SIZE", 96)  # the whole protocol, at a third of the side (9x faster)

    out = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(trained_run), "--data", str(synthetic_root), "--task", "generic",
                 "--inception-weights", str(weights), "--json", str(out), "--device", "cpu"]) == 0
    r = json.loads(out.read_text())
    assert "FID (Inception)" in capsys.readouterr().out
    # independently: translate, quantise to 8 bits, Inception features, NumPy formulas
    t = load(trained_run, device="cpu")
    net = InceptionFeatures.from_file(weights)
    assert net.size == 96
    a, b = zip(*(read_pair(p, 3, 3) for p in find_pairs(synthetic_root, "val")))
    real = torch.from_numpy(np.stack(b)).permute(0, 3, 1, 2).contiguous()
    fake = to_uint8(t(to_unit_range(torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous())))
    f_fake, f_real = net(fake).double().numpy(), net(real).double().numpy()
    assert r["fid"] == pytest.approx(fid_low_rank(f_fake, f_real), rel=1e-4)
    assert r["kid"] == pytest.approx(mmd_np(f_fake, f_real), rel=1e-4)
    assert r["inception"]["halves"]["images"] == [2, 2]
    assert r["settings"]["inception"]["file"] == str(weights)
    assert r["settings"]["inception"]["published_weights"] is False  # random weights: not comparable


def test_without_weights_one_line_says_how_and_the_rest_is_scored(tmp_path, trained_run, synthetic_root, capsys,
                                                                  monkeypatch):
    out = tmp_path / "r.json"
    args = ["evaluate", "--checkpoint", str(trained_run), "--data", str(synthetic_root), "--task", "generic",
            "--json", str(out), "--device", "cpu"]
    assert main(args) == 0  # no file given, none cached, downloads off (conftest)
    r = json.loads(out.read_text())
    assert "fid" not in r and r["psnr"] is not None
    (note,) = r["settings"]["notes"]
    assert "FID / KID not computed" in note and "--inception-weights FILE" in note
    assert "FID / KID not computed" in capsys.readouterr().out
    assert main([*args, "--inception-weights", str(tmp_path / "missing.pth")]) == 2
    assert "missing.pth: no such Inception weights file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # the extra not installed
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    assert main(args) == 0
    assert "pip install 'pix2pix[metrics]'" in json.loads(out.read_text())["settings"]["notes"][0]
