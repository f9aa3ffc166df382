"""Shared fixtures: paths to ../shared, tiny checkpoints and bundles built once per session."""

import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

# Test modules import onnxruntime before swarmedge (which sets this): keep its telemetry off here too.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SWARMEDGE_DATA", ROOT.parent / "shared" / "data"))
CONFORMANCE = Path(os.environ.get("SWARMEDGE_CONFORMANCE", ROOT.parent / "shared" / "conformance"))
# Real-world inputs that once failed (../shared/cases/README.md): each one is a test.
CASES = Path(os.environ.get("SWARMEDGE_CASES", ROOT.parent / "shared" / "cases"))
ZOO = ROOT / "zoo"
WHERE_SHARED = "give make test SHARED=/path/to/shared (the folder holding data/, conformance/ and cases/)"

# Words for a tiny WordPiece vocabulary, so text tests don't need the 30k bert vocab.
TINY_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "film", "movie", "good", "bad",
              "great", "awful", "plot", "actor", "was", "is", "and", "not", "##s", "##ing", ".", ",", "!"]


def _shared(path: Path, variable: str) -> Path:
    if not path.is_dir():
        pytest.fail(f"{variable}={path} is not a directory: {WHERE_SHARED}, or set {variable}")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _shared(DATA, "SWARMEDGE_DATA")


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return _shared(CONFORMANCE, "SWARMEDGE_CONFORMANCE")


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    return _shared(CASES, "SWARMEDGE_CASES")


@pytest.fixture(scope="session")
def zoo_boids_bundle(tmp_path_factory) -> Path:
    """``boids.bundle`` of the cases: the zoo's trained 5-vs-6 model, exported with defaults."""
    from swarmedge.export import export_bundle

    return export_bundle(ZOO / "boids-5v6" / "model.pt", tmp_path_factory.mktemp("zoo") / "boids.bundle")[0]


@pytest.fixture(scope="session")
def zoo_small_bundle(tmp_path_factory) -> Path:
    """``small.bundle`` of the cases: the zoo's trained SwarmFormer Small, exported with defaults."""
    from swarmedge.export import export_bundle

    return export_bundle(ZOO / "swarmformer-small" / "model.pt", tmp_path_factory.mktemp("zoo") / "small.bundle")[0]


@pytest.fixture(scope="session")
def tiny_vocab(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_WORDS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_text_ckpt(tmp_path_factory, tiny_vocab) -> Path:
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint

    config = {"d_model": 16, "seq_len": 32, "cluster_size": 4, "num_layers": 2, "T_local": 2}
    path = tmp_path_factory.mktemp("text") / "tiny.pt"
    save_checkpoint(init_checkpoint("swarmformer", config, seed=1, vocab=tiny_vocab), path)
    return path


@pytest.fixture(scope="session")
def tiny_boids_ckpt(tmp_path_factory) -> Path:
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint

    path = tmp_path_factory.mktemp("boids") / "boids.pt"
    save_checkpoint(init_checkpoint("boids", {"blocks": 3, "dim_feedforward": 64}, seed=1), path)
    return path


@pytest.fixture(scope="session")
def text_bundle(tiny_text_ckpt) -> Path:
    from swarmedge.export import export_bundle

    path, _ = export_bundle(tiny_text_ckpt, tiny_text_ckpt.with_suffix(".bundle"), agreement_size=64)
    return path


@pytest.fixture(scope="session")
def boids_bundle(tiny_boids_ckpt) -> Path:
    from swarmedge.export import export_bundle

    path, _ = export_bundle(tiny_boids_ckpt, tiny_boids_ckpt.with_suffix(".bundle"), agreement_size=64)
    return path


def run_device(args: list[str], **kw):
    """Run the swarmedge CLI in a subprocess where torch and onnx cannot be imported."""
    import subprocess

    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None; "
            "sys.modules['onnxscript'] = None; from swarmedge.cli import main; "
            f"sys.argv = ['swarmedge', *{args!r}]; main()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, **kw)


# Counts for docs/RELIABILITY.md: tests that try bad inputs or kill exports add what they
# tried and saw (e.g. reliability["bundle mutations"]["refused in one line"] += 1); the totals
# are printed at the end of the run, so the figures in the docs come from a CI log.
_RELIABILITY = defaultdict(Counter)


@pytest.fixture(scope="session")
def reliability() -> defaultdict:
    return _RELIABILITY


def pytest_terminal_summary(terminalreporter):
    if _RELIABILITY:
        terminalreporter.section("reliability counts (docs/RELIABILITY.md)")
        for section, counter in sorted(_RELIABILITY.items()):
            terminalreporter.write_line(f"{section}: " + ", ".join(f"{k} {v}" for k, v in counter.items()))


def default_sigint() -> None:
    """``preexec_fn`` for children that tests interrupt with SIGINT: a shell starts background
    jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so a CI
    run from ``cmd &`` would see the child ignore the test's Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


# The suite must leave the checkout as it found it: a command whose default output lands in
# the current folder (export's NAME.bundle) would otherwise litter the repository unnoticed.
def _untracked() -> set[str]:
    import subprocess

    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"], cwd=ROOT,
                          capture_output=True, text=True)
    return {line[3:] for line in done.stdout.splitlines() if line.startswith("??")} if done.returncode == 0 else set()


def pytest_sessionstart(session):
    session.config._untracked_before = _untracked()
    # Progress lines appear once a command has run 2 s, which a loaded CI machine reaches even on
    # quick refusals: tests that count stderr lines would flake. tests/test_progress.py turns
    # them back on where it checks them.
    os.environ["SWARMEDGE_QUIET"] = "1"


def pytest_sessionfinish(session, exitstatus):
    left = sorted(_untracked() - getattr(session.config, "_untracked_before", set()))
    if left:
        session.config._littered = left
        session.exitstatus = 1


def pytest_unconfigure(config):
    if getattr(config, "_littered", None):
        print(f"\nthe tests left files in the checkout: {', '.join(config._littered)}")


@pytest.fixture
def bundles(boids_bundle, tmp_path) -> tuple[Path, Path]:
    """Two different complete bundles (the second's manifest has another creation time)."""
    import json
    import shutil

    from swarmedge.manifest import MANIFEST
    from tests.bundle_states import is_complete_bundle, snapshot

    old, new = tmp_path / "src-old", tmp_path / "src-new"
    shutil.copytree(boids_bundle, old)
    shutil.copytree(boids_bundle, new)
    manifest = json.loads((new / MANIFEST).read_text())
    manifest["created"] = "2000-01-01T00:00:00+00:00"
    (new / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    assert snapshot(old) != snapshot(new) and is_complete_bundle(new)
    return old, new


@pytest.fixture(scope="session")
def mnist56(data_dir):
    """(uint8 (N, 28, 28), labels 0 = '5', 1 = '6'): the first 20 fives and 20 sixes of MNIST test."""
    import numpy as np

    with np.load(data_dir / "mnist.npz") as z:
        x, y = z["x_test"], z["y_test"]
    idx = np.concatenate([np.flatnonzero(y == 5)[:20], np.flatnonzero(y == 6)[:20]])
    return x[idx], (y[idx] == 6).astype(int)


@pytest.fixture(scope="session")
def digit(mnist56):
    """The first MNIST test 5, uint8 (28, 28)."""
    return mnist56[0][0]
