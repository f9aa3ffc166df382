"""OpenVINO (+NNCF) as a peer of swarmedge: the adapter the benchmark's peer worker loads.

Runs in the OpenVINO venv (.venv-openvino); imports only the stdlib, numpy, openvino and nncf.
The worker calls VARIANTS, build(), load() and operators(); see benchmarks/peers/worker.py.

Choices, and why:
- Precision: on CPUs with AVX512-BF16 or AMX the CPU plugin's default INFERENCE_PRECISION_HINT
  is bf16, so a model read as "fp32" silently runs in bf16 there. Every variant here compiles
  with the hint forced to f32 (the int8 ones: whatever NNCF left in float runs in f32), so the
  rows mean what they say on any machine. load() checks the compiled model kept it.
- fp32 is compiled per input shape (model reshaped to the feed's static shape; compiled models
  cached by shape): OpenVINO's CPU plugin ran 14-30% faster static than dynamic here. The first
  call with a new shape compiles (the benchmark's warm-up calls absorb it).
- int8 keeps the dynamic batch/length axes: with static shapes the NNCF int8 SwarmFormer gave
  wrong logits and at times aborted the process with heap corruption (GUIDE.md section 6), so a
  static int8 configuration is deliberately not offered.
- Threads: INFERENCE_NUM_THREADS=threads, one stream, LATENCY hint; load() reads the values back
  from the compiled model and refuses to run if the plugin changed them.
"""

import os

# Telemetry off, before nncf/openvino_telemetry are imported. The documented opt-out is the
# `opt_in_out --opt_out` command, which writes a consent file in the user's home; an adapter should
# not change the user's settings, so it uses NNCF's own switch instead: with NNCF_CI set, nncf
# replaces its telemetry object by a no-op stub (nncf/telemetry/wrapper.py, nncf 3.4). CI=true also
# makes openvino_telemetry decline for the tools that pass disable_in_ci (NNCF does). The OpenVINO
# runtime itself (read_model/compile_model) sends nothing; only its ovc converter would.
os.environ.setdefault("NNCF_CI", "1")
os.environ.setdefault("CI", "true")

import contextlib  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

FP32 = "OpenVINO fp32"
INT8_DEFAULT = "OpenVINO int8 (NNCF default)"
INT8_TRANSFORMER = "OpenVINO int8 (NNCF transformer)"

VARIANTS = {
    FP32: "openvino.Core().read_model(plain ONNX), CPU plugin, INFERENCE_PRECISION_HINT forced to f32 "
          "(the plugin's default on AVX512-BF16/AMX CPUs is bf16); reshaped to each input's static shape "
          "and compiled once per shape",
    INT8_DEFAULT: "nncf.quantize(OpenVINO model of the plain ONNX, ~300 training inputs, default preset "
                  "(performance: symmetric), no model_type), saved as IR with float weights kept fp32; "
                  "dynamic batch/length (static int8 gave wrong logits and heap corruption); what NNCF "
                  "leaves float runs f32",
    INT8_TRANSFORMER: "nncf.quantize(..., model_type=nncf.ModelType.TRANSFORMER) (preset mixed: "
                      "asymmetric activations), otherwise as NNCF default",
}

# Compiled static-shape fp32 models kept per runner; the benchmark uses a handful of shapes,
# the accuracy pass (boids: one count per batch) a few more.
_SHAPE_CACHE = 16


