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
