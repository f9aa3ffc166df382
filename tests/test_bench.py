"""`make bench` end to end on the boid model, in its quick mode: every variant measured and reported."""

import json
import os
import subprocess
import sys

from .conftest import ROOT


def test_quick_bench_writes_consistent_tables(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--models", "boids-5v6", "--quick", "--rounds", "2",
                           "--limit", "100", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    sub = results["subjects"]["boids-5v6"]
    names = [v["name"] for v in sub["variants"]]
    assert names[:3] == ["PyTorch eager fp32", "torch.ao dynamic int8", "onnxruntime fp32 (plain export)"]
    assert {"optimum avx512_vnni int8", "optimum arm64 int8", sub["swarmedge_variant"]} <= set(names)
    # every variant timed in every configuration, and scored on the same 100 digits
    configs = {(r["batch"], r["threads"]) for r in sub["timings"]}
    assert configs == {(1, 1), (1, os.cpu_count()), (32, os.cpu_count())}
    assert all(sum(r["variant"] == n for r in sub["timings"]) == 3 for n in names)
    assert sub["accuracy"]["inputs"] == 100 and set(sub["accuracy"]["by_variant"]) == set(names)
    assert sub["accuracy"]["by_variant"]["PyTorch eager fp32"]["agreement"] == 1.0
    assert [r["step"] for r in sub["ablation"]][:2] == ["rewrites: no rewrites", "rewrites: + fold-scales"]
    # the report's ratios are the JSON's medians divided, not numbers of its own
    md = (tmp_path / "BENCHMARKS.md").read_text()
    t = {r["variant"]: r["p50_ms"] for r in sub["timings"] if (r["batch"], r["threads"]) == (1, 1)}
    ratio = t["PyTorch eager fp32"] / t[sub["swarmedge_variant"]]
    assert f"| boids-5v6 | PyTorch eager fp32 | batch 1, 1 thread | 5.0x | {ratio:.2f}x |" in md
    for n in names:
        assert f"| {n} |" in md or f"| **{n}** |" in md
    # where the time goes: a per-operator profile of every onnxruntime variant, summed in the report
    onnx_names = [n for n in names if not n.startswith(("PyTorch", "torch.ao")) and not n.endswith("per input")]
    assert set(sub["operators"]) == set(onnx_names)
    ours = sub["operators"][sub["swarmedge_variant"]]
    assert any(r["op"] == "Softmax" and r["count_per_inference"] == 10 for r in ours)  # one per block
    matmul = sum(r["ms_per_inference"] for r in ours if r["op"] in ("MatMul", "FusedMatMul"))
    assert "### Where the time goes" in md and f"**{matmul:.3f}**" in md
    # the device runner's way (each input alone, batch-invariant) timed beside the whole-batch graph
    per_input = f"{sub['swarmedge_variant']} per input"
    assert per_input in names and sub["accuracy"]["by_variant"][per_input] == \
        sub["accuracy"]["by_variant"][sub["swarmedge_variant"]]
    assert "### What batch-invariant int8 scores cost" in md
    # a missed target is followed by the latency it asks for
    assert (f"5.0x PyTorch eager ({t['PyTorch eager fp32']:.2f} ms) asks for" in md) == (ratio < 5.0)
    # --report-only re-renders the same Markdown from the JSON alone
    (tmp_path / "BENCHMARKS.md").unlink()
    again = subprocess.run([sys.executable, "-m", "benchmarks", "--report-only", "-o", str(tmp_path)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "BENCHMARKS.md").read_text() == md


def test_report_only_without_results_says_what_to_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--report-only", "-o", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "run `python -m benchmarks` first" in done.stderr
    assert list(tmp_path.iterdir()) == []
