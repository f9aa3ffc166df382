"""ExecuTorch + XNNPACK, as a user of ExecuTorch would run swarmedge's models (peer venv only).

The worker (worker.py) imports this file by path and calls VARIANTS, build and load. It
starts from sources["program"], the eager model torch.exported by program.py with dynamic
batch (1..64) and length (boids 1..784; SwarmFormer multiples of cluster_size up to seq_len),
lowers it to XNNPACK and writes a .pte that the ExecuTorch Python runtime runs. The dynamic
shapes are kept in every variant, so every batch size and boid count runs from one .pte.

Imports only the stdlib, numpy, torch/torchao and executorch.
"""

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

FP32 = "ExecuTorch XNNPACK fp32"
DYNAMIC = "ExecuTorch XNNPACK int8 dynamic"
STATIC = "ExecuTorch XNNPACK int8 static"

VARIANTS = {
    FP32: "torch.export program (dynamic batch 1..64 and length) -> to_edge_transform_and_lower with "
          "XnnpackPartitioner -> to_executorch; all float32. Outside the XNNPACK delegate, in ExecuTorch's "
          "portable kernels: the embedding, torch.roll (arange/fmod/index_select), means, the boid mask "
          "(where, split of the attention's q/k/v)",
    DYNAMIC: "as fp32, after PT2E with XNNPACKQuantizer get_symmetric_quantization_config(is_per_channel=True, "
             "is_dynamic=True) on the whole graph: int8 per-channel weights and per-call int8 activations "
             "for the linears only; embedding, attention matmuls and everything else stay fp32",
    STATIC: "as fp32, after PT2E with XNNPACKQuantizer static per-channel int8 on nn.Linear only "
            "(set_module_type; whole-graph static fails to lower: 'dependency cycles'), calibrated on the "
            "training inputs; embedding, matmuls and F.linear (the boid attention's in-projection) stay fp32",
}

# Written beside the .pte: the program's input names in call order (the runtime takes a list).
INPUTS_FILE = "inputs.json"


def build(variant: str, sources: dict[str, str], calibration: list[dict[str, np.ndarray]], out_dir: str) -> str:
    """Lower ``variant`` of the exported program to ``out_dir``/model.pte; return its path."""
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    program = torch.export.load(sources["program"])
    _drop_expression_ranges(program)
    names = _input_names(program)
    if variant != FP32:
        program = _quantize(program, names, variant == STATIC, calibration)
    # _check_ir_validity=False: executorch 1.5.1's dtype verifier takes len() of the first tensor
    # an op returning a tensor list gives (the boid attention's chunk -> split_with_sizes_copy),
    # which guards the batch to its example size: the .pte would then only run that batch.
    edge = to_edge_transform_and_lower(program, partitioner=[_partitioner()],
                                       compile_config=EdgeCompileConfig(_check_ir_validity=False))
    _log_outside_delegate(variant, edge.exported_program())
    out = Path(out_dir) / "model.pte"
    out.write_bytes(edge.to_executorch().buffer)
    (Path(out_dir) / INPUTS_FILE).write_text(json.dumps(names))
    return str(out)


def load(variant: str, artifact: str, threads: int):
    """A runner: feeds -> the first output as float32 numpy, computed on ``threads`` threads."""
    from executorch.runtime import Runtime

    names = json.loads((Path(artifact).parent / INPUTS_FILE).read_text())
    loaded = {}  # program, method, and the threadpool generation they were loaded under

    def method():
        if _use_threads(threads) or loaded.get("generation") != _POOL["generation"]:
            loaded.clear()  # drop the stale program before loading its successor
            program = Runtime.get().load_program(Path(artifact))
            loaded.update(program=program, method=program.load_method("forward"), generation=_POOL["generation"])
        return loaded["method"]

    method()  # load (and size the pool) now, not in the first timed call

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        outputs = method().execute([torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names])
        # The output may live in the method's planned memory, which the next call overwrites.
        return outputs[0].numpy().astype(np.float32, copy=True)

    return run


# XNNPACK's threadpool is process-global, and a loaded program keeps the pool it was loaded
# with: calling a program loaded before a resize crashes the process (measured: segfault, even
# with its method reloaded). So every resize starts a new generation, and a runner reloads its
# program when its generation is old.
_POOL = {"generation": 0}


def _use_threads(threads: int) -> bool:
    """Resize the threadpool to ``threads`` unless it has that size; True when resized."""
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() == threads:
        return False
    portable_lib._unsafe_reset_threadpool(threads)  # unsafe while a call runs; the worker runs one at a time
    torch.set_num_threads(threads)  # torch only wraps the numpy inputs; keep it in bounds too
    _POOL["generation"] += 1
    return True


