"""Over SSH to a real OpenSSH server on 127.0.0.1 whose python3 is an emulated aarch64 CPU."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from swarmedge.arm.check import _device_package
from swarmedge.arm.sysroot import ensure_sysroot
from swarmedge.compare import compare
from swarmedge.reports import write_reports

from .conftest import run_device

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wrapper(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """sshd on loopback with throwaway host and user keys. Its forced command puts a python3 on
    the PATH that is Debian's aarch64 Python under QEMU (Cortex-A76, a Raspberry Pi 5) with
    swarmedge's device install; other accounts of the same server lack python3 or swarmedge."""
    if not Path(SSHD).exists():
        pytest.fail("sshd is not installed: `make test` installs Debian's openssh-server")
    tmp = tmp_path_factory.mktemp("device")
    root = ensure_sysroot()
    pkg = _device_package(tmp / "pkg")
    for kind in ("ok", "nopython", "noswarmedge", "tools"):
        (tmp / kind).mkdir()
    for tool in ("sh", "mkdir", "mktemp", "tar", "gzip", "rm", "mv", "cat"):  # a device's basics, no python3
        (tmp / "tools" / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    emulated = (f"exec /usr/bin/qemu-aarch64-static -cpu cortex-a76 -L {root}/cortex-a76 "
                f"-E PYTHONPATH={root}/site:{{pp}} {root}/cortex-a76/usr/bin/python3.11 \"$@\"")
    _wrapper(tmp / "ok" / "python3", emulated.format(pp=pkg))
    _wrapper(tmp / "noswarmedge" / "python3", emulated.format(pp=tmp / "empty"))
    # the forced command picks the "device" by the key's environment and runs what the client asked
    _wrapper(tmp / "device.sh", f'cd "$HOME_DIR" && PATH="$DEVICE_BIN:{tmp / "tools"}" exec /bin/sh -c '
                                '"$SSH_ORIGINAL_COMMAND"')
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "host_key")], check=True)
    home = tmp / "home"
    home.mkdir()
    port = _free_port()
    authorized, configs = [], {}
    for kind in ("ok", "nopython", "noswarmedge"):  # one user key per kind of device
        key = tmp / f"key_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized.append(f'environment="DEVICE_BIN={tmp / kind}",environment="HOME_DIR={home}",'
                          f'command="{tmp / "device.sh"}" {(tmp / f"key_{kind}.pub").read_text().strip()}')
        configs[kind] = tmp / f"ssh_config_{kind}"
        configs[kind].write_text(f"""Host pi
  HostName 127.0.0.1
  Port {port}
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  UserKnownHostsFile {tmp / 'known_hosts'}
  StrictHostKeyChecking accept-new
""")
    (tmp / "authorized_keys").write_text("\n".join(authorized) + "\n")
    sshd_config = tmp / "sshd_config"
    sshd_config.write_text(f"""ListenAddress 127.0.0.1
Port {port}
HostKey {tmp / 'host_key'}
PidFile {tmp / 'sshd.pid'}
AuthorizedKeysFile {tmp / 'authorized_keys'}
PermitUserEnvironment yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
""")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(sshd_config)], stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield {"configs": configs, "home": home}
    proc.terminate()
    proc.wait(timeout=10)


def _use(device, kind):
    """The environment that makes `ssh pi` reach that kind of device."""
    return {**os.environ, "SWARMEDGE_SSH_CONFIG": str(device["configs"][kind])}


def test_profile_on_the_emulated_pi_enters_a_compare_report(device, boids_bundle, tiny_boids_ckpt, data_dir,
                                                            tmp_path):
    env = _use(device, "ok")
    out = tmp_path / "pi5.json"
    r = run_device(["profile", str(boids_bundle), "--remote", "pi:bundles", "--repeat", "3", "--warmup", "1",
                    "--boids", "40", "--json", "-o", str(out)], env=env)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["machine"]["machine"] == "aarch64" and report["machine"]["cpu"] == "Cortex-A76"
    assert report["remote"]["host"] == "pi" and report["remote"]["swarmedge"]
    assert {c["precision"] for c in report["configs"]} == {"int8", "fp32"}
    # nothing half-copied on the device: just the bundle under its own name
    entries = sorted(p.name for p in (device["home"] / "bundles").iterdir())
    assert entries == [boids_bundle.name]
    result = compare(tiny_boids_ckpt, boids_bundle, "mnist", data_dir=data_dir, limit=60, latency_inputs=5,
                     profiles=[out])
    md = write_reports(result, tmp_path / "report")["md"].read_text()
    assert "Cortex-A76 (aarch64)" in md


def test_run_on_the_emulated_pi(device, text_bundle):
    env = _use(device, "ok")
    r = run_device(["run", str(text_bundle), "--remote", "pi", "--text", "good film", "--json"], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["input"] == "good film"


@pytest.mark.parametrize("kind,needle", [("nopython", "no python3"), ("noswarmedge", "pip install swarmedge")])
def test_device_without_python_or_swarmedge(device, boids_bundle, kind, needle):
    r = run_device(["profile", str(boids_bundle), "--remote", "pi"], env=_use(device, kind))
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr


def test_unreachable_device(boids_bundle, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host gone\n  HostName 127.0.0.1\n  Port {_free_port()}\n  UserKnownHostsFile /dev/null\n")
    r = run_device(["profile", str(boids_bundle), "--remote", "gone"],
                   env={**os.environ, "SWARMEDGE_SSH_CONFIG": str(cfg)})
    assert r.returncode != 0 and "cannot reach gone" in r.stderr and len(r.stderr.strip().splitlines()) == 1
