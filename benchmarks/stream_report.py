"""The report of ``python -m benchmarks.stream``: targets judged from the measured figures, and
docs/STREAMING.md rendered from streaming.json (so ``--report-only`` re-renders it unchanged).
"""

# Issue 16's targets: the first result within a second, a million texts within 300 MB, and two
# cores at least 1.8x one.
TARGETS = {"first_result_s": 1.0, "peak_rss_mb": 300.0, "memory_texts": 1_000_000, "two_core_speedup": 1.8}


def judge(results: dict) -> dict:
    """Each target of the issue: met, missed (with the figure) or not judged (and why)."""
    out = {}
    first = max(results["first_result"][k]["median_s"] for k in ("stdin", "file"))
    out["first_result"] = {"target": f"< {TARGETS['first_result_s']:g} s", "measured": first,
                           "status": "met" if first < TARGETS["first_result_s"] else "missed",
                           "what": "slower of the two medians (stdin, --file), from spawning the command"}
    mem = results["memory"]["file"]
    peak = max(results["memory"][k]["peak_rss_mb"] for k in results["memory"])
    out["peak_rss"] = {"target": f"< {TARGETS['peak_rss_mb']:g} MB for {TARGETS['memory_texts']:,} texts",
                       "measured": peak, "texts": mem["texts"],
                       "what": "highest peak resident memory of the memory runs (" + ", ".join(results["memory"]) + ")"}
    if mem["texts"] < TARGETS["memory_texts"]:
        out["peak_rss"]["status"] = f"not judged ({mem['texts']:,} texts, not {TARGETS['memory_texts']:,})"
    else:
        out["peak_rss"]["status"] = "met" if peak < TARGETS["peak_rss_mb"] else "missed"
    ratio = results["throughput"]["ratios"].get("2_over_1_texts_per_s")
    out["two_core_speedup"] = {"target": f">= {TARGETS['two_core_speedup']:g}x", "measured": ratio,
                               "what": "median texts/s on 2 cores over median on 1 core, wall time from spawn"}
    if ratio is None:
        out["two_core_speedup"]["status"] = "not judged (fewer than 2 cores)"
    else:
        out["two_core_speedup"]["status"] = "met" if ratio >= TARGETS["two_core_speedup"] else "missed"
    why = (f"bundle {results['bundle']['name']}, not the zoo's SwarmFormer Small int8"
           if not results["bundle"]["zoo"] else "quick run" if results["quick"] else None)
    for t in out.values():
        if why and t["status"] in ("met", "missed"):
            t["status"] = f"not judged ({why}; it would be {t['status']})"
    return out


def shown(value: float | None, limit: float, decimals: int, unit: str) -> str:
    """``value`` with enough decimals that it does not print as the target it missed or met."""
    if value is None:
        return "-"
    while decimals < 6 and value != limit and round(value, decimals) == limit:
        decimals += 1
    return f"{value:,.{decimals}f}{unit}"


def status_text(t: dict, measured: str) -> str:
    return f"**missed** (measured {measured})" if t["status"] == "missed" else t["status"]


