"""Latency profiling on the device (numpy + onnxruntime only): what a bundle costs here.

For each (precision, threads, batch, length): session creation and first-inference time,
latency statistics over repeated runs after warm-up, throughput, memory, model size,
multiply-accumulates and the achieved rate; optionally onnxruntime's per-operator profile.
"""

import json
import os
import platform
import resource
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.limits import MAX_BATCH, MAX_REPEAT, MAX_WARMUP
from swarmedge.runtimes.bundle import EXTERNAL_DATA_FOLDER, NO_FOLDER, Bundle
from swarmedge.runtimes.cost import macs_per_sample

NOISY_CV = 0.25  # coefficient of variation above which the machine was likely busy
NOISY_TAIL = 3.0  # p99 / p50 above which the machine was likely busy
PRECISIONS = ("int8", "fp32")
DEFAULT_BOIDS = 150  # a typical digit's boid count


def synthetic_feeds(manifest: dict, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of the right shape and range: token ids, or boids spread over the habitat."""
    if manifest["model_type"] == "swarmformer":
        multiple = manifest["preprocessing"]["multiple_of"]
        if length % multiple:
            raise InputError(f"--seq-len {length} must be a multiple of {multiple} for this model")
        return {"input_ids": rng.integers(1, manifest["config"]["vocab_size"], (batch, length), dtype=np.int64)}
    h = manifest["preprocessing"]["habitat_scaling"]
    return {"boids": rng.uniform(-h, h, (batch, length, 2)).astype(np.float32),
            "lengths": np.full(batch, length, dtype=np.int64)}


def latency_stats(ms: np.ndarray) -> dict:
    q = np.percentile(ms, [50, 90, 95, 99])
    return {"mean_ms": float(ms.mean()), "std_ms": float(ms.std()), "min_ms": float(ms.min()),
            "p50_ms": float(q[0]), "p90_ms": float(q[1]), "p95_ms": float(q[2]), "p99_ms": float(q[3]),
            "max_ms": float(ms.max())}


def profile_config(bundle: Bundle, precision: str, threads: int, batch: int, length: int,
                   warmup: int, repeat: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = synthetic_feeds(bundle.manifest, batch, length, rng)
    t0 = time.perf_counter()
    session = bundle.session(precision, threads)
    session_ms = (time.perf_counter() - t0) * 1e3
    output = [session.get_outputs()[0].name]
    t0 = time.perf_counter()
    session.run(output, feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        session.run(output, feeds)
    times = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        session.run(output, feeds)
        times[i] = (time.perf_counter() - t0) * 1e3
    stats = latency_stats(times)
    macs = macs_per_sample(bundle.manifest, length) * batch
    noisy = stats["std_ms"] / stats["mean_ms"] > NOISY_CV or stats["p99_ms"] / stats["p50_ms"] > NOISY_TAIL
    return {
        "precision": precision, "threads": threads, "batch": batch, "length": length,
        "session_create_ms": session_ms, "first_inference_ms": first_ms, "repeat": repeat, "warmup": warmup,
        "latency": stats,
        "throughput_samples_per_s": batch / (stats["mean_ms"] / 1e3),
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,  # KiB on Linux
        "model_bytes": len(bundle.model_bytes(precision)),
        "macs_per_inference": macs,
        "gmacs_per_s": macs / (stats["p50_ms"] / 1e3) / 1e9,
        "noisy": bool(noisy),
    }


def per_operator(bundle: Bundle, precision: str, threads: int, batch: int, length: int, repeat: int) -> list[dict]:
    """onnxruntime's own node timings for one of the bundle's models, per operator type."""
    feeds = synthetic_feeds(bundle.manifest, batch, length, np.random.default_rng(0))
    return operator_times(bundle.model_bytes(precision), feeds, threads, repeat)


def operator_times(model: Path | bytes, feeds: dict, threads: int, repeat: int) -> list[dict]:
    """Node timings from onnxruntime's profiler summed per operator type, slowest first;
    the first run (allocations, kernel set-up) is left out. ``model``: an ONNX file, or a
    bundle's verified model bytes (loaded, like ``Bundle.session``, without external data)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="swarmedge-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        opts.add_session_config_entry(EXTERNAL_DATA_FOLDER, NO_FOLDER)
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                       providers=["CPUExecutionProvider"])
        for _ in range(repeat + 1):
            session.run(None, feeds)
        trace = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in trace if e.get("name") == "model_run")
    warm = runs[0][1] if runs else -1
    totals: dict[str, list[float]] = {}  # op type -> [milliseconds, node executions]
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] > warm:
            entry = totals.setdefault(event.get("args", {}).get("op_name", "?"), [0.0, 0])
            entry[0] += event["dur"] / 1e3
            entry[1] += 1
    total = sum(v[0] for v in totals.values()) or 1.0
    rows = [{"op": op, "ms_per_inference": ms / repeat, "share": ms / total, "count_per_inference": n // repeat}
            for op, (ms, n) in totals.items()]
    return sorted(rows, key=lambda r: -r["ms_per_inference"])


def length_option(manifest: dict) -> str:
    """The CLI option that sets an input's length for this model: ``--seq-len`` or ``--boids``."""
    return "--seq-len" if manifest["model_type"] == "swarmformer" else "--boids"


def max_length(manifest: dict) -> int:
    """The longest input the bundle's runner ever feeds: the text model's ``seq_len`` (longer
    texts are truncated to it), or one boid per pixel of the digit (784 for 28 x 28)."""
    pre = manifest["preprocessing"]
    return int(pre["seq_len"]) if manifest["model_type"] == "swarmformer" else int(pre["image_size"]) ** 2


def activation_bytes(manifest: dict, batch: int, length: int) -> int:
    """A rough upper estimate of the memory one run holds: a few (B, L, D) tensors for text
    (the gates concatenate two), the (B, N, N) attention and (B, N, F) feed-forward for boids."""
    cfg = manifest["config"]
    if manifest["model_type"] == "swarmformer":
        return 8 * batch * length * cfg["d_model"] * 4
    return 2 * batch * length * (length + cfg["dim_feedforward"]) * 4


def check_profile_options(manifest: dict, precisions, threads, batches, lengths, warmup: int, repeat: int,
                          available: int | None = None) -> list[str]:
    """Raise ``InputError`` (one line naming the option and its allowed range or choices) for a
    value the profiler must not run; return notices for thread counts capped at the cores.

    precisions: "int8"/"fp32" (any case) the bundle has; threads: >= 1, capped at the cores this
    process may use; batches: 1..``MAX_BATCH``; lengths: 1..``max_length`` (multiples of the
    text model's cluster size); warmup 0..``MAX_WARMUP``; repeat 1..``MAX_REPEAT``; and a
    largest batch x length whose activations fit in ``available`` bytes [default: free memory].
    Returns (thread counts, notices): the counts capped at the cores, duplicates dropped, and
    a notice per capped count.
    """
    from swarmedge.limits import available_memory
    from swarmedge.runtimes.batching import clamp_threads

    flag = length_option(manifest)
    for p in precisions:
        if p not in PRECISIONS:
            raise InputError(f"--precision {p!r} is not one of {', '.join(PRECISIONS)}")
    longest = max_length(manifest)
    why = ("this bundle's seq_len: longer texts are cut to it" if flag == "--seq-len"
           else f"one boid per pixel of a {manifest['preprocessing']['image_size']}-pixel-square digit")
    for name, values, high, reason in (("--batch", batches, MAX_BATCH, "inputs per run"),
                                       (flag, lengths, longest, why)):
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high]
        if bad:
            raise InputError(f"{name} {bad[0]!r} is out of range: it must be in 1..{high:,} ({reason})")
    if not 0 <= warmup <= MAX_WARMUP or not 1 <= repeat <= MAX_REPEAT:
        raise InputError(f"--warmup must be in 0..{MAX_WARMUP:,} and --repeat in 1..{MAX_REPEAT:,}, "
                         f"got {warmup} and {repeat}")
    notices, capped = [], []
    for t in threads:
        t, notice = clamp_threads(t)
        if notice:
            notices.append(notice)
        if t not in capped:
            capped.append(t)
    need = activation_bytes(manifest, max(batches), max(lengths))
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise InputError(f"--batch {max(batches)} at {flag} {max(lengths)} needs about {need / 2**30:.1f} GiB, "
                         f"more than the {available / 2**30:.1f} GiB of memory available; profile smaller batches")
    return capped, notices


