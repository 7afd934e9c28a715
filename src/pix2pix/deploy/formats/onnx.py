"""``.onnx``: an ONNX graph run by onnxruntime (``pip install 'pix2pix[export]'``), mode fixed at export."""

from __future__ import annotations

import copy
import json

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...errors import CheckpointError, ExportError, missing_extra
from .common import (Opened, Program, Source, dynamic_shapes, example_input, exporting, first_line,
                     min_blocks)
from .metadata import META_KEY, parse_metadata


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise missing_extra("running .onnx models", "export", e) from None
    return onnxruntime


class OnnxProgram(Program):
    """An onnxruntime session; CUDA when asked for and available, else the CPU."""

    def __init__(self, source: Source, name: str, meta: dict, device: torch.device):
        super().__init__(meta, device)
        import numpy as np

        ort = import_onnxruntime()
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                                providers=providers)
        except Exception as e:  # InvalidGraph, InvalidProtobuf, NotImplemented ...
            raise CheckpointError(f"{name}: onnxruntime cannot load this model ({first_line(e)})") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).numpy().astype(self.input_dtype, copy=False)
        (y,) = self.session.run(None, {self.input_name: arr})
        return torch.from_numpy(y).to(device=x.device, dtype=torch.float32)


def read(source: Source, name: str, device: torch.device) -> Opened:
    program = OnnxProgram(source, name, {}, device)
    text = program.session.get_modelmeta().custom_metadata_map.get(META_KEY)
    cfg, meta = parse_metadata(text, name, "ONNX")
    program.meta, program.paper_sampling = meta, meta.get("mode") == "paper_sampling"
    return Opened(program, cfg, "onnx", device, meta)


class Float16(nn.Module):
    """fp16 weights and arithmetic inside, float32 in and out (same pre/post-processing as fp32)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(module).half()
        self.train(module.training)  # a new module starts in training mode; keep the wrapped one's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(torch.float16)).to(torch.float32)


def write(module: nn.Module, cfg: TrainConfig, meta: dict, half: bool, opset: int | None) -> bytes:
    import onnx

    if half:
        module = Float16(module)
    with exporting():
        program = torch.onnx.export(module, (example_input(cfg, 2, 2),), dynamo=True, input_names=["input"],
                                    output_names=["output"],
                                    dynamic_shapes=dynamic_shapes(cfg.model.multiple, min_blocks(cfg)),
                                    opset_version=opset, verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {META_KEY: json.dumps(meta)})
    m = cfg.model
    proto.doc_string = (f"pix2pix generator ({m.netG}, {meta['mode']} mode): input (batch, {m.input_nc}, H, W) "
                        f"float32 in [-1, 1], H and W multiples of {m.multiple}; output (batch, {m.output_nc}, "
                        "H, W) in [-1, 1]")
    if proto.ByteSize() >= 2**31:
        raise ExportError("the ONNX model is over 2 GB, the protobuf limit; export with --half or a smaller --ngf")
    return proto.SerializeToString()


def without_sampling(data: bytes) -> bytes:
    """A copy of an ONNX graph whose dropout masks (RandomUniformLike) are ones instead of random,
    so a paper-sampling export can be compared exactly with ``keep_all_dropout``."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(data)
    nodes = []
    for node in proto.graph.node:
        if node.op_type != "RandomUniformLike":
            nodes.append(node)
            continue
        x, out = node.input[0], node.output[0]
        nodes += [helper.make_node("Shape", [x], [f"{out}__shape"]),
                  helper.make_node("ConstantOfShape", [f"{out}__shape"], [f"{out}__ones"],
                                   value=helper.make_tensor(f"{out}__one", onnx.TensorProto.FLOAT, [1], [1.0])),
                  helper.make_node("CastLike", [f"{out}__ones", x], [out])]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto.SerializeToString()


def require_exporter() -> None:
    """The ONNX exporter's packages, or one line saying how to install them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise missing_extra("ONNX export", "export", e) from None