def markdown(r: dict) -> str:
    m, v, s, tp = r["machine"], r["versions"], r["settings"], r["throughput"]
    lines = [
        "# Streaming benchmark: `swarmedge run` over a corpus of short texts",
        "",
        "Written by `python -m benchmarks.stream` (`make bench-stream`, also run by `make bench`); "
        "`python -m benchmarks.stream --report-only` re-renders it from `streaming.json`."
        + (" **Quick run** (small counts, one round): the figures are indicative only." if r["quick"] else ""),
        "",
        f"- Date: {r['date']}; total {r['minutes']:.1f} min",
        f"- Machine: {m['cpu']}, {s['cores']} cores usable ({m['cores']} online), {m['machine']}, "
        f"{m['memory_gb']:.0f} GB memory, load average {m['load_before'][0]:.2f} at the start",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- Bundle: `{r['bundle']['name']}` ({r['bundle']['bytes'] / 2**20:.1f} MiB)",
        f"- Texts: sentences of {r['corpus']['words'][0]}-{r['corpus']['words'][1]} words cut from the IMDB test "
        f"reviews, {r['corpus']['distinct_sentences']:,} distinct, mean "
        f"{r['corpus']['throughput']['mean_words']:.1f} words, taken in order and cycled: "
        + "; ".join(corpus_text(r["corpus"][k], r["corpus"]["distinct_sentences"]) for k in ("throughput", "memory"))
        + ". Every run classifies every text; nothing is cached across texts.",
        "- Every figure comes from the command line in a subprocess (the one Ray row with start-up apart from a "
        f"script calling `classify_corpus`), chunk size {s['chunk_size']} (the default).",
        "",
        "## Targets",
        "",
        "| target | measured | status |",
        "| --- | --- | --- |",
    ]
    t = r["targets"]
    first = shown(t["first_result"]["measured"], TARGETS["first_result_s"], 3, " s")
    lines.append(f"| time to first result {t['first_result']['target']} | {first} "
                 f"({t['first_result']['what']}) | {status_text(t['first_result'], first)} |")
    peak = shown(t["peak_rss"]["measured"], TARGETS["peak_rss_mb"], 0, " MB")
    lines.append(f"| peak RSS {t['peak_rss']['target']} | {peak} for {t['peak_rss']['texts']:,} texts "
                 f"({t['peak_rss']['what']}) | {status_text(t['peak_rss'], peak)} |")
    ratio = shown(t["two_core_speedup"]["measured"], TARGETS["two_core_speedup"], 2, "x")
    lines.append(f"| throughput on 2 cores {t['two_core_speedup']['target']} one core | {ratio} "
                 f"({t['two_core_speedup']['what']}) | {status_text(t['two_core_speedup'], ratio)} |")
    lines += [
        "",
        f"## Throughput ({tp['texts']:,} texts per run, median of {tp['rounds']} interleaved round(s))",
        "",
        "Texts/s is texts / wall time from spawning the command to its exit: Python start-up and loading "
        "the bundle included. *After first* counts only the texts after the first results reached the "
        "output file, over the time after it (steady state). "
        + ("The Ray rows: `--ray local` is the command line, Ray's start-up included; *start-up apart* runs "
           "the same `classify_corpus` from a script that times `import ray` + `ray.init` (*start-up*), and "
           "*after start-up* is texts / the `classify_corpus` call alone, which still includes starting its "
           "actors and loading the bundle in each. Ray rows have no *after first* rate: Ray classifies ahead "
           "of the in-order writer, so most texts written after the first result were classified before it."
           if any(x["config"].startswith("Ray") for x in tp["summary"]) else ""),
        "",
        "| configuration | command | texts/s (min-max) | texts/s after first | first record | start-up | "
        "texts/s after start-up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for x in tp["summary"]:
        def f(key, fmt, unit="", x=x):
            return "-" if x.get(key) is None else f"{format(x[key], fmt)}{unit}"
        spread = f" ({x['texts_per_s_min']:,.0f}-{x['texts_per_s_max']:,.0f})" if x["runs"] else ""
        failed = f", {x['failed_runs']} run(s) failed" if x.get("failed_runs") else ""
        lines.append(f"| {x['config']} | `{x['command']}` | {f('texts_per_s', ',.0f')}{spread}{failed} | "
                     f"{f('texts_per_s_after_first', ',.0f')} | {f('first_record_s', '.2f', ' s')} | "
                     f"{f('startup_s', '.2f', ' s')} | {f('texts_per_s_after_startup', ',.0f')} |")
    ratios = tp["ratios"]
    if ratios:
        lines += ["", "Ratios: " + "; ".join(f"{k.replace('_', ' ')} {val:.2f}x" for k, val in ratios.items()) + "."]
    lines += ["", "Every run:", "", "| round | configuration | wall | texts/s | first record | texts/s after first |",
              "| --- | --- | --- | --- | --- | --- |"]
    for x in tp["runs"]:
        if "failed" in x:
            lines.append(f"| {x['round'] + 1} | {x['config']} | failed: {x['failed']} | - | - | - |")
            continue
        first = "-" if x.get("first_record_s") is None else f"{x['first_record_s']:.2f} s"
        after = "-" if x.get("texts_per_s_after_first") is None else f"{x['texts_per_s_after_first']:,.0f}"
        lines.append(f"| {x['round'] + 1} | {x['config']} | {x['wall_s']:.2f} s | {x['texts_per_s']:,.0f} | "
                     f"{first} | {after} |")
    lines += ["", "## Peak memory", "",
              "Peak resident memory is the higher of: the process's own peak (VmHWM, read as it exits) and "
              "the resident memory of its process tree sampled every 0.1 s (children included; `processes` "
              "is the most seen at once).", "",
              "| run | texts | peak RSS | VmHWM | tree sampled | processes | wall | texts/s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in r["memory"].values():
        lines.append(f"| `{x['command']}` | {x['texts']:,} | {x['peak_rss_mb']:.0f} MB | "
                     f"{x['vmhwm_mb']:.0f} MB | {x['tree_sampled_peak_mb']:.0f} MB | {x['processes']} | "
                     f"{x['wall_s']:.1f} s | {x['texts_per_s']:,.0f} |")
    fr = r["first_result"]
    lines += ["", f"## Time to the first result (median of {s['first_repeats']})", "",
              "From spawning the command (Python start-up, imports and loading the bundle included) to the "
              "first result line on its stdout.", "",
              "| way | median | min | max |", "| --- | --- | --- | --- |"]
    for k in ("stdin", "file"):
        x = fr[k]
        lines.append(f"| `{x['command']}` | {x['median_s']:.3f} s | {x['min_s']:.3f} s | {x['max_s']:.3f} s |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes(r)] + [""]
    return "\n".join(lines)


def corpus_text(c: dict, distinct: int) -> str:
    size = f"{c['texts']:,} texts, {c['bytes'] / 2**20:.1f} MiB"
    if c["texts"] <= distinct:
        return f"{size}, no text repeated"
    return f"{size}, so texts repeat (each sentence about {c['texts'] / distinct:.1f} times)"


def notes(r: dict) -> list[str]:
    """Honest remarks derived from the figures themselves."""
    out = []
    tp = r["throughput"]
    by = {x["config"]: x for x in tp["summary"]}
    one, two = by.get("1 core"), by.get("2 cores")
    if one and two and two["texts_per_s"] < one["texts_per_s"]:
        out.append(f"2 cores were slower than 1 ({two['texts_per_s']:,.0f} vs {one['texts_per_s']:,.0f} texts/s): "
                   "the machine was probably busy, rerun on a quiet one.")
    if r["machine"]["load_before"][0] > 0.5:
        out.append(f"The 1-minute load average was {r['machine']['load_before'][0]:.2f} when the run began. It "
                   "decays over minutes, so it also counts work that ended just before; if other work went on "
                   "during the run, speed figures are lower than on a quiet machine.")
    for x in tp["summary"]:
        if x.get("failed_runs"):
            out.append(f"{x['config']}: {x['failed_runs']} of {x['runs'] + x['failed_runs']} run(s) failed "
                       "(see streaming.json for their stderr).")
    ray = [x for x in tp["summary"] if x.get("startup_s") is not None]
    for x in ray:
        out.append(f"Ray start-up took {x['startup_s']:.1f} s of each {x['wall_s']:.1f} s run (median): "
                   f"with {tp['texts']:,} texts it weighs on Ray's wall-time figure.")
    if r["quick"]:
        out.append("Quick run: the counts are too small for the targets to be judged or the speeds trusted; "
                   "start-up dominates each run.")
    mem = r["memory"]["file"]
    out.append(f"The memory run's corpus is {r['corpus']['memory']['bytes'] / 2**20:.0f} MiB of text; the results "
               f"it wrote ({mem['texts']:,} JSON lines) went to a file that was deleted after counting.")
    if r["versions"].get("swarmedge_commit", "").endswith("+dirty"):
        out.append("The checkout had uncommitted changes when this ran.")
    return out
