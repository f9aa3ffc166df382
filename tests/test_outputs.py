"""Output paths never destroy a user's files nor break a bundle (swarmedge.output_paths).

Each refusal must be one line, leave what was there untouched, and happen before the work
where the library can tell (export, visualize, compare's reports)."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from swarmedge.atomic import write_bytes
from swarmedge.cli import cli
from swarmedge.errors import InputError
from swarmedge.output_paths import bundle_containing, check_bundle_target, check_output_file, check_output_folder

INSIDE = "is inside bundle"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(args: list[str], needle: str, reliability, kind: str) -> str:
    """Run the CLI; require a non-zero exit with one line holding ``needle``, no traceback."""
    r = CliRunner().invoke(cli, args)
    lines = [ln for ln in r.output.splitlines() if ln.startswith("swarmedge: error:")]
    ok = r.exit_code not in (0, None) and len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output
    reliability["output paths"]["refused in one line" if ok else "NOT refused cleanly"] += 1
    reliability["output paths"][f"tried: {kind}"] += 1
    assert ok, (args, r.exit_code, r.output)
    return lines[0]


@pytest.fixture
def bundle(boids_bundle, tmp_path) -> Path:
    """A private copy of the session's boids bundle, free to be written around."""
    return Path(shutil.copytree(boids_bundle, tmp_path / "b.bundle"))


@pytest.fixture
def five(data_dir, tmp_path) -> Path:
    with np.load(data_dir / "mnist.npz") as z:
        Image.fromarray(z["x_test"][8]).save(tmp_path / "five.png")
    return tmp_path / "five.png"


def export_args(ckpt, out) -> list[str]:
    return ["export", str(ckpt), "-o", str(out), "--quantize", "none"]


# ---- export: what it may replace -------------------------------------------------------------

def test_export_keeps_a_folder_that_only_looks_like_a_bundle(tiny_boids_ckpt, tmp_path, reliability):
    web = tmp_path / "webapp"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app"}')
    (web / "index.html").write_text("precious")
    before = snapshot(web)
    line = refused(export_args(tiny_boids_ckpt, web), "not a swarmedge bundle", reliability, "export over a web app")
    assert "index.html" in line
    assert snapshot(web) == before


@pytest.mark.parametrize("extra", ["NOTES.txt", ".DS_Store", "notes/"])
def test_export_keeps_a_bundle_holding_a_users_file(tiny_boids_ckpt, bundle, extra, reliability):
    if extra.endswith("/"):
        (bundle / extra).mkdir()
        (bundle / extra / "draft.md").write_text("mine")
    else:
        (bundle / extra).write_text("mine")
    before = snapshot(bundle)
    line = refused(export_args(tiny_boids_ckpt, bundle), "move", reliability, f"export over a bundle + {extra}")
    assert extra.rstrip("/") in line
    assert snapshot(bundle) == before


def test_export_keeps_a_folder_hiding_under_a_listed_name(tiny_boids_ckpt, bundle, reliability):
    # a folder named like a listed file would be deleted with everything in it
    (bundle / "model.int8.onnx").unlink()
    (bundle / "model.int8.onnx").mkdir()
    (bundle / "model.int8.onnx" / "mine.txt").write_text("mine")
    before = snapshot(bundle)
    refused(export_args(tiny_boids_ckpt, bundle), "model.int8.onnx", reliability,
            "export over a listed name that is a folder")
    assert snapshot(bundle) == before


@pytest.mark.parametrize("content", [None, ".hidden", "file"])
def test_export_onto_a_file_or_a_plain_folder_is_refused(tiny_boids_ckpt, tmp_path, content, reliability):
    out = tmp_path / "out"
    if content == "file":
        out.write_text("mine")
        refused(export_args(tiny_boids_ckpt, out), "is a file", reliability, "export onto a file")
        assert out.read_text() == "mine"
        return
    out.mkdir()
    if content:
        (out / content).write_text("mine")
        refused(export_args(tiny_boids_ckpt, out), content, reliability, "export onto a folder of hidden files")
        assert (out / content).read_text() == "mine"
    else:  # an empty folder holds nothing to lose: it becomes the bundle
        r = CliRunner().invoke(cli, export_args(tiny_boids_ckpt, out))
        assert r.exit_code == 0, r.output
        assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("name", ["out.onnx", "model.ONNX", "m.pt", "bundle.zip", "m.tar.gz"])
def test_export_to_a_file_name_is_refused(tiny_boids_ckpt, tmp_path, name, reliability):
    # Newcomer trial: `export -o out.onnx` made a folder named out.onnx
    line = refused(export_args(tiny_boids_ckpt, tmp_path / name), "writes a bundle folder", reliability,
                   "export to a file name")
    assert ".bundle" in line and not (tmp_path / name).exists()


