"""Every way of running one model that the benchmark puts side by side.

A variant turns a thread count into a runner: ``feeds (numpy inputs) -> scores (numpy)``.
All variants see the same inputs; PyTorch ones get them as tensors.
"""

import io
import json
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.subjects import Subject, peers_python

Runner = Callable[[dict], np.ndarray]

OPTIMUM_PRESETS = ("avx512_vnni", "arm64")


@dataclass
class Variant:
    name: str
    group: str  # pytorch | onnxruntime | optimum | swarmedge | openvino | executorch
    bytes: int
    make: Callable[[int], Runner] | None  # threads -> runner; None: it failed to build (see note)
    note: str = ""
    onnx: Path | None = None  # the model file, for onnxruntime variants (per-operator profile)
    operators: Callable | None = None  # (feeds, repeat) -> a peer runtime's own per-node times
    failed: str | None = None  # what broke, for a variant that could not be built


def torch_variants(subject: Subject) -> list[Variant]:
    import torch

    from swarmedge.checkpoint import build_model, load_checkpoint

    model = build_model(load_checkpoint(subject.checkpoint)).eval()

    def runner_for(m) -> Callable[[int], Runner]:
        def make(threads: int) -> Runner:
            def run(feeds: dict) -> np.ndarray:
                torch.set_num_threads(threads)  # global in torch: set before every call
                with torch.inference_mode():
                    out = m(*(torch.from_numpy(v) for v in feeds.values()))
                return (out[0] if isinstance(out, tuple) else out).numpy()
            return run
        return make

    eager = Variant("PyTorch eager fp32", "pytorch", subject.checkpoint.stat().st_size, runner_for(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its deprecation
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        buf = io.BytesIO()
        torch.save(quantized.state_dict(), buf)
    ao = Variant("torch.ao dynamic int8", "pytorch", len(buf.getvalue()), runner_for(quantized),
                 "nn.Linear only; the embedding stays fp32")
    return [eager, ao]


def ort_session(path: Path, threads: int, optimization: str = "all"):
    import onnxruntime as ort

    from swarmedge.runtimes.bundle import OPT_LEVELS

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[optimization])
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def ort_runner(path: Path, optimization: str = "all") -> Callable[[int], Runner]:
    def make(threads: int) -> Runner:
        session = ort_session(path, threads, optimization)
        first = [session.get_outputs()[0].name]
        return lambda feeds: session.run(first, feeds)[0]
    return make


def onnx_variants(subject: Subject, workdir: Path, log=print) -> list[Variant]:
    from swarmedge.runtimes.bundle import Bundle

    plain = Bundle.open(subject.plain).model_path("fp32")
    out = [Variant("onnxruntime fp32 (plain export)", "onnxruntime", plain.stat().st_size, ort_runner(plain),
                   onnx=plain)]
    for name, path in optimum_models(plain, workdir / subject.name / f"optimum-{subject.key}", log).items():
        out.append(Variant(f"optimum {name} int8", "optimum", path.stat().st_size, ort_runner(path),
                           "ORTQuantizer, AutoQuantizationConfig." + name + "(is_static=False) on the plain export",
                           path))
    first = next(iter(subject.bundles.values()))[0]
    fp32 = Bundle.open(first).model_path("fp32")
    out.append(Variant("swarmedge fp32", "swarmedge", fp32.stat().st_size, ort_runner(fp32),
                       "rewritten graph", fp32))
    for graph, (bundle, presets) in subject.bundles.items():
        path = Bundle.open(bundle).model_path("int8")
        out.append(Variant(f"swarmedge int8 {graph}", "swarmedge", path.stat().st_size, ort_runner(path),
                           f"--target {presets[0]}" + (f" (same graph for {', '.join(presets[1:])})"
                                                       if len(presets) > 1 else ""), path))
        out.append(Variant(f"swarmedge int8 {graph} {PER_INPUT}", "swarmedge", path.stat().st_size,
                           per_input_runner(path), "what `swarmedge run`/`eval` and the Python API execute: each "
                           "input alone (batch-invariant scores), one single-threaded worker per thread"))
    return out


# Suffix of the variants that run as the device runner does (runtimes.batching).
PER_INPUT = "per input"


def per_input_runner(path: Path) -> Callable[[int], Runner]:
    """The device runner's way (``runtimes.batching``): one input per call, ``threads``
    workers with one onnxruntime thread each."""
    from swarmedge.runtimes.batching import PerInputRunner

    def make(threads: int) -> Runner:
        session = ort_session(path, 1)
        return PerInputRunner(session, session.get_outputs()[0].name, threads).run
    return make


def optimum_models(fp32: Path, out_dir: Path, log=print) -> dict[str, Path]:
    """optimum-onnx's dynamic presets applied to ``fp32`` in the peers venv (cached by file)."""
    python = peers_python()
    if python is None:
        log("  optimum-onnx not installed (make peers): its rows are left out")
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p: out_dir / f"{p}.onnx" for p in OPTIMUM_PRESETS}
    if not all(p.is_file() for p in wanted.values()):
        log("  quantizing with optimum-onnx (peers venv)")
        script = Path(__file__).parent / "peers" / "optimum_quantize.py"
        done = subprocess.run([python, str(script), str(fp32), str(out_dir), *OPTIMUM_PRESETS],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"optimum-onnx failed: {done.stderr.strip().splitlines()[-1:]}")
        json.loads(done.stdout)  # the script reports what it wrote
    return wanted
