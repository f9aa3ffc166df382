"""Texts on every path (--text, --file .txt/.jsonl/.jsonl.gz, stdin, eval/train data,
--calibration, the Python API): one decoding policy, one-line errors naming the line, the
same result whichever way a text came in, and token counts that say when the model guesses."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from tokenizers import Tokenizer

from swarmedge.errors import InputError
from swarmedge.runtimes import Bundle, Classifier
from swarmedge.runtimes.text import MOSTLY_UNKNOWN, TextEncoder
from tests.textcases import TEXTS, cli_run, device_cli, jsonl_rows, refused, write_gz

# -- the three cases in ../shared/cases, on the zoo's trained model ---------------------------

def test_case_non_utf8_stdin_and_text_argument(zoo_small_bundle, cases_dir):
    latin1 = (cases_dir / "non-utf8-stdin-traceback" / "latin1.txt").read_bytes()
    refused(device_cli(["run", zoo_small_bundle, "-"], stdin=latin1), "stdin line 1", "UTF-8", "0xe8")
    refused(device_cli(["run", zoo_small_bundle, "--text", latin1.rstrip(b"\n")]), "--text", "UTF-8", "0xe8")
    refused(device_cli(["run", zoo_small_bundle, "--text", "fine", "--text", latin1.rstrip(b"\n")]), "--text 2")
    refused(device_cli(["run", zoo_small_bundle, "--file", cases_dir / "non-utf8-stdin-traceback" / "latin1.txt"]),
             "latin1.txt:1", "UTF-8", "iconv")


def test_case_jsonl_null_text(zoo_small_bundle, cases_dir):
    path = cases_dir / "jsonl-null-text-traceback" / "reviews.jsonl"
    refused(device_cli(["run", zoo_small_bundle, "--file", path]), "reviews.jsonl:2:", '"text" is null')


def test_case_stdin_blank_line_and_token_notes(zoo_small_bundle, cases_dir):
    path = cases_dir / "stdin-blank-line-aborts" / "reviews.txt"
    piped = jsonl_rows(device_cli(["run", zoo_small_bundle, "-", "--json"], stdin=path.read_bytes()))
    from_file = jsonl_rows(device_cli(["run", zoo_small_bundle, "--file", path, "--json"]))
    assert [r["position"] for r in piped] == [0, 1]  # the blank line is no input
    assert piped == from_file
    # on the real vocabulary: English is known, emoji are not (the notice), a long review is cut
    seq_len = Bundle.open(zoo_small_bundle).manifest["preprocessing"]["seq_len"]
    long_review = " ".join(["A wonderful, moving film that I will watch again."] * 60)
    rc, out, err = device_cli(["run", zoo_small_bundle, "--text", "😀🍿🎬😀", "--text", "A wonderful, moving film.",
                            "--text", long_review, "--format", "table"])
    assert rc == 0, err
    lines = out.splitlines()
    assert "(6 tokens, 0% unknown)" in lines[1] and "100% unknown" in lines[0]
    assert f"(kept {seq_len - 2} of " in lines[2]
    assert err.count("swarmedge: note:") == 1 and "--text 1:" in err and "guess" in err


# -- one decoding policy: every path gives the same texts, so the same results ----------------

def test_same_texts_same_results_on_every_path(text_bundle, tmp_path):
    lf = "\n".join(TEXTS) + "\n"
    crlf_bom = b"\xef\xbb\xbf" + f"{TEXTS[0]}\r\n\r\n   \r\n{TEXTS[1]}\r\n\t\r\n{TEXTS[2]}".encode()
    jsonl = "\n\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS)) + "\n\n"
    files = {
        "lf.txt": lf.encode(),
        "crlf-bom.txt": crlf_bom,
        "cr.txt": "\r".join(TEXTS).encode(),
        "plain.jsonl": jsonl.encode(),
        "bom-crlf.jsonl": b"\xef\xbb\xbf" + jsonl.replace("\n", "\r\n").encode(),
        "packed.jsonl.gz": gzip.compress(b"\xef\xbb\xbf" + jsonl.replace("\n", "\r\n").encode()),
    }
    runs = {"--text": jsonl_rows(cli_run(["run", text_bundle, "--json", *[a for t in TEXTS for a in ("--text", t)]]))}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        runs[name] = jsonl_rows(cli_run(["run", text_bundle, "--file", tmp_path / name, "--json"]))
    runs["stdin"] = jsonl_rows(cli_run(["run", text_bundle, "-", "--json"], stdin=crlf_bom))
    runs["stdin, no torch"] = jsonl_rows(device_cli(["run", text_bundle, "-", "--json"], stdin=crlf_bom))
    api = [p.to_dict() for p in Classifier(text_bundle).classify_texts(TEXTS)]
    for how, rows in runs.items():
        assert [r.pop("position") for r in rows] == [0, 1, 2], how  # blank lines are no inputs
        assert [r.pop("input", t) for r, t in zip(rows, TEXTS)] == TEXTS, how  # only --text names its inputs
        assert [r.pop("id", i) for i, r in enumerate(rows)] == [0, 1, 2], how  # JSON Lines keep their ids
        assert rows == api, how  # identical labels, scores (bit for bit) and token counts
    assert {"tokens_kept", "tokens_total", "unknown_share"} <= set(api[0])


def test_calibration_and_eval_read_the_same_texts(tmp_path):
    from swarmedge.datasets import load_labelled
    from swarmedge.export.samples import load_samples

    rows = "\r\n\r\n".join(json.dumps({"text": t, "label": "positive"}) for t in TEXTS)
    path = write_gz(tmp_path / "mine.jsonl.gz", b"\xef\xbb\xbf" + rows.encode())
    assert load_samples(path, "text").raw == TEXTS
    assert load_labelled(path).inputs == TEXTS
    (tmp_path / "cal.txt").write_bytes(b"\xef\xbb\xbf" + "\r\n\r\n".join(TEXTS).encode())
    assert load_samples(tmp_path / "cal.txt", "text").raw == TEXTS


# -- bytes that are not UTF-8: one line naming the file and line, on every path ---------------

@pytest.mark.parametrize("name,data,needles", [
    ("cp1252.txt", "good film\n\nCafé crème, “great”\n".encode("cp1252"), [":3", "byte 0xe9 at column 4"]),
    ("latin1.jsonl", '{"text": "good"}\n{"text": "très bon"}\n'.encode("latin-1"), [":2", "0xe8"]),
    ("latin1.jsonl.gz", gzip.compress('{"text": "good"}\r\n{"text": "très"}'.encode("latin-1")), [":2", "0xe8"]),
    ("utf16.txt", "good film\n".encode("utf-16"), ["UTF-16", "iconv -f utf-16"]),
    ("utf16le.txt", "good film\n".encode("utf-16-le"), ["UTF-16", "iconv -f utf-16"]),
    ("utf16be.txt", "good film\n".encode("utf-16-be"), ["UTF-16", "iconv -f utf-16"]),
    ("nul.txt", b"good film\nbad\0 film\n", [":2", "NUL byte at column 4", "tr -d"]),
    ("broken.jsonl.gz", b"not gzip at all", ["gzip"]),
])
def test_undecodable_files_fail_in_one_line(text_bundle, tmp_path, name, data, needles):
    (tmp_path / name).write_bytes(data)
    err = refused(cli_run(["run", text_bundle, "--file", tmp_path / name]), name, *needles)
    assert ("UTF-16" in err) == name.startswith("utf16"), err  # UTF-16 advice only for UTF-16


def test_undecodable_stdin_names_the_line(text_bundle):
    data = "good film\n\nmauvais, très\n".encode("latin-1")
    refused(cli_run(["run", text_bundle, "-"], stdin=data), "stdin line 3", "0xe8", "iconv")
    refused(cli_run(["run", text_bundle, "-"], stdin="good film\n".encode("utf-16")), "stdin is UTF-16")


def test_python_api_refuses_what_the_tokenizer_cannot_take(text_bundle):
    clf = Classifier(text_bundle)
    cases = [
        (["good film", "caf\udce9"], "text 2 is not UTF-8 text: byte 0xe9 at column 4"),  # surrogateescape
        (["bad \ud800 film"], "text 1 is not UTF-8 text: lone surrogate U+D800"),
        ("good film", "list of texts"),
        ([b"good film"], "text 1 is bytes, not a string"),
        (["good film", None], "text 2 is NoneType"),
        (["good film", " \t"], "text 2 is empty"),
        ([], "no text given"),
    ]
    for texts, needle in cases:
        with pytest.raises(InputError) as info:
            clf.classify_texts(texts)
        assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


# -- blank lines are skipped everywhere; an explicitly empty text is an error -----------------

def test_blank_lines_skip_but_empty_texts_are_errors(text_bundle, tmp_path):
    (tmp_path / "blank.txt").write_bytes(b"\r\n  \n\t\n")
    refused(cli_run(["run", text_bundle, "--file", tmp_path / "blank.txt"]), "blank.txt holds no text")
    refused(cli_run(["run", text_bundle, "-"], stdin=b"\n \r\n"), "stdin held no text")
    refused(cli_run(["run", text_bundle, "--text", ""]), "--text is empty")
    refused(cli_run(["run", text_bundle, "--text", "good", "--text", "  "]), "--text 2 is empty")
    rows = jsonl_rows(cli_run(["run", text_bundle, "-", "--json"], stdin=b"good film\n\n \nbad film"))
    api = Classifier(text_bundle).classify_texts(["good film", "bad film"])
    assert [(r["position"], r["scores"]) for r in rows] == [(0, api[0].scores), (1, api[1].scores)]


# -- token counts: how much of the text the model saw, and how much of it it knew -------------

def test_token_counts_report_truncation(text_bundle):
    tokenizer_json = Bundle.open(text_bundle).read_text("tokenizer.json")
    seq_len = Bundle.open(text_bundle).manifest["preprocessing"]["seq_len"]
    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_truncation()
    long_text = " ".join(["the film was good"] * 20)
    total = len(tok.encode(long_text, add_special_tokens=False).ids)
    assert total > seq_len
    rows = jsonl_rows(cli_run(["run", text_bundle, "--json", "--text", long_text, "--text", "a good film"]))
    assert (rows[0]["tokens_kept"], rows[0]["tokens_total"]) == (seq_len - 2, total)
    assert (rows[1]["tokens_kept"], rows[1]["tokens_total"], rows[1]["unknown_share"]) == (3, 3, 0.0)
    rc, out, _ = cli_run(["run", text_bundle, "--text", long_text, "--text", "a good film", "--format", "table"])
    first, second = out.splitlines()
    assert first.endswith(f"\t(kept {seq_len - 2} of {total} tokens, 0% unknown)") and len(first.split("\t")) == 4
    assert second.endswith("\ta good film\t(3 tokens, 0% unknown)")


def test_unknown_share_counts_the_tokens_the_model_sees(text_bundle):
    tokenizer_json = Bundle.open(text_bundle).read_text("tokenizer.json")
    text = " ".join(["good"] * 10 + ["zebra"])  # "zebra" is not in the tiny vocabulary: [UNK], at the end
    head = TextEncoder(tokenizer_json, seq_len=8).encode_with_stats([text])[1][0]
    tail = TextEncoder(tokenizer_json, seq_len=8, truncation="head-tail").encode_with_stats([text])[1][0]
    full = TextEncoder(tokenizer_json, seq_len=32).encode_with_stats([text])[1][0]
    assert (head.kept, head.total, head.unknown) == (6, 11, 0)  # the [UNK] was cut off
    assert (tail.kept, tail.total, tail.unknown) == (6, 11, 1)  # head-tail keeps the end
    assert (full.kept, full.total, full.unknown) == (11, 11, 1)


def test_mostly_unknown_texts_get_a_notice(text_bundle):
    texts = ["😀 🍿 🎬", "good zebra", "good film zebra", "the film was good", "\u200b"]
    rc, out, err = cli_run(["run", text_bundle, "--json", *[a for t in texts for a in ("--text", t)]])
    assert rc == 0, err
    shares = [json.loads(line)["unknown_share"] for line in out.splitlines()]
    assert shares[0] == 1.0 and shares[1] == 0.5 and shares[3] == 0.0
    assert shares[2] < MOSTLY_UNKNOWN <= shares[1]
    notes = [line for line in err.splitlines() if line.startswith("swarmedge: note: ")]
    assert [n.split(": ")[2] for n in notes] == ["--text 1", "--text 2", "--text 5"], err
    assert "100% of its tokens are unknown" in notes[0] and "no words" in notes[2]


def test_image_predictions_carry_no_token_fields(boids_bundle, data_dir):
    with np.load(data_dir / "mnist.npz") as z:
        digit = z["x_test"][:1].astype(np.float32) / 255.0
    pred = Classifier(boids_bundle).classify_images(digit)[0]
    assert pred.tokens_kept is None and set(pred.to_dict()) == {"label", "index", "probability", "scores"}


# -- files that are not text at all: named by what they are, with what the path takes ---------

def _binaries(tmp_path) -> dict:
    import io
    import pickle
    import tarfile
    import zipfile

    from PIL import Image

    out = {}
    for ext, fmt in (("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"), ("bmp", "BMP"), ("webp", "WEBP"),
                     ("tif", "TIFF")):
        buf = io.BytesIO()
        Image.new("L", (28, 28)).save(buf, fmt)
        out[f"five.{ext}"] = (buf.getvalue(), "image")
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 28, 28), np.uint8))
    out["five.npy"] = (buf.getvalue(), "NumPy array")
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((2, 28, 28), np.uint8))
    out["five.npz"] = (buf.getvalue(), "NumPy archive")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/data.pkl", b"\x80\x02}q\x00.")
    out["model.pt"] = (buf.getvalue(), "PyTorch checkpoint")
    out["old.pt"] = (pickle.dumps({"w": [1.0]}, protocol=2), "pickle")
    out["reviews.jsonl"] = (gzip.compress(b'{"text": "good"}\n'), "not named .gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"good"))
    out["reviews.tar"] = (buf.getvalue(), "tar archive")
    out["blob.bin"] = (bytes(range(256)) * 8, "binary data")
    return out


def test_binary_files_are_named_on_every_text_path(text_bundle, tiny_text_ckpt, tmp_path):
    for name, (data, kind) in _binaries(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(data)
        runs = [
            (cli_run(["run", text_bundle, "--file", path]), "this bundle classifies text"),
            (cli_run(["run", text_bundle, "-"], stdin=data), "this bundle classifies text"),
            (cli_run(["eval", text_bundle, "--data", path]), "--data takes"),
            (cli_run(["export", tiny_text_ckpt, "--calibration", path, "-o", tmp_path / "x.bundle"]),
             "text calibration data"),
        ]
        for result, takes in runs:
            err = refused(result, kind)
            assert "UTF-8" not in err and "iconv" not in err, (name, err)
            assert takes in err or "gz" in kind, (name, err)


# -- long texts: only what truncation keeps is tokenized, with the same tokens ---------------

@pytest.mark.parametrize("seq_len", [64, 256])
@pytest.mark.parametrize("truncation", ["head", "head-tail"])
def test_sliced_long_texts_give_identical_tokens(zoo_small_bundle, data_dir, monkeypatch, seq_len, truncation):
    import swarmedge.runtimes.text as text

    with gzip.open(data_dir / "imdb_test.jsonl.gz", "rt", encoding="utf-8") as f:
        reviews = [json.loads(line)["text"] for _, line in zip(range(1500), f)]
    enc = TextEncoder(Bundle.open(zoo_small_bundle).read_text("tokenizer.json"), seq_len, truncation=truncation)
    whole, whole_stats = enc.encode_with_stats(reviews)
    assert not any(s.total_is_lower_bound for s in whole_stats)  # real reviews never take the sliced path
    monkeypatch.setattr(text, "LONG_TEXT_CHARS", 0)  # slice every review, from the smallest slices
    monkeypatch.setattr(text, "_FIRST_SLICE", 1)
    sliced, sliced_stats = enc.encode_with_stats(reviews)
    assert sum(s.total_is_lower_bound for s in sliced_stats) > 20
    np.testing.assert_array_equal(sliced, whole)
    for w, s in zip(whole_stats, sliced_stats):
        assert (s.kept, s.unknown) == (w.kept, w.unknown) and s.total <= w.total


def test_huge_text_costs_megabytes_and_says_its_count_is_a_lower_bound(zoo_small_bundle):
    # peak memory from VmHWM: ru_maxrss would carry pytest's own across fork and exec
    code = ("import json, re, sys\n"
            "from swarmedge.runtimes import Classifier\n"
            "text = ' '.join(['A wonderful, moving film that I will watch again. <br /><br />Dull end.'] * 170000)\n"
            "pred = Classifier(sys.argv[1]).classify_texts([text])[0]\n"
            "rss = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
            "print(json.dumps({**pred.to_dict(), 'rss_mb': rss}))")
    r = subprocess.run([sys.executable, "-c", code, str(zoo_small_bundle)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    row = json.loads(r.stdout)
    assert row["tokens_total_is_lower_bound"] and row["tokens_kept"] < row["tokens_total"]
    assert row["rss_mb"] < 600, row["rss_mb"]  # the whole 12 MB text tokenized took 1.5 GB
    rc, out, err = device_cli(["run", zoo_small_bundle, "-", "--format", "table"], stdin=b"good " * 30000)  # long
    assert rc == 0 and "tokens, 0% unknown)" in out and "+ tokens" in out, (out, err)


# -- size: run streams its input, so only a line is bounded; data read whole (eval, train) is ------------------------

def test_an_endless_device_is_refused_from_its_first_block(text_bundle):
    refused(cli_run(["run", text_bundle, "--file", "/dev/zero"]), "/dev/zero", "binary data")


def test_a_file_past_the_size_limit_is_refused_unread_past_it(text_bundle, tmp_path, monkeypatch):
    from swarmedge.runtimes import stream, textfiles

    monkeypatch.setattr(textfiles, "MAX_TEXT_BYTES", 3 << 20)
    big = tmp_path / "big.txt"
    big.write_bytes(b"the film was good\n" * (200_000))  # 3.4 MiB
    reads = []
    real = textfiles.read_stream

    def counting(f, name, limit=None):
        data = real(f, name, limit)
        reads.append(len(data))
        return data

    refused(cli_run(["eval", text_bundle, "--data", big]), "big.txt", "larger than 3 MiB", "split")
    # run streams it: every line is a result (positions count them), whatever the file's size
    monkeypatch.setattr(stream, "BLOCK", 1 << 16)  # many blocks: lines numbered on across them
    rows = jsonl_rows(cli_run(["run", text_bundle, "--file", big, "--chunk-size", "4096"]))
    assert len(rows) == 200_000 and rows[-1]["position"] == 199_999
    monkeypatch.setattr(textfiles, "read_stream", counting)
    with pytest.raises(InputError, match="larger than 3 MiB"):
        textfiles.read_bytes(big)
    assert reads == []  # refused inside the read: nothing past the limit was returned


def test_gzip_members_bombs_and_cuts(text_bundle, tmp_path, monkeypatch):
    from swarmedge.runtimes import textfiles

    two = tmp_path / "two.txt.gz"  # `cat a.gz b.gz`: gzip -d reads both members, so do we
    two.write_bytes(gzip.compress(b"the film was good\n") + gzip.compress(b"a bad actor\n"))
    assert len(jsonl_rows(cli_run(["run", text_bundle, "--file", two, "--json"]))) == 2
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(b"the film was good\n" * 1000)[:30])
    refused(cli_run(["run", text_bundle, "--file", cut]), "cut.txt.gz", "cut short")
    monkeypatch.setattr(textfiles, "MAX_TEXT_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.txt.gz"
    bomb.write_bytes(gzip.compress(b"a" * (64 << 20)))  # 64 KiB on disk, 64 MiB unpacked
    with pytest.raises(InputError, match="unpacks to more than 1 MiB"):
        textfiles.read_bytes(bomb)  # read whole (eval, train): refused
    # streamed (run): only a line is held, and this one never ends
    refused(cli_run(["run", text_bundle, "--file", bomb]), "bomb.txt.gz:1", "longer than 16 MiB")
