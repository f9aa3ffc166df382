"""Write a comparison as Markdown, JSON and one self-contained HTML page (plots inlined)."""

import base64
import html
import json
import re
from pathlib import Path

from swarmedge.atomic import write_bytes
from swarmedge.output_paths import check_output_folder
from swarmedge.summary import human_bytes


def _cell(text) -> str:
    """A Markdown table cell: a ``|`` inside a name (from another machine's report) is escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows_md(result: dict) -> list[str]:
    lines = ["| variant | accuracy | precision | recall | F1 | agreement | max score err | p50 ms | p99 ms | "
             "speed-up | size |", "|" + " --- |" * 11]
    for r in result["rows"]:
        lat = r["latency_ms"]
        lines.append(f"| {r['variant']} | {r['accuracy']:.2%} | {r['macro_precision']:.4f} | {r['macro_recall']:.4f} "
                     f"| {r['macro_f1']:.4f} | {r['agreement_with_pytorch']:.2%} | {r['score_error']['max']:.3g} | "
                     f"{lat['p50_ms']:.3f} | {lat['p99_ms']:.3f} | {r['speedup_vs_pytorch']:.2f}x | "
                     f"{human_bytes(r['bytes'])} |")
    return lines


def _profiles_md(result: dict) -> list[str]:
    if not result["profiles"]:
        return []
    lines = ["", "## Measured elsewhere (`swarmedge profile` reports)", "",
             "| device | onnxruntime | precision | threads | batch | length | p50 ms | p99 ms | samples/s |",
             "|" + " --- |" * 9]
    for p in result["profiles"]:
        m = p["machine"]
        for c in p["configs"]:
            lines.append(f"| {_cell(m['cpu'])} ({_cell(m['machine'])}) | {_cell(m['onnxruntime'])} | "
                         f"{c['precision']} | {c['threads']} | "
                         f"{c['batch']} | {c['length']} | {c['latency']['p50_ms']:.3f} | "
                         f"{c['latency']['p99_ms']:.3f} | {c['throughput_samples_per_s']:.1f} |")
    return lines


def _arm_md(result: dict) -> list[str]:
    if not result.get("arm_checks"):
        return []
    lines = ["", "## Emulated Raspberry Pi CPUs (`swarmedge arm-check`)", "",
             "| CPU | device | precision | inputs | accuracy | agreement with x86 | agreement with fp32 "
             "| max score diff |",
             "|" + " --- |" * 8]
    for check in result["arm_checks"]:
        for r in check["results"]:
            lines.append(f"| {_cell(r['cpu'])} | {_cell(r['device'])} | {r['precision']} | {check['samples']} | "
                         f"{r['accuracy']:.2%} | {r['agreement_with_x86']:.2%} | {r['agreement_with_fp32']:.2%} | "
                         f"{r['max_abs_diff_vs_x86']:.3g} |")
    return lines


def markdown(result: dict) -> str:
    m = result["machine"]
    head = [f"# swarmedge compare: {Path(result['bundle']).name}", "",
            f"{result['data']}, {result['samples']} inputs; latency over {result['latency_inputs']} of them "
            f"at batch 1, one thread, on {m['cpu']} ({m['cores']} cores), onnxruntime {m['onnxruntime']}.", ""]
    return "\n".join(head + _rows_md(result) + _profiles_md(result) + _arm_md(result)) + "\n"


def write_reports(result: dict, out_dir: Path) -> dict[str, Path]:
    """report.json, report.md and report.html in ``out_dir``; returns their paths.

    All three are rendered before the first is written, so a result that cannot be
    rendered leaves no report behind; each file is then written atomically. Raises
    ``InputError`` when ``out_dir`` is a file, a bundle or inside one (``check_report_folder``),
    or cannot be made or written.
    """
    from swarmedge import plots

    out_dir = Path(out_dir)  # made by write_bytes, only once everything is rendered
    check_report_folder(out_dir)
    figures = {
        "Latency distribution": plots.latency_plot(result["latency_samples_ms"]),
        "Accuracy vs latency": plots.accuracy_latency_plot(result["rows"]),
        "Per-operator time": plots.per_op_plot(result["per_op"]),
        "Score error": plots.score_error_plot(result["score_errors"]),
    }
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    contents = {"json": (json.dumps(result, indent=2) + "\n").encode(),
                "md": markdown(result).encode(), "html": page(result, figures).encode()}
    for kind, data in contents.items():
        write_bytes(paths[kind], data)
    return paths


def check_report_folder(out_dir: Path) -> None:
    """Raise InputError (one line) unless the reports may go into ``out_dir``: not a file, not a
    bundle or inside one. Cheap; call it before the comparison so that a bad ``-o`` costs nothing."""
    check_output_folder(Path(out_dir))


def page(result: dict, figures: dict[str, bytes]) -> str:
    """One HTML file, no network: tables from the Markdown rows, plots as data: URIs."""
    def table(md_lines: list[str]) -> str:
        # cells split at unescaped pipes; an escaped one (see _cell) is shown as a plain |
        rows = [[html.escape(c.strip().replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
                for line in md_lines if line.startswith("|")]
        head, body = rows[0], rows[2:]
        return ("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body) + "</tbody></table>")

    m = result["machine"]
    imgs = "".join(f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode()}"><figcaption>{html.escape(t)}</figcaption></figure>'
                   for t, b in figures.items())
    profiles = _profiles_md(result)
    arm = _arm_md(result)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swarmedge compare: {html.escape(Path(result['bundle']).name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th {{ background: #f0f0f0; }} td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5rem; vertical-align: top; }} img {{ max-width: 520px; }}
</style></head><body>
<h1>swarmedge compare: {html.escape(Path(result['bundle']).name)}</h1>
<p>{html.escape(result['data'])}, {result['samples']} inputs. Latency: {result['latency_inputs']} inputs at batch 1,
one thread, on {html.escape(m['cpu'])} ({m['cores']} cores), onnxruntime {html.escape(m['onnxruntime'])}.</p>
{table(_rows_md(result))}
{('<h2>Measured elsewhere</h2>' + table(profiles)) if profiles else ''}
{('<h2>Emulated Raspberry Pi CPUs</h2>' + table(arm)) if arm else ''}
<h2>Plots</h2>
{imgs}
</body></html>
"""
