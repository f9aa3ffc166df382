"""Reproduce the published accuracies on CPU and measure what export and int8 change.

Each run trains (or resumes) a model with `swarmedge train`, then evaluates it on the full
test set with PyTorch fp32, ONNX fp32 and ONNX int8 for every target preset, and records
prediction agreement with PyTorch fp32. Results go to docs/results/<run>.json; the table
in docs/RESULTS.md is rebuilt from all result files, so runs can be done one at a time:

    python tools/reproduce.py                      # every run (many CPU hours)
    python tools/reproduce.py --only boids-r10     # one run
    python tools/reproduce.py --table-only         # rebuild docs/RESULTS.md
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

# The text recipe: embeddings start from PPMI word vectors of the training texts (the change
# that moved validation accuracy after one epoch from 73% to 88%), 10% of tokens hidden behind
# [UNK] per batch, label smoothing, head+tail truncation (reviews end with their verdict).
def text_recipe(epochs: int) -> list[str]:
    return ["--epochs", str(epochs), "--batch-size", "32", "--lr", "1e-3", "--weight-decay", "0.05",
            "--label-smoothing", "0.1", "--token-dropout", "0.1", "--truncation", "head-tail",
            "--init-embeddings", "ppmi"]


# name -> (train arguments, test data, published accuracy or None, description)
RUNS = {
    "boids-b1": (["boids", "--digits", "5", "6", "--blocks", "1", "--epochs", "15", "--batch-size", "128",
                  "--lr", "5e-3", "--weight-decay", "0"], "mnist", 89.68, "boids 5 vs 6, 1 block, d 3"),
    "boids-d2": (["boids", "--digits", "5", "6", "--blocks", "2", "--no-recurrent", "--epochs", "15",
                  "--batch-size", "128", "--lr", "5e-3", "--weight-decay", "0"], "mnist", 96.97,
                 "boids 5 vs 6, 2 distinct blocks, d 3"),
    "boids-r2": (["boids", "--digits", "5", "6", "--blocks", "2", "--epochs", "15", "--batch-size", "128",
                  "--lr", "5e-3", "--weight-decay", "0"], "mnist", 95.03, "boids 5 vs 6, 2 recurrent steps, d 3"),
    "boids-r10": (["boids", "--digits", "5", "6", "--blocks", "10", "--epochs", "15", "--batch-size", "128",
                   "--lr", "5e-3", "--weight-decay", "0"], "mnist", 96.43, "boids 5 vs 6, 10 recurrent steps, d 3"),
    # 6 epochs, not 15: each takes ~6 min on one core of the 2-core machine (d 100: 40x the
    # arithmetic of d 3; eight classes: 4x the digits).
    "boids-d10-d100": (["boids", "--digits", "5", "6", "--blocks", "10", "--no-recurrent", "--d-model", "100",
                        "--epochs", "6", "--batch-size", "128", "--lr", "2e-3", "--weight-decay", "0"], "mnist",
                       99.35, "boids 5 vs 6, 10 distinct blocks, d 100"),
    "boids-8class": (["boids", "--classes", "8", "--blocks", "10", "--epochs", "6", "--batch-size", "128",
                      "--lr", "5e-3", "--weight-decay", "0"], "mnist", None, "boids digits 0-7, 10 recurrent, d 3"),
    "swarmformer-small": (["swarmformer", "--config", "small", *text_recipe(8)], "imdb", 86.20,
                          "SwarmFormer Small, own WordPiece vocabulary"),
    # 3 epochs, not 8: a Base epoch took 20.5 min on the 2-core machine (7x Small's arithmetic), and
    # with PPMI embeddings Small was at 90.3% validation accuracy after 3 epochs.
    "swarmformer-base": (["swarmformer", "--config", "base", *text_recipe(3)], "imdb", 89.03,
                         "SwarmFormer Base, own WordPiece vocabulary"),
}


# What counts as reproduced (issue 17): at or above the published figure; anything less is
# reported as below it by so many points, never as met.
def target(published: float | None, data: str) -> float | None:
    return published


def swarmedge(*args: str) -> list[str]:
    return [sys.executable, "-m", "swarmedge.cli", *args]


def run(name: str, workdir: Path, seed: int, threads: int | None = None) -> dict:
    from swarmedge.evaluate import evaluate_model
    from swarmedge.export import export_bundle

    train_args, data, published, description = RUNS[name]
    ckpt = workdir / f"{name}.pt"
    cmd = swarmedge("train", *train_args, "--seed", str(seed), "-o", str(ckpt))
    resume = ["--resume"] if (workdir / f"{name}.resume.pt").exists() else []
    speed = ["--threads", str(threads)] if threads else []  # changes the time taken, not the model
    t0 = time.time()
    subprocess.run(cmd + resume + speed, check=True)
    train_seconds = time.time() - t0
    reference = evaluate_model(ckpt, data)
    rows = [_row("PyTorch fp32", reference, reference)]
    fp32_bundle, _ = export_bundle(ckpt, workdir / f"{name}.bundle", quantize_mode=None)
    rows.append(_row("ONNX fp32", evaluate_model(fp32_bundle, data, precision="fp32"), reference))
    sizes = {"fp32": (fp32_bundle / "model.onnx").stat().st_size}
    # int8 is evaluated with this machine's own preset: a preset for another CPU runs here on
    # kernels that CPU does not use (u8 x s8 without VNNI saturates on AVX2). ARM numerics are
    # checked on emulated Pi CPUs by `swarmedge arm-check` (tests/test_arm.py).
    from swarmedge.export.targets import detect

    for preset in (detect(),):
        bundle, manifest = export_bundle(ckpt, workdir / f"{name}-{preset}.bundle", target=preset)
        rows.append(_row(f"ONNX int8 ({preset})", evaluate_model(bundle, data, precision="int8"), reference))
        sizes[preset] = manifest["files"]["model.int8.onnx"]["bytes"]
    log = [json.loads(line) for line in (workdir / f"{name}.log.jsonl").read_text().splitlines()]
    return {"name": name, "description": description, "published": published, "target": target(published, data),
            "data": data, "command": "swarmedge " + shlex.join([*cmd[3:-1], ckpt.name]), "seed": seed,
            "epochs": len(log),
            "train_wall_seconds_this_invocation": round(train_seconds),
            "train_seconds_logged": round(sum(r["seconds"] for r in log)), "machine": machine(),
            "rows": rows, "onnx_bytes": sizes}


def _row(variant: str, report: dict, reference: dict) -> dict:
    agree = sum(a == b for a, b in zip(report["predictions"], reference["predictions"])) / report["samples"]
    return {"variant": variant, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "agreement_with_pytorch": agree, "samples": report["samples"]}


def machine() -> dict:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(), "torch": torch.__version__}


def table() -> str:
    lines = ["# Reproduction results", "",
             "Generated by `python tools/reproduce.py` (`make reproduce`) from `docs/results/*.json`; every",
             "number below was measured by that script on the machine it names. Test sets are the full",
             "official ones (MNIST test digits of the task; IMDB 25,000 test reviews). int8 rows use the",
             "preset of the machine that ran them (`--target auto`); ARM numerics are checked separately on",
             "emulated Raspberry Pi CPUs (`swarmedge arm-check`, see the README).", ""]
    done = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    for name, (_, _, published, description) in RUNS.items():
        r = done.get(name)
        lines.append(f"## {name}: {description}")
        lines.append("")
        if r is None:
            lines += ["Not run yet.", ""]
            continue
        pub = f"{published:.2f}%" if published is not None else "not published"
        best = round(r["rows"][0]["accuracy"] * 100, 2)  # as shown: 96.97 is 96.97, not 96.9699999
        goal = target(published, r["data"])
        verdict = "" if goal is None else (" (met)" if best >= goal else f" (below by {goal - best:.2f} points)")
        lines += [f"- published: {pub}; PyTorch fp32 here: {best:.2f}%{verdict}",
                  f"- command: `{r['command']}` (seed {r['seed']}, {r['epochs']} epochs, "
                  f"{r['train_seconds_logged'] / 60:.1f} min of training)",
                  f"- machine: {r['machine']['cpu']}, {r['machine']['cores']} cores "
                  f"({r['machine']['torch_cpu_capability']}), torch {r['machine']['torch']}", "",
                  "| variant | accuracy | macro F1 | agreement with PyTorch fp32 |", "| --- | --- | --- | --- |"]
        for row in r["rows"]:
            lines.append(f"| {row['variant']} | {row['accuracy']:.2%} | {row['macro_f1']:.4f} | "
                         f"{row['agreement_with_pytorch']:.2%} |")
        lines.append("")
        if r.get("notes"):
            lines += [r["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(RUNS), help="run just these (repeatable)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads for training [default: all cores]")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        for name in args.only or list(RUNS):
            result = run(name, args.workdir, args.seed, args.threads)
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "docs" / "RESULTS.md").write_text(table() + "\n")


if __name__ == "__main__":
    main()