def _drop_expression_ranges(program) -> None:
    """torch 2.13's torch.export.load puts range entries keyed by expressions (SwarmFormer's
    length ``8*s``) into the program's ShapeEnv, and every later decomposition then fails with
    "expected sympy.Symbol". The plain symbol's range is there too, so those entries are dropped."""
    for node in program.graph.nodes:
        val = node.meta.get("val") if node.op == "placeholder" else None
        for size in getattr(val, "shape", ()):
            if isinstance(size, torch.SymInt):
                ranges = size.node.shape_env.var_to_range
                for key in [k for k in ranges if not k.is_Symbol]:
                    del ranges[key]
                return


def _partitioner():
    """XNNPACK's partitioner, less one claim it cannot keep: executorch 1.5.1 delegates a
    trailing unsqueeze whatever its shape, then refuses to serialise one with two dynamic
    dimensions (the boid model's (B, N) -> (B, N, 1) mask). Those stay in ExecuTorch's kernels."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import UnsqueezeCopyConfig
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    class Unsqueeze(UnsqueezeCopyConfig):
        def check_constraints(self, node, ep) -> bool:
            dynamic = [d for d in node.meta["val"].shape if not isinstance(d, int)]
            return len(dynamic) <= 1 and super().check_constraints(node, ep)

    return XnnpackPartitioner(configs=[Unsqueeze if c is UnsqueezeCopyConfig else c for c in ALL_PARTITIONER_CONFIGS])


def _input_names(program) -> list[str]:
    """The user inputs of an ExportedProgram, in call order (e.g. ["boids", "lengths"])."""
    return [spec.arg.name for spec in program.graph_signature.input_specs
            if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT]


def _dynamic_shapes(program, names: list[str]) -> dict:
    """Rebuild the program's dynamic-shape spec from its symbolic input shapes, so a re-export
    keeps the same ranges: a dimension ``s`` becomes Dim(min, max), ``k*s`` becomes k * Dim
    (SwarmFormer's length, a multiple of cluster_size); a symbol shared by inputs (the batch)
    stays one Dim."""
    from torch.export import Dim

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    dims, spec = {}, {}
    for name in names:
        shape = placeholders[name].meta["val"].shape
        axes = {}
        for axis, size in enumerate(shape):
            if isinstance(size, int):
                continue
            expr = size.node.expr
            coeff, symbol = expr.as_coeff_Mul()
            if not symbol.is_Symbol:
                raise ValueError(f"input {name} axis {axis}: cannot re-export a dimension {expr}")
            if symbol not in dims:
                bounds = program.range_constraints[symbol]
                dims[symbol] = Dim(f"d{len(dims)}", min=int(bounds.lower), max=int(bounds.upper))
            axes[axis] = dims[symbol] if coeff == 1 else int(coeff) * dims[symbol]
        spec[name] = axes
    return spec


def _quantize(program, names: list[str], static: bool, calibration: list[dict[str, np.ndarray]]):
    """PT2E int8 of ``program`` for XNNPACK, re-exported with the same dynamic shapes."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer()
    if static:
        quantizer.set_module_type(torch.nn.Linear, get_symmetric_quantization_config(is_per_channel=True))
    else:
        quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    batches = [tuple(torch.from_numpy(feeds[n]) for n in names) for feeds in calibration]
    with torch.no_grad():
        for args in batches if static else batches[:1]:  # dynamic needs no statistics
            prepared(*args)
    converted = convert_pt2e(prepared)
    # Re-export from a real calibration batch (batch > 1 and a real length, so nothing specialises).
    with torch.no_grad():
        return torch.export.export(converted, batches[0], dynamic_shapes=_dynamic_shapes(program, names),
                                   strict=False)


def _log_outside_delegate(variant: str, edge_program) -> None:
    """Log which operators ExecuTorch runs itself (not in an XNNPACK delegate), and how often."""
    outside = Counter()
    delegates = 0
    for node in edge_program.graph.nodes:
        if node.op != "call_function":
            continue
        target = getattr(node.target, "__name__", str(node.target))
        if "call_delegate" in target:
            delegates += 1
        elif target != "getitem":
            outside[target] += 1
    log.info("%s: %d XNNPACK delegate call(s); outside the delegate: %s", variant, delegates,
             ", ".join(f"{k} x{v}" for k, v in sorted(outside.items())) or "nothing")
