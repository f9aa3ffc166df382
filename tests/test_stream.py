"""``swarmedge run`` streams: results before the input ends, memory bounded by the chunk, the
same scores in the same order whatever the chunking and threads, and -o/--resume that survive
a kill with no torn and no repeated record."""

import json
import os
import select
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from swarmedge.cli import cli
from swarmedge.errors import InputError
from swarmedge.runtimes import Classifier
from swarmedge.runtimes.results import ResultsFile
from swarmedge.runtimes.run import input_chunks

WORDS = "good bad film plot the was a great awful actor".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) for _ in range(n)]


def _cli(args, stdin: bytes | None = None):
    r = CliRunner().invoke(cli, [str(a) for a in args], input=stdin)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _spawn(args, **kw) -> subprocess.Popen:
    # unbuffered: a buffered reader would take both lines at once, and select would wait for a third
    return subprocess.Popen([sys.executable, "-c", "from swarmedge.cli import main; main()", *map(str, args)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, **kw)


def _readline(f, timeout: float) -> bytes:
    ready, _, _ = select.select([f], [], [], timeout)
    assert ready, f"no line within {timeout} s"
    return f.readline()


# -- results come out while the input is still arriving --------------------------------------

def test_results_appear_before_the_input_ends(text_bundle):
    proc = _spawn(["run", text_bundle, "-"])
    try:
        proc.stdin.write(b"a good film\nan awful plot\n")
        proc.stdin.flush()  # the pipe stays open: no EOF
        rows = [json.loads(_readline(proc.stdout, 60)) for _ in range(2)]
        assert [r["position"] for r in rows] == [0, 1]
        assert proc.poll() is None  # still waiting for more input
        proc.stdin.write(b"the actor was great\n")
        proc.stdin.flush()
        assert json.loads(_readline(proc.stdout, 60))["position"] == 2
        proc.stdin.close()
        assert proc.wait(60) == 0 and proc.stdout.read() == b""
    finally:
        proc.kill()
        proc.wait()
    expected = Classifier(text_bundle).classify_texts(["a good film", "an awful plot", "the actor was great"])
    assert [r["scores"] for r in rows] == [p.scores for p in expected[:2]]


# -- memory follows the chunk, not the input -------------------------------------------------

def test_reading_a_large_input_holds_one_block(tmp_path, monkeypatch):
    """200,000 texts (6 MB) as .txt and .jsonl.gz: the reader's peak Python allocation stays
    near one block and one chunk, far below the input."""
    import gzip

    texts = _texts(200_000, seed=1)
    (tmp_path / "big.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "big.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    size = (tmp_path / "big.txt").stat().st_size
    for name in ("big.txt", "big.jsonl.gz"):
        tracemalloc.start()
        n = last = 0
        for chunk in input_chunks("text", file=tmp_path / name, notices=[], size=256):
            n += len(chunk)
            last = chunk[-1]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert n == 200_000 and last.value == texts[-1], name
        assert peak < size / 2, (name, peak, size)  # the whole input as str would be > 2x its size


def test_a_long_run_stays_bounded_in_memory(text_bundle, tmp_path):
    """Peak resident memory of a whole run over 8x more texts grows by far less than the input."""
    peaks = {}
    for n in (20_000, 160_000):
        path = tmp_path / f"t{n}.txt"
        path.write_text("\n".join(_texts(n, seed=2)) + "\n", encoding="utf-8")
        code = ("import re, sys\nfrom swarmedge.cli import main\n"
                "try:\n    main()\nfinally:\n"
                "    hwm = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)\n"
                "    print(hwm, file=sys.stderr)\n")
        r = subprocess.run([sys.executable, "-c", code, "run", str(text_bundle), "--file", str(path),
                            "-o", str(tmp_path / f"o{n}.jsonl")], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert sum(1 for _ in open(tmp_path / f"o{n}.jsonl")) == n
        peaks[n] = int(r.stderr.strip().splitlines()[-1]) / 1024  # MB
    input_mb = (tmp_path / "t160000.txt").stat().st_size / 2**20
    # reading it whole would hold the bytes, the str and 140,000 more Item/Prediction objects
    assert peaks[160_000] - peaks[20_000] < max(input_mb / 2, 3), (peaks, input_mb)


# -- order and scores do not depend on chunks or threads -------------------------------------

@pytest.mark.parametrize("kind", ["text", "digits"])
def test_same_results_whatever_the_chunk_size_and_threads(text_bundle, boids_bundle, data_dir, tmp_path, kind):
    if kind == "text":
        path = tmp_path / "t.jsonl"
        path.write_text("".join(json.dumps({"id": i * 7, "text": t}) + "\n" for i, t in enumerate(_texts(600))))
        bundle = text_bundle
    else:
        with np.load(data_dir / "mnist.npz") as z:
            np.save(tmp_path / "d.npy", z["x_test"][:300])
        path, bundle = tmp_path / "d.npy", boids_bundle
    outs = {}
    for chunk, threads in [(1, 1), (7, 2), (256, 2), (4096, 1)]:
        r = _cli(["run", bundle, "--file", path, "--chunk-size", chunk, "--threads", threads])
        assert r.exit_code == 0, r.stderr
        outs[chunk, threads] = r.stdout
    assert len(set(outs.values())) == 1  # byte-identical: same order, same scores
    rows = _rows(outs[1, 1])
    assert [r["position"] for r in rows] == list(range(len(rows)))
    if kind == "text":
        assert [r["id"] for r in rows] == [i * 7 for i in range(600)]


def test_a_memory_mapped_array_reads_as_the_whole_array_does(boids_bundle, data_dir, tmp_path):
    """Chunks of a .npy are scaled as the whole array is, before any is classified."""
    from swarmedge.errors import InputError
    from swarmedge.runtimes.images import read_image_array

    with np.load(data_dir / "mnist.npz") as z:
        digits = z["x_test"][:40].astype(np.float32)
    np.save(tmp_path / "f.npy", digits)  # floats 0..255
    r = _cli(["run", boids_bundle, "--file", tmp_path / "f.npy", "--chunk-size", 8])
    assert r.exit_code == 0, r.stderr
    whole = Classifier(boids_bundle).classify_images(digits)
    assert [row["scores"] for row in _rows(r.stdout)] == [p.scores for p in whole]
    assert r.stderr.count("read floats above 1 as 0..255") == 1  # one notice for the file, not per chunk
    mixed = digits.copy()
    mixed[:30] /= 255  # chunk by chunk, the first chunks would pass for 0..1 floats; the array is 0..255
    np.save(tmp_path / "mixed.npy", mixed)
    with pytest.raises(InputError) as whole_error:
        read_image_array(tmp_path / "mixed.npy")
    r = _cli(["run", boids_bundle, "--file", tmp_path / "mixed.npy", "--chunk-size", 8])
    assert r.exit_code == 2 and r.stdout == "" and str(whole_error.value) in r.stderr, r.stderr
    fortran = tmp_path / "fortran.npy"  # not memory mapped (not C-ordered): read whole, the same digits
    np.save(fortran, np.asfortranarray(digits.reshape(40, 784)))
    r = _cli(["run", boids_bundle, "--file", fortran])
    assert r.exit_code == 0 and [row["scores"] for row in _rows(r.stdout)] == [p.scores for p in whole]


def test_line_numbers_carry_across_blocks(text_bundle, tmp_path, monkeypatch):
    from swarmedge.runtimes import stream

    monkeypatch.setattr(stream, "BLOCK", 64)  # a block ends mid-line, and between a CR and its LF
    lines = [f"line {i} a good film" for i in range(40)]
    data = "\r\n".join(lines).encode()
    cut = data.index(b"line 30")
    path = tmp_path / "t.txt"
    path.write_bytes(data[:cut] + b"\xe9" + data[cut:])  # a Latin-1 byte on line 31
    r = _cli(["run", text_bundle, "--file", path])
    assert r.exit_code == 2 and "t.txt:31" in r.stderr and "0xe9 at column 1" in r.stderr, r.stderr
    path.write_bytes(data)
    rows = _rows(_cli(["run", text_bundle, "--file", path]).stdout)
    assert [r["scores"] for r in rows] == [p.scores for p in Classifier(text_bundle).classify_texts(lines)]


def test_image_folders_stream_in_sorted_order(boids_bundle, data_dir, tmp_path):
    from PIL import Image

    with np.load(data_dir / "mnist.npz") as z:
        digits = z["x_test"][:6]
    for i, d in enumerate(digits):
        sub = tmp_path / "scans" / ("b" if i % 2 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(d).save(sub / f"{i}.png")
    r = _cli(["run", boids_bundle, "--image", tmp_path / "scans", "--chunk-size", 4])
    assert r.exit_code == 0, r.stderr
    rows = _rows(r.stdout)
    names = [os.path.relpath(row["input"], tmp_path / "scans") for row in rows]
    assert names == ["a/0.png", "a/2.png", "a/4.png", "b/1.png", "b/3.png", "b/5.png"]
    assert [row["position"] for row in rows] == list(range(6))


def test_guess_notices_are_counted_past_ten(text_bundle):
    texts = [f"zzq{i} qqz{i}" for i in range(25)]  # no word of the tiny vocabulary
    r = _cli(["run", text_bundle, *[a for t in texts for a in ("--text", t)]])
    notes = [line for line in r.stderr.splitlines() if line.startswith("swarmedge: note:")]
    assert len(notes) == 11 and notes[-1].startswith("swarmedge: note: 15 more predictions were guesses"), notes


# -- -o appends whole records; --resume goes on after a kill ---------------------------------

def test_resume_after_a_kill_leaves_no_torn_and_no_repeated_record(text_bundle, tmp_path):
    texts = _texts(3000, seed=3)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    reference = tmp_path / "ref.jsonl"
    assert _cli(["run", text_bundle, "--file", corpus, "-o", reference]).exit_code == 0

    out = tmp_path / "out.jsonl"
    proc = _spawn(["run", text_bundle, "-o", out, "--chunk-size", 16, "-"])
    lines = corpus.read_text().splitlines(keepends=True)
    proc.stdin.write("".join(json.loads(line)["text"] + "\n" for line in lines[:1000]).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(out, "ab") as f:
        f.write(b'{"position": 99999, "label": "posi')  # and a torn last record, as a kill mid-write leaves
    done_before = sum(1 for line in open(out, "rb") if line.endswith(b"\n"))
    assert 0 < done_before <= 1000

    stdin = "".join(t + "\n" for t in texts).encode()
    r = _cli(["run", text_bundle, "-o", out, "--resume", "-"], stdin=stdin)
    assert r.exit_code == 0, r.stderr
    assert f"({done_before:,} from before, kept)" in r.stderr
    ref_rows = [{k: v for k, v in row.items() if k != "id"} for row in _rows(reference.read_text())]
    assert _rows(out.read_text()) == ref_rows  # every input once, in order, nothing torn
    # resuming a finished file classifies nothing more
    r = _cli(["run", text_bundle, "-o", out, "--resume", "-"], stdin=stdin)
    assert r.exit_code == 0 and _rows(out.read_text()) == ref_rows


def test_resume_refuses_results_of_another_input(text_bundle, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(_texts(50))))
    out = tmp_path / "out.jsonl"
    assert _cli(["run", text_bundle, "--file", corpus, "-o", out]).exit_code == 0
    before = out.read_bytes()
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"id": f"x{i}", "text": t}) + "\n" for i, t in enumerate(_texts(80))))
    for args, needle in [
        (["--file", other, "-o", out, "--resume"], "come from another input"),
        (["--text", "good", "-o", out, "--resume"], "this input has only 1"),
        (["--file", corpus, "-o", out], "--resume to continue it"),
        (["--file", corpus, "-o", tmp_path], "is a folder"),
        (["--file", corpus, "--resume"], "give -o"),
        (["--file", corpus, "-o", out, "--resume", "--overwrite"], "not both"),
    ]:
        r = _cli(["run", text_bundle, *args])
        assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.splitlines()) == 1, (args, r.stderr)
        assert out.read_bytes() == before  # refusals never touch the results
    not_results = tmp_path / "notes.txt"
    not_results.write_text("my notes\nmore notes\n")
    r = _cli(["run", text_bundle, "--file", corpus, "-o", not_results, "--resume"])
    assert r.exit_code == 2 and "notes.txt:1 is not record 0" in r.stderr, r.stderr
    assert not_results.read_text() == "my notes\nmore notes\n"
    r = _cli(["run", text_bundle, "--file", corpus, "-o", out, "--overwrite"])
    assert r.exit_code == 0 and out.read_bytes() == before
    r = _cli(["run", text_bundle, "--file", tmp_path / "missing.txt", "-o", tmp_path / "new.jsonl"])
    assert r.exit_code == 2 and not (tmp_path / "new.jsonl").exists()  # a refused input leaves no file


