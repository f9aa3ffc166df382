"""torch.onnx export (dynamo) with named inputs/outputs and dynamic batch and length.

One small spec per model: its input/output names, dynamic axes and a factory of example
inputs (used for tracing and for the parity check).
"""

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.export import Dim

from swarmedge import __version__
from swarmedge.export.graph import (
    dedupe_initializers,
    fold_constant_transposes,
    set_metadata,
    strip_initializer_value_info,
)

DEFAULT_OPSET = 20  # torch 2.13's dynamo exporter default; onnxruntime 1.31 runs <= 26


@dataclass(frozen=True)
class ExportSpec:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # (batch, length) pairs checked for parity: several batch sizes and lengths
    parity_shapes: tuple[tuple[int, int], ...]

    def dynamic_shapes(self, config: dict) -> dict:
        batch = Dim("batch", min=1, max=65536)
        if self.inputs == ("input_ids",):
            # SwarmFormer lengths are multiples of cluster_size; nothing in the graph checks it,
            # so the runtime validates lengths before inference.
            return {"input_ids": {0: batch, 1: config["cluster_size"] * Dim("clusters", min=1, max=65536)}}
        return {"boids": {0: batch, 1: Dim("boids", min=1, max=784)}, "lengths": {0: batch}}

    def example(self, config: dict, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Random inputs of the given batch size and length (tokens, or boids)."""
        if self.inputs == ("input_ids",):
            ids = rng.integers(1, config["vocab_size"], size=(batch, length), dtype=np.int64)
            for row in ids[1::2]:  # every other row padded with 0 after a random cut, as real texts are
                row[rng.integers(1, length + 1):] = 0
            return {"input_ids": ids}
        boids = rng.uniform(-10, 10, size=(batch, length, 2)).astype(np.float32)
        lengths = rng.integers(1, length + 1, size=batch).astype(np.int64)
        lengths[0] = length
        for b, n in enumerate(lengths):
            boids[b, n:] = 0.0
        return {"boids": boids, "lengths": lengths}


def spec_for(model_type: str, config: dict) -> ExportSpec:
    if model_type == "swarmformer":
        s, L = config["cluster_size"], config["seq_len"]
        shapes = ((1, L), (3, L), (2, s), (2, 2 * L), (5, max(s, L // 2 // s * s)))
        return ExportSpec(("input_ids",), ("logits",), shapes)
    return ExportSpec(("boids", "lengths"), ("scores", "mean_position", "trajectory"),
                      ((1, 120), (4, 200), (2, 1), (3, 37)))


def export_onnx(model, model_type: str, path: Path, opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> dict:
    """Export ``model`` to one ONNX file at ``path``; return what the graph passes changed."""
    spec = spec_for(model_type, model.config.to_dict())
    config = model.config.to_dict()
    rng = np.random.default_rng(0)
    # Trace at batch 2 and a non-trivial length so neither dimension specialises to 1.
    length = 4 * config["cluster_size"] if model_type == "swarmformer" else 50
    args = tuple(torch.from_numpy(v) for v in spec.example(config, 2, length, rng).values())
    with _quiet():
        program = torch.onnx.export(
            model.eval(), args, dynamo=True, input_names=list(spec.inputs), output_names=list(spec.outputs),
            dynamic_shapes=dict(zip(spec.inputs, spec.dynamic_shapes(config).values())),
            opset_version=opset, external_data=False, verbose=False, optimize=True,
        )
    proto = program.model_proto
    passes = {
        "folded_transposes": fold_constant_transposes(proto),
        "deduplicated_initializers": dedupe_initializers(proto),
    }
    strip_initializer_value_info(proto)
    proto.producer_name = "swarmedge"
    proto.producer_version = __version__
    proto.doc_string = f"swarmedge {model_type} classifier"
    set_metadata(proto, {
        "swarmedge.model_type": model_type,
        "swarmedge.config": json.dumps(config),
        "swarmedge.inputs": ",".join(spec.inputs),
        "swarmedge.outputs": ",".join(spec.outputs),
        **(metadata or {}),
    })
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))
    return passes


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress and warns about torchvision; keep the CLI's output clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
