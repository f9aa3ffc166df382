"""What the benchmark measures per model: latency, throughput, size, accuracy; rewrites and
graph optimisation levels one by one; scaling with input size; the CPU's arithmetic peak."""

import os
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.subjects import Subject
from benchmarks.timing import interleaved, summary
from benchmarks.variants import Variant, ort_runner
from swarmedge.runtimes.profile import operator_times, synthetic_feeds

CORES = os.cpu_count() or 1


def _manifest(subject: Subject) -> dict:
    from swarmedge.runtimes.bundle import Bundle

    return Bundle.open(subject.plain).manifest


def typical_length(manifest: dict) -> int:
    """The length timed: the model's seq_len, or 150 boids (a typical digit)."""
    return manifest["preprocessing"].get("seq_len", 150)


def timings(subject: Subject, variants: list[Variant], rounds: int, bar) -> list[dict]:
    """Batch 1 on one thread and on all cores, batch 32 on all cores; all variants interleaved."""
    manifest = _manifest(subject)
    length = typical_length(manifest)
    configs = [(1, 1), (1, CORES), (32, CORES)]
    rows = []
    for batch, threads in configs:
        feeds = synthetic_feeds(manifest, batch, length, np.random.default_rng(0))
        runners = {v.name: v.make(threads) for v in variants}
        ms = interleaved(runners, feeds, rounds, progress=bar.update)
        for v in variants:
            rows.append({"variant": v.name, "batch": batch, "threads": threads, "length": length,
                         **summary(ms[v.name])})
    return rows


def operators(subject: Subject, variants: list[Variant], repeat: int, bar) -> dict[str, list[dict]]:
    """onnxruntime's per-operator times of every ONNX variant, batch 1, one thread: where the
    time goes, and so why a ratio is what it is."""
    manifest = _manifest(subject)
    feeds = synthetic_feeds(manifest, 1, typical_length(manifest), np.random.default_rng(0))
    out = {}
    for v in variants:
        if v.onnx is not None:
            out[v.name] = operator_times(v.onnx, feeds, 1, repeat)
        bar.update()
    return out


def accuracy(subject: Subject, variants: list[Variant], limit: int | None, bar) -> dict:
    """Accuracy on the test set and agreement with PyTorch eager fp32, for every variant."""
    from swarmedge.evaluate import load_test_set
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.feeds import Samples, feeds_for

    bundle = Bundle.open(subject.plain)
    pre = bundle.manifest["preprocessing"]
    tokenizer = bundle.read_text(pre["tokenizer"]) if "tokenizer" in pre else None
    ds = load_test_set(subject.data, bundle.manifest["labels"], limit=limit)
    batches = feeds_for(Samples(ds.inputs, ds.source), pre, tokenizer, batch_size=64)
    predictions = {}
    for v in variants:
        run = v.make(CORES)
        predictions[v.name] = np.concatenate([run(b).argmax(1) for b in batches])
        bar.update()
    if any(len(p) != len(ds.labels) for p in predictions.values()):
        raise RuntimeError("a variant returned fewer predictions than inputs")
    reference = predictions[variants[0].name]
    return {"data": ds.source, "inputs": len(ds.labels),
            "by_variant": {name: {"accuracy": float((p == ds.labels).mean()),
                                  "agreement": float((p == reference).mean())}
                           for name, p in predictions.items()}}


def ablation(subject: Subject, workdir: Path, rounds: int, bar, log=print) -> list[dict]:
    """What each rewrite and each onnxruntime optimisation level buys: int8 for this machine's
    preset, batch 1, one thread, cumulative rewrites, all measured interleaved."""
    from swarmedge.export.pipeline import export_bundle
    from swarmedge.export.rewrites import REWRITES
    from swarmedge.export.targets import detect
    from swarmedge.runtimes.bundle import Bundle

    names = REWRITES[subject.model_type]
    steps = [("no rewrites", ())] + [(f"+ {r}", names[: i + 1]) for i, r in enumerate(names)]
    runners, files = {}, {}
    for label, names in steps:
        out = workdir / subject.name / f"ablation-{len(names)}-{subject.key}.bundle"
        if not out.is_dir():
            log(f"  exporting {subject.name} with rewrites: {', '.join(names) or 'none'}")
            export_bundle(subject.checkpoint, out, rewrites=names, target=detect())
        files[label] = Bundle.open(out).model_path("int8")
        runners[f"rewrites: {label}"] = ort_runner(files[label])(1)
    final = files[steps[-1][0]]
    for level in ("none", "basic", "extended"):  # "all" is the last rewrite row
        runners[f"onnxruntime optimisation: {level}"] = ort_runner(final, level)(1)
    manifest = _manifest(subject)
    feeds = synthetic_feeds(manifest, 1, typical_length(manifest), np.random.default_rng(0))
    ms = interleaved(runners, feeds, rounds, progress=bar.update)
    return [{"step": name, **summary(t)} for name, t in ms.items()]


def scaling(subject: Subject, variants: list[Variant], lengths: list[int], rounds: int, bar) -> list[dict]:
    """Batch-1, one-thread latency against sequence length or boid count."""
    manifest = _manifest(subject)
    runners = {v.name: v.make(1) for v in variants}
    rows = []
    for n in lengths:
        feeds = synthetic_feeds(manifest, 1, n, np.random.default_rng(0))
        ms = interleaved(runners, feeds, rounds, warmup=1, progress=bar.update)
        rows += [{"variant": name, "length": n, **summary(t)} for name, t in ms.items()]
    return rows


def arithmetic_peak(rounds: int = 5) -> dict:
    """GMAC/s of one large fp32 MatMul and one large u8 x s8 MatMulInteger in onnxruntime:
    the practical ceiling a model's kernels could reach here, per thread count."""
    import onnx
    from onnx import TensorProto, helper

    n = 1024
    rng = np.random.default_rng(0)
    graphs = {
        "fp32": (TensorProto.FLOAT, TensorProto.FLOAT, "MatMul", rng.standard_normal((n, n)).astype(np.float32),
                 rng.standard_normal((n, n)).astype(np.float32)),
        "int8": (TensorProto.UINT8, TensorProto.INT32, "MatMulInteger",
                 rng.integers(0, 255, (n, n), dtype=np.uint8), rng.integers(-64, 63, (n, n), dtype=np.int8)),
    }
    result = {"m_n_k": n}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (in_type, out_type, op, a, b) in graphs.items():
            node = helper.make_node(op, ["a", "b"], ["y"])
            graph = helper.make_graph([node], name, [helper.make_tensor_value_info("a", in_type, [n, n])],
                                      [helper.make_tensor_value_info("y", out_type, [n, n])],
                                      [onnx.numpy_helper.from_array(b, "b")])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(model, str(path))
            for threads in sorted({1, CORES}):
                run = ort_runner(path)(threads)
                ms = interleaved({name: run}, {"a": a}, rounds)[name]
                result[f"{name}_gmacs_{threads}t"] = n**3 / (np.percentile(ms, 10) * 1e-3) / 1e9
    return result