def test_a_bad_line_mid_stream_keeps_the_results_before_it(text_bundle, tmp_path, monkeypatch):
    from swarmedge.runtimes import stream

    monkeypatch.setattr(stream, "BLOCK", 256)  # a block is checked whole: make the bad line's a late one
    path = tmp_path / "c.jsonl"
    good = "".join(json.dumps({"text": t}) + "\n" for t in _texts(40))
    path.write_text(good + '{"text": null}\n' + good)
    out = tmp_path / "out.jsonl"
    r = _cli(["run", text_bundle, "--file", path, "-o", out, "--chunk-size", 10])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "c.jsonl:41" in r.stderr and "rerun with --resume" in r.stderr
    done = [row["position"] for row in _rows(out.read_text())]
    assert 20 < len(done) < 41 and done == list(range(len(done)))


def test_results_file_cuts_only_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"position": 0, "label": "a"}\n{"position": 1, "label": "b"}\n{"posi')
    f = ResultsFile(path, resume=True)
    f.close()
    assert f.done == 2 and f.tail[-1] == {"position": 1, "label": "b"}
    assert path.read_bytes().endswith(b'"b"}\n')
    # a file run did not write is never cut, whatever its last line looks like
    for data in [b"precious\n", b"precious", b'{"a": 1}\n', b'{"position": 0}\nnotes', b'{"position": 1}\n']:
        path.write_bytes(data)
        with pytest.raises(InputError, match="is not record"):
            ResultsFile(path, resume=True)
        assert path.read_bytes() == data


def test_resume_checks_the_last_results_against_this_input_bundle_and_precision(text_bundle, tmp_path):
    """Results without ids: the last done inputs are classified again and must give the same records."""
    texts = _texts(60, seed=5)
    corpus, other = tmp_path / "c.txt", tmp_path / "other.txt"
    corpus.write_text("\n".join(texts) + "\n")
    other.write_text("\n".join(texts[10:] + texts[:10]) + "\n")  # as many lines, shifted
    out = tmp_path / "out.jsonl"
    assert _cli(["run", text_bundle, "--file", corpus, "-o", out]).exit_code == 0
    rows = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(rows[:30]))  # as a kill after 30 would leave it
    before = out.read_bytes()
    for args in (["--file", other], ["--file", corpus, "--precision", "fp32"]):
        r = _cli(["run", text_bundle, *args, "-o", out, "--resume"])
        assert r.exit_code == 2 and "another input, bundle or precision" in r.stderr, r.stderr
        assert out.read_bytes() == before
    r = _cli(["run", text_bundle, "--file", corpus, "-o", out, "--resume"])
    assert r.exit_code == 0 and out.read_bytes() == b"".join(rows)