def test_export_replaces_a_clean_or_damaged_bundle(tiny_boids_ckpt, bundle):
    from swarmedge.runtimes import Bundle

    old = json.loads((bundle / "manifest.json").read_text())["created"]
    (bundle / "model.int8.onnx").unlink()  # damaged: a listed file missing
    r = CliRunner().invoke(cli, export_args(tiny_boids_ckpt, bundle))
    assert r.exit_code == 0, r.output
    assert Bundle.open(bundle).precisions == ["fp32"]  # the new fp32-only export, not the old one
    assert (bundle / "manifest.json").read_text() != old


def test_export_checks_again_right_before_the_swap(tiny_boids_ckpt, bundle, reliability):
    from swarmedge.export import export_bundle

    def on_step(step):  # a user saves a note into the bundle while the export runs
        if step == "write":
            (bundle / "NOTES.txt").write_text("written during the export")

    before = snapshot(bundle)
    with pytest.raises(InputError, match="NOTES.txt"):
        export_bundle(tiny_boids_ckpt, bundle, quantize_mode=None, on_step=on_step)
    reliability["output paths"]["refused in one line"] += 1
    reliability["output paths"]["tried: file added to the bundle during export"] += 1
    assert snapshot(bundle) == {**before, "NOTES.txt": hashlib.sha256(b"written during the export").hexdigest()}
    assert sorted(p.name for p in bundle.parent.iterdir() if p.name.startswith(".")) == []  # no staging left


# ---- nothing inside a bundle ------------------------------------------------------------------

def test_no_output_inside_a_bundle(tiny_boids_ckpt, bundle, five, tmp_path, reliability):
    from swarmedge.runtimes import Bundle

    before = snapshot(bundle)
    cases = {
        "profile over the manifest": ["profile", str(bundle), "-o", str(bundle / "manifest.json"),
                                      "--repeat", "1", "--warmup", "0"],
        "profile into a bundle": ["profile", str(bundle), "-o", str(bundle / "p.json"),
                                  "--repeat", "1", "--warmup", "0"],
        "visualize into a bundle": ["visualize", str(bundle), "--image", str(five), "-o", str(bundle / "s.gif")],
        "fields into a bundle": ["visualize", str(tiny_boids_ckpt), "--fields", "-o", str(bundle / "sub" / "f.png")],
        "export into a bundle": export_args(tiny_boids_ckpt, bundle / "inner.bundle"),
        "init into a bundle": ["init", "boids", "-o", str(bundle / "m.pt")],
    }
    for kind, args in cases.items():
        refused(args, INSIDE, reliability, kind)
    assert snapshot(bundle) == before
    Bundle.open(bundle)  # still opens: nothing unlisted was left in it


def test_relative_dot_and_linked_paths_into_a_bundle(bundle, tmp_path, monkeypatch, reliability):
    link = tmp_path / "link"
    link.symlink_to(bundle, target_is_directory=True)
    before = snapshot(bundle)
    attempts = [
        (lambda: write_bytes(link / "p.json", b"{}"), INSIDE, "file through a link to a bundle"),
        (lambda: check_output_folder(link / "reports"), INSIDE, "folder through a link to a bundle"),
        (lambda: check_bundle_target(link / "inner.bundle"), INSIDE, "export through a link to a bundle"),
    ]
    sub = tmp_path / "sub"
    sub.mkdir()
    inner_link = sub / "out.bundle"  # a link whose target is a folder inside the bundle
    inner_link.symlink_to(bundle / "nested", target_is_directory=True)
    attempts.append((lambda: check_bundle_target(inner_link), INSIDE, "export onto a link pointing into a bundle"))
    for call, needle, kind in attempts:
        with pytest.raises(InputError, match=needle):
            call()
        reliability["output paths"]["refused in one line"] += 1
        reliability["output paths"][f"tried: {kind}"] += 1
    monkeypatch.chdir(bundle)
    for call, needle, kind in [
        (lambda: write_bytes(Path("p.json"), b"{}"), INSIDE, "relative file in a bundle"),
        (lambda: check_output_folder(Path(".")), "is a bundle", "-o . in a bundle"),
        (lambda: check_output_file(Path("deeper/../x.json")), INSIDE, "relative path with .."),
    ]:
        with pytest.raises(InputError, match=needle):
            call()
        reliability["output paths"]["refused in one line"] += 1
        reliability["output paths"][f"tried: {kind}"] += 1
    assert snapshot(bundle) == before


