"""JSON Lines on every path (run --file, eval/train data, --calibration): the name decides which
files are JSON Lines, every wrong record names its line the same way, labels are class names or
indices, and one JSON document gets the command that makes it JSON Lines."""

import gzip
import json

import pytest

from swarmedge.errors import InputError
from swarmedge.runtimes import Classifier
from tests.textcases import TEXTS, cli_run, jsonl_rows, refused

# -- JSONL records: each wrong shape names its line, the same on run, eval, export, train -----

@pytest.mark.parametrize("line,problem", [
    ('{"text": null, "label": "negative"}', '"text" is null'),
    ('{"text": 5, "label": "negative"}', '"text" is a number, not a string'),
    ('{"text": ["a", "film"], "label": "negative"}', '"text" is a list, not a string'),
    ('{"review": "a film", "label": "negative"}', 'no "text" field'),
    ('["a film", "negative"]', "expected a JSON object, got a list"),
    ('"a film"', "expected a JSON object, got a string"),
    ('{"text": "a film", "label": ', "not valid JSON"),
    ('{"text": "", "label": "negative"}', '"text" is empty'),
    ('{"text": "  ", "label": "negative"}', '"text" is empty'),
])
def test_bad_records_name_their_line_on_every_command(text_bundle, tiny_text_ckpt, tmp_path, line, problem):
    good = json.dumps({"text": "the film was good", "label": "positive"})
    path = tmp_path / "mine.jsonl"
    path.write_text(f"{good}\n{line}\n{good}\n", encoding="utf-8")
    messages = [
        refused(cli_run(["run", text_bundle, "--file", path]), f"mine.jsonl:2: {problem}"),
        refused(cli_run(["eval", text_bundle, "--data", path]), f"mine.jsonl:2: {problem}"),
        refused(cli_run(["export", tiny_text_ckpt, "--calibration", path, "-o", tmp_path / "x.bundle"]),
                 f"mine.jsonl:2: {problem}"),
        refused(cli_run(["train", "swarmformer", "--data", path, "--epochs", "1", "-o", tmp_path / "x.pt"]),
                 f"mine.jsonl:2: {problem}"),
    ]
    assert len({m.split(";")[0] for m in messages}) == 1, messages  # the same problem, said the same way
    assert not (tmp_path / "x.bundle").exists() and not (tmp_path / "x.pt").exists()


def test_labelled_data_needs_a_label_but_texts_do_not(text_bundle, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"text": "good film", "label": "positive"}\n{"text": "bad film"}\n', encoding="utf-8")
    refused(cli_run(["eval", text_bundle, "--data", path]), 'mine.jsonl:2: no "label" field')
    assert len(jsonl_rows(cli_run(["run", text_bundle, "--file", path, "--json"]))) == 2


# -- which files are JSON Lines: the name decides, the same on run, eval/train and calibration --

def _labelled_lines(texts=TEXTS) -> bytes:
    return "".join(json.dumps({"text": t, "label": "positive" if i % 2 else "negative"}) + "\n"
                   for i, t in enumerate(texts)).encode()


@pytest.mark.parametrize("name", ["a.jsonl", "a.ndjson", "a.json", "A.NDJSON.GZ", "a.json.gz"])
def test_json_lines_are_read_by_name_on_every_path(text_bundle, tmp_path, name):
    from swarmedge.datasets import load_labelled
    from swarmedge.export.samples import load_samples

    data = _labelled_lines()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.lower().endswith(".gz") else data)
    path = tmp_path / name
    api = [p.scores for p in Classifier(text_bundle).classify_texts(TEXTS)]
    assert [r["scores"] for r in jsonl_rows(cli_run(["run", text_bundle, "--file", path, "--json"]))] == api
    assert load_labelled(path).inputs == TEXTS and load_samples(path, "text").raw == TEXTS
    rc, out, err = cli_run(["eval", text_bundle, "--data", path])
    assert rc == 0, err


def test_json_lines_under_another_name_are_flagged(text_bundle, tiny_text_ckpt, tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(_labelled_lines())
    rc, out, err = cli_run(["run", text_bundle, "--file", path])  # read as lines, as the name says, with a notice
    assert rc == 0 and len(out.splitlines()) == 3 and "rename it" in err and "a.jsonl" in err, err
    rc, out, err = cli_run(["run", text_bundle, "-"], stdin=_labelled_lines())
    assert rc == 0 and "--file FILE.jsonl" in err, err
    refused(cli_run(["eval", text_bundle, "--data", path]), "a.txt", "no labels", "rename it")
    refused(cli_run(["export", tiny_text_ckpt, "--calibration", path, "-o", tmp_path / "x.bundle"]),
             "a.txt", "rename it")
    (tmp_path / "plain.txt").write_bytes(b"{not json}\ngood film\n")
    rc, out, err = cli_run(["run", text_bundle, "--file", tmp_path / "plain.txt"])
    assert rc == 0 and "JSON Lines" not in err, err


@pytest.mark.parametrize("doc,needle", [
    (json.dumps([{"text": t, "label": 1} for t in TEXTS]), "jq -c '.[]'"),
    (json.dumps({"text": TEXTS[0], "label": 1}, indent=2), "jq -c ."),
])
def test_one_json_document_is_not_json_lines(text_bundle, tmp_path, doc, needle):
    path = tmp_path / "export.json"
    path.write_text(doc, encoding="utf-8")
    refused(cli_run(["run", text_bundle, "--file", path]), "export.json", "not JSON Lines", needle)
    refused(cli_run(["eval", text_bundle, "--data", path]), "export.json", "not JSON Lines", needle)


# -- labels: a class name or a class index, anything else names its line ----------------------

@pytest.mark.parametrize("label,problem", [
    ("null", '"label" is null'), ("true", '"label" is the boolean true'), ("false", "\"label\" is the boolean false"),
    ("1.5", "\"label\" is the fraction 1.5"), ("1.0", "\"label\" is the fraction 1.0"), ("[1]", '"label" is a list'),
    ('{"name": "pos"}', '"label" is an object'), ('""', '"label" is empty'),
])
def test_labels_must_be_names_or_indices_on_every_path(text_bundle, tmp_path, label, problem):
    from swarmedge.datasets import load_labelled

    good = json.dumps({"text": "the film was good", "label": 1})
    path = tmp_path / "mine.ndjson"
    path.write_text(f"{good}\n\n{{\"text\": \"bad\", \"label\": {label}}}\n", encoding="utf-8")
    needle = f"mine.ndjson:3: {problem}"
    refused(cli_run(["eval", text_bundle, "--data", path]), needle, "class name")
    refused(cli_run(["train", "swarmformer", "--data", path, "--epochs", "1", "-o", tmp_path / "x.pt"]), needle)
    with pytest.raises(InputError, match=needle):
        load_labelled(path)
    assert jsonl_rows(cli_run(["run", text_bundle, "--file", path, "--json"]))  # texts need no label


def test_imdb_files_need_index_labels(tmp_path):
    from swarmedge.datasets.imdb import load_imdb

    path = tmp_path / "imdb_test.jsonl"
    path.write_text('{"text": "good", "label": 1}\n{"text": "bad", "label": "negative"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="imdb_test.jsonl:2: \"label\" is 'negative'; IMDB files label"):
        load_imdb("test", tmp_path)
