"""Generated damage to real bundles: each is answered as the intact bundle answers, or refused in one line.

A copy of a tiny exported text or boid bundle is changed in one way drawn by hypothesis:
a file deleted, truncated, flipped, grown, swapped with another or replaced wholesale;
manifest fields retyped, deleted, added or enlarged, its bytes damaged; file names in the
manifest made into paths (``../x``, absolute, ``sub/dir``, ``C:\\x``, NUL); files grown
to gigabytes (sparse, so cheap to make); extra files
and folders; symlinks, folders and FIFOs in place of files; the other model's ONNX put in
with the manifest's hashes updated. The bundle is then used through the public paths,
``Classifier`` (which opens it with ``Bundle.open``) and ``swarmedge run`` (click's runner),
and the outcome is judged (see ``bundle_mutations.expectation``):

- refused: one ``SwarmedgeError`` line (CLI: exit != 0, one ``swarmedge: error:`` line);
- answered: the same scores, bit for bit, as the intact bundle at the precision used;
  only a changed manifest *setting* (a plausible number where a number was, or damaged
  manifest bytes) may change the answer, since nothing can tell it from a real setting;
- never: another exception, a traceback, a hang, a refusal of a harmless change (key
  order, a new ``created``), or an answer computed from a file whose bytes changed.

Every example is counted in the session's ``reliability["bundle mutations"]``; failures are
collected and listed together rather than shrunk, so one run shows every broken case.
"""

import json
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmedge.errors import SwarmedgeError

from .bundle_mutations import (
    FILE_DAMAGE,
    MODELS,
    REFUSE,
    SAME,
    SETTING,
    Pristine,
    apply,
    expectation,
    mutations,
    resized,
)
from .conftest import run_device

EXAMPLES = 300  # per bundle kind: ~0.05 s each here; the whole file runs in about a minute on 2 cores
HANG_SECONDS = 30  # a FIFO opened for reading, or a huge allocation, must not stall the run
TEXT = "the film was great"

def _digit() -> np.ndarray:
    """A thick 7, (1, 28, 28) uint8: a digit the boid model reads without framing trouble."""
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 5:9, 7:21] = 255
    for r in range(9, 24):
        c = 20 - (r - 9) // 2
        img[0, r, c - 3:c + 1] = 255
    return img


def _run_api(path: Path, kind: str, precision: str | None):
    from swarmedge.runtimes import Classifier

    clf = Classifier(path, precision=precision, threads=1)
    preds = clf.classify_texts([TEXT]) if kind == "text" else clf.classify_images(_digit())
    return clf.precision, preds[0].scores


def _run_cli(path: Path, cli_input: list[str], precision: str | None):
    from swarmedge.cli import cli

    args = ["run", str(path), *cli_input, "--json", "--threads", "1"]
    return CliRunner().invoke(cli, args + (["--precision", precision] if precision else []))


@pytest.fixture(scope="module")
def pristine(text_bundle, boids_bundle, tmp_path_factory) -> dict[str, Pristine]:
    inputs = tmp_path_factory.mktemp("inputs")
    np.save(inputs / "digit.npy", _digit())
    out = {"text": Pristine("text", text_bundle, json.loads((text_bundle / "manifest.json").read_text()),
                            ["--text", TEXT], other=boids_bundle),
           "boids": Pristine("boids", boids_bundle, json.loads((boids_bundle / "manifest.json").read_text()),
                             ["--file", str(inputs / "digit.npy")], other=text_bundle)}
    for p in out.values():
        for precision in MODELS:
            p.api[precision] = _run_api(p.path, p.kind, precision)[1]
            r = _run_cli(p.path, p.cli_input, precision)
            assert r.exit_code == 0, r.stderr
            p.cli[precision] = json.loads(r.stdout.splitlines()[0])["scores"]
    return out


# -- running and judging ----------------------------------------------------------------------------------------------

def _api_outcome(path: Path, kind: str, precision: str | None) -> tuple:
    try:
        used, scores = _run_api(path, kind, precision)
    except SwarmedgeError as exc:
        msg = str(exc)
        if not msg.strip() or "\n" in msg or "\r" in msg or len(msg) > 1000:
            return "broken", f"refusal is not one short line: {msg[:300]!r}"
        return "refused", msg
    except Exception as exc:  # noqa: BLE001 - any other exception is what this test looks for
        return "broken", f"{type(exc).__name__}: {str(exc)[:300]}"
    return "answered", used, scores


def _cli_outcome(path: Path, cli_input: list[str], precision: str | None) -> tuple:
    r = _run_cli(path, cli_input, precision)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return "broken", f"{type(r.exception).__name__}: {str(r.exception)[:300]}"
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("swarmedge: error: ")]
    stray = [line for line in lines if not line.startswith(("swarmedge: error: ", "swarmedge: note: "))]
    if "Traceback" in r.stderr or stray:
        return "broken", f"stderr beyond one error line: {r.stderr[:300]!r}"
    if r.exit_code == 0:
        if errors:
            return "broken", f"exit 0 with an error: {errors[0][:200]!r}"
        return "answered", precision, json.loads(r.stdout.splitlines()[0])["scores"]
    if len(errors) != 1 or len(errors[0]) > 1000:
        return "broken", f"exit {r.exit_code} with {len(errors)} error lines: {r.stderr[:300]!r}"
    return "refused", errors[0]


