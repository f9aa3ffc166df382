"""Real devices over SSH: copy a bundle to a Raspberry Pi, run swarmedge there, bring JSON back.

Uses the OpenSSH client, so the user's ~/.ssh/config, keys and agent apply
(``$SWARMEDGE_SSH_CONFIG`` points ssh at another config file). The bundle is unpacked
into a temporary directory on the device and moved into place only when complete.
"""

import io
import json
import os
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from swarmedge.errors import SwarmedgeError

DEFAULT_DIR = "swarmedge-bundles"
PROBE = ("import json, platform, sys\n"
         "out = {'python': platform.python_version(), 'machine': platform.machine()}\n"
         "try:\n import swarmedge, onnxruntime\n"
         " out.update(swarmedge=swarmedge.__version__, onnxruntime=onnxruntime.__version__)\n"
         "except ImportError as e:\n out['missing'] = str(e)\n"
         "print(json.dumps(out))")


class RemoteError(SwarmedgeError):
    exit_code = 6


@dataclass(frozen=True)
class Remote:
    host: str  # what ssh connects to: [user@]host or a Host alias from ssh config
    directory: str = DEFAULT_DIR  # on the device, relative to the login directory unless absolute

    @classmethod
    def parse(cls, spec: str) -> "Remote":
        host, _, directory = spec.partition(":")
        if not host or host.startswith("-") or any(c.isspace() for c in host):
            raise RemoteError(f"--remote {spec!r} is not [user@]host[:dir]")
        return cls(host, directory or DEFAULT_DIR)


def _ssh(remote: Remote, command: str, stdin: bytes | None = None, timeout: int = 3600) -> subprocess.CompletedProcess:
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
    if os.environ.get("SWARMEDGE_SSH_CONFIG"):
        cmd += ["-F", os.environ["SWARMEDGE_SSH_CONFIG"]]
    try:
        r = subprocess.run([*cmd, remote.host, command], input=stdin, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise RemoteError("the OpenSSH client (ssh) is not installed: sudo apt-get install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{remote.host} did not answer within {timeout} s") from None
    if r.returncode == 255:
        why = (r.stderr.decode(errors="replace").strip().splitlines() or ["connection failed"])[-1]
        raise RemoteError(f"cannot reach {remote.host} over ssh ({why[:200]}); check the host, keys and network")
    return r


def device_info(remote: Remote) -> dict:
    """Python, CPU architecture and swarmedge/onnxruntime versions on the device."""
    r = _ssh(remote, f"python3 -c {shlex.quote(PROBE)}")
    if r.returncode == 127:
        raise RemoteError(f"{remote.host} has no python3 on its PATH: install Python 3 there first")
    try:
        info = json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        why = (r.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RemoteError(f"could not run python3 on {remote.host} ({why[:200]})") from None
    if "missing" in info:
        raise RemoteError(f"swarmedge is not installed on {remote.host} ({info['missing']}): "
                          f"ssh {remote.host} pip install swarmedge   (the base install is all a device needs)")
    return info


def push(remote: Remote, paths: list[Path], name: str) -> str:
    """Copy ``paths`` (the bundle, input files) to ``<dir>/<name>/`` on the device, whole or not at all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in paths:
            tar.add(p, arcname=Path(p).name)
    d, target = shlex.quote(remote.directory), shlex.quote(f"{remote.directory}/{name}")
    script = (f"set -e; mkdir -p {d}; tmp=$(mktemp -d {d}/.{shlex.quote(name)}.XXXXXX); "
              "trap 'rm -rf \"$tmp\"' EXIT; tar -xzf - -C \"$tmp\"; "
              f"rm -rf {target}; mv \"$tmp\" {target}; trap - EXIT")
    r = _ssh(remote, f"sh -c {shlex.quote(script)}", stdin=buf.getvalue())
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        if "No space left" in err:
            raise RemoteError(f"{remote.host} is out of disk space in {remote.directory}; free some and retry")
        raise RemoteError(f"copying to {remote.host} failed ({(err.strip().splitlines() or ['?'])[-1][:200]})")
    return f"{remote.directory}/{name}"


def run_cli(remote: Remote, workdir: str, args: list[str], stdin: bytes | None = None) -> str:
    """``swarmedge ARGS`` on the device in ``workdir``; its stdout, or its one-line error raised here."""
    r = _ssh(remote, f"cd {shlex.quote(workdir)} && python3 -m swarmedge.cli {shlex.join(args)}", stdin=stdin)
    if r.returncode != 0:
        why = (r.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RemoteError(f"on {remote.host}: {why.removeprefix('swarmedge: error: ')[:300]}")
    return r.stdout.decode()


def remote_profile(spec: str, bundle: Path, args: list[str]) -> dict:
    """Profile ``bundle`` on the device; the report names the device and its onnxruntime."""
    remote = Remote.parse(spec)
    info = device_info(remote)
    bundle = Path(bundle)
    workdir = push(remote, [bundle], bundle.name)
    report = json.loads(run_cli(remote, workdir, ["profile", bundle.name, *args, "--json"]))
    report["remote"] = {"host": remote.host, "directory": workdir, **info}
    return report


def remote_run(spec: str, bundle: Path, args: list[str], files: list[Path], stdin: bytes | None) -> str:
    """``swarmedge run`` on the device, with the input files copied beside the bundle."""
    remote = Remote.parse(spec)
    device_info(remote)
    bundle = Path(bundle)
    workdir = push(remote, [bundle, *files], bundle.name + ".run")
    return run_cli(remote, workdir, ["run", bundle.name, *args], stdin=stdin)
