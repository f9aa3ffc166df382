"""Run a bundle on emulated Raspberry Pi CPUs and compare with this machine's run.

The emulated device runs swarmedge's own runtime (``swarmedge.runtimes.score``) with the
aarch64 onnxruntime wheel on the same preprocessed inputs as the x86 run, so differences
are the ARM kernels' alone. Emulation checks numerics, not speed (it is ~300x slower).
"""

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from swarmedge.arm.sysroot import CPUS, ArmSetupError, ensure_sysroot, require_tools
from swarmedge.errors import InputError

DEFAULT_LIMITS = {"boids": 300, "swarmformer": 200}


def _device_package(dest: Path) -> Path:
    """Copy the torch-free part of swarmedge (core modules + runtimes) for the emulated Python."""
    import swarmedge
    import swarmedge.runtimes

    pkg = dest / "swarmedge"
    pkg.mkdir(parents=True)
    for f in Path(swarmedge.__file__).parent.glob("*.py"):
        shutil.copy(f, pkg / f.name)
    shutil.copytree(Path(swarmedge.runtimes.__file__).parent, pkg / "runtimes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def arm_check(bundle: Path, cpus=("cortex-a72", "cortex-a76"), precisions=("int8",), data: str | None = None,
              data_dir: Path | None = None, limit: int | None = None, seed: int = 0, threads: int = 2,
              on_step: Callable[[str], None] = lambda s: None) -> dict:
    from swarmedge.evaluate import load_test_set
    from swarmedge.metrics import classification_report
    from swarmedge.runtimes import Bundle
    from swarmedge.runtimes.feeds import Samples, feeds_for
    from swarmedge.runtimes.score import save_feeds, score

    if not cpus or not precisions:
        raise InputError(f"give at least one --cpu ({', '.join(CPUS)}) and one --precision (int8, fp32)")
    unknown = set(cpus) - set(CPUS)
    if unknown:
        raise InputError(f"unknown --cpu {', '.join(sorted(unknown))}; choose from {', '.join(CPUS)}")
    tools = require_tools()
    b = Bundle.open(bundle)
    missing = [p for p in precisions if p not in b.precisions]
    if missing:
        raise InputError(f"bundle {bundle} has no {', '.join(missing)} model; it has {', '.join(b.precisions)}")
    model_type = b.manifest["model_type"]
    data = data or ("imdb" if model_type == "swarmformer" else "mnist")
    limit = DEFAULT_LIMITS[model_type] if limit is None else limit
    on_step("test inputs")
    ds = load_test_set(data, b.labels, data_dir, limit or None, seed, b.manifest["preprocessing"]["kind"])
    pre = b.manifest["preprocessing"]
    tokenizer = b.read_text(pre["tokenizer"]) if pre["kind"] == "text" else None
    feeds = feeds_for(Samples(ds.inputs, ds.source), pre, tokenizer, batch_size=16)
    on_step("x86 reference run")
    host = {p: score(b, p, feeds) for p in dict.fromkeys([*precisions, "fp32"])}
    root = ensure_sysroot(on_step=on_step)
    results = []
    with tempfile.TemporaryDirectory(prefix="swarmedge-arm-") as tmp:
        tmp = Path(tmp)
        save_feeds(tmp / "feeds.npz", feeds)
        pkg = _device_package(tmp / "pkg")
        for cpu in cpus:
            for precision in precisions:
                on_step(f"{cpu} {precision} (emulated)")
                out = tmp / f"{cpu}-{precision}.npy"
                t0 = time.time()
                cmd = [tools["qemu"], "-cpu", cpu, "-L", str(root / cpu), "-E",
                       f"PYTHONPATH={root / 'site'}:{pkg}", str(root / cpu / "usr" / "bin" / "python3.11"),
                       "-m", "swarmedge.runtimes.score", str(Path(bundle).absolute()), precision,
                       str(tmp / "feeds.npz"), str(out), str(threads)]
                r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)  # cwd: not a source tree
                if r.returncode != 0:
                    tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
                    raise ArmSetupError(f"the emulated {cpu} run failed ({tail[:200]}); "
                                        "try: swarmedge arm-setup --rebuild")
                arm = np.load(out)
                report = classification_report(ds.labels, arm.argmax(1), ds.label_names)
                results.append({
                    "cpu": cpu, "device": CPUS[cpu][0], "precision": precision,
                    "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                    "agreement_with_x86": float(np.mean(arm.argmax(1) == host[precision].argmax(1))),
                    "agreement_with_fp32": float(np.mean(arm.argmax(1) == host["fp32"].argmax(1))),
                    "max_abs_diff_vs_x86": float(np.abs(arm - host[precision]).max()),
                    "seconds": round(time.time() - t0, 1),
                })
    x86 = {p: float(np.mean(s.argmax(1) == ds.labels)) for p, s in host.items()}
    return {"bundle": str(bundle), "data": ds.source, "samples": len(ds), "seed": seed,
            "x86_accuracy": x86, "fp32_reference": "ONNX fp32 on this machine (parity-checked against PyTorch)",
            "sysroot": str(root), "results": results}


def format_arm_report(report: dict) -> str:
    lines = [f"{report['bundle']}: {report['data']}, {report['samples']} inputs; x86 accuracy "
             + ", ".join(f"{p} {a:.2%}" for p, a in report["x86_accuracy"].items()),
             f"{'cpu':>11} {'device':>15} {'precision':>9} {'accuracy':>9} {'agree x86':>10} {'agree fp32':>10} "
             f"{'max |diff|':>10} {'seconds':>8}"]
    for r in report["results"]:
        lines.append(f"{r['cpu']:>11} {r['device']:>15} {r['precision']:>9} {r['accuracy']:>9.2%} "
                     f"{r['agreement_with_x86']:>10.2%} {r['agreement_with_fp32']:>10.2%} "
                     f"{r['max_abs_diff_vs_x86']:>10.3g} {r['seconds']:>8.1f}")
    return "\n".join(lines)