def _config(threads: int, profile: bool = False) -> dict:
    """CPU plugin properties: exactly ``threads`` threads, one stream, f32 float math."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "PERF_COUNT": profile,
    }


def _compile(core: ov.Core, model: ov.Model, threads: int, profile: bool = False) -> ov.CompiledModel:
    compiled = core.compile_model(model, "CPU", _config(threads, profile))
    # The plugin may adjust hints; check it kept what the variant's note claims.
    got = {"INFERENCE_NUM_THREADS": int(compiled.get_property("INFERENCE_NUM_THREADS")),
           "NUM_STREAMS": int(compiled.get_property("NUM_STREAMS")),
           "INFERENCE_PRECISION_HINT": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}
    want = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": str(ov.Type.f32)}
    if got != want:
        raise RuntimeError(f"OpenVINO compiled with {got}, not {want}")
    return compiled


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to stdout to stderr meanwhile: the worker's protocol owns stdout,
    and NNCF writes its progress bars (rich) and its log (a handler bound to the original
    sys.stdout) there. Done at the file-descriptor level so that both, and any native code, move."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _nncf_dataset(calibration: list[dict[str, np.ndarray]]):
    import nncf

    # Each item is one batch of feeds; OpenVINO models take a dict of input name -> array.
    return nncf.Dataset(calibration, lambda feeds: {k: np.ascontiguousarray(v) for k, v in feeds.items()})


def build(variant: str, sources: dict[str, str], calibration: list[dict[str, np.ndarray]], out_dir: str) -> str:
    out = Path(out_dir)
    if variant == FP32:
        # Nothing to convert: the variant reads the ONNX file itself at load time.
        target = out / "model.onnx"
        shutil.copyfile(sources["onnx"], target)
        return str(target)
    if variant not in (INT8_DEFAULT, INT8_TRANSFORMER):
        raise ValueError(f"unknown OpenVINO variant {variant!r}")
    import nncf

    model = ov.Core().read_model(sources["onnx"])
    kwargs = {"model_type": nncf.ModelType.TRANSFORMER} if variant == INT8_TRANSFORMER else {}
    # subset_size counts dataset items, here batches (NNCF cannot see a list's batch size):
    # every calibration batch is used once.
    with _stdout_to_stderr():
        quantized = nncf.quantize(model, _nncf_dataset(calibration), subset_size=len(calibration), **kwargs)
    target = out / "model.xml"
    # compress_to_fp16=False: save_model would otherwise round the float weights NNCF left
    # (e.g. the embedding) to fp16, which is not part of what NNCF's int8 means.
    ov.save_model(quantized, target, compress_to_fp16=False)
    return str(target)


def _output(request: ov.InferRequest) -> np.ndarray:
    # The output tensor's memory is reused by the next call: hand back a copy.
    return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


def _static_runner(core: ov.Core, model: ov.Model, threads: int):
    """A runner that compiles ``model`` once per distinct input shape (LRU of _SHAPE_CACHE)."""
    requests: OrderedDict = OrderedDict()

    def request_for(feeds: dict[str, np.ndarray]) -> ov.InferRequest:
        key = tuple((name, feeds[name].shape) for name in sorted(feeds))
        if key in requests:
            requests.move_to_end(key)
            return requests[key]
        shaped = model.clone()
        shaped.reshape({name: ov.PartialShape(list(shape)) for name, shape in key})
        requests[key] = _compile(core, shaped, threads).create_infer_request()
        if len(requests) > _SHAPE_CACHE:
            requests.popitem(last=False)
        return requests[key]

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = request_for(feeds)
        request.infer(feeds)
        return _output(request)

    return run, request_for


def load(variant: str, artifact: str, threads: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    core = ov.Core()
    model = core.read_model(artifact)
    if variant == FP32:
        return _static_runner(core, model, threads)[0]
    if variant not in (INT8_DEFAULT, INT8_TRANSFORMER):
        raise ValueError(f"unknown OpenVINO variant {variant!r}")
    request = _compile(core, model, threads).create_infer_request()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        request.infer(feeds)
        return _output(request)

    return run


def operators(variant: str, artifact: str, feeds: dict[str, np.ndarray], repeat: int) -> list[dict]:
    """Per-node times from OpenVINO's own counters (PERF_COUNT), one thread, averaged over
    ``repeat`` calls after one warm-up call; nodes the plugin fused away or skipped are left out.
    "type" is the executed node's type (OpenVINO's, e.g. FullyConnected); "fused" adds the names
    of the original layers the node covers."""
    core = ov.Core()
    model = core.read_model(artifact)
    if variant == FP32:  # the same static-shape graph the fp32 runner executes
        model.reshape({name: ov.PartialShape(list(a.shape)) for name, a in feeds.items()})
    compiled = _compile(core, model, 1, profile=True)
    # The original (ONNX) layers each executed node stands for: what the plugin fused into it.
    original = {op.get_friendly_name(): [n for n in op.get_rt_info()["originalLayersNames"].astype(str).split(",") if n]
                for op in compiled.get_runtime_model().get_ordered_ops()}
    request = compiled.create_infer_request()
    request.infer(feeds)
    totals: dict[str, dict] = {}
    for _ in range(max(repeat, 1)):
        request.infer(feeds)
        # get_profiling_info() covers only the latest call: accumulate over the repeats.
        for info in request.get_profiling_info():
            if info.status != ov.ProfilingInfo.Status.EXECUTED:
                continue
            row = totals.setdefault(info.node_name, {"name": info.node_name, "type": info.node_type,
                                                     "exec_type": info.exec_type, "ms": 0.0,
                                                     "fused": original.get(info.node_name, [])})
            row["ms"] += info.real_time.total_seconds() * 1e3
    for row in totals.values():
        row["ms"] /= max(repeat, 1)
    return list(totals.values())