def test_bundle_containing(bundle, tmp_path):
    assert bundle_containing(bundle / "x.json") == bundle.resolve()
    assert bundle_containing(bundle / "a" / "b" / "c.json") == bundle.resolve()  # need not exist
    assert bundle_containing(bundle) is None  # the bundle itself is not inside one
    assert bundle_containing(bundle / "..") is None  # ".." leaves the bundle
    assert bundle_containing(tmp_path / "x.json") is None
    for text in ['{"name": "my app"}', "not json", '["swarmedge.bundle"]']:  # only a bundle's manifest counts
        other = tmp_path / f"o{len(text)}"
        other.mkdir()
        (other / "manifest.json").write_text(text)
        assert bundle_containing(other / "x.json") is None, text


# ---- a folder where a file goes, a file where a folder goes -------------------------------------

def test_a_folder_at_a_file_output_is_one_line(bundle, five, tmp_path, monkeypatch, reliability):
    monkeypatch.chdir(tmp_path)
    for name in ("existing_dir", "vdir.gif"):
        (tmp_path / name).mkdir()
    cases = {
        "init onto a folder": ["init", "boids", "-o", "existing_dir"],
        "profile onto a folder": ["profile", str(bundle), "-o", "existing_dir", "--repeat", "1", "--warmup", "0"],
        "visualize onto a folder": ["visualize", str(bundle), "--image", str(five), "-o", "vdir.gif"],
    }
    for kind, args in cases.items():
        line = refused(args, "is a folder; give a file path", reliability, kind)
        assert args[args.index("-o") + 1] in line
    assert [list((tmp_path / n).iterdir()) for n in ("existing_dir", "vdir.gif")] == [[], []]
    # Newcomer trial: `init -o b.bundle` suggested b.bundle/model.pt, a path swarmedge then refuses
    before = snapshot(bundle)
    line = refused(["init", "boids", "-o", str(bundle)], "is a bundle; give a file path outside it", reliability,
                   "init onto a bundle")
    assert line.endswith(f"e.g. {bundle.with_name('b.pt')}")
    line = refused(["profile", str(bundle), "-o", str(bundle)], "is a bundle; give a file path outside it",
                   reliability, "profile onto a bundle")
    assert line.endswith(f"e.g. {tmp_path / 'FILENAME'}")
    assert snapshot(bundle) == before


def test_write_bytes_onto_a_folder_that_appears_after_the_check(tmp_path, monkeypatch, reliability):
    import swarmedge.output_paths

    monkeypatch.setattr(swarmedge.output_paths, "check_output_file", lambda path: None)  # the race: check passed
    (tmp_path / "out.json").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        write_bytes(tmp_path / "out.json", b"{}")
    reliability["output paths"]["refused in one line"] += 1
    reliability["output paths"]["tried: folder appearing at a file output"] += 1
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


def test_compare_report_folder(tiny_boids_ckpt, bundle, tmp_path, monkeypatch, reliability):
    from swarmedge.reports import write_reports

    monkeypatch.chdir(tmp_path)
    Path("notadir").write_text("mine")
    base = ["compare", str(tiny_boids_ckpt), str(bundle), "--data", "mnist", "--limit", "8", "--latency-inputs", "2"]
    assert refused(base + ["-o", "notadir"], "", reliability, "compare -o a file").endswith(
        "notadir is a file; -o takes a folder")
    before = snapshot(bundle)
    for out, needle in [(bundle, "is a bundle"), (bundle / "reports", INSIDE)]:
        with pytest.raises(InputError, match=needle):
            write_reports({}, out)  # refused before anything is rendered: no result needed
        reliability["output paths"]["refused in one line"] += 1
        reliability["output paths"]["tried: compare reports in a bundle"] += 1
    assert snapshot(bundle) == before
    assert Path("notadir").read_text() == "mine"


def test_long_commands_refuse_a_bad_output_before_their_work(bundle, tiny_boids_ckpt, tmp_path, monkeypatch,
                                                            reliability):
    # profile, compare, arm-check and train take minutes; a folder at their file output, or an output
    # inside a bundle, is refused before any of that work starts (the work here would fail the test).
    import swarmedge.arm.check
    import swarmedge.compare
    import swarmedge.runtimes.profile
    import swarmedge.training

    def work(*args, **kwargs):
        raise AssertionError("the work ran before the output was checked")

    for module, name in ((swarmedge.runtimes.profile, "profile_bundle"), (swarmedge.compare, "compare"),
                         (swarmedge.arm.check, "arm_check"), (swarmedge.training, "train")):
        monkeypatch.setattr(module, name, work)
    folder = tmp_path / "out.json"
    folder.mkdir()
    refused(["profile", str(bundle), "-o", str(folder)], "is a folder", reliability, "profile -o a folder")
    refused(["profile", str(bundle), "-o", str(bundle / "p.json")], "inside bundle", reliability,
            "profile -o inside a bundle")
    refused(["arm-check", str(bundle), "-o", str(folder)], "is a folder", reliability, "arm-check -o a folder")
    refused(["compare", str(tiny_boids_ckpt), str(bundle), "--data", "mnist", "-o", str(bundle / "r")],
            "inside bundle", reliability, "compare -o inside a bundle")
    refused(["train", "boids", "--data", "mnist", "-o", str(bundle / "m.pt")], "inside bundle", reliability,
            "train -o inside a bundle")


