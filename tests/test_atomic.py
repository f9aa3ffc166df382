"""Crash safety of bundle replacement (swarmedge/atomic.py): kills and stale leftovers (races: test_swap.py).

Most kills exercise ``staged_directory`` in small child processes (no torch) that SIGKILL
themselves just before the Nth file-system operation (mkdir, rename, renameat2, unlink, flock,
rmtree and the unlinks inside it, each staged file); the others kill real exports at every
step boundary, inside the swap and at spread-out times. After each kill: the target must hold
the old bundle byte for byte or a complete new one (never missing, never mixed), and the next
export must leave no hidden ``.NAME.*`` entry behind.
"""

import fcntl
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import swarmedge.swap as swap
from swarmedge.atomic import recover_directory, staged_directory
from swarmedge.errors import InputError
from swarmedge.manifest import MANIFEST
from tests.bundle_states import export_copy, hidden, is_complete_bundle, set_aside_by_dead_fallback, snapshot

# A child that exports SOURCE's files to TARGET through staged_directory and kills itself
# (SIGKILL, nothing runs after) just before its KILL_AT-th file-system operation (each staged
# file counts as one too); it prints how many it counted when it lives to the end.
STAGED_CHILD = r"""
import fcntl, os, shutil, signal, sys
from pathlib import Path
import swarmedge.atomic as atomic
import swarmedge.swap as swap

target, source, kill_at, fallback = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if fallback == "1":
    swap._RENAMEAT2 = None  # as on a system without renameat2
hits = 0

def hit():
    global hits
    hits += 1
    if hits == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(owner, name):
    real = getattr(owner, name)
    def wrapped(*args, **kwargs):
        hit()
        return real(*args, **kwargs)
    setattr(owner, name, wrapped)

for owner, name in [(os, "mkdir"), (os, "rename"), (os, "unlink"), (os, "rmdir"), (shutil, "rmtree"),
                    (fcntl, "flock"), (swap, "_rename2")]:
    wrap(owner, name)
with atomic.staged_directory(Path(target)) as stage:
    for f in sorted(source.iterdir()):
        shutil.copyfile(f, stage / f.name)
        hit()
print(hits)
"""

# Real exports of a tiny checkpoint, each in a process forked from this server once it has
# imported torch and the exporter (as torch's DataLoader forks its workers), so that a kill costs
# the export, not another 5 s import. For each line "MODE CACHE" on stdin it forks one export,
# prints "pid N", and after the export ended "status N". The export prints each step as it starts
# and dies as MODE says: step:NAME at that step's start, swap:after right after the renameat2
# that swaps the bundle in, none: lives (the test kills it). With CACHE "1" the torch.onnx step
# copies the model.onnx of CACHE_BUNDLE (exported from the same checkpoint) instead of tracing
# again; every other step runs for real.
EXPORT_SERVER = r"""
import json, os, shutil, signal, sys, time
from pathlib import Path
ckpt, out, cache_bundle = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
import swarmedge.atomic as atomic
import swarmedge.swap as swap
import swarmedge.export.pipeline as pipeline

def say(line):  # one write(2) per line: the server and its forked export share the pipe
    os.write(1, (line + "\n").encode())

def cached_export(model, model_type, path, opset, metadata=None):
    shutil.copyfile(cache_bundle / "model.onnx", path)
    passes = json.loads((cache_bundle / "manifest.json").read_text())["export"]["graph_passes"]
    return {k: v for k, v in passes.items() if k != "rewrites"}

def export(mode, cache):
    t0 = time.monotonic()
    def on_step(step):
        say(f"{step} {time.monotonic() - t0:.2f}")
        if mode == "step:" + step:
            os.kill(os.getpid(), signal.SIGKILL)
    real_rename2 = swap._rename2
    def rename2(*args):
        done = real_rename2(*args)
        if mode == "swap:after":
            os.kill(os.getpid(), signal.SIGKILL)
        return done
    swap._rename2 = rename2
    if cache == "1":
        pipeline.export_onnx = cached_export
    pipeline.export_bundle(ckpt, out, agreement_size=16, calibration_size=16, on_step=on_step)
    say(f"done {time.monotonic() - t0:.2f}")

say("ready")
for line in sys.stdin:
    mode, cache = line.split()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            export(mode, cache)
            code = 0
        finally:
            os._exit(code)
    say(f"pid {pid}")
    say(f"status {os.waitpid(pid, 0)[1]}")
"""


def _staged_child(target, source, kill_at, fallback=False):
    return subprocess.run([sys.executable, "-c", STAGED_CHILD, str(target), str(source), str(kill_at),
                           "1" if fallback else "0"], capture_output=True, text=True, timeout=60)


