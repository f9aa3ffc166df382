"""`swarmedge compare`: three report files; the HTML renders in headless Chromium with its plots."""

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from swarmedge.compare import compare
from swarmedge.reports import write_reports

from .conftest import run_device


@pytest.fixture(scope="module")
def report(tiny_boids_ckpt, boids_bundle, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    prof = out / "device.json"
    r = run_device(["profile", str(boids_bundle), "--repeat", "3", "--json", "-o", str(prof)])
    assert r.returncode == 0, r.stderr
    from swarmedge.arm.check import arm_check

    arm = out / "arm.json"
    arm.write_text(json.dumps(arm_check(boids_bundle, ("cortex-a72",), ("int8",), data_dir=data_dir, limit=20)))
    result = compare(tiny_boids_ckpt, boids_bundle, "mnist", data_dir=data_dir, limit=120, latency_inputs=15,
                     profiles=[prof], arm_checks=[arm])
    return result, write_reports(result, out)


def test_report_contents(report):
    result, paths = report
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert json.loads(paths["json"].read_text())["samples"] == 120
    rows = {r["variant"]: r for r in result["rows"]}
    assert set(rows) == {"PyTorch fp32", "ONNX fp32", "ONNX int8"}
    assert rows["PyTorch fp32"]["agreement_with_pytorch"] == 1.0
    assert rows["ONNX fp32"]["score_error"]["max"] < 1e-4  # fp32 ONNX is PyTorch
    assert rows["ONNX fp32"]["accuracy"] == rows["PyTorch fp32"]["accuracy"]
    md = paths["md"].read_text()
    assert "| ONNX int8 |" in md and "Measured elsewhere" in md
    assert "| cortex-a72 | Raspberry Pi 4 | int8 | 20 |" in md
    html = paths["html"].read_text()
    assert "http://" not in html and "https://" not in html  # self-contained, no network
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_html_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium")
    _, paths = report
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1400",
                    paths["html"].as_uri()], capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1400, 1200)
    not_white = (img.sum(axis=2) < 740).mean()
    assert not_white > 0.05, f"only {not_white:.1%} of the page is drawn: blank or broken"
    # the plots' own colours are on screen (int8 orange, fp32 green), so the images rendered
    for rgb in ((0xDD, 0x84, 0x52), (0x55, 0xA8, 0x68)):
        close = (np.abs(img - np.array(rgb)).sum(axis=2) < 40).sum()
        assert close > 200, f"plot colour {rgb} not found in the screenshot"


def test_wrong_report_files_are_refused_before_any_evaluation(tiny_boids_ckpt, boids_bundle, text_bundle, data_dir,
                                                              tmp_path, monkeypatch):
    import swarmedge.evaluate
    from swarmedge.errors import InputError

    def no_evaluation(*a, **k):
        raise AssertionError("evaluated before checking the report files")

    monkeypatch.setattr(swarmedge.evaluate, "evaluate_model", no_evaluation)
    png = tmp_path / "five.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png)
    text_profile = tmp_path / "text.json"
    r = run_device(["profile", str(text_bundle), "--repeat", "2", "--json", "-o", str(text_profile)])
    assert r.returncode == 0, r.stderr
    for kw, needle in (({"profiles": [png]}, "is not a `swarmedge profile --json` report"),
                       ({"arm_checks": [png]}, "is not a `swarmedge arm-check --json` report"),
                       ({"profiles": [text_profile]}, "profiles a swarmformer bundle, not this boids one")):
        with pytest.raises(InputError, match=needle):
            compare(tiny_boids_ckpt, boids_bundle, "mnist", data_dir=data_dir, limit=10, **kw)