def profile_bundle(path, precisions=None, threads=(1,), batches=(1,), lengths=None,
                   warmup: int = 10, repeat: int = 100, per_op: bool = False, on_step=lambda stage: None,
                   length_flag: str | None = None, notices: list[str] | None = None) -> dict:
    """Profile every combination; returns the JSON-ready report that ``compare`` reads.

    ``precisions``: "int8"/"fp32" [default: every one the bundle has]; ``lengths``: tokens
    (text) or boids per input [default: the bundle's seq_len, or 150 boids]; ``length_flag``:
    the option the lengths came from, refused when it is the other model's (``--boids`` on a
    text bundle). Thread counts above the cores are capped, with a line added to ``notices``.
    Raises ``InputError`` for any value ``check_profile_options`` refuses.
    """
    bundle = Bundle.open(path)
    manifest = bundle.manifest
    if length_flag is not None and lengths and length_flag != length_option(manifest):
        kind = "a text model" if manifest["model_type"] == "swarmformer" else "a boid model"
        raise InputError(f"{length_flag} does not apply to {bundle.path}: it is {kind}; "
                         f"use {length_option(manifest)}")
    precisions = bundle.precisions if precisions is None else [str(p).strip().lower() for p in precisions]
    if lengths is None:
        lengths = [manifest["preprocessing"].get("seq_len", DEFAULT_BOIDS)]
    threads, capped = check_profile_options(manifest, precisions, list(threads), list(batches), list(lengths),
                                            warmup, repeat)
    if notices is not None:
        notices.extend(capped)
    missing = [p for p in precisions if p not in bundle.precisions]
    if missing:  # said before any timing, not after the other precision's runs
        raise InputError(f"--precision {missing[0]}: bundle {bundle.path} has no {missing[0]} model "
                         f"(it has {', '.join(bundle.precisions)})")
    combos = list(product(precisions, threads, batches, lengths))
    configs = []
    for i, (precision, t, b, n) in enumerate(combos, 1):
        on_step(f"{precision}, {t} thread{'s' * (t > 1)}, batch {b}, length {n} ({i} of {len(combos)})")
        configs.append(profile_config(bundle, precision, t, b, n, warmup, repeat))
    report = {"bundle": str(path), "model_type": bundle.manifest["model_type"], "machine": machine(),
              "configs": configs}
    if per_op:
        t, b, n = threads[0], batches[0], lengths[0]
        on_step("per-operator profile")
        report["per_op"] = {"threads": t, "batch": b, "length": n,
                            "by_precision": {p: per_operator(bundle, p, t, b, n, max(10, repeat // 10))
                                             for p in precisions}}
    return report


def machine() -> dict:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    arm_parts = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}  # Pi 3, Pi 4, Pi 5
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("model name", "hardware"):
                cpu = value.strip()
                break
            if key.strip().lower() == "cpu part" and value.strip() in arm_parts:
                cpu = arm_parts[value.strip()]
                break
    except OSError:
        pass
    return {"cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}
