"""``pix2pix export`` and ``pix2pix serve``: the commands that take a model out of training."""

from __future__ import annotations

import argparse

from . import command


# ----- export -----------------------------------------------------------------------------------
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder, checkpoint file, or a .safetensors export")
    p.add_argument("--format", dest="formats", nargs="+", action="extend", default=[], metavar="FORMAT",
                   choices=["safetensors", "torchscript", "torch-export", "onnx", "all"],
                   help="safetensors, torchscript (.ts), torch-export (.pt2), onnx, or all; several allowed "
                        "(optional when --output ends in one of those suffixes)")
    p.add_argument("--output", required=True, metavar="FILE|DIR",
                   help="a file (model.onnx, model.ts, ...) for one format, or a folder that receives "
                        "generator[-paper][-fp16].SUFFIX per format")
    p.add_argument("--paper-sampling", action="store_true",
                   help="export the paper's test-time behaviour (dropout on, batch statistics) instead of eval mode")
    p.add_argument("--half", action="store_true", help="fp16 weights (onnx, safetensors); the cost is reported")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest allowed difference from PyTorch (1e-3; 2e-2 with --half)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (the exporter's default)")
    p.add_argument("--json", metavar="FILE", help="also write the verification results as JSON")


@command("export", _export_args)
def cmd_export(args: argparse.Namespace) -> int:
    """Export the generator to safetensors, TorchScript, torch.export or ONNX, verified against PyTorch."""
    from ..export import export_model, format_results
    from ..fileio import save_json

    results = export_model(args.checkpoint, args.formats, args.output, paper_sampling=args.paper_sampling,
                           half=args.half, tolerance=args.tolerance, opset=args.opset)
    print(format_results(results))
    if args.json:
        save_json([r.to_dict() for r in results], args.json)
    return 0


# ----- serve ------------------------------------------------------------------------------------
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="run folder, checkpoint file, or exported .safetensors / .onnx / .pt2 / .ts file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--max-bytes", type=int, default=20 * 2**20, help="largest request body in bytes (20 MiB)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image in pixels (4096 x 4096)")
    p.add_argument("--max-batch", type=int, default=8, help="requests that may share one forward pass (8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--paper-sampling", action="store_true",
                   help="dropout and batch statistics on, as the paper (each request then runs alone)")


@command("serve", _serve_args)
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model over HTTP: POST /translate, GET /health, GET /info, and a web page at /."""
    from ..inference import load
    from ..serve import serve  # raises a one-line ConfigError when the serve extra is missing

    translator = load(args.checkpoint, device=args.device, paper_sampling=args.paper_sampling or None)
    serve(translator, host=args.host, port=args.port, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
          max_batch=args.max_batch)
    return 0
