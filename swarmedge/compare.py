"""PyTorch float vs ONNX fp32 vs ONNX int8 on one test set: what export and int8 gained and lost.

Accuracy and friends, agreement with PyTorch, the distribution of score errors, batch-1
latency (one thread, the same inputs for every variant), file sizes and speed-ups, plus
any profiles measured elsewhere (a Raspberry Pi, an emulated ARM CPU) as extra columns.
"""

import time
from pathlib import Path

import numpy as np

from swarmedge.errors import InputError
from swarmedge.report_inputs import read_arm_check, read_profile


def compare(model_pt: Path, bundle: Path, data: str, data_dir: Path | None = None, limit: int | None = None,
            seed: int = 0, latency_inputs: int = 100, profiles=(), arm_checks=(), on_step=lambda step: None) -> dict:
    """Run every variant on the same inputs; return the JSON-ready comparison."""
    import torch

    from swarmedge.checkpoint import build_model, load_checkpoint
    from swarmedge.evaluate import evaluate_model
    from swarmedge.runtimes import Bundle
    from swarmedge.runtimes.profile import machine, per_operator

    if (Path(model_pt) / "manifest.json").is_file():
        raise InputError(f"{model_pt} is a bundle; compare takes the checkpoint it was exported from first: "
                         "swarmedge compare MODEL.pt BUNDLE --data …")
    b = Bundle.open(bundle)
    # Reports from elsewhere are read first: a wrong file fails before minutes of evaluation.
    extra_profiles = [read_profile(p, b.manifest["model_type"]) for p in profiles]
    extra_arm = [read_arm_check(p) for p in arm_checks]
    ckpt = load_checkpoint(model_pt)
    if ckpt["labels"] != b.labels or ckpt["model_type"] != b.manifest["model_type"]:
        raise InputError(f"{model_pt} and {bundle} are different models; export the checkpoint first")
    variants = {"PyTorch fp32": (model_pt, None)}
    variants.update({f"ONNX {p}": (bundle, p) for p in b.precisions})
    results = {}
    for name, (path, precision) in variants.items():
        on_step(f"evaluate {name}")
        results[name] = evaluate_model(path, data, data_dir=data_dir, precision=precision, limit=limit, seed=seed)
    ref = results["PyTorch fp32"]
    ref_scores = np.array(ref["scores"])

    on_step("latency")
    feeds = _single_feeds(b, data, data_dir, limit, seed, latency_inputs)
    model = build_model(ckpt)
    latencies = {"PyTorch fp32": _time_torch(model, feeds, torch)}
    for p in b.precisions:
        latencies[f"ONNX {p}"] = _time_session(b.session(p, threads=1), feeds)
    sizes = {"PyTorch fp32": sum(t.numel() * t.element_size() for t in ckpt["state_dict"].values())}
    sizes.update({f"ONNX {p}": len(b.model_bytes(p)) for p in b.precisions})

    rows = []
    base_p50 = np.percentile(latencies["PyTorch fp32"], 50)
    for name, r in results.items():
        scores = np.array(r["scores"])
        err = np.abs(scores - ref_scores)
        lat = np.array(latencies[name])
        rows.append({
            "variant": name, "accuracy": r["accuracy"], "macro_precision": r["macro_precision"],
            "macro_recall": r["macro_recall"], "macro_f1": r["macro_f1"],
            "agreement_with_pytorch": float(np.mean(scores.argmax(1) == ref_scores.argmax(1))),
            "score_error": {"max": float(err.max()), "mean": float(err.mean()),
                            "p50": float(np.percentile(err, 50)), "p99": float(np.percentile(err, 99))},
            "latency_ms": _stats(lat), "bytes": int(sizes[name]),
            "speedup_vs_pytorch": float(base_p50 / np.percentile(lat, 50)),
            "confusion_matrix": r["confusion_matrix"],
        })
    on_step("per-operator profile")
    length = next(iter(feeds[0].values())).shape[1]
    per_op = {p: per_operator(b, p, 1, 1, length, 20) for p in b.precisions}
    return {
        "model": str(model_pt), "bundle": str(bundle), "data": ref["data"], "samples": ref["samples"],
        "notes": ref["notes"],
        "labels": ref["labels"], "machine": machine(), "latency_inputs": len(feeds), "rows": rows,
        "latency_samples_ms": {k: list(map(float, v)) for k, v in latencies.items()},
        "score_errors": {r: np.abs(np.array(results[r]["scores"]) - ref_scores).max(1).tolist() for r in results
                         if r != "PyTorch fp32"},
        "per_op": per_op, "profiles": extra_profiles, "arm_checks": extra_arm,
    }


def _single_feeds(bundle, data, data_dir, limit, seed, n):
    from swarmedge.evaluate import load_test_set
    from swarmedge.runtimes.feeds import Samples, feeds_for

    ds = load_test_set(data, bundle.labels, data_dir, limit, seed, bundle.manifest["preprocessing"]["kind"])
    ds = ds.subset(np.arange(min(n, len(ds))))
    pre = bundle.manifest["preprocessing"]
    tokenizer = bundle.read_text(pre["tokenizer"]) if pre["kind"] == "text" else None
    return feeds_for(Samples(ds.inputs, ds.source), pre, tokenizer, batch_size=1)


def _time_torch(model, feeds, torch) -> list[float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the ONNX sessions: one thread, batch 1
    try:
        with torch.no_grad():
            tensors = [tuple(torch.from_numpy(v) for v in f.values()) for f in feeds]
            model(*tensors[0])
            out = []
            for args in tensors:
                t0 = time.perf_counter()
                model(*args)
                out.append((time.perf_counter() - t0) * 1e3)
        return out
    finally:
        torch.set_num_threads(threads)


def _time_session(session, feeds) -> list[float]:
    name = [session.get_outputs()[0].name]
    session.run(name, feeds[0])
    out = []
    for f in feeds:
        t0 = time.perf_counter()
        session.run(name, f)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _stats(ms: np.ndarray) -> dict:
    from swarmedge.runtimes.profile import latency_stats

    return latency_stats(np.asarray(ms))

