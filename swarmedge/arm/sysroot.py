"""The aarch64 sysroot: Debian's Python 3.11 + the same onnxruntime as the host, aarch64 wheels.

Built once into the cache (``$SWARMEDGE_CACHE/arm/<key>``), the key naming the pinned
versions, so a new onnxruntime builds a new sysroot. It is built in a staging directory
and renamed into place only when complete, so an interrupted setup never leaves a cache
that a later run would trust.
"""

import hashlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from swarmedge.atomic import staged_directory
from swarmedge.datasets.sources import cache_dir
from swarmedge.errors import SwarmedgeError

RECIPE = 1  # bump when the way the sysroot is built changes
MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = "python3.11,libpython3.11-stdlib,libstdc++6,libgcc-s1"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
# CPU part numbers and features as the kernel reports them; onnxruntime reads /proc/cpuinfo
# to pick its kernels, and QEMU 7.2 crashes onnxruntime if it finds the host's x86 file.
CPUS = {
    "cortex-a72": ("Raspberry Pi 4", "0xd08", "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": ("Raspberry Pi 5", "0xd0b", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
                                              "cpuid asimdrdm lrcpc dcpop asimddp"),
}


class ArmSetupError(SwarmedgeError):
    exit_code = 5


def packages() -> list[str]:
    """The device packages (swarmedge's base dependencies) at the host's versions, onnxruntime first.

    Read from swarmedge's own metadata, so a dependency added to pyproject.toml reaches the
    sysroot (and changes its cache key) without an edit here.
    """
    names = ["onnxruntime"]
    for req in importlib.metadata.requires("swarmedge") or []:
        if ";" not in req:  # extras carry a marker (extra == "export"); the base install has none
            name = re.split(r"[\s<>=!~\[(]", req, maxsplit=1)[0]
            if name.lower() not in (n.lower() for n in names):
                names.append(name)
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def sysroot_path() -> Path:
    key = hashlib.sha256(f"{RECIPE} {sys.version_info[:2]} {' '.join(packages())}".encode()).hexdigest()[:12]
    return cache_dir() / "arm" / key


def require_tools() -> dict[str, str]:
    tools = {"qemu": shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64"),
             "mmdebstrap": shutil.which("mmdebstrap")}
    missing = [k for k, v in tools.items() if v is None]
    if missing:
        raise ArmSetupError(f"ARM emulation needs {' and '.join(missing)}: "
                            "sudo apt-get install qemu-user-static mmdebstrap")
    return tools


def ensure_sysroot(rebuild: bool = False, on_step: Callable[[str], None] = lambda s: None) -> Path:
    """The ready sysroot, built first if the cache has none for these versions."""
    target = sysroot_path()
    if (target / "READY").is_file() and not rebuild:
        return target
    tools = require_tools()
    with staged_directory(target) as stage:
        on_step("debian arm64 userland (mmdebstrap)")
        _run([tools["mmdebstrap"], "--mode=unshare", "--arch=arm64", "--variant=extract", "-q",
              f"--include={DEBIAN_PACKAGES}", "bookworm", str(stage / "base"), MIRROR], "mmdebstrap")
        on_step("aarch64 wheels (pip download)")
        wheels = stage / "wheels"
        platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
        common = ["--only-binary=:all:", *platform_args, "--python-version", "3.11", "--implementation", "cp"]
        _run([sys.executable, "-m", "pip", "download", "-q", *common, "-d", str(wheels), *packages()], "pip download")
        on_step("install wheels into the sysroot")
        _run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *common,
              "--target", str(stage / "site"), *packages()], "pip install")
        shutil.rmtree(wheels)
        for cpu, (_, part, features) in CPUS.items():
            root = stage / cpu  # the shared userland plus this CPU's own /proc/cpuinfo
            (root / "proc").mkdir(parents=True)
            for entry in (stage / "base").iterdir():
                if entry.name != "proc":
                    (root / entry.name).symlink_to(Path("..") / "base" / entry.name)
            (root / "proc" / "cpuinfo").write_text("".join(
                f"processor\t: {i}\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                f"CPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n\n" for i in range(4)))
        (stage / "READY").write_text(" ".join(packages()) + "\n")
    return target


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ArmSetupError(f"{what} failed ({tail[0][:200]}); check the network to PyPI and Debian and retry")