def test_an_output_that_is_not_a_regular_file_is_refused_not_replaced(bundle, tmp_path, reliability):
    # The write renames a new file into place, which would replace a FIFO, a device (think -o /dev/null
    # as root) or a symbolic link with a plain file: such targets are refused and left as they were.
    fifo, target = tmp_path / "pipe.json", tmp_path / "real.json"
    os.mkfifo(fifo)
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    for out, kind in ((fifo, "FIFO"), (tmp_path / "link.json", "symbolic link")):
        refused(["profile", str(bundle), "-o", str(out)], "not a regular file", reliability, f"-o a {kind}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and (tmp_path / "link.json").is_symlink()
    with pytest.raises(InputError, match="not a regular file"):
        write_bytes(fifo, b"x")


def test_export_onto_a_link_loop_or_the_folder_you_are_in(tiny_boids_ckpt, bundle, tmp_path, monkeypatch,
                                                          reliability):
    (tmp_path / "l1").symlink_to(tmp_path / "l2")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    refused(export_args(tiny_boids_ckpt, tmp_path / "l1"), "loop", reliability, "export -o a link loop")
    before = snapshot(bundle)
    monkeypatch.chdir(bundle)  # `export -o .` from inside the bundle would leave the shell in a deleted folder
    refused(export_args(tiny_boids_ckpt, "."), "the folder you are in", reliability, "export -o . from inside")
    assert snapshot(bundle) == before


def test_full_disk_closed_stdin_and_closed_pipe_are_one_line(bundle, tmp_path, five):
    cli = [sys.executable, "-m", "swarmedge.cli", "run", str(bundle)]
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        r = subprocess.run([*cli, "--image", str(five)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "swarmedge: error: cannot write (standard output): No space left on device; free some space or write "
        "elsewhere"]
    r = subprocess.run([*cli, "-"], capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.close(0))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "stdin is closed" in r.stderr, r.stderr
    images = [str(five)] * 400
    p = subprocess.Popen([*cli, *(a for i in images for a in ("--image", i))], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()  # `| head -1`: the reader goes away
    assert p.wait(timeout=120) in (0, 141) and b"Traceback" not in p.stderr.read()


def test_a_cache_that_is_not_a_folder_is_one_line(tmp_path, monkeypatch):
    from swarmedge.datasets.sources import cache_dir

    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("SWARMEDGE_CACHE", str(tmp_path / "file"))
    with pytest.raises(InputError, match="SWARMEDGE_CACHE .* is not a folder"):
        cache_dir()


def test_a_hand_made_set_aside_bundle_is_not_put_back(bundle, tmp_path):
    # Only a bundle that a killed export set aside (its lock file is still beside it) comes back.
    from swarmedge.atomic import recover_directory

    shutil.copytree(bundle, tmp_path / ".r.bundle.old-1a2b3c4d5e6f")
    (tmp_path / ".s.bundle.old-1a2b3c4d5e6f").symlink_to(bundle)
    assert not recover_directory(tmp_path / "r.bundle") and not recover_directory(tmp_path / "s.bundle")
    assert not os.path.lexists(tmp_path / "r.bundle") and not os.path.lexists(tmp_path / "s.bundle")


@pytest.mark.parametrize("args", [["init", "boids"], ["train", "boids"], ["profile", "x.bundle"],
                                  ["visualize", "x.pt"], ["calibrate", "x.pt"], ["arm-check", "x.bundle"]])
def test_an_output_file_ending_in_a_slash_is_refused_not_written_as_a_file(args, tmp_path, reliability,
                                                                            monkeypatch):
    """pathlib drops a trailing '/': `-o out/` would have written a file named `out`."""
    monkeypatch.chdir(tmp_path)
    refused([*args, "-o", "out/"], "names a folder", reliability, "-o FILE ending in /")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "suggested"), [
    (["init", "boids"], "model.pt"),  # a checkpoint, whatever the folder is called
    (["profile", "x.bundle"], "FILENAME"),  # ".37x4" is not a file type to copy
])
def test_a_folder_given_as_a_file_suggests_a_sensible_name(args, suggested, tmp_path, reliability, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("runs.37x4").mkdir()
    line = refused([*args, "-o", "runs.37x4"], "is a folder", reliability, "a folder with a dotted name")
    assert line.endswith(str(Path("runs.37x4") / suggested))