def test_output_mistakes_are_one_line_and_touch_nothing(text_bundle, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("good film\nbad film\n")
    for args, needle in [
        (["--file", corpus, "-o", corpus, "--overwrite"], "is the input file itself"),
        (["--file", corpus, "--json", "--format", "table"], "give one of --json and --format table"),
    ]:
        r = _cli(["run", text_bundle, *args])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1 and needle in r.stderr, r.stderr
    assert corpus.read_text() == "good film\nbad film\n"
    r = _cli(["run", text_bundle, "--file", corpus, "-o", "/dev/full", "--overwrite"])
    assert r.exit_code == 1 and "cannot write (/dev/full)" in r.stderr, r.stderr


def test_ids_are_kept_as_json_has_them(text_bundle, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": null, "text": "good"}\n{"text": "bad"}\n{"id": "0042", "text": "fine"}\n')
    rows = _rows(_cli(["run", text_bundle, "--file", path]).stdout)
    assert [r.get("id", "none") for r in rows] == [None, "none", "0042"]
    for bad in ("NaN", "Infinity", "-Infinity", "1e400"):
        path.write_text(f'{{"id": {bad}, "text": "good"}}\n')
        r = _cli(["run", text_bundle, "--file", path])
        assert r.exit_code == 2 and f"{bad} is not a JSON number" in r.stderr, r.stderr
