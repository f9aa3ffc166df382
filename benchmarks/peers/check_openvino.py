"""Check the OpenVINO adapter on real inputs: every variant against onnxruntime fp32.

Two steps, each in its own venv:

  # 1. swarmedge's venv: real test feeds + onnxruntime fp32 scores of the plain export, and
  #    ~300 training inputs for calibration, saved in one .npz
  SWARMEDGE_DATA=/work/shared/data .venv/bin/python benchmarks/peers/check_openvino.py \
      prepare build/bench/boids-5v6/plain-<key>.bundle mnist /tmp/boids.npz [--limit 500]

  # 2. the OpenVINO venv: build every variant, run it on the saved feeds, compare
  .venv-openvino/bin/python benchmarks/peers/check_openvino.py \
      check build/bench/boids-5v6/plain-<key>.bundle/model.onnx boids /tmp/boids.npz /tmp/ov-out [--time]

Prints, per variant: max |score - reference|, prediction agreement with the reference,
accuracy on the labels, edge shapes run (batch 1 and 64, text length 512, boid counts 1 and 784), threads seen
(process CPU time / wall time while running on 1 and 2 threads), and with --time rough ms at
batch 1 / 1 thread and batch 32 / 2 threads (the same for onnxruntime is in the prepare step's
output, since onnxruntime lives in the other venv).
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np


def timed_ms(run, feeds, seconds: float = 2.0) -> float:
    """Median ms of ``run(feeds)`` over about ``seconds`` (after two warm-up calls)."""
    run(feeds)
    run(feeds)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        run(feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def batch_of(feeds: dict, size: int) -> dict:
    """The first ``size`` inputs of a batch, repeated when it has fewer."""
    n = len(next(iter(feeds.values())))
    idx = np.arange(size) % n
    return {k: np.ascontiguousarray(v[idx]) for k, v in feeds.items()}


def save_npz(path: str, test: list, cal: list, **arrays) -> None:
    out = dict(arrays)
    for kind, batches in (("test", test), ("cal", cal)):
        for i, feeds in enumerate(batches):
            out.update({f"{kind}/{i:03d}/{k}": v for k, v in feeds.items()})
    np.savez(path, **out)


def load_npz(path: str) -> tuple[dict, list, list]:
    data = np.load(path)
    batches: dict[str, dict] = {"test": {}, "cal": {}}
    arrays = {}
    for key in data.files:
        parts = key.split("/")
        if len(parts) == 3:
            batches[parts[0]].setdefault(parts[1], {})[parts[2]] = data[key]
        else:
            arrays[key] = data[key]
    test, cal = ([b[i] for i in sorted(b)] for b in (batches["test"], batches["cal"]))
    return arrays, test, cal


def prepare(args) -> None:
    """(swarmedge venv) Real feeds and onnxruntime fp32 scores of the plain export."""
    import onnxruntime as ort

    from swarmedge.datasets import load_dataset
    from swarmedge.evaluate import load_test_set
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.feeds import Samples, feeds_for

    bundle = Bundle.open(Path(args.bundle))
    pre, labels = bundle.manifest["preprocessing"], bundle.manifest["labels"]
    tokenizer = bundle.read_text(pre["tokenizer"]) if "tokenizer" in pre else None
    test = load_test_set(args.data, labels, limit=args.limit, seed=0)
    test_feeds = feeds_for(Samples(test.inputs, test.source), pre, tokenizer, batch_size=32)
    digits = [int(x) for x in labels] if args.data == "mnist" else None
    train = load_dataset(args.data, "train", digits=digits)
    train = train.subset(np.sort(np.random.default_rng(1).choice(len(train), 300, replace=False)))
    cal_feeds = feeds_for(Samples(train.inputs, train.source), pre, tokenizer, batch_size=32)

    def session(threads: int):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        return ort.InferenceSession(str(bundle.model_path("fp32")), opts, providers=["CPUExecutionProvider"])

    s2 = session(2)
    ref = np.concatenate([s2.run(None, f)[0] for f in test_feeds])
    save_npz(args.out, test_feeds, cal_feeds, ref=ref, labels=test.labels)
    print(f"{len(ref)} test inputs, {len(cal_feeds)} calibration batches -> {args.out}")
    print(f"onnxruntime fp32 accuracy {(ref.argmax(1) == test.labels).mean():.4f}")
    s1 = session(1)
    b1 = timed_ms(lambda f: s1.run(None, f), batch_of(test_feeds[0], 1))
    b32 = timed_ms(lambda f: s2.run(None, f), batch_of(test_feeds[0], 32))
    print(f"onnxruntime fp32 ms: batch 1/1 thread {b1:.2f}, batch 32/2 threads {b32:.2f}")


def threads_seen(run, feeds, seconds: float = 1.5) -> float:
    """Process CPU time / wall time while calling ``run``: about the number of busy threads."""
    run(feeds)
    c0, w0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - w0 < seconds:
        run(feeds)
    return (time.process_time() - c0) / (time.perf_counter() - w0)


def edge_feeds(model_type: str, feeds: dict) -> dict[str, dict]:
    """Batch 1 and 64 of real inputs; for text also length 512, for boids 1 and 784 boids
    (synthetic, in range)."""
    out = {"batch 1": batch_of(feeds, 1), "batch 64": batch_of(feeds, 64)}
    if model_type == "swarmformer":  # a longer text: the real ids twice over
        out["length 512"] = {"input_ids": np.tile(feeds["input_ids"][:2], (1, 2))}
    if model_type == "boids":
        rng = np.random.default_rng(0)
        for n in (1, 784):
            out[f"{n} boids"] = {"boids": rng.uniform(-10, 10, (3, n, 2)).astype(np.float32),
                                 "lengths": np.array([n, max(n // 2, 1), 1], dtype=np.int64)}
    return out


def check(args) -> None:
    """(OpenVINO venv) Build each variant, run it on the saved feeds, compare with the reference."""
    spec = importlib.util.spec_from_file_location("openvino_peer", Path(__file__).with_name("openvino_peer.py"))
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    arrays, test, cal = load_npz(args.npz)
    ref, labels = arrays["ref"], arrays["labels"]
    print(f"reference (onnxruntime fp32) accuracy {(ref.argmax(1) == labels).mean():.4f} on {len(ref)} inputs")
    sources = {"model_type": args.model_type, "onnx": args.onnx}
    for variant in args.variants or peer.VARIANTS:
        out_dir = Path(args.out) / variant.replace(" ", "_").replace("(", "").replace(")", "")
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        artifact = peer.build(variant, sources, cal, str(out_dir))
        build_s = time.perf_counter() - t0
        run = peer.load(variant, artifact, 2)
        scores = np.concatenate([run(f) for f in test])
        pred = scores.argmax(1)
        print(f"\n{variant}: built in {build_s:.1f} s -> {artifact}")
        diff = np.abs(scores - ref).max()
        print(f"  max |diff| {diff:.3g} ({diff / np.abs(ref).max():.2g} of max |ref|), "
              f"agreement {(pred == ref.argmax(1)).mean():.4f}, accuracy {(pred == labels).mean():.4f}")
        for name, feeds in edge_feeds(args.model_type, test[0]).items():
            got = run(feeds)
            ok = got.shape == (len(next(iter(feeds.values()))), 2) and np.isfinite(got).all()
            print(f"  {name}: {'ok' if ok else 'WRONG'} {got.shape}")
        run1 = peer.load(variant, artifact, 1)
        b1, b32 = batch_of(test[0], 1), batch_of(test[0], 32)
        print(f"  threads seen: {threads_seen(run1, b32):.2f} at 1, {threads_seen(run, b32):.2f} at 2")
        if args.time:
            print(f"  ms: batch 1/1 thread {timed_ms(run1, b1):.2f}, batch 32/2 threads {timed_ms(run, b32):.2f}")
        ops = peer.operators(variant, artifact, b1, 3)
        slowest = sorted(ops, key=lambda o: -o["ms"])[:3]
        print(f"  operators: {len(ops)} executed nodes, {sum(o['ms'] for o in ops):.2f} ms in all; slowest: "
              + ", ".join(f"{o['type']}/{o['exec_type']} {o['ms']:.2f}" for o in slowest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("bundle")
    p.add_argument("data", help="mnist or imdb")
    p.add_argument("out", help=".npz to write")
    p.add_argument("--limit", type=int, default=500)
    c = sub.add_parser("check")
    c.add_argument("onnx")
    c.add_argument("model_type", choices=("swarmformer", "boids"))
    c.add_argument("npz")
    c.add_argument("out", help="folder for the built variants")
    c.add_argument("--variant", dest="variants", action="append", help="only this variant (repeatable)")
    c.add_argument("--time", action="store_true", help="also time batch 1/1 thread and batch 32/2 threads")
    args = parser.parse_args()
    prepare(args) if args.step == "prepare" else check(args)


if __name__ == "__main__":
    sys.exit(main())
