"""`make bench-stream` end to end in its quick mode, on the tiny text bundle: every figure measured and reported.

Speeds are not asserted (a loaded CI machine would flake): only that each figure is there, positive,
and counts what it says it counts. Ray is left out (--no-ray): starting a cluster takes longer than the
rest of the run.
"""

import json
import os
import subprocess
import sys

from .conftest import ROOT


def test_quick_stream_bench_writes_every_figure(text_bundle, data_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWARMEDGE_DATA": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "benchmarks.stream", "--quick", "--no-ray", "--stdin",
                           "--texts", "300", "--memory-texts", "3000", "--first-repeats", "2",
                           "--bundle", str(text_bundle), "--workdir", str(tmp_path / "work"), "-o", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads((tmp_path / "streaming.json").read_text())
    report = (tmp_path / "STREAMING.md").read_text()
    cores = len(os.sched_getaffinity(0))

    assert r["quick"] is True and r["settings"] == {"texts": 300, "memory_texts": 3000, "rounds": 1,
                                                    "first_repeats": 2, "chunk_size": 256, "cores": cores}
    assert r["bundle"]["path"] == str(text_bundle) and r["bundle"]["zoo"] is False and r["bundle"]["bytes"] > 0
    assert {"python", "onnxruntime", "numpy"} <= set(r["versions"]) and "ray" not in r["versions"]
    assert r["machine"]["cpu"] and r["minutes"] > 0

    # the corpora: short sentences of the IMDB test reviews, in the counts asked for
    c = r["corpus"]
    assert c["distinct_sentences"] > 10_000 and c["words"] == [4, 20]
    for key, n in (("throughput", 300), ("memory", 3000)):
        assert c[key]["texts"] == n and c[key]["bytes"] > 0 and 4 <= c[key]["mean_words"] <= 20
        path = tmp_path / "work" / "stream" / f"texts-{n}.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == n and all(4 <= len(t.split()) <= 20 for t in lines)

    # throughput: 1 core and 2 cores (and all cores where there are more), one run each, no Ray
    t = r["throughput"]
    names = [s["config"] for s in t["summary"]]
    assert names == ["1 core"] + (["2 cores"] if cores >= 2 else []) + ([f"all {cores} cores"] if cores > 2 else [])
    assert len(t["runs"]) == len(names) and all(x["texts"] == 300 for x in t["runs"])
    for x in t["runs"]:
        assert x["wall_s"] > 0 and x["texts_per_s"] > 0 and abs(x["texts_per_s"] * x["wall_s"] - 300) < 1e-6
        assert 0 < x["first_record_s"] <= x["wall_s"] and 0 < x["records_at_first"] <= 300
    for s in t["summary"]:
        assert s["runs"] == 1 and s["failed_runs"] == 0 and s["texts_per_s"] > 0 and "swarmedge run" in s["command"]
    assert t["summary"][0]["command"].startswith("taskset -c ") and "--threads 1" in t["summary"][0]["command"]
    if cores >= 2:
        assert t["ratios"]["2_over_1_texts_per_s"] > 0

    # memory: the --file run and the stdin run over every text, one process each
    assert set(r["memory"]) == {"file", "stdin"}
    for x in r["memory"].values():
        assert x["texts"] == 3000 and x["wall_s"] > 0 and x["texts_per_s"] > 0 and x["processes"] >= 1
        assert 20 < x["vmhwm_mb"] <= x["peak_rss_mb"] < 4000 and x["tree_sampled_peak_mb"] <= x["peak_rss_mb"]

    # time to the first result: both ways, every measurement kept
    for way in ("stdin", "file"):
        x = r["first_result"][way]
        assert len(x["runs_s"]) == 2 and all(v > 0 for v in x["runs_s"])
        assert x["min_s"] <= x["median_s"] <= x["max_s"]
    assert r["first_result"]["file"]["texts"] == 3000

    # targets: none is judged on a bundle that is not the zoo's model, nor on 3,000 texts
    assert set(r["targets"]) == {"first_result", "peak_rss", "two_core_speedup"}
    assert all(x["status"].startswith("not judged") for x in r["targets"].values())
    assert "not judged (3,000 texts, not 1,000,000)" in r["targets"]["peak_rss"]["status"]

    for heading in ("## Targets", "## Throughput", "## Peak memory", "## Time to the first result", "## Notes"):
        assert heading in report
    assert "Quick run" in report and "1 core" in report and "Ray" not in report.split("## Throughput")[1]

    # --report-only renders the same report from the JSON alone
    (tmp_path / "STREAMING.md").unlink()
    again = subprocess.run([sys.executable, "-m", "benchmarks.stream", "--report-only", "-o", str(tmp_path)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "STREAMING.md").read_text() == report


def test_report_only_without_results_says_what_to_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.stream", "--report-only", "-o", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "python -m benchmarks.stream" in done.stderr
    assert not list(tmp_path.iterdir())
