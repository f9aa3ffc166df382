"""Racing exports and the swap itself (swarmedge/swap.py): renameat2, the fallback, signals."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

import swarmedge.swap as swap
from swarmedge.errors import InputError
from tests.bundle_states import hidden, is_complete_bundle, snapshot


@pytest.mark.parametrize("fallback", [False, True], ids=["renameat2", "fallback"])
def test_racing_staged_exports_all_succeed_and_the_target_never_disappears(bundles, tmp_path, fallback):
    old, new = bundles
    target = tmp_path / "work" / "b.bundle"
    target.parent.mkdir()
    shutil.copytree(old, target)
    go = tmp_path / "go"
    racer = r"""
import os, shutil, sys, time
from pathlib import Path
import swarmedge.atomic as atomic
import swarmedge.swap as swap
target, source, go, fallback = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
if fallback:
    swap._RENAMEAT2 = None
while not go.exists():
    time.sleep(0.001)
for _ in range(40):
    with atomic.staged_directory(target) as stage:
        for f in source.iterdir():
            shutil.copyfile(f, stage / f.name)
"""
    watcher = r"""
import os, sys, time
target, go = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
seen = missing = 0
while not os.path.exists(go + ".stop"):
    seen += 1
    missing += not os.path.isfile(os.path.join(target, "manifest.json"))
print(seen, missing)
"""
    procs = [subprocess.Popen([sys.executable, "-c", racer, str(target), str(src), str(go), str(int(fallback))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for src in (old, new)]
    watch = subprocess.Popen([sys.executable, "-c", watcher, str(target), str(go)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # all three started (python startup)
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    Path(f"{go}.stop").touch()
    seen, missing = map(int, watch.communicate(timeout=30)[0].split())
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0 and err == "", err
    assert snapshot(target) in (snapshot(old), snapshot(new)) and is_complete_bundle(target)
    assert hidden(target.parent) == []
    assert seen > 100
    if not fallback:  # renameat2: there is always a complete bundle at the target
        assert missing == 0, f"the bundle was missing in {missing} of {seen} looks"


def test_two_real_exports_racing_to_one_bundle_both_succeed(tiny_boids_ckpt, tmp_path):
    out = tmp_path / "b.bundle"
    cmd = [sys.executable, "-m", "swarmedge.cli", "export", str(tiny_boids_ckpt), "-o", str(out), "--quantize", "none"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert is_complete_bundle(out) and hidden(tmp_path) == []


def test_a_signal_during_the_swap_waits_until_the_swap_is_done(tmp_path):
    done = []
    with pytest.raises(KeyboardInterrupt), swap._signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # Python runs handlers between bytecodes: this is where it would raise
        done.append(True)
    assert done == [True]


def test_renameat2_exchanges_two_folders_here(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux-only; elsewhere the fallback swap runs")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "1").touch()
    assert swap._rename2(tmp_path / "a", tmp_path / "b", swap.RENAME_EXCHANGE) is True
    assert os.listdir(tmp_path / "b") == ["1"] and os.listdir(tmp_path / "a") == []
    with pytest.raises(FileExistsError):
        swap._rename2(tmp_path / "a", tmp_path / "b", swap.RENAME_NOREPLACE)


def test_a_bundle_that_comes_back_between_two_looks_is_a_race_and_a_file_is_refused(tmp_path):
    """Seen in CI under load: one export's fallback swap moved the bundle aside and put its own
    in between this export's two looks at the target; that is a retry, not 'replaced by a file'."""
    stage, target = tmp_path / ".b.staging-x", tmp_path / "b.bundle"
    stage.mkdir()
    target.mkdir()
    with mock.patch.object(Path, "is_dir", side_effect=[False, True]):  # gone at the first look, back at the second
        assert swap._swap_once(stage, target, "x") is swap._AGAIN
    target.rmdir()
    target.write_text("not a bundle")
    with pytest.raises(InputError, match="replaced by a file"):
        swap._swap_once(stage, target, "x")
    assert stage.is_dir() and target.read_text() == "not a bundle"
