"""One-screen text summaries of bundles, for the CLI."""


def human_bytes(n: float) -> str:
    """``n`` bytes in SI units (1 kB = 1,000 B, 1 MB = 10**6 B), as the zoo cards and budget count them."""
    for unit in ("B", "kB", "MB", "GB"):
        shown = f"{n:.0f}" if unit == "B" else f"{n:.1f}"
        if float(shown) < 1000 or unit == "GB":  # 999,999 B is 1.0 MB, not 1000.0 kB
            return f"{shown} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def replaced_note(path, previous: dict) -> str:
    """What an export replaced: the bundle at ``path`` whose old manifest is ``previous``."""
    q = previous.get("quantization") if isinstance(previous.get("quantization"), dict) else None
    what = f"int8 {q.get('mode', '?')}" if q else "fp32 only"
    source = previous.get("source", {}).get("checkpoint", "?") if isinstance(previous.get("source"), dict) else "?"
    when = str(previous.get("created", "?")).replace("T", " ")[:16]
    return (f"replaced {path}: it held {what} of {source}, exported {when} UTC "
            "(--no-overwrite refuses instead)")


def bundle_summary(path, manifest: dict) -> str:
    """What was exported, how big, how faithful, and what int8 changed."""
    files = manifest["files"]
    lines = [f"bundle      {path}",
             f"model       {manifest['model_type']}  labels: {', '.join(manifest['labels'])}"]
    source = manifest.get("source", {}).get("metadata", {})
    if source.get("layout"):  # read from a training loop's or the reference's layout: say how
        lines.append(f"checkpoint  {source['layout']}, config from {source.get('config_from', '?')}")
    lines += [f"note        {n}" for n in source.get("notices", [])]
    fp32 = files.get("model.onnx", {}).get("bytes")
    int8 = files.get("model.int8.onnx", {}).get("bytes")
    size = f"model.onnx {human_bytes(fp32)}" if fp32 else ""
    if int8:
        size += f"   model.int8.onnx {human_bytes(int8)} ({int8 / fp32:.0%} of fp32)"
    lines.append(f"size        {size}")
    parity = manifest["parity"]
    used = parity.get("share_of_tolerance", {})
    worst = ", ".join(f"{k} {v:.1e}" + (f" ({used[k]:.0%} of its tolerance)" if k in used else "")
                      for k, v in parity["max_abs_diff"].items())
    verdict = "ok" if parity["passed"] else "MISMATCH (kept with --allow-mismatch)"
    lines.append(f"parity      ONNX vs PyTorch over {len(parity['cases'])} shapes: max |diff| {worst}; "
                 f"tolerance {parity['tolerance']:g} + {parity.get('rtol', 0):g} x the output's max |value|: "
                 f"{verdict}")
    q = manifest.get("quantization")
    if q and q.get("quantized_matmuls") == 0:  # e.g. the boid model: every product is too narrow
        lines.append(f"int8        nothing quantized: all {q.get('matmuls', '?')} MatMuls stay float "
                     f"({(q.get('kept_float') or {}).get('why', 'see the manifest')}); model.int8.onnx runs "
                     "the fp32 computation - use the fp32 model")
    elif q:
        lines.append(f"int8        {q['mode']} {q['format']} for {q['target']['name']}: "
                     f"{q['target']['activation_type']} x {q['target']['weight_type']}"
                     f"{', per-channel' if q['target']['per_channel'] else ''}"
                     f"{', 7-bit weights' if q['target']['reduce_range'] else ''}")
        kept = (q.get("kept_float") or {}).get("nodes", [])
        if q.get("quantized_matmuls") is not None:
            others = q["matmuls"] - q["quantized_matmuls"] - len(kept)  # no constant weight to quantize
            lines.append(f"            {q['quantized_matmuls']} of {q['matmuls']} MatMuls in int8"
                         + (f"; {others} multiply two activations (attention) and stay float" if others > 0 else ""))
        if kept:
            lines.append(f"            {len(kept)} narrow MatMuls kept float ({q['kept_float']['why']})")
    c = manifest.get("calibration")
    lines.append(f"calibration temperature {c['temperature']:.3f} (fitted on {c.get('fitted_on', '?')})" if c else
                 "calibration none: probabilities are the plain softmax (swarmedge calibrate MODEL fits a temperature)")
    if q:
        a = manifest["int8_vs_fp32"]
        lines.append(f"int8 vs fp32 top-1 agreement {a['top1_agreement']:.1%} on {a['inputs']} inputs "
                     f"({a['source']}), max |{a['output']} diff| {a['max_abs_diff']:.3g}"
                     + ("" if a.get("ok", True) else "  TOO LOW (kept with --allow-mismatch; prefer fp32)"))
    return "\n".join(lines)


def profile_table(report: dict) -> str:
    """The profile as a table, then the per-operator breakdown side by side."""
    lines = [f"{report['bundle']} on {report['machine']['cpu']} ({report['machine']['cores']} cores, "
             f"onnxruntime {report['machine']['onnxruntime']})",
             f"{'precision':>9} {'thr':>3} {'batch':>5} {'length':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
             f"{'samples/s':>10} {'GMAC/s':>7} {'first ms':>8} {'MB':>6}"]
    for c in report["configs"]:
        lat = c["latency"]
        lines.append(f"{c['precision']:>9} {c['threads']:>3} {c['batch']:>5} {c['length']:>6} {lat['p50_ms']:>8.3f} "
                     f"{lat['p99_ms']:>8.3f} {lat['mean_ms']:>8.3f} {c['throughput_samples_per_s']:>10.1f} "
                     f"{c['gmacs_per_s']:>7.2f} {c['first_inference_ms']:>8.1f} {c['model_bytes'] / 1e6:>6.2f}"
                     + ("  noisy: the machine was busy, rerun" if c["noisy"] else ""))
    per_op = report.get("per_op")
    if per_op:
        precisions = list(per_op["by_precision"])
        lines.append(f"slowest operators (ms per inference, share), threads {per_op['threads']}, "
                     f"batch {per_op['batch']}, length {per_op['length']}:")
        lines.append(f"{'op':>24}" + "".join(f"{p:>22}" for p in precisions))
        ops = {}
        for p in precisions:
            for row in per_op["by_precision"][p]:
                ops.setdefault(row["op"], {})[p] = row
        order = sorted(ops, key=lambda o: -max(r["ms_per_inference"] for r in ops[o].values()))
        for op in order[:12]:
            cells = []
            for p in precisions:
                r = ops[op].get(p)
                cells.append(f"{r['ms_per_inference']:>12.3f} ({r['share']:>5.1%})" if r else f"{'-':>22}")
            lines.append(f"{op:>24}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)
