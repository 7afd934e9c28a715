"""Exports: every format round-trips and matches the checkpoint; programs run without pix2pix;
ONNX has dynamic batch and size; paper sampling survives export; bad files give clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import noise_image
from pix2pix import Translator, load
from pix2pix.cli import main
from pix2pix.errors import CheckpointError, ConfigError, ExportError

pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
pytest.importorskip("onnxscript", reason="the export extra is not installed (pip install -e '.[export]')")

from pix2pix.deploy.export import export_model, output_paths  # noqa: E402
from pix2pix.deploy.formats import onnx as onnx_format  # noqa: E402

SUFFIX = {"safetensors": ".safetensors", "torchscript": ".ts", "torch-export": ".pt2", "onnx": ".onnx"}


def test_every_format_is_written_verified_and_named_by_the_rule(exported):
    report = {r["format"]: r for r in exported["report"]}
    assert list(report) == ["safetensors", "torchscript", "torch-export", "onnx"]
    for fmt, r in report.items():
        path = exported["dir"] / f"generator{SUFFIX[fmt]}"
        assert Path(r["path"]) == path and path.stat().st_size == r["size_bytes"] > 10_000
        assert r["max_abs_diff"] <= 1e-3 and r["mode"] == "eval" and r["dtype"] == "float32"
        # the training size (batch 2), one block by two (batch 1), two blocks by one (batch 3)
        assert r["shapes"] == [[2, 3, 32, 32], [1, 3, 32, 64], [3, 3, 64, 32]]


def test_safetensors_needs_no_training_checkpoint(exported, reference, tmp_path):
    lone = tmp_path / "elsewhere" / "facades.safetensors"
    lone.parent.mkdir()
    lone.write_bytes((exported["dir"] / "generator.safetensors").read_bytes())
    t = load(lone, device="cpu")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(t(x), reference(x), atol=0, rtol=0)  # the same weights, bit for bit
    from safetensors import safe_open

    with safe_open(lone, "pt") as f:
        meta = json.loads(f.metadata()["pix2pix"])
    assert meta["config"]["model"]["netG"] == "unet_32" and meta["input"]["multiple"] == 32
    # the weights can also run the paper's sampling, chosen at load time
    assert load(lone, device="cpu", paper_sampling=True).paper_sampling


def test_torchscript_and_pt2_run_in_a_process_that_cannot_import_pix2pix(exported, reference, tmp_path):
    script = textwrap.dedent("""
        import json, sys
        sys.modules["pix2pix"] = None  # any import of our package now fails
        try:
            import pix2pix
            raise SystemExit("pix2pix was importable")
        except ImportError:
            pass
        import torch
        folder, out = sys.argv[1], sys.argv[2]
        x = torch.load(f"{out}/x.pt")
        extra = {"pix2pix.json": ""}
        ts = torch.jit.load(f"{folder}/generator.ts", _extra_files=extra)
        meta = json.loads(extra["pix2pix.json"])
        pt2 = torch.export.load(f"{folder}/generator.pt2").module()
        with torch.no_grad():
            torch.save({"ts": ts(x), "pt2": pt2(x), "multiple": meta["input"]["multiple"],
                        "loaded": sorted(m for m in sys.modules if m.startswith("pix2pix"))}, f"{out}/y.pt")
    """)
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    torch.save(x, tmp_path / "x.pt")
    proc = subprocess.run([sys.executable, "-c", script, str(exported["dir"]), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    y = torch.load(tmp_path / "y.pt")
    assert y["loaded"] == ["pix2pix"] and y["multiple"] == 32  # only the blocking None entry
    with torch.no_grad():
        want = reference.generator(x)
    torch.testing.assert_close(y["ts"], want, atol=1e-5, rtol=0)
    torch.testing.assert_close(y["pt2"], want, atol=1e-5, rtol=0)


def test_onnx_has_dynamic_batch_height_and_width(exported, reference):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported["dir"] / "generator.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.type == "tensor(float)"
    assert inp.shape[0] == "batch" and inp.shape[1] == 3 and all(isinstance(d, str) for d in inp.shape[2:])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["pix2pix"])
    assert meta["mode"] == "eval" and meta["input"]["range"] == [-1.0, 1.0]
    for shape in [(1, 3, 32, 32), (5, 3, 32, 32), (2, 3, 96, 64), (1, 3, 128, 32)]:
        x = torch.rand(shape) * 2 - 1
        (y,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            want = reference.generator(x).numpy()
        assert y.shape == want.shape and np.abs(y - want).max() < 1e-4


def test_translate_cli_accepts_every_exported_file(exported, trained_run, synthetic_root, tmp_path):
    args = ["--input", str(synthetic_root / "val"), "--paired", "--side-by-side"]
    assert main(["translate", "--checkpoint", str(trained_run), "--output", str(tmp_path / "ckpt"), *args]) == 0
    for fmt, suffix in SUFFIX.items():
        out = tmp_path / fmt
        assert main(["translate", "--checkpoint", str(exported["dir"] / f"generator{suffix}"),
                     "--output", str(out), "--trust-program", *args]) == 0
        for want in sorted((tmp_path / "ckpt").glob("*.png")):
            a = np.asarray(Image.open(out / want.name), dtype=int)
            assert np.abs(a - np.asarray(Image.open(want), dtype=int)).max() <= 1, (fmt, want.name)


def test_paper_sampling_export_keeps_per_image_statistics_and_dropout(trained_run, tmp_path):
    import onnxruntime as ort

    results = export_model(trained_run, ["torchscript", "onnx"], tmp_path, paper_sampling=True)
    assert [r.path.name for r in results] == ["generator-paper.ts", "generator-paper.onnx"]
    assert all(r.mode == "paper_sampling" and r.max_abs_diff <= 1e-3 for r in results)
    ts = load(tmp_path / "generator-paper.ts", device="cpu", trust_program=True)
    assert ts.paper_sampling  # the file's own mode, without asking
    assert Translator(ts.generator, ts.config).paper_sampling  # a program keeps its mode
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert not torch.equal(ts(x), ts(x))  # dropout is sampled on every call
    # each image is normalised by its own statistics, so its output does not depend on the rest of
    # its batch. Dropout masks are fixed to ones here (as in verification) to compare exactly.
    fixed = onnx_format.without_sampling((tmp_path / "generator-paper.onnx").read_bytes())
    session = ort.InferenceSession(fixed, providers=["CPUExecutionProvider"])
    a, b, c = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(s)) * 2 - 1 for s in (1, 2, 3))
    alone = session.run(None, {"input": a.numpy()})[0][0]
    with_b = session.run(None, {"input": torch.cat([a, b]).numpy()})[0][0]
    with_c = session.run(None, {"input": torch.cat([c, a]).numpy()})[0][1]
    assert np.abs(with_b - alone).max() < 1e-5 and np.abs(with_c - alone).max() < 1e-5
    eval_mode = load(trained_run, device="cpu")(a)[0].numpy()
    assert np.abs(alone - eval_mode).max() > 1e-2  # and the statistics are not the running ones
    assert ts.meta["statistics"] == "per_image" and not ts.one_at_a_time
    older = ts.generator  # a paper-sampling file exported before per-image statistics (no such key) ...
    older.meta = {k: v for k, v in older.meta.items() if k != "statistics"}
    assert Translator(older, ts.config).one_at_a_time  # ... runs one image per forward pass
    with pytest.raises(ConfigError, match="exported with --paper-sampling and its mode is fixed"):
        load(tmp_path / "generator-paper.onnx", device="cpu", paper_sampling=False)
    # translate runs it in its own mode without being asked
    Image.fromarray(noise_image(32, 32)).save(tmp_path / "in.png")
    assert main(["translate", "--checkpoint", str(tmp_path / "generator-paper.onnx"), "--input",
                 str(tmp_path / "in.png"), "--output", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "in.png").size == (32, 32)


def test_eval_export_output_does_not_depend_on_the_batch(exported):
    t = load(exported["dir"] / "generator.onnx", device="cpu")
    a, b, c = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(s)) * 2 - 1 for s in (1, 2, 3))
    torch.testing.assert_close(t(torch.cat([a, b]))[0], t(torch.cat([a, c]))[0], atol=1e-6, rtol=0)


def test_half_precision_onnx_and_safetensors(trained_run, exported, reference, tmp_path):
    results = export_model(trained_run, ["onnx", "safetensors"], tmp_path, half=True)
    full = {r["format"]: r["size_bytes"] for r in exported["report"]}
    for r in results:
        assert r.path.name == f"generator-fp16{SUFFIX[r.format]}" and r.dtype == "float16"
        assert r.size_bytes < 0.6 * full[r.format]
        assert 0 < r.max_abs_diff <= 2e-2  # reported: the cost of fp16 against the fp32 model
        t = load(r.path, device="cpu")
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        assert (t(x) - reference(x)).abs().max() <= 2e-2
    from safetensors import safe_open

    with safe_open(tmp_path / "generator-fp16.safetensors", "pt") as f:
        assert f.get_tensor("downs.0.conv.weight").dtype == torch.float16
    with pytest.raises(ConfigError, match="--half applies to safetensors, onnx and pretrained"):
        export_model(trained_run, ["torchscript"], tmp_path / "x", half=True)


def test_an_export_that_differs_from_pytorch_fails_and_writes_nothing(trained_run, tmp_path, monkeypatch):
    import copy
    import dataclasses

    from pix2pix.deploy.formats import FORMATS

    real = FORMATS["torchscript"].write

    def broken(module, *args):  # an exporter bug: one weight changed on the way
        bad = copy.deepcopy(module)
        with torch.no_grad():
            bad.out.conv.bias += 0.1
        return real(bad, *args)

    monkeypatch.setitem(FORMATS, "torchscript", dataclasses.replace(FORMATS["torchscript"], write=broken))
    with pytest.raises(ExportError, match=r"differs from PyTorch by up to 0\.\d+ \(tolerance 0\.001\); nothing"):
        export_model(trained_run, ["torchscript"], tmp_path / "model.ts")
    assert not (tmp_path / "model.ts").exists() and list(tmp_path.iterdir()) == []


def test_output_naming_rules(tmp_path):
    assert output_paths(tmp_path / "m.onnx", []) == {"onnx": tmp_path / "m.onnx"}  # format from suffix
    assert output_paths(tmp_path / "m.pt2", ["torch-export"]) == {"torch-export": tmp_path / "m.pt2"}
    assert output_paths(tmp_path / "d", ["onnx", "safetensors", "onnx"], paper_sampling=True, half=True) == {
        "onnx": tmp_path / "d" / "generator-paper-fp16.onnx",
        "safetensors": tmp_path / "d" / "generator-fp16.safetensors"}
    assert list(output_paths(tmp_path / "d", ["all"])) == ["safetensors", "torchscript", "torch-export", "onnx"]
    with pytest.raises(ConfigError, match="is a onnx file name, but --format asks for torchscript"):
        output_paths(tmp_path / "m.onnx", ["torchscript"])
    with pytest.raises(ConfigError, match="say which --format"):
        output_paths(tmp_path / "d", [])
    with pytest.raises(ConfigError, match=r"\.pt is not an export suffix"):
        output_paths(tmp_path / "m.pt", ["onnx"])


def test_export_and_load_errors_are_one_line(exported, tmp_path, capsys, monkeypatch):
    onnx_file = exported["dir"] / "generator.onnx"
    assert main(["export", "--checkpoint", str(onnx_file), "--output", str(tmp_path / "x.ts")]) == 2
    assert "cannot be exported again" in capsys.readouterr().err
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.safetensors: this safetensors file was not exported by pix2pix"):
        load(plain, device="cpu")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # the export extra, partly missing
    assert main(["export", "--checkpoint", str(exported["dir"] / "generator.safetensors"),
                 "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ONNX export needs the 'export' extra") and "pip install" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_core_runs_without_the_optional_extras(trained_run, tmp_path):
    """With onnx*, fastapi, uvicorn, ... unimportable: translate and safetensors export work, and the
    features that need an extra say which pip install to run."""
    import pix2pix

    script = textwrap.dedent("""
        import sys
        for name in ("onnx", "onnxruntime", "onnxscript", "fastapi", "starlette", "uvicorn", "python_multipart",
                     "multipart", "httpx", "playwright"):
            sys.modules[name] = None
        from pix2pix.cli import main
        run, image, out = sys.argv[1:]
        codes = [main(["translate", "--checkpoint", run, "--input", image, "--output", out]),
                 main(["export", "--checkpoint", run, "--output", out + "/g.safetensors"]),
                 main(["export", "--checkpoint", run, "--output", out + "/g.onnx"]),
                 main(["serve", "--checkpoint", run])]
        print("codes", *codes)
    """)
    Image.fromarray(noise_image(32, 32)).save(tmp_path / "in.png")
    src = str(Path(pix2pix.__file__).parents[1])
    proc = subprocess.run([sys.executable, "-c", script, str(trained_run), str(tmp_path / "in.png"),
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src})
    assert proc.stdout.strip().endswith("codes 0 0 2 2"), proc.stdout + proc.stderr[-3000:]
    assert (tmp_path / "out" / "in.png").is_file() and (tmp_path / "out" / "g.safetensors").is_file()
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert re.fullmatch(r"error: ONNX export needs the 'export' extra \(onnx\w* is not installed\): "
                        r"pip install 'pix2pix\[export\]' \(in a checkout: pip install -e '\.\[export\]'\)", errors[0])
    assert re.fullmatch(r"error: pix2pix serve needs the 'serve' extra \(\w+ is not installed\): "
                        r"pip install 'pix2pix\[serve\]' \(in a checkout: pip install -e '\.\[serve\]'\)", errors[1])
