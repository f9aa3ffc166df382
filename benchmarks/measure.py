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


_TYPICAL: dict[tuple[str, int], dict] = {}  # (subject, batch) -> feeds: read the test set once, not per table


def typical_feeds(subject: Subject, batch: int) -> dict[str, np.ndarray]:
    """What is timed: random token ids at the model's length; for a trained boid model, the
    ``batch`` test digits whose boid counts are nearest 150 (a typical digit) - real digits,
    because how a trained swarm's attention behaves depends on them."""
    key = (subject.name, batch)
    if key not in _TYPICAL:
        _TYPICAL[key] = _typical_feeds(subject, batch)
    return _TYPICAL[key]


def _typical_feeds(subject: Subject, batch: int) -> dict[str, np.ndarray]:
    manifest = _manifest(subject)
    if subject.model_type != "boids" or not subject.trained:
        return synthetic_feeds(manifest, batch, typical_length(manifest), np.random.default_rng(0))
    from swarmedge.evaluate import load_test_set
    from swarmedge.runtimes.feeds import Samples, feeds_for

    pre = manifest["preprocessing"]
    ds = load_test_set(subject.data, manifest["labels"])
    digits = np.asarray(ds.inputs)
    counts = np.concatenate([f["lengths"] for f in feeds_for(Samples(digits, ds.source), pre, None, 256)])
    kept = digits[(digits > pre["threshold"]).any(axis=(1, 2))]  # feeds_for skips blank digits too
    nearest = np.argsort(np.abs(counts - typical_length(manifest)), kind="stable")[:batch]
    return feeds_for(Samples(kept[np.sort(nearest)], ds.source), pre, None, batch)[0]


def runners(variants: list[Variant], threads: int, failures: dict, probe: dict) -> dict:
    """A runner per variant that builds, loads and runs ``probe``; a peer's failure is recorded
    in ``failures`` (name -> what broke) and shown in the report, not raised."""
    from benchmarks.peers.remote import PeerError

    out = {}
    for v in variants:
        if v.make is None or v.name in failures:
            continue
        step = "load"
        try:
            run = v.make(threads)
            step = "run"
            run(probe)
            out[v.name] = run
        except PeerError as e:
            shape = ", ".join(f"{k} {tuple(a.shape)}" for k, a in probe.items())
            failures[v.name] = f"failed to {step} with {threads} thread(s) on {shape}: {e}"
    return out


def timings(subject: Subject, variants: list[Variant], rounds: int, bar, failures: dict) -> list[dict]:
    """Batch 1 on one thread and on all cores, batch 32 on all cores; all variants interleaved."""
    manifest = _manifest(subject)
    length = typical_length(manifest)
    configs = [(1, 1), (1, CORES), (32, CORES)]
    rows = []
    for batch, threads in configs:
        feeds = typical_feeds(subject, batch)
        ms = interleaved(runners(variants, threads, failures, feeds), feeds, rounds, progress=bar.update)
        for name, t in ms.items():
            rows.append({"variant": name, "batch": batch, "threads": threads, "length": length, **summary(t)})
    return rows


def operators(subject: Subject, variants: list[Variant], repeat: int, bar) -> dict[str, list[dict]]:
    """onnxruntime's per-operator times of every ONNX variant, batch 1, one thread: where the
    time goes, and so why a ratio is what it is."""
    feeds = typical_feeds(subject, 1)
    out = {}
    for v in variants:
        if v.onnx is not None:
            out[v.name] = operator_times(v.onnx, feeds, 1, repeat)
        bar.update()
    return out


def peer_operators(subject: Subject, variants: list[Variant], repeat: int, failures: dict) -> dict[str, list[dict]]:
    """A peer runtime's own per-node times (e.g. OpenVINO's performance counters), batch 1,
    one thread: its executed graph beside onnxruntime's."""
    from benchmarks.peers.remote import PeerError

    feeds = typical_feeds(subject, 1)
    out = {}
    for v in variants:
        if v.operators is not None and v.make is not None and v.name not in failures:
            try:
                out[v.name] = v.operators(feeds, repeat)
            except PeerError as e:  # an extra view, not the variant failing: said, not recorded
                print(f"  {v.name}: no per-operator profile: {e}")
    return out


