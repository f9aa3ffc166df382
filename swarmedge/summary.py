"""One-screen text summaries of bundles, for the CLI."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def bundle_summary(path, manifest: dict) -> str:
    """What was exported, how big, how faithful, and what int8 changed."""
    files = manifest["files"]
    lines = [f"bundle      {path}",
             f"model       {manifest['model_type']}  labels: {', '.join(manifest['labels'])}"]
    fp32 = files.get("model.onnx", {}).get("bytes")
    int8 = files.get("model.int8.onnx", {}).get("bytes")
    size = f"model.onnx {human_bytes(fp32)}" if fp32 else ""
    if int8:
        size += f"   model.int8.onnx {human_bytes(int8)} ({int8 / fp32:.0%} of fp32)"
    lines.append(f"size        {size}")
    parity = manifest["parity"]
    worst = ", ".join(f"{k} {v:.1e}" for k, v in parity["max_abs_diff"].items())
    verdict = "ok" if parity["passed"] else "MISMATCH (kept with --allow-mismatch)"
    lines.append(f"parity      ONNX vs PyTorch over {len(parity['cases'])} shapes: max |diff| {worst} "
                 f"(tolerance {parity['tolerance']:g}) {verdict}")
    q = manifest.get("quantization")
    if q:
        lines.append(f"int8        {q['mode']} {q['format']} for {q['target']['name']}: "
                     f"{q['target']['activation_type']} x {q['target']['weight_type']}"
                     f"{', per-channel' if q['target']['per_channel'] else ''}"
                     f"{', 7-bit weights' if q['target']['reduce_range'] else ''}")
        a = manifest["int8_vs_fp32"]
        lines.append(f"int8 vs fp32 top-1 agreement {a['top1_agreement']:.1%} on {a['inputs']} inputs "
                     f"({a['source']}), max |{a['output']} diff| {a['max_abs_diff']:.3g}")
    return "\n".join(lines)
