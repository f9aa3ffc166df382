"""Packaging: the folder mapping, the torch-free core, and the built wheel."""

import subprocess
import sys
import zipfile

import pytest
import tomllib

from .conftest import ROOT


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapping = set(config["packages"]), config["package-dir"]
    found = set()
    tops = (("swarmedge", "swarmedge"), ("export", "swarmedge.export"), ("runtimes", "swarmedge.runtimes"))
    for top, package in tops:
        assert mapping[package] == top
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((package, *rel)))
    assert found == listed


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_and_runtimes_import_without_torch_or_onnx():
    r = _python("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
                "import swarmedge, swarmedge.runtimes, swarmedge.cli, swarmedge.manifest\n"
                "import swarmedge.runtimes.run, swarmedge.runtimes.images, swarmedge.runtimes.text")
    assert r.returncode == 0, r.stderr
    r = _python("import sys, swarmedge.cli, swarmedge.runtimes; "
                "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxscript')))")
    assert r.stdout.strip() == "[]"


def test_missing_export_extra_names_the_fix():
    r = _python("import sys; sys.modules['torch'] = None\n"
                "from swarmedge.cli import main; sys.argv = ['swarmedge', 'export', 'x.pt']; main()")
    assert r.returncode != 0 and "pip install 'swarmedge[export]'" in r.stderr and "Traceback" not in r.stderr


def test_wheel_contains_every_module(tmp_path):
    import shutil

    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info", "runs",
                                                               "demo-out", "__pycache__", "zoo"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("swarmedge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = (("swarmedge", "swarmedge"), ("export", "swarmedge/export"), ("runtimes", "swarmedge/runtimes"))
    for top, package in tops:
        for py in (ROOT / top).rglob("*.py"):
            assert f"{package}/{py.relative_to(ROOT / top).as_posix()}" in names
    # the bundle format's schema is read at run time (docs/BUNDLE.md): it must ship as package data
    assert "swarmedge/runtimes/bundle.schema.json" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "swarmedge = swarmedge.__main__:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.parametrize("module, line", [
    ("click", "swarmedge: interrupted while starting; nothing was done"),  # the command's first import
    ("numpy", "swarmedge: interrupted; nothing was left half-written"),  # imported inside the command
])
def test_ctrl_c_while_modules_load_is_one_line(module, line, tmp_path):
    # Newcomer trial: Ctrl-C in the first half second printed a traceback from inside an import.
    # A finder that raises KeyboardInterrupt when ``module`` is imported stands for the keypress.
    r = _python("import sys\n"
                "class Pressed:\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                f"        if name == {module!r}:\n"
                "            raise KeyboardInterrupt\n"
                "sys.meta_path.insert(0, Pressed())\n"
                f"sys.argv = ['swarmedge', 'init', 'boids', '-o', {str(tmp_path / 'm.pt')!r}]\n"
                "from swarmedge.__main__ import main; main()")
    assert r.returncode == 130, r.stderr
    assert r.stderr == line + "\n" and not (tmp_path / "m.pt").exists()
