"""docs/BENCHMARKS.md from one run's results (the JSON beside it holds every figure)."""

from pathlib import Path

from swarmedge.export.quantize import MIN_WEIGHT_DIM

ANALYSIS = Path(__file__).with_name("analysis.md")

# Targets (issue 14), for every model: swarmedge int8 at batch 1 on one thread at least 1.2x
# faster than the fastest peer; at batch 32 on all cores at least the fastest peer's
# throughput; the boid model at least 5x PyTorch eager at batch 1; int8 accuracy within 0.5
# points of fp32.
PEER_SPEEDUP, PEER_THROUGHPUT, BOID_EAGER, ACCURACY_POINTS = 1.2, 1.0, 5.0, 0.5
PEER_GROUPS = ("pytorch", "onnxruntime", "optimum", "openvino", "executorch")
BROKEN_POINTS = 1.0  # a peer this far below PyTorch eager's accuracy broke the model: not a rival


# What int8 speeds up: the products and the (de)quantization around them. Everything else
# (elementwise maths, slicing, softmax, reductions) runs in float in every variant.
MATMUL_OPS = {"MatMul", "FusedMatMul", "Gemm", "DynamicQuantizeMatMul", "MatMulInteger", "MatMulIntegerToFloat",
              "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QGemm"}
QUANTIZED_OPS = {"DynamicQuantizeMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul", "QGemm"}
TOP_OPS = 10
SMALL_NODE_US = 8.0  # below this mean node time, per-node overheads are worth naming


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{row['p50_ms']:.2f}" + (" ~" if row["noisy"] else "")


def _x(base: float | None, value: float | None) -> str:
    return f"{base / value:.2f}x" if base and value else "-"


def rivals(sub: dict) -> list[str]:
    """The peers a target compares with: every non-swarmedge variant that ran, except one that
    broke the model (accuracy more than BROKEN_POINTS below PyTorch eager's, where measured)."""
    acc = (sub.get("accuracy") or {}).get("by_variant", {})
    eager = acc.get("PyTorch eager fp32", {}).get("accuracy")
    return [v["name"] for v in sub["variants"] if v["group"] in PEER_GROUPS and not v.get("failed")
            and not (eager is not None and v["name"] in acc
                     and acc[v["name"]]["accuracy"] < eager - BROKEN_POINTS / 100)]


def fastest_peer(sub: dict, batch: int, threads: int) -> tuple[str, float] | tuple[None, None]:
    t = {r["variant"]: r["p50_ms"] for r in sub["timings"] if r["batch"] == batch and r["threads"] == threads}
    found = [(t[v], v) for v in rivals(sub) if v in t]
    return (min(found)[1], min(found)[0]) if found else (None, None)


def target_rows(results: dict) -> list[tuple]:
    """(model, what, compared with, needed, measured, met) for every target."""
    from benchmarks.variants import PER_INPUT

    cores = results["machine"]["cores"]
    rows = []
    for name, sub in results["subjects"].items():
        ours = sub["swarmedge_variant"]
        t = {(r["variant"], r["batch"], r["threads"]): r["p50_ms"] for r in sub["timings"]}
        peer, ms = fastest_peer(sub, 1, 1)
        if peer and (ours, 1, 1) in t:
            ratio = ms / t[ours, 1, 1]
            rows.append((name, "batch 1, 1 thread: x faster", peer, f"{PEER_SPEEDUP:.1f}x", f"{ratio:.2f}x",
                         ratio >= PEER_SPEEDUP))
        served = f"{ours} {PER_INPUT}"  # what `swarmedge run` executes at batch 32
        peer, ms = fastest_peer(sub, 32, cores)
        if peer and (served, 32, cores) in t:
            ratio = ms / t[served, 32, cores]
            rows.append((name, f"batch 32, {cores} threads: throughput ratio", peer, f"{PEER_THROUGHPUT:.1f}x",
                         f"{ratio:.2f}x", ratio >= PEER_THROUGHPUT))
        if sub["model_type"] == "boids" and ("PyTorch eager fp32", 1, 1) in t and (ours, 1, 1) in t:
            ratio = t["PyTorch eager fp32", 1, 1] / t[ours, 1, 1]
            rows.append((name, "batch 1, 1 thread: x faster", "PyTorch eager fp32", f"{BOID_EAGER:.1f}x",
                         f"{ratio:.2f}x", ratio >= BOID_EAGER))
        acc = (sub.get("accuracy") or {}).get("by_variant", {})
        if "swarmedge fp32" in acc and served in acc:
            drop = (acc["swarmedge fp32"]["accuracy"] - acc[served]["accuracy"]) * 100
            rows.append((name, "int8 accuracy drop, points", "swarmedge fp32", f"<= {ACCURACY_POINTS}",
                         f"{drop:+.2f}", drop <= ACCURACY_POINTS))
    return rows