def judge(expect: str, api: tuple, cli: tuple, p: Pristine) -> list[str]:
    """What is wrong with these outcomes under ``expect``; empty when nothing."""
    problems = []
    api_used = api[1] if api[0] == "answered" else None
    for where, outcome, base in (("API", api, p.api), ("CLI", cli, p.cli)):
        if outcome[0] == "broken":
            problems.append(f"{where}: {outcome[1]}")
        elif outcome[0] == "refused" and expect == SAME:
            problems.append(f"{where} refused a harmless change: {outcome[1][:200]}")
        elif outcome[0] == "answered":
            used, scores = outcome[1] or api_used, outcome[2]
            if expect == REFUSE:
                problems.append(f"{where} answered {scores} instead of refusing")
            elif expect != SETTING and scores not in ([base[used]] if used else list(base.values())):
                problems.append(f"{where} answered {scores}, the intact bundle {base[used] if used else base}")
    if {api[0], cli[0]} == {"answered", "refused"}:
        problems.append(f"the API {api[0]} but the CLI {cli[0]}")
    return problems


def _timeout(signum, frame):
    raise TimeoutError(f"no answer or refusal within {HANG_SECONDS} s")


@pytest.mark.parametrize("kind", ["text", "boids"])
def test_mutated_bundles_answer_as_before_or_refuse_in_one_line(kind, pristine, reliability):
    p = pristine[kind]
    counts, kinds = reliability["bundle mutations"], reliability["bundle mutation kinds"]
    counts["tracebacks or hangs"] += 0  # listed in the summary even when (as it should be) zero
    counts["wrong outcome"] += 0
    problems: list[str] = []

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutation=mutations(p), precision=st.sampled_from([None, "fp32", "int8"]))
    def check(mutation, precision):
        counts["tried"] += 1
        kinds[mutation[0]] += 1
        with tempfile.TemporaryDirectory(prefix="swarmedge-mutated-") as tmp:
            bundle, outside = Path(tmp) / f"{kind}.bundle", Path(tmp) / "outside"
            outside.mkdir()
            shutil.copytree(p.path, bundle)
            path, changed, fixed = apply(p, mutation, bundle, outside)
            reads = p.reads_always | {MODELS[precision or "int8"]}  # the intact bundle's default is int8
            if mutation[0] in FILE_DAMAGE:  # the manifest is intact: every listed size is checked at open
                reads = reads | resized(bundle, p)
            expect = expectation(mutation, fixed, changed, reads, p)
            previous = signal.signal(signal.SIGALRM, _timeout)
            signal.alarm(HANG_SECONDS)
            try:
                api = _api_outcome(path, kind, precision)
                cli = _cli_outcome(path, p.cli_input, precision)
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, previous)
        found = judge(expect, api, cli, p)
        if found:
            broken = any(o[0] == "broken" for o in (api, cli))
            counts["tracebacks or hangs" if broken else "wrong outcome"] += 1
            problems.append(f"{kind} {mutation!r:.300} precision={precision} (expected: {expect}): "
                            + "; ".join(found))
        elif api[0] == "refused":
            counts["refused in one line"] += 1
        else:
            counts["answered as the intact bundle" if expect != SETTING else "answered (a setting changed)"] += 1
            if changed and not changed & reads:
                counts["answered from intact files beside a changed unread one"] += 1

    check()
    assert not problems, f"{len(problems)} of the generated mutations went wrong:\n" + "\n".join(problems[:40])


# -- a sample in a real, torch-free process: the exit code and stderr users see ------------------------------------

SAMPLE = [
    ("replace-by", "model.int8.onnx", "symlink-outside"),
    ("replace-by", "tokenizer.json", "fifo"),
    ("other-model", ("int8",)),
    ("manifest", ("replace", ("preprocessing", "seq_len"), 10**30)),
    ("file-bytes", "model.int8.onnx", ("truncate", 0.5)),
    ("bad-name", "tokenizer.json", "../x"),
    ("extra", "notes.txt", "file"),
]


@pytest.mark.parametrize("mutation", SAMPLE, ids=[f"{m[0]}-{m[1]!s:.20}" for m in SAMPLE])
def test_refusals_in_a_torch_free_process_are_one_line(mutation, pristine, tmp_path, reliability):
    p = pristine["text"]
    bundle, outside = tmp_path / "text.bundle", tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(p.path, bundle)
    path, _, _ = apply(p, mutation, bundle, outside)
    r = run_device(["run", str(path), "--text", TEXT])
    reliability["bundle mutations, torch-free process"]["tried"] += 1
    assert r.returncode != 0 and r.stdout == "", (r.returncode, r.stdout)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarmedge: error: "), r.stderr
    reliability["bundle mutations, torch-free process"]["refused in one line"] += 1
