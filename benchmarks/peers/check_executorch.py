"""Build every ExecuTorch variant of one model and check it against a saved reference (peer venv).

    .venv-executorch/bin/python benchmarks/peers/check_executorch.py PROGRAM.pt2 TEST.npz CALIB.npz OUT_DIR [--time]

PROGRAM.pt2: program.py's export of the checkpoint. TEST.npz: real test batches as
"<i>/<input name>" arrays, each with "<i>/reference" (onnxruntime fp32 scores of the plain
ONNX on that batch) and optionally "labels" (the true class of every row, in order).
CALIB.npz: calibration batches as "<i>/<input name>". Prints, per variant: .pte size, the
largest difference from the reference, prediction agreement and accuracy, and with --time
rough latencies (batch 1 on one thread, batch 32 on two threads).
"""

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _adapter():
    path = Path(__file__).with_name("executorch_peer.py")
    spec = importlib.util.spec_from_file_location("executorch_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batches(npz) -> list[dict[str, np.ndarray]]:
    """ "<i>/<name>" arrays -> [{name: array}], in batch order."""
    out: dict[int, dict] = {}
    for key in npz.files:
        if "/" in key:
            i, name = key.split("/", 1)
            out.setdefault(int(i), {})[name] = npz[key]
    return [out[i] for i in sorted(out)]


def _odd_shapes(batch: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Batch 1, batch 64 and (boids) one boid and 784 boids, made from one test batch."""
    out = {"batch 1": {k: v[:1] for k, v in batch.items()},
           "batch 64": {k: np.concatenate([v, v])[:64] for k, v in batch.items()}}
    if "input_ids" in batch:
        out["length 64, batch 3"] = {"input_ids": batch["input_ids"][:3, :64]}
    if "boids" in batch:
        out["1 boid, batch 3"] = {"boids": batch["boids"][:3, :1], "lengths": np.ones(3, np.int64)}
        n = batch["boids"].shape[1]
        out["784 boids, batch 3"] = {"boids": np.pad(batch["boids"][:3], ((0, 0), (0, 784 - n), (0, 0))),
                                     "lengths": batch["lengths"][:3]}
    return out


def _ms(run, feeds: dict, seconds: float = 2.0) -> float:
    """Median milliseconds of ``run(feeds)`` over about ``seconds`` (after two warm-up calls)."""
    run(feeds)
    run(feeds)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        run(feeds)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program")
    parser.add_argument("test")
    parser.add_argument("calibration")
    parser.add_argument("out_dir")
    parser.add_argument("--time", action="store_true", help="also time batch 1/1 thread and batch 32/2 threads")
    parser.add_argument("--variants", nargs="*", help="only these variants (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("torch", "torchao", "executorch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    adapter = _adapter()
    test = np.load(args.test)
    batches = _batches(test)
    calibration = [{k: v for k, v in b.items()} for b in _batches(np.load(args.calibration))]
    labels = test["labels"] if "labels" in test.files else None
    reference = np.concatenate([b.pop("reference") for b in batches])
    sources = {"program": args.program}
    program = torch.export.load(args.program)
    eager = program.module()
    names = [s.arg.name for s in program.graph_signature.input_specs
             if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]

    for variant in args.variants or adapter.VARIANTS:
        out = Path(args.out_dir) / variant.replace(" ", "_")
        out.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        try:
            artifact = adapter.build(variant, sources, calibration, str(out))
        except Exception as e:  # noqa: BLE001 - a failing variant is reported, the others still run
            print(f"{variant}: BUILD FAILED after {time.perf_counter() - t:.0f} s: {type(e).__name__}: {e}")
            continue
        built_s = time.perf_counter() - t
        run = adapter.load(variant, artifact, 2)
        try:
            scores = np.concatenate([run(b) for b in batches])
        except Exception as e:  # noqa: BLE001
            print(f"{variant}: RUN FAILED: {type(e).__name__}: {e}")
            continue
        line = (f"{variant}: {Path(artifact).stat().st_size / 1e6:.2f} MB .pte (built in {built_s:.0f} s); "
                f"{len(scores)} inputs, max |diff| {np.abs(scores - reference).max():.2e}, agreement "
                f"{np.mean(scores.argmax(1) == reference.argmax(1)):.2%}")
        if labels is not None:
            line += (f", accuracy {np.mean(scores.argmax(1) == labels):.2%}"
                     f" (reference {np.mean(reference.argmax(1) == labels):.2%})")
        print(line, flush=True)
        # Shapes the test batches lack, against the exported program run by torch.
        for what, feeds in _odd_shapes(batches[0]).items():
            try:
                got = run(feeds)
                with torch.no_grad():
                    want = eager(*[torch.from_numpy(feeds[n]) for n in names])
                want = (want[0] if isinstance(want, (tuple, list)) else want).numpy()
                print(f"  {what}: max |diff| from torch {np.abs(got - want).max():.2e}, "
                      f"agreement {np.mean(got.argmax(1) == want.argmax(1)):.0%}")
            except Exception as e:  # noqa: BLE001
                print(f"  {what}: FAILED: {type(e).__name__}: {e}")
        if args.time:
            one = {k: v[:1] for k, v in batches[0].items()}
            b32 = {k: v[:32] for k, v in batches[0].items()}
            fast = adapter.load(variant, artifact, 1)
            t1 = _ms(fast, one)
            t2 = _ms(adapter.load(variant, artifact, 2), b32)
            print(f"  {variant}: batch 1 / 1 thread {t1:.3f} ms; batch 32 / 2 threads {t2:.2f} ms", flush=True)


if __name__ == "__main__":
    main()
