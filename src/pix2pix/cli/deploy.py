"""``pix2pix translate``, ``pix2pix export`` and ``pix2pix serve``: the commands that use a trained model."""

from __future__ import annotations

import argparse
import logging

from .options import PAPER_SAMPLING_HELP, SEED_HELP, Command

log = logging.getLogger("pix2pix")
MODEL_HELP = ("a run folder or checkpoint; an export (.safetensors, .onnx, .pt2, .ts); a Hugging Face folder; the "
              "reference implementation's *_net_G.pth; or a downloaded model's name (pix2pix download --model)")


# ----- translate --------------------------------------------------------------------------------
def _translate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input", required=True, nargs="+", metavar="FILE|DIR|GLOB", help="images to translate")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the results (STEM.png each)")
    p.add_argument("--side-by-side", action="store_true", help="write input | output (| target)")
    p.add_argument("--paired", action="store_true",
                   help="inputs are pairs in the training layout (AB files or A/ B/ folders): the model's "
                        "input side is translated and the other side shown as target")
    p.add_argument("--native-size", action="store_true", help="translate at each image's own size (padded)")
    p.add_argument("--paper-sampling", action="store_true", help=PAPER_SAMPLING_HELP)
    p.add_argument("--sampling-seed", type=int, default=None, help=SEED_HELP)
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--report", action="store_true",
                   help="also write OUTPUT/index.html: input | output | target per image, with scores where a "
                        "target exists (--paired)")
    p.add_argument("--trust-program", action="store_true",
                   help="allow a .pt2 or .ts --checkpoint: such programs can run code or touch files; only for "
                        "files whose source you trust")


def cmd_translate(args: argparse.Namespace) -> int:
    from ..deploy import load
    from ..deploy.files import collect_inputs, translate_files

    # without --paper-sampling an exported program keeps the mode it was exported in
    translator = load(args.checkpoint, device=args.device, paper_sampling=args.paper_sampling or None,
                      batch_size=args.batch_size, seed=args.sampling_seed, trust_program=args.trust_program)
    items = collect_inputs(args.input, paired=args.paired)
    report = translate_files(translator, items, args.output, side_by_side=args.side_by_side,
                             native_size=args.native_size, strict=args.strict)
    log.info("translated %d images into %s%s", report.written, args.output,
             f"; skipped {len(report.skipped)} unreadable" if report.skipped else "")
    if args.report:
        from ..evaluate.report import write_translate_report
        from ..fileio import writing

        with writing(f"{args.output}/index.html", f"the {report.written} translated images are complete"):
            page = write_translate_report(args.output, items, report, translator, args.side_by_side)
        log.info("report: %s", page)
    return 0


# ----- export -----------------------------------------------------------------------------------
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="MODEL",
                   help=MODEL_HELP.replace("an export (.safetensors, .onnx, .pt2, .ts)", "a .safetensors export"))
    p.add_argument("--format", dest="formats", nargs="+", action="extend", default=[], metavar="FORMAT",
                   choices=["safetensors", "torchscript", "torch-export", "onnx", "pretrained", "all"],
                   help="safetensors, torchscript (.ts), torch-export (.pt2), onnx, all (those four), or pretrained "
                        "(a Hugging Face folder); several allowed (optional when --output ends in one of those "
                        "suffixes)")
    p.add_argument("--output", required=True, metavar="FILE|DIR",
                   help="a file (model.onnx, model.ts, ...) for one format, a folder that receives "
                        "generator[-paper][-fp16].SUFFIX per format, or with --format pretrained the folder itself")
    p.add_argument("--paper-sampling", action="store_true",
                   help="export the paper's test-time behaviour (dropout on, each image normalised by its own "
                        "statistics) instead of eval mode")
    p.add_argument("--half", action="store_true", help="fp16 weights (onnx, safetensors); the cost is reported")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest allowed difference from PyTorch (1e-3; 2e-2 with --half)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (the exporter's default)")
    p.add_argument("--json", metavar="FILE", help="also write the verification results as JSON")


def cmd_export(args: argparse.Namespace) -> int:
    from ..deploy.export import export_model, format_results
    from ..fileio import check_writable, save_json, writing

    if args.json:
        check_writable(args.json, what="--json file")
    results = export_model(args.checkpoint, args.formats, args.output, paper_sampling=args.paper_sampling,
                           half=args.half, tolerance=args.tolerance, opset=args.opset)
    print(format_results(results))
    if args.json:
        with writing(args.json, "the exported files are complete"):
            save_json([r.to_dict() for r in results], args.json)
    return 0


# ----- serve ------------------------------------------------------------------------------------
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--max-bytes", type=int, default=20 * 2**20, help="largest request body in bytes (20 MiB)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image in pixels (4096 x 4096)")
    p.add_argument("--max-batch", type=int, default=8, help="requests that may share one forward pass (8)")
    p.add_argument("--max-in-flight", type=int, default=16,
                   help="translation requests being read, decoded, queued or run at once; more get 503 (16)")
    p.add_argument("--max-pixels-in-flight", type=int, default=2 * 4096 * 4096,
                   help="decoded pixels among them; more get 503 (2 x 4096 x 4096: about 2 GB at peak)")
    p.add_argument("--max-connections", type=int, default=256, help="open connections; more get 503 (256)")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds for a request's headers (10)")
    p.add_argument("--body-timeout", type=float, default=60.0, help="seconds for a request's body, else 408 (60)")
    p.add_argument("--keep-alive", type=float, default=5.0, help="seconds an idle connection stays open (5)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--paper-sampling", action="store_true",
                   help=PAPER_SAMPLING_HELP)
    p.add_argument("--trust-program", action="store_true",
                   help="allow a .pt2 or .ts --checkpoint: such programs can run code or touch files; only for "
                        "files whose source you trust")


def cmd_serve(args: argparse.Namespace) -> int:
    from ..deploy import load
    from ..deploy.serve import ServerLimits, serve  # a one-line ConfigError when the serve extra is missing

    limits = ServerLimits(max_in_flight=args.max_in_flight, max_pixels_in_flight=args.max_pixels_in_flight,
                          max_connections=args.max_connections, header_timeout=args.header_timeout,
                          body_timeout=args.body_timeout, keep_alive=args.keep_alive)

    translator = load(args.checkpoint, device=args.device, paper_sampling=args.paper_sampling or None,
                      trust_program=args.trust_program)
    serve(translator, host=args.host, port=args.port, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
          max_batch=args.max_batch, limits=limits)
    return 0


COMMANDS = [
    Command("translate", _translate_args, cmd_translate, "Translate images, folders or globs with a model.",
            "pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side"),
    Command("export", _export_args, cmd_export, "Export to ONNX, TorchScript, .pt2, safetensors, HF folders.",
            "pix2pix export --checkpoint runs/facades --output facades.onnx"),
    Command("serve", _serve_args, cmd_serve, "Serve a model over HTTP, with a web page.",
            "pix2pix serve --checkpoint runs/facades --port 8000"),
]
