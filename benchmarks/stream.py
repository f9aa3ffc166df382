"""`make bench-stream`: `swarmedge run` over a corpus of short texts -> docs/STREAMING.md + docs/streaming.json.

Every figure comes from a subprocess, mostly the real command line, on SwarmFormer Small int8 (the
zoo model, exported for this CPU as `make bench` does and cached beside its exports):

- throughput on 1 core, on 2 cores (and on all cores where there are more than 2), and through
  Ray Data on this machine (`run --ray local`, and classify_corpus from a script that times Ray's
  start-up apart), rounds interleaved (1, 2, Ray, Ray, 1, 2, ...), medians reported;
- peak resident memory of one run over 1,000,000 short texts (--file; with --stdin also through stdin);
- time to the first result, from spawning the command: a text written into a pipe held open, and
  the first record of a 1,000,000-text --file run.

    python -m benchmarks.stream                          # the full run: ~35 min on 2 cores, a quiet machine
    python -m benchmarks.stream --quick -o /tmp/stream   # 2,000 texts, 20,000 for memory, 1 round
    python -m benchmarks.stream --report-only            # re-render STREAMING.md from streaming.json

The texts are sentences of 4-20 words cut from the IMDB test reviews ($SWARMEDGE_DATA/imdb_test.jsonl.gz),
cycled to make up the counts: a 1,000,000-text corpus repeats each sentence several times.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.stream_inputs import (
    MAX_WORDS,
    MIN_WORDS,
    cut_sentences,
    describe_bundle,
    machine,
    stream_bundle,
    versions,
    write_corpus,
)
from benchmarks.stream_process import HWM_WRAPPER, cli, count_lines, first_result, timed_run
from benchmarks.stream_report import TARGETS, judge, markdown
from benchmarks.subjects import ROOT

FULL = {"texts": 50_000, "memory_texts": TARGETS["memory_texts"], "rounds": 3, "first_repeats": 5}
QUICK = {"texts": 2_000, "memory_texts": 20_000, "rounds": 1, "first_repeats": 3}
RESULT_MARK = "STREAM-BENCH-RESULT "

# classify_corpus on a local Ray started with the given CPUs: start-up, the first result
# (the first bytes of the output, which is written in a fresh folder) and the end, timed inside.
RAY_DRIVER = (
    "import json, os, sys, threading, time\n"
    "t0 = time.perf_counter()\n"
    "bundle, source, output, cpus, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]\n"
    "import ray\n"
    "from swarmedge.ray_data import classify_corpus\n"
    "t1 = time.perf_counter()\n"
    "ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)\n"
    "t2 = time.perf_counter()\n"
    "folder, first, stop = os.path.dirname(os.path.abspath(output)), {}, threading.Event()\n"
    "def watch():\n"
    "    while not stop.is_set():\n"
    "        for e in os.scandir(folder):\n"
    "            if e.is_file() and e.stat().st_size > 0:\n"
    "                first['at'] = time.perf_counter()\n"
    "                with open(e.path, 'rb') as f:\n"
    "                    first['records'] = f.read().count(b'\\n')\n"
    "                return\n"
    "        time.sleep(0.005)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "n = classify_corpus(bundle, source, output)\n"
    "t3 = time.perf_counter()\n"
    "stop.set()\n"
    "ray.shutdown()\n"
    "t4 = time.perf_counter()\n"
    "print(mark + json.dumps({'texts': n, 'import_s': t1 - t0, 'init_s': t2 - t1, 'classify_s': t3 - t2,\n"
    "    'first_s': first['at'] - t2 if first else None, 'first_records': first.get('records'),\n"
    "    'shutdown_s': t4 - t3, 'ray': ray.__version__}), flush=True)\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, help=f"texts per throughput run [default: {FULL['texts']:,}]")
    ap.add_argument("--memory-texts", type=int, help=f"texts of the memory runs [default: {FULL['memory_texts']:,}]")
    ap.add_argument("--rounds", type=int, help=f"interleaved throughput rounds [default: {FULL['rounds']}]")
    ap.add_argument("--first-repeats", type=int,
                    help=f"time-to-first-result measurements per way [default: {FULL['first_repeats']}]")
    ap.add_argument("--quick", action="store_true",
                    help="defaults " + ", ".join(f"{k.replace('_', '-')} {v:,}" for k, v in QUICK.items())
                    + " (for trying it out; the targets are not judged)")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray Data throughput runs")
    ap.add_argument("--stdin", action="store_true",
                    help="also measure a memory run through stdin (`cat CORPUS | swarmedge run BUNDLE -`)")
    ap.add_argument("--bundle", type=Path, help="a text bundle to measure instead of the zoo's SwarmFormer Small int8")
    ap.add_argument("--data", type=Path, help="folder holding imdb_test.jsonl.gz [default: $SWARMEDGE_DATA]")
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "bench",
                    help="cached exports; the corpora and outputs go in its stream/ folder")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs", help="where STREAMING.md and streaming.json go")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite STREAMING.md from the streaming.json in --out, measuring nothing")
    args = ap.parse_args()
    if args.report_only:
        source = args.out / "streaming.json"
        if not source.is_file():
            raise SystemExit(f"error: {source} does not exist: run `python -m benchmarks.stream` first")
        results = json.loads(source.read_text())
        results["targets"] = judge(results)  # the statuses follow this code's targets
        return write(args.out, results)
    for name, default in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be at least 1")
    data = args.data or (Path(os.environ["SWARMEDGE_DATA"]) if os.environ.get("SWARMEDGE_DATA") else None)
    if data is None or not (data / "imdb_test.jsonl.gz").is_file():
        raise SystemExit(f"error: no imdb_test.jsonl.gz in {data}: pass --data FOLDER or set SWARMEDGE_DATA")

    start = time.time()
    work = args.workdir / "stream"
    work.mkdir(parents=True, exist_ok=True)
    bundle = args.bundle or stream_bundle(args.workdir)
    cores = sorted(os.sched_getaffinity(0))
    results = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "quick": args.quick,
               "machine": machine(), "versions": versions(not args.no_ray),
               "bundle": describe_bundle(bundle, zoo=args.bundle is None),
               "targets": {}, "settings": {"texts": args.texts, "memory_texts": args.memory_texts,
                                           "rounds": args.rounds, "first_repeats": args.first_repeats,
                                           "chunk_size": 256, "cores": len(cores)}}
    print(f"machine: {results['machine']['cpu']}, {len(cores)} cores; bundle {bundle}")

    sentences = cut_sentences(data / "imdb_test.jsonl.gz")
    small = work / f"texts-{args.texts}.txt"
    big = work / f"texts-{args.memory_texts}.txt"
    results["corpus"] = {"source": "imdb_test.jsonl.gz", "distinct_sentences": len(sentences),
                         "words": [MIN_WORDS, MAX_WORDS],
                         "throughput": write_corpus(small, args.texts, sentences),
                         "memory": write_corpus(big, args.memory_texts, sentences)}
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()

    results["throughput"] = throughput(bundle, small, args.texts, cores, args.rounds, out, ray=not args.no_ray)
    results["memory"] = {"file": memory_run(bundle, big, args.memory_texts, out, stdin=False)}
    if args.stdin:
        results["memory"]["stdin"] = memory_run(bundle, big, args.memory_texts, out, stdin=True)
    results["first_result"] = first_results(bundle, sentences[0], big, args.first_repeats)
    results["targets"] = judge(results)
    results["minutes"] = (time.time() - start) / 60
    shutil.rmtree(out, ignore_errors=True)
    write(args.out, results)


# -- the bundle and the texts ----------------------------------------------------------------

def throughput(bundle: Path, corpus: Path, texts: int, cores: list[int], rounds: int, out: Path, ray: bool) -> dict:
    """Texts per second of `swarmedge run --file` pinned to 1 core and to 2 (all cores where there
    are just 2; all cores as a third configuration where there are more), and of classify_corpus
    on a local Ray: ``rounds`` rounds, the configurations interleaved in each."""
    configs = [{"name": "1 core", "cpus": cores[:1], "threads": 1}]
    if len(cores) == 2:
        configs.append({"name": "2 cores", "cpus": None, "threads": None, "all_cores": True})
    elif len(cores) > 2:
        configs.append({"name": "2 cores", "cpus": cores[:2], "threads": 2})
        configs.append({"name": f"all {len(cores)} cores", "cpus": None, "threads": None, "all_cores": True})
    if ray:
        configs.append({"name": f"Ray Data, {len(cores)} cores", "ray": "cli"})
        configs.append({"name": f"Ray Data, {len(cores)} cores, start-up apart", "ray": "driver"})
    for c in configs:
        if c.get("ray") == "driver":
            c["command"] = (f"ray.init(num_cpus={len(cores)}); swarmedge.ray_data.classify_corpus(BUNDLE, "
                            f"{corpus.name}, OUT)")
        elif c.get("ray") == "cli":
            c["command"] = f"swarmedge run BUNDLE --file {corpus.name} -o OUT --ray local"
        else:
            c["command"] = " ".join(
                (["taskset", "-c", ",".join(map(str, c["cpus"]))] if c["cpus"] else [])
                + ["swarmedge", "run", "BUNDLE", "--file", corpus.name, "-o", "OUT"]
                + (["--threads", str(c["threads"])] if c["threads"] else []))
    runs = []
    for r in range(rounds):
        for c in configs:
            output = out / "throughput.jsonl"
            if c.get("ray") == "driver":
                row = ray_run(bundle, corpus, texts, len(cores), out)
            elif c.get("ray") == "cli":
                folder = out / "ray-cli"  # the results appear as a temporary file there, renamed at the end
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                cmd = cli() + ["run", str(bundle), "--file", str(corpus), "-o", str(folder / "results.jsonl"),
                               "--ray", "local"]
                row = timed_run(cmd, folder / "results.jsonl", texts, watch_folder=True, timeout=300 + texts / 50)
                shutil.rmtree(folder, ignore_errors=True)
            else:
                cmd = cli() + ["run", str(bundle), "--file", str(corpus), "-o", str(output)]
                cmd += ["--threads", str(c["threads"])] if c["threads"] else []
                row = timed_run(cmd, output, texts, cpus=c["cpus"])
            runs.append({"config": c["name"], "round": r, **row})
            if "failed" not in row:
                print(f"  throughput round {r + 1}/{rounds}, {c['name']}: {row['texts_per_s']:,.0f} texts/s "
                      f"({row['wall_s']:.2f} s)")
    summary = []
    for c in configs:
        mine = [x for x in runs if x["config"] == c["name"] and "failed" not in x]
        s = {"config": c["name"], "command": c["command"], "cpus": c.get("cpus"), "threads": c.get("threads"),
             "runs": len(mine), "failed_runs": sum(x["config"] == c["name"] and "failed" in x for x in runs)}
        for key in ("texts_per_s", "texts_per_s_after_first", "wall_s", "first_record_s",
                    "startup_s", "texts_per_s_after_startup"):
            values = [x[key] for x in mine if x.get(key) is not None]
            if values:
                s[key] = statistics.median(values)
                if key == "texts_per_s":
                    s["texts_per_s_min"], s["texts_per_s_max"] = min(values), max(values)
        summary.append(s)
    by = {s["config"]: s for s in summary}
    ratios = {}
    if "2 cores" in by:
        for key in ("texts_per_s", "texts_per_s_after_first"):
            if key in by["2 cores"] and key in by["1 core"]:
                ratios[f"2_over_1_{key}"] = by["2 cores"][key] / by["1 core"][key]
    for c in configs:
        if c.get("all_cores") and c["name"] != "2 cores":
            ratios["all_over_1_texts_per_s"] = by[c["name"]]["texts_per_s"] / by["1 core"]["texts_per_s"]
    return {"texts": texts, "rounds": rounds, "summary": summary, "ratios": ratios, "runs": runs}


def ray_run(bundle: Path, corpus: Path, texts: int, cpus: int, out: Path) -> dict:
    """One classify_corpus run on a local Ray of ``cpus`` CPUs, in a subprocess of its own."""
    folder = out / "ray"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    output = folder / "results.jsonl"
    cmd = [sys.executable, "-c", RAY_DRIVER, str(bundle), str(corpus), str(output), str(cpus), RESULT_MARK]
    timeout = 300 + texts / 50  # a hung run (Ray waiting for resources) is recorded as failed, not waited on
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the driver's exit lets Ray take down the local cluster it started
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        shutil.rmtree(folder, ignore_errors=True)
        print(f"  Ray run stopped after {timeout:.0f} s without finishing")
        return {"texts": texts, "failed": f"no result after {timeout:.0f} s (stopped)", "stderr": stderr[-2000:]}
    wall = time.perf_counter() - t0
    lines = [x for x in stdout.splitlines() if x.startswith(RESULT_MARK)]
    written = count_lines(output) if output.is_file() else 0
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0 or not lines:
        print(f"  Ray run failed (exit {proc.returncode}): {stderr.strip().splitlines()[-1:] or ''}")
        return {"texts": texts, "failed": f"exit {proc.returncode}", "stderr": stderr[-2000:]}
    inner = json.loads(lines[-1][len(RESULT_MARK):])
    if written != texts or inner["texts"] != texts:
        raise SystemExit(f"error: the Ray run wrote {written} results for {texts} texts")
    startup = inner["import_s"] + inner["init_s"]
    row = {"texts": texts, "wall_s": wall, "texts_per_s": texts / wall, "startup_s": startup,
           "ray_import_s": inner["import_s"], "ray_init_s": inner["init_s"], "classify_s": inner["classify_s"],
           "shutdown_s": inner["shutdown_s"], "texts_per_s_after_startup": texts / inner["classify_s"],
           "first_record_s": None if inner["first_s"] is None else startup + inner["first_s"],
           "records_at_first": inner["first_records"], "ray": inner["ray"]}
    # No "after first" rate here: Ray classifies ahead of the in-order writer, so the texts written
    # after the first result were mostly classified before it, and the rate would be flattering.
    return row


def memory_run(bundle: Path, corpus: Path, texts: int, out: Path, stdin: bool) -> dict:
    """One run over the whole ``corpus`` (--file, or `cat corpus |` into stdin): peak memory,
    wall time, texts per second."""
    output = out / "memory.jsonl"
    cmd = [sys.executable, "-c", HWM_WRAPPER, "run", str(bundle)]
    cmd += ["-"] if stdin else ["--file", str(corpus)]
    cmd += ["-o", str(output)]
    if stdin:
        cat = subprocess.Popen(["cat", str(corpus)], stdout=subprocess.PIPE)
        try:
            row = timed_run(cmd, output, texts, stdin=cat.stdout, sample_rss=True)
        finally:
            cat.stdout.close()
            cat.wait()
    else:
        row = timed_run(cmd, output, texts, sample_rss=True)
    row["command"] = ("cat CORPUS | swarmedge run BUNDLE - -o OUT" if stdin
                      else "swarmedge run BUNDLE --file CORPUS -o OUT")
    print(f"  memory, {texts:,} texts {'through stdin' if stdin else 'from --file'}: peak {row['peak_rss_mb']:.0f} MB, "
          f"{row['wall_s']:.1f} s, {row['texts_per_s']:,.0f} texts/s")
    return row


def first_results(bundle: Path, text: str, corpus: Path, repeats: int) -> dict:
    """Median time to the first result, through a pipe held open and from a --file of the memory corpus."""
    ways = {"stdin": (cli() + ["run", str(bundle), "-"], text),
            "file": (cli() + ["run", str(bundle), "--file", str(corpus)], None)}
    times = {k: [] for k in ways}
    for _ in range(repeats):
        for k, (cmd, t) in ways.items():
            times[k].append(first_result(cmd, t))
    result = {}
    for k, values in times.items():
        result[k] = {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
                     "runs_s": values}
        print(f"  first result via {k}: median {result[k]['median_s']:.3f} s of {repeats}")
    result["stdin"]["command"] = "swarmedge run BUNDLE -  (one text written into a pipe held open)"
    result["file"]["command"] = f"swarmedge run BUNDLE --file {corpus.name}  (stopped after its first record)"
    result["file"]["texts"] = count_lines(corpus)
    return result


# -- judging and reporting ---------------------------------------------------------------------

def write(out: Path, results: dict) -> None:
    from benchmarks.report import write_report

    write_report(out, "streaming", results, markdown(results))


if __name__ == "__main__":
    main()