def accuracy(subject: Subject, variants: list[Variant], limit: int | None, bar, failures: dict) -> dict:
    """Accuracy on the test set and agreement with PyTorch eager fp32, for every variant."""
    from swarmedge.evaluate import load_test_set
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.feeds import Samples, feeds_for

    bundle = Bundle.open(subject.plain)
    pre = bundle.manifest["preprocessing"]
    tokenizer = bundle.read_text(pre["tokenizer"]) if "tokenizer" in pre else None
    ds = load_test_set(subject.data, bundle.manifest["labels"], limit=limit)
    batches = feeds_for(Samples(ds.inputs, ds.source), pre, tokenizer, batch_size=64)
    from benchmarks.peers.remote import PeerError

    predictions = {}
    for name, run in runners(variants, CORES, failures, batches[0]).items():
        try:
            predictions[name] = np.concatenate([run(b).argmax(1) for b in batches])
        except PeerError as e:  # e.g. a runtime that aborts on some input: shown, not hidden
            failures[name] = f"failed on the test set: {e}"
        bar.update()
    if any(len(p) != len(ds.labels) for p in predictions.values()):
        raise RuntimeError("a variant returned fewer predictions than inputs")
    reference = predictions["PyTorch eager fp32"]
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
    ms = interleaved(runners, typical_feeds(subject, 1), rounds, progress=bar.update)
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


def levers(subject: Subject, workdir: Path, rounds: int, bar, log=print) -> list[dict]:
    """Levers tried against the shipped int8 graph (issue: each kept only if it pays), timed
    interleaved at batch 1 on one thread and batch 32 on all cores: an approximate GELU
    (onnxruntime's FastGelu); static QDQ int8 calibrated on training texts; and onnxruntime's
    MatMulNBits with 8-bit blockwise weights at accuracy level 4 (int8 activations quantized per
    row block). The last two are batch-invariant by construction, so they run batches whole."""
    import onnx
    from onnx import helper

    from benchmarks.variants import per_input_runner
    from swarmedge.export.pipeline import export_bundle
    from swarmedge.export.targets import detect
    from swarmedge.runtimes.bundle import Bundle

    shipped = Bundle.open(next(b for b, presets in subject.bundles.values() if detect() in presets))
    work = workdir / subject.name
    fast = work / f"lever-fastgelu-{subject.key}.onnx"
    if not fast.is_file():
        model = onnx.load(str(shipped.model_path("int8")))
        for node in model.graph.node:
            if node.op_type == "Gelu":
                node.domain, node.op_type = "com.microsoft", "FastGelu"
                del node.attribute[:]
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        onnx.save(model, str(fast))
    static = work / f"lever-static-{subject.key}.bundle"
    if not static.is_dir():
        log(f"  exporting {subject.name}: static int8")
        calibration = work / "calibration-train.jsonl"
        _training_texts(subject, calibration)
        export_bundle(subject.checkpoint, static, quantize_mode="static", calibration=calibration, target=detect())
    static_path = Bundle.open(static).model_path("int8")
    nbits = work / f"lever-nbits8-{subject.key}.onnx"
    if not nbits.is_file():
        _matmul_nbits(shipped.model_path("fp32"), nbits)
    manifest = _manifest(subject)
    rows = []
    for batch, threads in ((1, 1), (32, CORES)):
        runners = {"shipped: dynamic int8, input by input": per_input_runner(shipped.model_path("int8"))(threads),
                   "dynamic int8 + FastGelu, input by input": per_input_runner(fast)(threads),
                   "static QDQ int8, whole batch": ort_runner(static_path)(threads),
                   "MatMulNBits 8-bit, accuracy level 4, whole batch": ort_runner(nbits)(threads)}
        feeds = synthetic_feeds(manifest, batch, typical_length(manifest), np.random.default_rng(0))
        ms = interleaved(runners, feeds, rounds, progress=bar.update)
        rows += [{"lever": name, "batch": batch, "threads": threads, **summary(t)} for name, t in ms.items()]
    return rows


def _matmul_nbits(fp32: Path, out: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    from swarmedge.export.graph import strip_initializer_value_info

    model = onnx.load(str(fp32))
    strip_initializer_value_info(model)
    config = DefaultWeightOnlyQuantConfig(block_size=128, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=128, is_symmetric=True, accuracy_level=4,
                                     algo_config=config)
    logging.disable(logging.WARNING)  # one line per MatMul otherwise
    try:
        quantizer.process()
    finally:
        logging.disable(logging.NOTSET)
    quantizer.model.save_model_to_file(str(out), False)


def _training_texts(subject: Subject, out: Path, n: int = 320) -> None:
    """A seeded sample of training texts as JSON Lines (calibration never sees the test set)."""
    import json

    from swarmedge.datasets import load_dataset

    ds = load_dataset(subject.data, "train")
    pick = np.sort(np.random.default_rng(0).choice(len(ds), n, replace=False))
    out.write_text("".join(json.dumps({"text": ds.inputs[i]}) + "\n" for i in pick))
