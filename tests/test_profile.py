"""`swarmedge profile`: every figure, torch-free, per-operator times; MAC counts checked."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from swarmedge.models import build
from swarmedge.runtimes.cost import boids_macs, swarmformer_macs

from .conftest import run_device

LATENCY_KEYS = {"mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"}


@pytest.mark.parametrize("fixture,length_flag", [("text_bundle", "--seq-len"), ("boids_bundle", "--boids")])
def test_profile_json_without_torch(request, tmp_path, fixture, length_flag):
    bundle = request.getfixturevalue(fixture)
    out = tmp_path / "p.json"
    r = run_device(["profile", str(bundle), "--threads", "1,2", "--batch", "1,4", length_flag, "8,16",
                    "--warmup", "1", "--repeat", "5", "--per-op", "--json", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert json.loads(out.read_text()) == report
    assert len(report["configs"]) == 2 * 2 * 2 * 2  # precisions x threads x batches x lengths
    for c in report["configs"]:
        assert set(c["latency"]) == LATENCY_KEYS
        lat = c["latency"]
        assert lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert c["throughput_samples_per_s"] > 0 and c["session_create_ms"] > 0 and c["first_inference_ms"] > 0
        assert c["process_peak_rss_mb"] > 0 and c["model_bytes"] > 0 and c["macs_per_inference"] > 0
        assert isinstance(c["noisy"], bool)
    ops = report["per_op"]["by_precision"]
    assert set(ops) == {"int8", "fp32"}
    assert any(row["op"] == "MatMul" for row in ops["fp32"])
    assert sum(row["share"] for row in ops["fp32"]) == pytest.approx(1.0)


def test_profile_table_and_bad_options(text_bundle):
    r = run_device(["profile", str(text_bundle), "--repeat", "3", "--warmup", "0", "--per-op"])
    assert r.returncode == 0 and "p50 ms" in r.stdout and "slowest operators" in r.stdout
    r = run_device(["profile", str(text_bundle), "--seq-len", "30"])
    assert r.returncode != 0 and "multiple of 4" in r.stderr
    r = run_device(["profile", str(text_bundle), "--threads", "0"])
    assert r.returncode != 0 and "positive" in r.stderr


def test_operator_counts_leave_the_warm_up_run_out(text_bundle):
    # The first run sets kernels up; were it counted, node executions per inference would
    # depend on how many runs were profiled.
    from swarmedge.runtimes.bundle import Bundle
    from swarmedge.runtimes.profile import per_operator

    bundle = Bundle.open(text_bundle)
    counts = [{r["op"]: r["count_per_inference"] for r in per_operator(bundle, "int8", 1, 1, 16, repeat)}
              for repeat in (1, 3)]
    assert counts[0] == counts[1] and counts[0]["DynamicQuantizeMatMul"] >= 1


def _flops(model, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args)
    return counter.get_total_flops()


def test_mac_formulas_match_torch_flop_counter():
    cfg = {"vocab_size": 100, "d_model": 24, "seq_len": 64, "cluster_size": 8, "num_layers": 2, "T_local": 3}
    model = build("swarmformer", cfg)
    for length in (64, 128):
        ids = torch.zeros(1, length, dtype=torch.int64)
        assert _flops(model, ids) == 2 * swarmformer_macs(model.config.to_dict(), length)
    boids = build("boids", {"blocks": 4, "dim_feedforward": 64, "d_model": 5})
    x, n = torch.zeros(1, 37, 2), torch.tensor([37])
    assert _flops(boids, x, n) == 2 * boids_macs(boids.config.to_dict(), 37)
