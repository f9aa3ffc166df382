"""`make bench`: every variant side by side in one run -> docs/BENCHMARKS.md + docs/benchmarks.json.

    python -m benchmarks                                  # all models, full test sets (~30 min)
    python -m benchmarks --models boids-5v6 --quick       # a few minutes, smaller samples
    python -m benchmarks --report-only                    # re-render the Markdown from the JSON
"""

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

from tqdm import tqdm

from benchmarks import measure
from benchmarks.peers import peer_variants
from benchmarks.report import markdown, write_report
from benchmarks.subjects import ROOT, SUBJECTS, prepare
from benchmarks.variants import onnx_variants, torch_variants

SCALING = {"swarmformer": [64, 256, 1024, 4096], "boids": [25, 50, 100, 200, 400, 784]}
ABLATED = {"swarmformer-small", "boids-5v6"}  # Base has the same rewrites as Small


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=list(SUBJECTS), default=list(SUBJECTS))
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds per configuration")
    ap.add_argument("--limit", type=int, help="accuracy on a seeded sample of this many test inputs")
    ap.add_argument("--quick", action="store_true", help="3 rounds, 300 test inputs, two scaling sizes")
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "bench", help="cached exports")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs", help="where BENCHMARKS.md goes")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite BENCHMARKS.md from the benchmarks.json in --out, measuring nothing")
    args = ap.parse_args()
    if args.report_only:
        source = args.out / "benchmarks.json"
        if not source.is_file():
            raise SystemExit(f"error: {source} does not exist: run `python -m benchmarks` first")
        return write(args.out, json.loads(source.read_text()))
    if args.quick:
        args.rounds, args.limit = 3, args.limit or 300
    start = time.time()
    results = {"date": dt.date.today().isoformat(), "machine": machine(), "rounds": args.rounds, "subjects": {}}
    print(f"machine: {results['machine']['cpu']}, {measure.CORES} cores, {results['machine']['isa']}")
    results["peak"] = measure.arithmetic_peak()
    for name in args.models:
        print(f"{name}:")
        subject = prepare(SUBJECTS[name], args.workdir)
        variants = torch_variants(subject) + onnx_variants(subject, args.workdir) + peer_variants(
            subject, args.workdir)
        ours = next(f"swarmedge int8 {g}" for g, (_, presets) in subject.bundles.items()
                    if results["machine"]["host_preset"] in presets)
        lengths = SCALING[subject.model_type][:: 2 if args.quick else 1]
        scaled = [v for v in variants if v.name in ("PyTorch eager fp32", "onnxruntime fp32 (plain export)",
                                                    "swarmedge fp32", ours)]
        steps = (3 * args.rounds + 2 * args.rounds * (name == "swarmformer-small")
                 + len(variants) * (1 + subject.trained) + args.rounds * (name in ABLATED)
                 + args.rounds * len(lengths))
        failures = {v.name: v.failed for v in variants if v.failed}
        with tqdm(total=steps, desc=name, unit="step") as bar:
            sub = {"model_type": subject.model_type, "trained": subject.trained, "checkpoint": str(subject.checkpoint),
                   "swarmedge_variant": ours,
                   "timings": measure.timings(subject, variants, args.rounds, bar, failures),
                   "operators": measure.operators(subject, variants, 10 * args.rounds, bar),
                   "peer_operators": measure.peer_operators(subject, variants, 10 * args.rounds, failures)}
            if subject.trained:
                sub["accuracy"] = measure.accuracy(subject, variants, args.limit, bar, failures)
            if name == "swarmformer-small":
                sub["levers"] = measure.levers(subject, args.workdir, args.rounds, bar, log=tqdm.write)
            if name in ABLATED:
                sub["ablation"] = measure.ablation(subject, args.workdir, args.rounds, bar, log=tqdm.write)
            sub["scaling"] = measure.scaling(subject, scaled, lengths, args.rounds, bar)
        sub["variants"] = [{"name": v.name, "group": v.group, "bytes": v.bytes, "note": v.note,
                            "failed": failures.get(v.name)} for v in variants]
        sub["macs"] = _macs(subject)
        sub["achieved"] = _achieved(sub, results["peak"])
        results["subjects"][name] = sub
    results["minutes"] = (time.time() - start) / 60
    write(args.out, results)


def _macs(subject) -> int:
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.cost import macs_per_sample

    manifest = Bundle.open(subject.plain).manifest
    return macs_per_sample(manifest, measure.typical_length(manifest))


def _achieved(sub: dict, peak: dict) -> list[dict]:
    """Model multiply-accumulates per second (as the model is written, before rewrites)."""
    rows = []
    for r in sub["timings"]:
        if r["variant"] in ("PyTorch eager fp32", sub["swarmedge_variant"]) and (r["batch"], r["threads"]) in (
                (1, 1), (32, measure.CORES)):
            gmacs = sub["macs"] * r["batch"] / (r["p50_ms"] * 1e-3) / 1e9
            rows.append({"variant": r["variant"], "batch": r["batch"], "threads": r["threads"], "gmacs": gmacs,
                         "of_fp32": gmacs / peak[f"fp32_gmacs_{r['threads']}t"],
                         "of_int8": gmacs / peak[f"int8_gmacs_{r['threads']}t"]})
    return rows


def machine() -> dict:
    import onnxruntime
    import torch

    from swarmedge.export.targets import detect
    from swarmedge.runtimes.profile import machine as device

    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp") if f in flags]
    return {**device(), "isa": ", ".join(isa) or platform.machine(), "host_preset": detect(),
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__}


def write(out: Path, results: dict) -> None:
    write_report(out, "benchmarks", results, markdown(results))


if __name__ == "__main__":
    main()