def _judge(reliability, target, old_snapshot, new_snapshot, recovery) -> None:
    """Count lost/damaged after a kill (after a fallback swap, recover_directory may be needed first)."""
    counts = reliability["export kills"]
    counts["kills"] += 1
    if not target.exists() and old_snapshot is not None and recovery:
        counts["put back by recover_directory (fallback swap)"] += recover_directory(target)
    lost = not target.exists() and old_snapshot is not None
    state = snapshot(target) if target.exists() else None
    # new_snapshot None: a real export's new bundle, known only as "complete by its own manifest"
    is_new = state is not None and new_snapshot in (None, state) and is_complete_bundle(target)
    damaged = state is not None and state != old_snapshot and not is_new
    counts["lost"] += lost
    counts["damaged"] += damaged
    assert not lost, f"{target} is gone"
    assert not damaged, f"{target} is neither the old nor the new bundle: {sorted(state)}"


@pytest.mark.parametrize("fallback", [False, True], ids=["renameat2", "fallback"])
@pytest.mark.parametrize("scenario", ["replace", "create", "after-dead-fallback"])
def test_kill_at_every_operation_of_a_staged_export(bundles, tmp_path, reliability, monkeypatch, scenario, fallback):
    old, new = bundles
    if fallback:
        monkeypatch.setattr(swap, "_RENAMEAT2", None)
    work = tmp_path / "work"
    work.mkdir()
    target = work / "b.bundle"

    def prepare():
        if target.exists():
            shutil.rmtree(target)
        if scenario != "create":
            shutil.copytree(old, target)
        if scenario == "after-dead-fallback":
            set_aside_by_dead_fallback(target)

    prepare()
    dry = _staged_child(target, new, 0, fallback=fallback)
    assert dry.returncode == 0, dry.stderr
    total = int(dry.stdout)
    assert total >= (12 if scenario == "after-dead-fallback" else 8)  # the instrumentation really counts
    assert snapshot(target) == snapshot(new) and hidden(work) == []
    for n in range(1, total + 1):  # killed before operation n; after the last one it has finished
        prepare()
        proc = _staged_child(target, new, n, fallback)
        assert proc.returncode == -signal.SIGKILL, (n, proc.stderr)
        _judge(reliability, target, None if scenario == "create" else snapshot(old), snapshot(new),
               recovery=fallback or scenario == "after-dead-fallback")
        export_copy(new, target)  # the next export
        leftover = hidden(work)
        reliability["export kills"]["leftover after next export"] += len(leftover)
        assert leftover == [], f"killed before operation {n}: the next export left {leftover}"
        assert snapshot(target) == snapshot(new)


