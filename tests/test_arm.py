"""ARM: bundles run on emulated Raspberry Pi 4/5 CPUs agree with this machine; setup is all-or-nothing."""

import os
import subprocess
import sys

import pytest

import swarmedge.arm.sysroot as sysroot
from swarmedge.arm.check import arm_check
from swarmedge.errors import SwarmedgeError

from .conftest import ROOT

ZOO = ROOT / "zoo"


def _bundle(tmp_path_factory, name, model_type, data_dir):
    """The zoo model's int8 bundle, or an initialised model's until the zoo has one."""
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint
    from swarmedge.export import export_bundle

    ckpt = ZOO / name / "model.pt"
    if not ckpt.is_file():
        ckpt = tmp_path_factory.mktemp(name) / "model.pt"
        vocab = data_dir / "bert-base-uncased-vocab.txt" if model_type == "swarmformer" else None
        save_checkpoint(init_checkpoint(model_type, {}, vocab=vocab), ckpt)
    out = tmp_path_factory.mktemp(f"{name}-bundle") / "b.bundle"
    return export_bundle(ckpt, out, agreement_size=32)[0]


@pytest.mark.parametrize("name,model_type,limit", [("boids-5v6", "boids", 300), ("swarmformer-small", "swarmformer",
                                                                                   200)])
def test_int8_on_emulated_pi4_and_pi5_agrees_with_x86(tmp_path_factory, data_dir, name, model_type, limit):
    bundle = _bundle(tmp_path_factory, name, model_type, data_dir)
    report = arm_check(bundle, ("cortex-a72", "cortex-a76"), ("int8",), data_dir=data_dir, limit=limit)
    assert report["samples"] == limit
    assert {r["cpu"] for r in report["results"]} == {"cortex-a72", "cortex-a76"}
    for r in report["results"]:
        assert r["agreement_with_x86"] >= 0.995, r
        assert abs(r["accuracy"] - report["x86_accuracy"]["int8"]) <= 0.005, r


def test_missing_qemu_gives_the_install_hint(boids_bundle, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no qemu, no mmdebstrap on this PATH
    r = subprocess.run([sys.executable, "-m", "swarmedge.cli", "arm-check", str(boids_bundle)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "apt-get install qemu-user-static mmdebstrap" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_failed_setup_leaves_no_trusted_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SWARMEDGE_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_run(cmd, what):
        calls.append(what)
        if what == "mmdebstrap":
            (tmp_path / "cache").mkdir(exist_ok=True)
            return
        raise sysroot.ArmSetupError(f"{what} failed (network down)")

    monkeypatch.setattr(sysroot, "_run", fake_run)
    with pytest.raises(SwarmedgeError, match="pip download failed"):
        sysroot.ensure_sysroot()
    assert calls == ["mmdebstrap", "pip download"]
    arm_dir = tmp_path / "cache" / "arm"
    assert not arm_dir.exists() or list(arm_dir.iterdir()) == []  # no half-built sysroot left to trust


@pytest.mark.parametrize("cpus,precisions", [((), ("int8",)), (("cortex-a72",), ())])
def test_arm_check_needs_a_cpu_and_a_precision(boids_bundle, cpus, precisions):
    from swarmedge.errors import InputError

    with pytest.raises(InputError, match="at least one --cpu"):
        arm_check(boids_bundle, cpus, precisions)