def test_reports_go_into_folders_that_do_not_exist_yet(boids_bundle, tmp_path):
    out = tmp_path / "new" / "folder" / "p.json"
    r = run_device(["profile", str(boids_bundle), "--repeat", "2", "--json", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["model_type"] == "boids"
    (tmp_path / "afile").write_text("x")
    r = run_device(["profile", str(boids_bundle), "--repeat", "2", "-o", str(tmp_path / "afile" / "p.json")])
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_a_bundle_in_the_checkpoint_place_is_named(boids_bundle, data_dir):
    from swarmedge.errors import InputError

    with pytest.raises(InputError, match="is a bundle; compare takes the checkpoint"):
        compare(boids_bundle, boids_bundle, "mnist", data_dir=data_dir, limit=10)


# -- report files from elsewhere (--profile, --arm): refused in one line, never a traceback ------------------------

ARM_REPORT = {  # the shape `swarmedge arm-check --json` writes (swarmedge.arm.check.arm_check)
    "bundle": "digits.bundle", "data": "mnist", "samples": 20, "seed": 0, "x86_accuracy": {"int8": 0.9, "fp32": 0.9},
    "fp32_reference": "ONNX fp32 on this machine", "sysroot": "/tmp/sysroot",
    "results": [{"cpu": "cortex-a72", "device": "Raspberry Pi 4", "precision": "int8", "accuracy": 0.9,
                 "macro_f1": 0.89, "agreement_with_x86": 1.0, "agreement_with_fp32": 0.95,
                 "max_abs_diff_vs_x86": 1e-6, "seconds": 12.5}],
}


@pytest.fixture(scope="module")
def profile_report(boids_bundle) -> dict:
    """A real profile's structure with its measured numbers and temporary path made constant, so
    the generated damage (a byte flipped at 40% of the file, ...) is the same from run to run."""
    from swarmedge.runtimes.profile import profile_bundle

    def steady(value):
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items()}
        if isinstance(value, list):
            return [steady(v) for v in value]
        if isinstance(value, bool):  # "noisy" depends on the machine's load
            return False
        return 0.25 if isinstance(value, float) else value

    report = steady(profile_bundle(boids_bundle, threads=(1, 2), warmup=0, repeat=2))
    return {**report, "bundle": "digits.bundle"}


def _render_tables(profiles: list, arm_checks: list) -> tuple[str, str]:
    """Markdown and HTML of a comparison holding only these reports (no rows of its own)."""
    from swarmedge.reports import markdown, page

    result = {"bundle": "digits.bundle", "data": "mnist", "samples": 1, "latency_inputs": 1, "rows": [],
              "machine": {"cpu": "here", "cores": 1, "onnxruntime": "1"}, "profiles": profiles,
              "arm_checks": arm_checks}
    return markdown(result), page(result, {})


def _check_accepted(report: dict, kind: str) -> None:
    """An accepted report renders, one table row per entry, every row as wide as its header."""
    md, html_page = _render_tables([report] if kind == "profile" else [], [report] if kind == "arm" else [])
    table = [line for line in md.splitlines() if line.startswith("|")][2:]  # the comparison's own header: 2 lines
    entries = len(report["configs"]) if kind == "profile" else len(report["results"])
    assert len(table) == 2 + entries
    width = 9 if kind == "profile" else 8
    assert all(len(re.split(r"(?<!\\)\|", line.strip()[1:-1])) == width for line in table), table
    rows = re.findall(r"<tr>(.*?)</tr>", html_page.split("</table>", 1)[1])
    assert len(rows) == 1 + entries and all(r.count("<t") == width for r in rows)


def test_mutated_report_files_are_read_or_refused_in_one_line(profile_report, reliability):
    """Generated damage to real reports: each is accepted and renders, or is one InputError line."""
    import tempfile
    from pathlib import Path

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from swarmedge.errors import InputError
    from swarmedge.report_inputs import read_arm_check, read_profile

    from . import json_mutations as jm

    counts = reliability["compare report files (--profile, --arm)"]
    counts["tracebacks"] += 0  # listed in the summary even when (as it should be) zero
    problems: list[str] = []
    sources = {"profile": profile_report, "arm": ARM_REPORT}

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(st.data())
    def check(data):
        kind = data.draw(st.sampled_from(sorted(sources)), label="report")
        doc = sources[kind]
        change = data.draw(st.one_of(jm.mutations(doc).map(lambda m: ("json", m)),
                                     jm.raw_damage.map(lambda d: ("bytes", d))), label="change")
        raw = jm.dumps(jm.apply(doc, change[1])) if change[0] == "json" else jm.damage_bytes(jm.dumps(doc), change[1])
        counts["tried"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.json"
            path.write_bytes(raw)
            try:
                report = read_profile(path, "boids") if kind == "profile" else read_arm_check(path)
            except InputError as exc:
                if "\n" in str(exc) or str(path) not in str(exc):
                    problems.append(f"{kind} {change!r}: not one line naming the file: {str(exc)[:300]!r}")
                counts["refused in one line"] += 1
                return
            except Exception as exc:  # noqa: BLE001 - any other exception is the bug this test looks for
                counts["tracebacks"] += 1
                problems.append(f"{kind} {change!r}: {type(exc).__name__}: {str(exc)[:200]}")
                return
            try:
                _check_accepted(report, kind)
                counts["accepted and rendered"] += 1
            except Exception as exc:  # noqa: BLE001
                counts["tracebacks"] += 1
                problems.append(f"{kind} {change!r} accepted, then {type(exc).__name__}: {str(exc)[:200]}")

    check()
    assert not problems, f"{len(problems)} bad outcomes:\n" + "\n".join(problems[:30])


def test_report_files_refused_by_the_cli_name_the_field_and_write_nothing(tiny_boids_ckpt, boids_bundle,
                                                                           profile_report, tmp_path):
    import copy
    import os

    from click.testing import CliRunner

    from swarmedge.cli import cli

    no_latency = copy.deepcopy(profile_report)
    del no_latency["configs"][1]["latency"]  # was a KeyError after report.json had been written
    worded = copy.deepcopy(ARM_REPORT)
    worded["results"][0]["accuracy"] = "high"
    nan = json.dumps(profile_report).replace('"p99_ms": ', '"p99_ms": NaN, "was": ', 1)
    texts = {"no-latency.json": json.dumps(no_latency), "worded.json": json.dumps(worded), "nan.json": nan,
             "no-cpu.json": '{"model_type": "boids", "machine": {}, "configs": [1]}'}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    os.mkfifo(tmp_path / "fifo.json")  # reading it would block forever
    (tmp_path / "folder.json").mkdir()
    cases = [
        ("--profile", "no-latency.json", "configs[1] lacks 'latency'"),
        ("--arm", "worded.json", "results[0].accuracy must be number"),
        ("--profile", "nan.json", "NaN is not a JSON number"),
        ("--profile", "no-cpu.json", "machine lacks 'cpu'"),
        ("--profile", "fifo.json", "fifo.json is not a regular file"),
        ("--arm", "folder.json", "folder.json is not a regular file"),
    ]
    for i, (option, name, needle) in enumerate(cases):
        path = tmp_path / name
        out = tmp_path / f"out{i}"
        r = CliRunner().invoke(cli, ["compare", str(tiny_boids_ckpt), str(boids_bundle), "--data", "mnist",
                                     option, str(path), "-o", str(out)])
        assert r.exit_code == 2, (needle, r.output, r.exception)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("swarmedge: error: ") and needle in lines[0], r.stderr
        assert not out.exists()


def test_names_with_pipes_stay_in_their_table_cell(profile_report):
    import copy

    report = copy.deepcopy(profile_report)
    report["machine"]["cpu"] = "Vendor | Model <b>9</b>"
    md, html_page = _render_tables([report], [])
    _check_accepted(report, "profile")
    assert "Vendor \\| Model" in md and "Vendor | Model &lt;b&gt;9&lt;/b&gt;" in html_page