def test_kill_real_exports_at_every_step_in_the_swap_and_at_spread_out_times(
        tiny_boids_ckpt, boids_bundle, tmp_path, reliability):
    target = tmp_path / "work" / "b.bundle"
    target.parent.mkdir()
    shutil.copytree(boids_bundle, target)
    old = snapshot(target)
    server = subprocess.Popen([sys.executable, "-c", EXPORT_SERVER, str(tiny_boids_ckpt), str(target),
                               str(boids_bundle)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()

    def next_line() -> str:
        return lines.get(timeout=300)  # a hung export fails the test instead of hanging it

    # Killed at the start of each step (ONNX traced for real up to "parity"), right after the
    # swap, then twice while torch.onnx writes the model, timed from the "parity" run's timeline.
    runs = [(f"step:{s}", "0") for s in ("load", "export", "parity")]
    runs += [(f"step:{s}", "1") for s in ("quantize", "agreement", "write")]
    runs += [("swap:after", "1"), ("after 0.25", "0"), ("after 0.75", "0")]
    timeline = {}
    try:
        assert next_line() == "ready\n"
        for mode, cache in runs:
            server.stdin.write(f"{mode if mode.startswith(('step:', 'swap:')) else 'none'} {cache}\n")
            server.stdin.flush()
            pid, steps = None, {}
            while not (line := next_line()).startswith("status"):  # "pid" may come after the first step
                key, value = line.split()
                if key == "pid":
                    pid = int(value)
                else:
                    steps[key] = float(value)
                if mode.startswith("after") and pid and "export" in steps and "killed" not in steps:
                    time.sleep(float(mode.split()[1]) * (timeline["parity"] - timeline["export"]))
                    os.kill(pid, signal.SIGKILL)
                    steps["killed"] = 0.0
            code = os.waitstatus_to_exitcode(int(line.split()[1]))
            if mode == "step:parity":
                timeline = steps
            if code == 0 and mode.startswith("after"):  # a busy machine: it finished first
                reliability["export kills"]["timed kill came after the export finished"] += 1
                assert is_complete_bundle(target)
            else:
                assert code == -signal.SIGKILL, (mode, code)
                _judge(reliability, target, old, None, recovery=False)  # new: any complete bundle
            if snapshot(target) != old:
                reliability["export kills"]["new bundle already in place"] += 1
            export_copy(boids_bundle, target)  # the next export: the one part of export that tidies
            leftover = hidden(target.parent)
            reliability["export kills"]["leftover after next export"] += len(leftover)
            assert leftover == [], f"{mode}: the next export left {leftover}"
            assert snapshot(target) == old
    finally:
        server.stdin.close()
        server.wait(timeout=60)


def test_a_live_exports_staging_folder_is_never_removed(bundles, tmp_path):
    old, new = bundles
    target = tmp_path / "b.bundle"
    shutil.copytree(old, target)
    waiting = r"""
import sys
from pathlib import Path
from swarmedge.atomic import staged_directory
with staged_directory(Path(sys.argv[1])) as stage:
    (stage / "from-the-slow-export").write_text("x")
    print("staged", flush=True)
    sys.stdin.readline()
"""
    slow = subprocess.Popen([sys.executable, "-c", waiting, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert slow.stdout.readline() == "staged\n"
    live = hidden(tmp_path)
    assert len(live) == 2  # its staging folder and its lock
    export_copy(new, target)  # a quicker export to the same place, and one beside it
    export_copy(new, tmp_path / "other.bundle")
    assert hidden(tmp_path) == live and snapshot(target) == snapshot(new)
    assert recover_directory(target) is False
    _, err = slow.communicate("go\n", timeout=60)
    assert slow.returncode == 0, err
    assert (target / "from-the-slow-export").is_file() and hidden(tmp_path) == []  # the last swap wins


def test_recovery_leaves_a_bundle_set_aside_by_a_live_export_alone(bundles, tmp_path):
    old, _ = bundles
    target = tmp_path / "b.bundle"
    shutil.copytree(old, target)
    set_aside_by_dead_fallback(target)
    lock = tmp_path / ".b.bundle.lock-0123456789ab"
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the export that set it aside would, while alive
        assert recover_directory(target) is False and not target.exists()
    finally:
        os.close(fd)
    assert recover_directory(target) is True and snapshot(target) == snapshot(old)


def test_leftovers_of_swarmedge_before_locks_are_removed(bundles, tmp_path):
    old, new = bundles
    (tmp_path / ".b.bundle.staging-k3j_x9a2").mkdir()  # tempfile.mkdtemp's names, no lock file
    shutil.copytree(old, tmp_path / ".c.bundle.old-ab12cd34")  # its c.bundle is missing: put back
    export_copy(new, tmp_path / "b.bundle")
    assert hidden(tmp_path) == [] and snapshot(tmp_path / "c.bundle") == snapshot(old)


def test_an_interrupted_body_leaves_the_old_bundle_and_nothing_else(bundles, tmp_path):
    old, new = bundles
    target = tmp_path / "b.bundle"
    shutil.copytree(old, target)
    with pytest.raises(KeyboardInterrupt), staged_directory(target) as stage:
        shutil.copyfile(new / MANIFEST, stage / MANIFEST)
        raise KeyboardInterrupt
    assert snapshot(target) == snapshot(old) and hidden(tmp_path) == []


def test_a_file_in_the_way_is_refused_before_any_work(tmp_path):
    (tmp_path / "b.bundle").write_text("not a folder")
    with pytest.raises(InputError, match="exists and is not a directory"), staged_directory(tmp_path / "b.bundle"):
        raise AssertionError("the body ran")
    assert hidden(tmp_path) == []


def test_a_symlinked_bundle_is_replaced_where_it_points(bundles, tmp_path):
    old, new = bundles
    real = tmp_path / "store" / "v1.bundle"
    real.parent.mkdir()
    shutil.copytree(old, real)
    (tmp_path / "b.bundle").symlink_to(real)
    export_copy(new, tmp_path / "b.bundle")
    assert (tmp_path / "b.bundle").is_symlink() and snapshot(real) == snapshot(new)
    assert hidden(tmp_path) == [] and hidden(real.parent) == []


def test_opening_a_bundle_puts_back_one_that_a_killed_fallback_swap_set_aside(bundles, tmp_path):
    old, _ = bundles
    target = tmp_path / "b.bundle"
    shutil.copytree(old, target)
    set_aside_by_dead_fallback(target)
    assert is_complete_bundle(target) and snapshot(target) == snapshot(old)
