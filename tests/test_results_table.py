"""docs/RESULTS.md's verdicts and seed spread (tools/results_table.py)."""

import json
import os
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import reproduce  # noqa: E402
import results_table  # noqa: E402


@pytest.mark.parametrize(("mean", "published", "expected"), [
    (96.97, 96.97, "met"), (96.974, 96.97, "met"), (99.0, 96.97, "met"),
    (96.96, 96.97, "below by 0.01 points"), (96.27, 96.97, "below by 0.70 points"),
    (45.3, None, "no published figure"),
])
def test_met_only_at_or_above_the_published_figure(mean, published, expected):
    assert results_table.verdict(mean, published) == expected


def _seed(name: str, seed: int, accuracy: float) -> dict:
    row = {"accuracy": accuracy, "macro_f1": accuracy, "agreement_with_pytorch": 1.0, "samples": 1850}
    return {"name": name, "seed": seed, "epochs": 15, "command": reproduce.command(name, seed),
            "val_accuracy_by_epoch": [0.5, accuracy], "train_seconds_logged": 60,
            "machine": {"cpu": "cpu", "cores": 2, "torch_cpu_capability": "AVX2", "torch": "2.13.0"},
            "rows": [{**row, "variant": "PyTorch fp32"}, {**row, "variant": "ONNX fp32"},
                     {**row, "variant": "ONNX int8 (x86)"}]}


def test_a_run_is_judged_on_the_mean_of_its_seeds_beside_the_best(tmp_path):
    accuracies = [0.9600, 0.9700, 0.9750]  # best seed above the published 96.97, mean below it
    (tmp_path / "boids-d2").mkdir()
    for seed, acc in enumerate(accuracies):
        (tmp_path / "boids-d2" / f"seed-{seed}.json").write_text(json.dumps(_seed("boids-d2", seed, acc)))
    text = results_table.table({"boids-d2": reproduce.RUNS["boids-d2"]}, tmp_path, reproduce.command)
    pct = [a * 100 for a in accuracies]
    mean, std = statistics.fmean(pct), statistics.stdev(pct)
    assert f"**{mean:.2f}% ± {std:.2f}** over 3 seeds, best seed 2: 97.50%" in text
    assert f"below by {96.97 - round(mean, 2):.2f} points" in text
    assert text.count("| 0 | 96.00% |") == 1 and "| 2 | 97.50% |" in text


def test_fewer_seeds_than_planned_are_said_and_missing_runs_named(tmp_path):
    (tmp_path / "boids-b1").mkdir()
    (tmp_path / "boids-b1" / "seed-0.json").write_text(json.dumps(_seed("boids-b1", 0, 0.93)))
    text = results_table.table({k: reproduce.RUNS[k] for k in ("boids-b1", "boids-r2")}, tmp_path,
                               reproduce.command)
    assert "over 1 seed of the 3 planned (provisional, 1 of 3 seeds: met)" in text
    assert f"Not run yet: `{reproduce.command('boids-r2', 0)}`" in text


def test_the_committed_results_match_the_commands_they_claim():
    """Every stored seed was made by the command RUNS holds today, so RESULTS.md's commands reproduce it."""
    results = Path(reproduce.RESULTS)
    for path in results.glob("*/seed-*.json"):
        record = json.loads(path.read_text())
        assert record["command"] == reproduce.command(path.parent.name, record["seed"]), path
    assert (results.parent / "RESULTS.md").read_text() == results_table.table(
        reproduce.RUNS, results, reproduce.command) + "\n", "rebuild it: python tools/reproduce.py --table-only"


def test_seeds_beyond_the_plan_are_shown_but_not_averaged(tmp_path):
    (tmp_path / "boids-b1").mkdir()
    for seed, acc in ((0, 0.90), (1, 0.91), (2, 0.92), (7, 0.99)):
        (tmp_path / "boids-b1" / f"seed-{seed}.json").write_text(json.dumps(_seed("boids-b1", seed, acc)))
    text = results_table.table({"boids-b1": reproduce.RUNS["boids-b1"]}, tmp_path, reproduce.command)
    assert "**91.00% ± 1.00** over 3 seeds, best seed 2: 92.00%" in text
    assert "seed 7 outside the plan, not in the mean" in text and "| 7 | 99.00% |" in text


def test_original_loop_reads_the_test_set_every_epoch(data_dir, tmp_path):
    import subprocess

    log = tmp_path / "loop.jsonl"
    done = subprocess.run([sys.executable, str(Path(reproduce.__file__).with_name("original_loop.py")), "--blocks", "1",
                           "--epochs", "2", "--data", str(data_dir), "-o", str(log)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["test_accuracy"] <= 1 for r in rows)
    best = max(r["test_accuracy"] for r in rows)
    assert done.stdout.splitlines()[-1].startswith(f"last epoch {rows[-1]['test_accuracy']:.2%}; ")
    assert f"best of 2 epochs {best:.2%}" in done.stdout and "on 1,850 test digits" in done.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["--blocks", "0"], "argument --blocks: 0 is below 1"),
    (["--seed", "-5"], "argument --seed: -5 is below 0"),
    (["--threads", "0"], "argument --threads: 0 is below 1"),
    (["-o", "{tmp}"], "is a folder; give a file path"),
    (["-o", "{tmp}/kept.jsonl"], "kept.jsonl exists and would be replaced"),
    (["--data", "{tmp}/kept.jsonl"], "kept.jsonl"),
])
def test_original_loop_refuses_bad_arguments_in_one_line(tmp_path, args, words):
    import subprocess

    (tmp_path / "kept.jsonl").write_text("keep\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "new.jsonl")]
    done = subprocess.run([sys.executable, str(Path(reproduce.__file__).with_name("original_loop.py")), "--epochs", "1",
                           "--blocks", "1", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SWARMEDGE_DATA": str(tmp_path / "nowhere")})
    *usage, line = done.stderr.strip().splitlines()  # argparse's own refusals print the usage first
    assert done.returncode == 2 and words in line and "Traceback" not in done.stderr
    assert all(u.startswith(("usage:", " ")) for u in usage)
    assert (tmp_path / "kept.jsonl").read_text() == "keep\n" and not (tmp_path / "new.jsonl").exists()
