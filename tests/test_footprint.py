"""What a run writes where (docs/RELIABILITY.md): nothing outside its outputs and swarmedge's cache."""

import os
import subprocess
import sys
from pathlib import Path


def _isolated_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    return env


def _written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def test_run_and_export_write_nothing_under_home(tmp_path, boids_bundle, tiny_boids_ckpt):
    # onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db} on
    # import unless ORT_DISABLE_TELEMETRY is set first; importing swarmedge sets it.
    env = _isolated_env(tmp_path)
    digit = tmp_path / "digit.npy"
    import numpy as np

    canvas = np.zeros((28, 28), np.uint8)
    canvas[6:22, 12:16] = 255
    np.save(digit, canvas)
    cli = [sys.executable, "-m", "swarmedge.cli"]
    run = subprocess.run([*cli, "run", str(boids_bundle), "--file", str(digit)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    export = subprocess.run([*cli, "export", str(tiny_boids_ckpt), "--quantize", "none", "-o",
                             str(tmp_path / "out.bundle")], env=env, capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr
    assert _written(tmp_path / "home") == []


def test_a_users_own_telemetry_choice_is_kept(tmp_path):
    env = _isolated_env(tmp_path)
    env["ORT_DISABLE_TELEMETRY"] = "0"
    code = "import os, swarmedge; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0"
