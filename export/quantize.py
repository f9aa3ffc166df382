"""int8 quantization with onnxruntime.quantization: dynamic (default) or static QDQ."""

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import onnx

from swarmedge.errors import InputError
from swarmedge.export.graph import strip_initializer_value_info
from swarmedge.export.targets import TargetPreset

METHODS = ("minmax", "entropy", "percentile")
# MatMul carries nearly all the arithmetic; Gather is SwarmFormer's embedding table, which
# is most of its bytes (dynamic quantization stores it as int8 and dequantizes rows).
DYNAMIC_OPS = ["MatMul", "Gather"]
STATIC_OPS = ["MatMul", "Gather"]
# A product with a weight this narrow in either dimension (the boid model's 3-d ones) costs
# more to quantize and dequantize at run time than int8 saves: such MatMuls stay float.
MIN_WEIGHT_DIM = 16


def small_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose constant weight has a dimension below MIN_WEIGHT_DIM."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and len(n.input) == 2
            and n.input[1] in shapes and min(shapes[n.input[1]][-2:], default=0) < MIN_WEIGHT_DIM]


def quantized_products(model: onnx.ModelProto) -> tuple[int, int]:
    """(int8 products, all products) in a quantized graph: MatMulInteger / QLinearMatMul nodes,
    and MatMuls fed by a DequantizeLinear of a constant (QDQ); float MatMuls count only in all."""
    consts = {t.name for t in model.graph.initializer}
    dq_of_const = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in consts}
    quantized = total = 0
    for n in model.graph.node:
        if n.op_type in ("MatMulInteger", "QLinearMatMul"):
            quantized += 1
            total += 1
        elif n.op_type == "MatMul":
            total += 1
            quantized += any(x in dq_of_const for x in n.input)
    return quantized, total


def quantize(fp32_path: Path, out_path: Path, preset: TargetPreset, mode: str = "dynamic",
             calibration_feeds: list[dict] | None = None, method: str = "minmax") -> dict:
    """Write the int8 model of ``fp32_path`` to ``out_path``; return how it was quantized."""
    from onnxruntime.quantization import QuantType

    qtype = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    with tempfile.TemporaryDirectory(prefix=".swarmedge-quant-", dir=Path(out_path).parent) as tmp:
        # Quantizer temp files (augmented models, histograms) stay inside the staging area.
        clean = Path(tmp) / "clean.onnx"
        model = onnx.load(str(fp32_path))
        strip_initializer_value_info(model)
        onnx.save(model, str(clean))
        kept_float = small_matmuls(model)
        with _quiet_quantizer(), contextlib.chdir(tmp):
            if mode == "dynamic":
                from onnxruntime.quantization import quantize_dynamic

                quantize_dynamic(
                    str(clean), str(out_path), op_types_to_quantize=DYNAMIC_OPS, nodes_to_exclude=kept_float,
                    per_channel=preset.per_channel, reduce_range=preset.reduce_range,
                    weight_type=qtype[preset.weight_type],
                    extra_options={"WeightSymmetric": True, "MatMulConstBOnly": True},
                )
            elif mode == "static":
                _quantize_static(clean, out_path, preset, calibration_feeds, method, qtype, kept_float)
            else:
                raise InputError(f"unknown quantization mode {mode!r}; choose dynamic or static")
    products, total = quantized_products(onnx.load(str(out_path)))
    record = {"mode": mode, "format": "QOperator" if mode == "dynamic" else "QDQ",
              # what the int8 graph really holds: with none, it runs the fp32 computation
              "quantized_matmuls": products, "matmuls": total,
              "target": preset.to_dict(), "op_types": DYNAMIC_OPS if mode == "dynamic" else STATIC_OPS,
              "kept_float": {"nodes": kept_float,
                             "why": f"a weight dimension below {MIN_WEIGHT_DIM}: int8 would cost more than it saves"}}
    if mode == "static":
        record["calibration_method"] = method
    return record


def _quantize_static(clean, out_path, preset, feeds, method, qtype, exclude) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static

    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
    if not feeds:
        raise InputError("static quantization needs calibration data: pass --calibration DATA")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = iter(feeds)

    quantize_static(
        str(clean), str(out_path), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=STATIC_OPS,
        nodes_to_exclude=exclude,
        per_channel=preset.per_channel, reduce_range=preset.reduce_range,
        activation_type=qtype[preset.activation_type], weight_type=qtype[preset.weight_type],
        calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                          "percentile": CalibrationMethod.Percentile}[method],
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "MatMulConstBOnly": True},
    )


@contextlib.contextmanager
def _quiet_quantizer():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "Please consider to run pre-processing" on every call
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
