"""Plots for reports and swarm pictures (matplotlib, the ``[viz]`` extra)."""

import io

from swarmedge.errors import require_extra

COLORS = {"PyTorch fp32": "#4c72b0", "ONNX fp32": "#55a868", "ONNX int8": "#dd8452"}


def pyplot():
    require_extra("matplotlib", "viz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def latency_plot(samples: dict[str, list[float]]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(samples)
    parts = ax.violinplot([samples[n] for n in names], orientation="horizontal", showmedians=True)
    for body, n in zip(parts["bodies"], names):
        body.set_facecolor(COLORS.get(n, "#8172b2"))
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xlabel("batch-1 latency, one thread (ms)")
    ax.set_title("Latency distribution per variant")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def accuracy_latency_plot(rows: list[dict]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in rows:
        ax.scatter(r["latency_ms"]["p50_ms"], 100 * r["accuracy"], s=80, color=COLORS.get(r["variant"], "#8172b2"),
                   label=r["variant"], zorder=3)
    ax.set_xlabel("p50 latency (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def per_op_plot(per_op: dict[str, list[dict]], top: int = 10) -> bytes:
    plt = pyplot()
    ops: dict[str, dict[str, float]] = {}
    for precision, rows in per_op.items():
        for r in rows:
            ops.setdefault(r["op"], {})[precision] = r["ms_per_inference"]
    order = sorted(ops, key=lambda o: -max(ops[o].values()))[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    height = 0.8 / max(1, len(per_op))
    for i, precision in enumerate(per_op):
        ys = [k + i * height for k in range(len(order))]
        ax.barh(ys, [ops[o].get(precision, 0.0) for o in order], height=height, label=precision,
                color=COLORS.get(f"ONNX {precision}", "#8172b2"))
    ax.set_yticks([k + height * (len(per_op) - 1) / 2 for k in range(len(order))], order)
    ax.set_xlabel("ms per inference (onnxruntime profiler, batch 1, one thread)")
    ax.set_title("Where the time goes, per operator type")
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def score_error_plot(errors: dict[str, list[float]]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, values in errors.items():
        ax.hist(values, bins=40, alpha=0.6, label=name, color=COLORS.get(name, "#8172b2"))
    ax.set_xlabel("max |score - PyTorch score| per input")
    ax.set_ylabel("inputs")
    ax.set_yscale("log")
    ax.set_title("Score error against PyTorch fp32")
    ax.legend()
    return png(fig)
