"""`make bench` end to end on the boid model, in its quick mode: every variant measured and reported."""

import json
import os
import subprocess
import sys

from .conftest import ROOT


def test_quick_bench_writes_consistent_tables(tmp_path):
    # The peer runtimes' real venvs are for `make bench`; here a fake peer (onnxruntime behind the
    # same worker) stands in for OpenVINO, with one variant that fails to build and one that dies.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWARMEDGE_OPENVINO_PYTHON": sys.executable,
           "SWARMEDGE_OPENVINO_ADAPTER": str(ROOT / "tests" / "fixtures" / "fake_peer.py"),
           "SWARMEDGE_EXECUTORCH_PYTHON": str(tmp_path / "absent")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--models", "boids-5v6", "--quick", "--rounds", "2",
                           "--limit", "100", "--workdir", str(tmp_path / "work"), "-o", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    sub = results["subjects"]["boids-5v6"]
    names = [v["name"] for v in sub["variants"]]
    assert names[:3] == ["PyTorch eager fp32", "torch.ao dynamic int8", "onnxruntime fp32 (plain export)"]
    assert {"optimum avx512_vnni int8", "optimum arm64 int8", sub["swarmedge_variant"]} <= set(names)
    # a peer variant that failed is kept in the table, with what broke, and never timed
    failed = {v["name"]: v["failed"] for v in sub["variants"] if v["failed"]}
    assert failed["Fake broken"] == "failed to build: openvino: RuntimeError: this variant cannot be built"
    assert failed["Fake crash"].startswith("failed to load with 1 thread(s) on boids (1, 150, 2), lengths (1,): "
                                           "openvino worker died during 'load'")
    assert set(failed) == {"Fake broken", "Fake crash"}
    ran = [n for n in names if n not in failed]
    assert "Fake fp32" in ran
    # every variant timed in every configuration, and scored on the same 100 digits
    configs = {(r["batch"], r["threads"]) for r in sub["timings"]}
    assert configs == {(1, 1), (1, os.cpu_count()), (32, os.cpu_count())}
    assert all(sum(r["variant"] == n for r in sub["timings"]) == 3 for n in ran)
    assert not any(r["variant"] in failed for r in sub["timings"])
    assert sub["accuracy"]["inputs"] == 100 and set(sub["accuracy"]["by_variant"]) == set(ran)
    # the fake peer runs the plain export: the same predictions as onnxruntime in-process
    by = sub["accuracy"]["by_variant"]
    assert by["Fake fp32"] == by["onnxruntime fp32 (plain export)"]
    assert sub["accuracy"]["by_variant"]["PyTorch eager fp32"]["agreement"] == 1.0
    assert [r["step"] for r in sub["ablation"]][:2] == ["rewrites: no rewrites", "rewrites: + fold-scales"]
    # the report's ratios are the JSON's medians divided, not numbers of its own
    md = (tmp_path / "BENCHMARKS.md").read_text()
    t = {r["variant"]: r["p50_ms"] for r in sub["timings"] if (r["batch"], r["threads"]) == (1, 1)}
    ratio = t["PyTorch eager fp32"] / t[sub["swarmedge_variant"]]
    assert f"| boids-5v6 | batch 1, 1 thread: x faster | PyTorch eager fp32 | 5.0x | {ratio:.2f}x |" in md
    peers = [n for n in ran if not n.startswith("swarmedge")]
    fastest = min(peers, key=t.get)
    assert (f"| boids-5v6 | batch 1, 1 thread: x faster | {fastest} | 1.2x | "
            f"{t[fastest] / t[sub['swarmedge_variant']]:.2f}x |") in md
    for n in names:
        assert f"| {n} |" in md or f"| **{n}** |" in md
    assert "**failed to build: openvino: RuntimeError: this variant cannot be built**" in md
    # the peer's own per-node counters, beside swarmedge's onnxruntime nodes
    assert set(sub["peer_operators"]) == {"Fake fp32"}
    assert "| Fake fp32 | 2 | 0.500 | 0.250 |" in md and "| FullyConnected | fake_i8 | 1 | 1 | 0.500 |" in md
    # where the time goes: a per-operator profile of every onnxruntime variant, summed in the report
    onnx_names = [n for n in names if not n.startswith(("PyTorch", "torch.ao", "Fake")) and not n.endswith("per input")]
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
    # a missed peer target is followed by the latency it asks for
    asks = f"1.2x the fastest peer ({fastest}, {t[fastest]:.2f} ms) asks for"
    assert (asks in md) == (t[fastest] / t[sub["swarmedge_variant"]] < 1.2)
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