def markdown(results: dict) -> str:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks`) on {results['date']} in {results['minutes']:.0f} min. "
        "Do not edit by hand: run it again. Every figure is also in "
        f"[benchmarks.json](benchmarks.json).",
        "",
        f"**Machine**: {m['cpu']}, {m['cores']} cores, {m['isa']}; onnxruntime {m['onnxruntime']}, "
        f"torch {m['torch']}, Python {m['python']}. swarmedge's host preset here: `{m['host_preset']}`.",
        "",
        "**Method**: all variants of a model run on the same inputs in one process, interleaved - "
        f"{results['rounds']} rounds, each variant once per round in a shuffled order, about 0.1 s each - "
        "so that a busy moment hits every variant alike. Latency is the median call in milliseconds "
        "(`~`: the middle half of the calls spans more than 20% of the median: a noisy machine). "
        "Speed-ups are ratios of medians from the same run: *x eager* = PyTorch eager fp32 / variant, "
        "*x best peer* = the fastest peer at that configuration / variant (see Targets). Inputs: random "
        "token ids at the model's sequence length (no padding); for the boid model, the test digits whose "
        "boid counts are nearest 150 (a typical digit; the scaling table uses random boids). "
        "Accuracy: the full test set unless stated; "
        "*agreement*: predictions equal to PyTorch eager fp32.",
        "",
        "## Targets",
        "",
        "swarmedge int8 for this machine against the fastest *peer* - any other variant that ran without "
        f"breaking the model (accuracy more than {BROKEN_POINTS:.0f} point below PyTorch eager's counts as broken). "
        "At batch 32 swarmedge is timed as `swarmedge run` executes it: input by input, batch-invariant scores.",
        "",
        "| model | target | compared with | needed | measured | |",
        "|---|---|---|---:|---:|---|",
    ]
    for name, what, who, needed, measured, met in target_rows(results):
        out.append(f"| {name} | {what} | {who} | {needed} | {measured} | {'met' if met else 'missed'} |")
    for name, sub in results["subjects"].items():
        out += ["", f"## {name}", "", _subject_intro(sub), ""]
        out += _main_table(sub, m["cores"])
        out += _per_input_section(sub, m["cores"])
        if sub.get("operators"):
            out += ["", "### Where the time goes", ""] + _operator_section(name, sub)
        if sub.get("peer_operators"):
            out += ["", "### What OpenVINO fuses that onnxruntime does not", ""] + _peer_operator_section(sub)
        if sub.get("levers"):
            out += ["", "### Levers tried", ""] + _levers_section(sub, m["cores"])
        if sub.get("ablation"):
            out += ["", "### What each rewrite and optimisation level buys",
                    "", f"int8 (`--target {m['host_preset']}`), batch 1, one thread, cumulative; measured "
                    "interleaved in their own run.", "", "| step | ms | x previous |", "|---|---:|---:|"]
            prev = None
            for row in sub["ablation"]:
                out.append(f"| {row['step']} | {_cell(row)} | {_x(prev, row['p50_ms']) if prev else '-'} |")
                prev = row["p50_ms"] if row["step"].startswith("rewrites") else prev
        if sub.get("scaling"):
            out += ["", "### Scaling", ""] + _scaling_table(sub)
    peak = results.get("peak")
    if peak:
        out += ["", "## Distance from the arithmetic peak", "",
                f"Ceiling measured with one {peak['m_n_k']}^3 MatMul in onnxruntime (the best such kernels do "
                "here; the model's small 128-wide products cannot reach it):", "",
                "| kernel | 1 thread GMAC/s | all cores GMAC/s |", "|---|---:|---:|"]
        for kind in ("fp32", "int8"):
            one, every = peak[f"{kind}_gmacs_1t"], peak[f"{kind}_gmacs_{m['cores']}t"]
            out.append(f"| {kind} | {one:.1f} | {every:.1f} |")
        out += ["", "| model | variant | config | model GMAC/s | share of fp32 peak | share of int8 peak |",
                "|---|---|---|---:|---:|---:|"]
        for name, sub in results["subjects"].items():
            for row in sub.get("achieved", []):
                out.append(f"| {name} | {row['variant']} | batch {row['batch']}, {row['threads']} thr | "
                           f"{row['gmacs']:.1f} | {row['of_fp32']:.0%} | {row['of_int8']:.0%} |")
    if ANALYSIS.is_file():
        out += ["", ANALYSIS.read_text().strip()]
    return "\n".join(out) + "\n"


def _per_input_section(sub: dict, cores: int) -> list[str]:
    """What batch-invariant scores cost: each int8 graph run whole-batch vs input by input."""
    from benchmarks.variants import PER_INPUT

    rows = {(r["variant"], r["batch"], r["threads"]): r["p50_ms"] for r in sub["timings"]}
    lines = []
    for (name, batch, threads), ms in rows.items():
        batched = rows.get((name.removesuffix(f" {PER_INPUT}"), batch, threads))
        if not name.endswith(PER_INPUT) or batch == 1 or not batched:
            continue
        lines.append(f"| {name.removesuffix(f' {PER_INPUT}')} | batch {batch}, {threads} thr | "
                     f"{batch / batched * 1e3:,.0f} | {batch / ms * 1e3:,.0f} | {batched / ms:.2f}x |")
    if not lines:
        return []
    return ["", "### What batch-invariant int8 scores cost",
            "", "Dynamic int8 picks one activation scale per batch, so the runner (`swarmedge run`, `eval`, "
            "`compare`, the Python API) runs each input alone, on one single-threaded worker per thread "
            "(`runtimes/batching.py`). Same inputs, same run:", "",
            "| graph | configuration | whole batch, inputs/s | input by input, inputs/s | ratio |",
            "|---|---|---:|---:|---:|", *lines]


def _split(rows: list[dict]) -> tuple[float, float]:
    """(MatMul-type ms, everything else ms) per inference from one per-operator profile."""
    mm = sum(r["ms_per_inference"] for r in rows if r["op"] in MATMUL_OPS)
    return mm, sum(r["ms_per_inference"] for r in rows) - mm


def _operator_section(name: str, sub: dict) -> list[str]:
    """onnxruntime's node times per operator type, and what they say about the targets."""
    ops = sub["operators"]
    ours = sub["swarmedge_variant"]
    t = {r["variant"]: r["p50_ms"] for r in sub["timings"] if r["batch"] == 1 and r["threads"] == 1}
    optimum = min((v for v in ops if v.startswith("optimum")), key=lambda v: t.get(v, float("inf")), default=None)
    shown = [v for v in ("onnxruntime fp32 (plain export)", optimum, "swarmedge fp32", ours) if v in ops]
    if ours not in shown:
        return ["No per-operator profile of swarmedge int8."]
    times = {v: {r["op"]: r["ms_per_inference"] for r in ops[v]} for v in shown}
    order = sorted(set().union(*times.values()), key=lambda op: -max(times[v].get(op, 0.0) for v in shown))
    out = ["onnxruntime's own node timings (its profiler), batch 1, one thread, ms per inference. *MatMul-type*: "
           "products and the int8 (de)quantization around them, all that int8 changes; everything else runs "
           "in float in every variant.", "",
           "| operator | " + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
    for op in order[:TOP_OPS]:
        out.append(f"| {op} | " + " | ".join(f"{times[v].get(op, 0.0):.3f}" for v in shown) + " |")
    if len(order) > TOP_OPS:
        rest = order[TOP_OPS:]
        out.append(f"| {len(rest)} other types | " + " | ".join(
            f"{sum(times[v].get(op, 0.0) for op in rest):.3f}" for v in shown) + " |")
    split = {v: _split(ops[v]) for v in shown}
    out.append("| **MatMul-type** | " + " | ".join(f"**{split[v][0]:.3f}**" for v in shown) + " |")
    out.append("| **everything else** | " + " | ".join(f"**{split[v][1]:.3f}**" for v in shown) + " |")
    (mm, rest), (fp_mm, _) = split[ours], split.get("onnxruntime fp32 (plain export)", (None, None))
    share = rest / (mm + rest)
    text = []
    if not any(r["op"] in QUANTIZED_OPS for r in ops[ours]):
        text.append("swarmedge keeps every product of this model in float: their weights are narrower than "
                    f"{MIN_WEIGHT_DIM}, where quantizing activations at run time costs more than int8 saves, so "
                    "its int8 graph is its fp32 graph.")
    if fp_mm:
        text.append(f"In swarmedge int8 the MatMul-type operators take {mm:.3f} ms against {fp_mm:.3f} ms in the "
                    f"plain fp32 export ({fp_mm / mm:.2f}x less, rewrites and int8 together); the other "
                    f"operators, float in every variant, take {rest:.3f} ms: {share:.0%} of its node time.")
    eager = t.get("PyTorch eager fp32")
    if eager and ours in t:
        floor = t[ours] * share
        text.append(f"Scaled to its median latency ({t[ours]:.2f} ms), those float operators alone take about "
                    f"{floor:.2f} ms, so even MatMuls that cost nothing would make it at most {eager / floor:.1f}x "
                    f"faster than PyTorch eager ({eager:.2f} ms) here.")
    if optimum:
        o_mm, o_rest = split[optimum]
        text.append(f"{optimum} spends {o_mm:.3f} ms in MatMul-type operators and {o_rest:.3f} ms in the rest; "
                    f"swarmedge int8 {mm:.3f} and {rest:.3f} ms.")
    nodes = sum(r["count_per_inference"] for r in ops[ours])
    if nodes:
        each = (mm + rest) / nodes * 1e3
        text.append(f"swarmedge int8 runs {nodes} onnxruntime nodes per inference, {each:.1f} us each on average"
                    + (": many small steps, where a node's fixed costs (dispatch, a fresh output buffer) are a "
                       "sizeable part of its time." if each < SMALL_NODE_US else "."))
    peer, ms = fastest_peer(sub, 1, 1)
    if peer and ours in t and ms / t[ours] < PEER_SPEEDUP:
        goal = ms / PEER_SPEEDUP
        text.append(f"{PEER_SPEEDUP:.1f}x the fastest peer ({peer}, {ms:.2f} ms) asks for {goal:.2f} ms: "
                    f"{1 - goal / t[ours]:.0%} less than swarmedge int8's {t[ours]:.2f} ms.")
    return out + (["", " ".join(text)] if text else [])


# OpenVINO's executed product nodes (also FullyConnectedQuantizedLegacy, FullyConnectedCompressed...)
PRODUCT_TYPES = ("FullyConnected", "MatMul", "Convolution", "GEMM")


def _peer_operator_section(sub: dict) -> list[str]:
    """A peer runtime's executed graph (its own per-node counters) beside swarmedge's in onnxruntime."""
    ours = sub["swarmedge_variant"]
    t = {r["variant"]: r["p50_ms"] for r in sub["timings"] if r["batch"] == 1 and r["threads"] == 1}
    out = ["Each runtime's own per-node counters, batch 1, one thread, ms per inference (OpenVINO: "
           "`PERF_COUNT`; onnxruntime: its profiler). *Products*: executed product nodes (OpenVINO "
           "`FullyConnected`/`MatMul`, with whatever it fused into them; onnxruntime MatMul-type nodes).", "",
           "| runtime graph | executed nodes | products ms | everything else ms | median latency ms |",
           "|---|---:|---:|---:|---:|"]
    ort = sub.get("operators", {}).get(ours)
    if ort:
        mm, rest = _split(ort)
        nodes = sum(r["count_per_inference"] for r in ort)
        out.append(f"| {ours} (onnxruntime) | {nodes} | {mm:.3f} | {rest:.3f} | {t.get(ours, 0):.2f} |")
    for name, rows in sub["peer_operators"].items():
        mm = sum(r["ms"] for r in rows if r["type"].startswith(PRODUCT_TYPES))
        rest = sum(r["ms"] for r in rows) - mm
        out.append(f"| {name} | {len(rows)} | {mm:.3f} | {rest:.3f} | {t.get(name, 0):.2f} |")
    fastest = min(sub["peer_operators"], key=lambda v: t.get(v, float("inf")))
    rows = sub["peer_operators"][fastest]
    by_type: dict[tuple, list] = {}
    for r in rows:
        entry = by_type.setdefault((r["type"], r["exec_type"]), [0, 0.0, 0])
        entry[0] += 1
        entry[1] += r["ms"]
        entry[2] += len(r.get("fused", [])) > 1
    out += ["", f"{fastest}, by executed node type (*fusing*: nodes standing for more than one layer of the "
            "ONNX graph):", "", "| node type | kernel | nodes | fusing | ms |", "|---|---|---:|---:|---:|"]
    for (kind, kernel), (n, ms, fused) in sorted(by_type.items(), key=lambda kv: -kv[1][1])[:TOP_OPS]:
        out.append(f"| {kind} | {kernel} | {n} | {fused} | {ms:.3f} |")
    return out


def _levers_section(sub: dict, cores: int) -> list[str]:
    """Each lever beside the shipped graph, interleaved in its own run."""
    out = ["Each beside the shipped int8 graph, interleaved in its own run; median ms and x shipped "
           "(above 1: the lever pays).", "",
           f"| lever | b1 1 thr ms | x shipped | b32 {cores} thr samples/s | x shipped |", "|---|---:|---:|---:|---:|"]
    rows = {(r["lever"], r["batch"]): r for r in sub["levers"]}
    names = list(dict.fromkeys(r["lever"] for r in sub["levers"]))
    shipped = names[0]
    for name in names:
        one, many = rows.get((name, 1)), rows.get((name, 32))
        out.append(f"| {name} | {_cell(one)} | {_x(rows[shipped, 1]['p50_ms'], one and one['p50_ms'])} | "
                   f"{32e3 / many['p50_ms']:.0f} | {_x(rows[shipped, 32]['p50_ms'], many['p50_ms'])} |")
    return out


def _subject_intro(sub: dict) -> str:
    state = ("trained (zoo)" if sub["trained"] else
             "initialised, not trained (no trained model in zoo/): timings only, accuracy would mean nothing here "
             "(a reproduced run's accuracy, if there is one, is in docs/RESULTS.md)")
    acc = sub.get("accuracy")
    where = f" Accuracy on {acc['data']} ({acc['inputs']} inputs)." if acc else ""
    return f"{sub['model_type']}, {sub['macs'] / 1e6:.1f} M multiply-accumulates per input; {state}.{where}"


def _main_table(sub: dict, cores: int) -> list[str]:
    t = {(r["variant"], r["batch"], r["threads"]): r for r in sub["timings"]}
    acc = (sub.get("accuracy") or {}).get("by_variant", {})
    head = ("| variant | MB | b1 1 thr ms | x eager | x best peer | b1 "
            f"{cores} thr ms | x eager | b32 {cores} thr samples/s | x eager | accuracy | agreement | note |")
    out = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def base(batch, threads, kind):
        if kind == "eager":
            row = t.get(("PyTorch eager fp32", batch, threads))
            return row and row["p50_ms"]
        return fastest_peer(sub, batch, threads)[1]

    for v in sub["variants"]:
        b1, bn, b32 = (t.get((v["name"], 1, 1)), t.get((v["name"], 1, cores)), t.get((v["name"], 32, cores)))
        a = acc.get(v["name"])
        accuracy, agreement = (f"{a['accuracy']:.2%}", f"{a['agreement']:.2%}") if a else ("-", "-")
        tput = f"{32e3 / b32['p50_ms']:.0f}" if b32 else "-"
        bold = "**" if v["name"] == sub["swarmedge_variant"] else ""
        out.append(
            f"| {bold}{v['name']}{bold} | {v['bytes'] / 1e6:.2f} | {_cell(b1)} | "
            f"{_x(base(1, 1, 'eager'), b1 and b1['p50_ms'])} | {_x(base(1, 1, 'peer'), b1 and b1['p50_ms'])} | "
            f"{_cell(bn)} | {_x(base(1, cores, 'eager'), bn and bn['p50_ms'])} | {tput} | "
            f"{_x(base(32, cores, 'eager'), b32 and b32['p50_ms'])} | "
            f"{accuracy} | {agreement} | {v['note']}{'; **' + v['failed'] + '**' if v.get('failed') else ''} |")
    return out


def _scaling_table(sub: dict) -> list[str]:
    lengths = sorted({r["length"] for r in sub["scaling"]})
    unit = "tokens" if sub["model_type"] == "swarmformer" else "boids"
    out = [f"Batch 1, one thread, median ms by input size ({unit}); in brackets: x eager at that size.", "",
           "| variant | " + " | ".join(str(n) for n in lengths) + " |", "|---|" + "---:|" * len(lengths)]
    t = {(r["variant"], r["length"]): r["p50_ms"] for r in sub["scaling"]}
    for name in dict.fromkeys(r["variant"] for r in sub["scaling"]):
        cells = [f"{t[name, n]:.2f} ({t['PyTorch eager fp32', n] / t[name, n]:.1f}x)" for n in lengths]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def write_report(out: Path, stem: str, results: dict, markdown_text: str) -> None:
    """``out/stem.json`` (the raw figures) and ``out/STEM.md`` (the report), each written atomically."""
    import json

    from swarmedge.atomic import write_bytes

    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / f"{stem}.json", (json.dumps(results, indent=1) + "\n").encode())
    write_bytes(out / f"{stem.upper()}.md", markdown_text.encode())
    print(f"wrote {out / f'{stem.upper()}.md'} and {out / f'{stem}.json'}")
