"""swarmedge.ray_data on a local Ray cluster (``ray.init(num_cpus=2)``): the cluster's results
are the single machine's, record for record and bit for bit; user mistakes are one line."""

import gzip
import json
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import tomllib

from swarmedge.errors import InputError
from swarmedge.runtimes import Classifier
from swarmedge.runtimes.results import NO_ID, encode_records, result_record
from tests.conftest import ROOT, TINY_WORDS, run_device

WORDS = [w for w in TINY_WORDS if not w.startswith("[")]


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    if ray.is_initialized():  # another module's cluster: this one needs its own two CPUs
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of ~2 KiB (about 40 of these short texts), so a test corpus spans many blocks and
    both actors classify some of it."""
    from swarmedge import ray_data

    monkeypatch.setattr(ray_data, "BLOCK_BYTES", 2 << 10)


def corpus(n: int = 300, seed: int = 0) -> list[dict]:
    """``n`` short text records; some carry an id, of every JSON kind (int, str, float, list, object)."""
    rng = random.Random(seed)
    kinds = [None, None, 7, "r-007", 2.5, [1, "a"], {"k": 1}, 0, "0042"]
    records = []
    for i in range(n):
        record = {"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))}
        kind = kinds[i % len(kinds)]
        if kind is not None:
            record["id"] = kind if not isinstance(kind, int) else kind + i
        records.append(record)
    return records


def reference(bundle, texts, ids) -> bytes:
    """What a single machine writes: Classifier.classify_texts and run's records (no "input" for
    a file's lines)."""
    preds = Classifier(bundle, threads=1).classify_texts(texts)
    return encode_records([result_record(i, None, p, record_id) for i, (p, record_id) in enumerate(zip(preds, ids))])


def test_bundle_classifier_equals_classifier(text_bundle):
    from swarmedge.ray_data import BundleClassifier

    records = corpus(50)
    texts = np.array([r["text"] for r in records], dtype=object)
    ids = np.arange(50) * 3
    out = BundleClassifier(str(text_bundle))({"text": texts, "id": ids})
    want = Classifier(text_bundle, threads=1).classify_texts(list(texts))
    assert "text" not in out and out["id"] is ids  # other columns pass through untouched
    assert out["scores"].shape == (50, 2) and out["scores"].dtype == np.float64
    for i, p in enumerate(want):  # exact: scores are float32 widened to float64, never rounded
        assert out["label"][i] == p.label and out["index"][i] == p.index
        assert out["probability"][i] == p.probability and out["scores"][i].tolist() == p.scores
        assert (out["tokens_kept"][i], out["tokens_total"][i], out["unknown_share"][i]) == \
            (p.tokens_kept, p.tokens_total, p.unknown_share)
    kept = BundleClassifier(str(text_bundle), keep_inputs=True)({"text": texts[:2]})
    assert kept["text"].tolist() == texts[:2].tolist()


def test_bundle_classifier_refusals(text_bundle, boids_bundle):
    from swarmedge.ray_data import BundleClassifier

    text = BundleClassifier(str(text_bundle))
    with pytest.raises(InputError, match=r'needs a "text" column, it has \[.review.\]'):
        text({"review": np.array(["good"], dtype=object)})
    with pytest.raises(InputError, match=r'the "text" of the row with id "b" is empty'):
        text({"text": np.array(["good", "  "], dtype=object), "id": np.array(["a", "b"], dtype=object)})
    with pytest.raises(InputError, match=r'row 1 of a batch has no "text"'):
        text({"text": np.array(["good", None], dtype=object)})
    with pytest.raises(InputError, match=r"classifies digit images, not texts"):
        BundleClassifier(str(boids_bundle))({"text": np.array(["good"], dtype=object)})


def test_corpus_jsonl_equals_single_machine(ray_cluster, text_bundle, tmp_path, small_blocks):
    from swarmedge.ray_data import classify_corpus, corpus_dataset

    records = corpus(300)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(5, "")  # blank lines are not inputs: positions skip them
    lines.insert(40, "   ")
    source = tmp_path / "reviews.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert corpus_dataset(source).materialize().num_blocks() > 2  # more than one actor has work

    want = reference(text_bundle, [r["text"] for r in records], [r.get("id", NO_ID) for r in records])
    assert classify_corpus(text_bundle, source, tmp_path / "results.jsonl") == 300
    assert (tmp_path / "results.jsonl").read_bytes() == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl", "reviews.jsonl"]  # no temporary left

    gz = tmp_path / "reviews.jsonl.gz"
    gz.write_bytes(gzip.compress(source.read_bytes()))
    classify_corpus(text_bundle, gz, tmp_path / "gz.jsonl")
    assert (tmp_path / "gz.jsonl").read_bytes() == want

    # a folder: the workers write the same records, spread over files
    assert classify_corpus(text_bundle, source, f"{tmp_path / 'shards'}/") == 300  # a str: Path drops the /
    got = [line for p in (tmp_path / "shards").glob("*.jsonl") for line in p.read_bytes().splitlines(keepends=True)]
    assert b"".join(sorted(got, key=lambda line: json.loads(line)["position"])) == want


def test_corpus_txt_equals_single_machine(ray_cluster, text_bundle, tmp_path, small_blocks):
    from swarmedge.ray_data import classify_corpus

    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(200)]
    breaks = ["\n", "\r\n", "\r", "\n\n", "\n \t\n"]  # every line ending; blank lines skipped
    data = "\ufeff" + "".join(t + breaks[i % len(breaks)] for i, t in enumerate(texts))
    source = tmp_path / "reviews.txt"
    source.write_bytes(data.encode())
    classify_corpus(text_bundle, source, tmp_path / "results.jsonl")
    assert (tmp_path / "results.jsonl").read_bytes() == reference(text_bundle, texts, [NO_ID] * len(texts))
    assert len(re.split(r"\r\n|\r|\n", data)) > len(texts)  # the file did hold blank lines


def test_corpus_equals_swarmedge_run(ray_cluster, text_bundle, tmp_path, small_blocks):
    """The issue's claim itself: the cluster writes what ``swarmedge run --file -o`` writes."""
    from swarmedge.ray_data import classify_corpus

    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in corpus(120, seed=2)), encoding="utf-8")
    done = run_device(["run", str(text_bundle), "--file", str(source), "-o", str(tmp_path / "local.jsonl")])
    assert done.returncode == 0, done.stderr
    classify_corpus(text_bundle, source, tmp_path / "ray.jsonl")
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_digits_dataset_equals_classify_images(ray_cluster, boids_bundle, data_dir):
    from swarmedge.ray_data import classify_dataset

    with np.load(data_dir / "mnist.npz") as z:
        digits = z["x_test"][:40]  # uint8 (40, 28, 28)
    ds = ray_cluster.data.from_items([{"id": i, "image": d} for i, d in enumerate(digits)], override_num_blocks=4)
    rows = sorted(classify_dataset(ds, boids_bundle, batch_size=8, concurrency=2).take_all(), key=lambda r: r["id"])
    want = Classifier(boids_bundle, threads=1).classify_images(digits)
    assert [r["id"] for r in rows] == list(range(40)) and "image" not in rows[0]
    assert [(r["label"], r["index"], r["probability"], r["scores"].tolist()) for r in rows] == \
        [(p.label, p.index, p.probability, p.scores) for p in want]


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and "Traceback" not in message and "ray::" not in message, message
    return message


def test_user_mistakes_are_one_line(ray_cluster, text_bundle, boids_bundle, tmp_path):
    from swarmedge.ray_data import classify_corpus, classify_dataset
    from swarmedge.ray_errors import ray_errors

    out = tmp_path / "results.jsonl"
    with pytest.raises(InputError) as e:
        classify_corpus(text_bundle, tmp_path / "missing.jsonl", out)
    assert one_line(e) == f"file not found: {tmp_path / 'missing.jsonl'}"

    bad = tmp_path / "bad.jsonl"  # refused by the Ray task that reads it: the error crosses from a worker
    bad.write_text('{"text": "good film"}\n\n{"text": good}\n', encoding="utf-8")
    with pytest.raises(InputError) as e:
        classify_corpus(text_bundle, bad, out)
    assert one_line(e).startswith(f"{bad}:3: not valid JSON")
    bad.write_text('{"text": "good film"}\n{"text": ""}\n', encoding="utf-8")
    with pytest.raises(InputError) as e:
        classify_corpus(text_bundle, bad, out)
    assert one_line(e).startswith(f'{bad}:2: "text" is empty')
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]  # nothing half-written

    with pytest.raises(InputError) as e:
        classify_corpus(boids_bundle, bad, out)
    assert "classifies digit images" in one_line(e)
    out.write_text("mine\n")
    with pytest.raises(InputError) as e:
        classify_corpus(text_bundle, bad, out)
    assert one_line(e).startswith(f"{out} exists: pass --overwrite")

    # an error raised in an actor, through classify_dataset
    ds = ray_cluster.data.from_items([{"text": "good"}, {"text": " "}])
    with pytest.raises(InputError) as e, ray_errors():
        classify_dataset(ds, text_bundle, concurrency=1).take_all()
    assert one_line(e) == 'the "text" of row 1 of a batch is empty: give some words to classify'


def test_command(ray_cluster, text_bundle, tmp_path):
    """``swarmedge run --file CORPUS -o OUT --ray ADDRESS``: the same records as without --ray."""
    from click.testing import CliRunner

    from swarmedge.cli import cli

    source = tmp_path / "reviews.txt"
    source.write_text("good film\n\nawful plot\n", encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(text_bundle), "--file", str(source), "-o", str(tmp_path / "r.jsonl"),
                            "--ray", "local"])
    assert r.exit_code == 0, r.output
    local = runner.invoke(cli, ["run", str(text_bundle), "--file", str(source), "-o", str(tmp_path / "l.jsonl")])
    assert local.exit_code == 0 and (tmp_path / "r.jsonl").read_bytes() == (tmp_path / "l.jsonl").read_bytes()
    for args, needle in [
        (["--file", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "s.jsonl"), "--ray", "local"],
         f"file not found: {tmp_path / 'nope.txt'}"),
        (["--file", str(source), "-o", str(tmp_path / "r.jsonl"), "--ray", "local"], "exists"),
        (["--text", "good", "--ray", "local"], "give --file CORPUS and -o"),
        (["--file", str(source), "-o", str(tmp_path / "r.jsonl"), "--ray", "local", "--resume"], "--overwrite"),
        (["--file", str(source), "-o", str(tmp_path), "--ray", "local", "--overwrite"], "not empty"),
    ]:
        r = runner.invoke(cli, ["run", str(text_bundle), *args])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1 and needle in r.stderr, (args, r.stderr)
    assert not (tmp_path / "s.jsonl").exists()
    # a new folder named with a slash gets shards, whose records are the file's
    r = runner.invoke(cli, ["run", str(text_bundle), "--file", str(source), "-o", f"{tmp_path / 'shards'}/",
                            "--ray", "local"])
    assert r.exit_code == 0 and (tmp_path / "shards").is_dir(), r.output
    shards = sorted(line for p in (tmp_path / "shards").iterdir() for line in p.read_bytes().splitlines(True))
    assert shards == sorted((tmp_path / "l.jsonl").read_bytes().splitlines(True))
    # a bad record found by Ray's read task: swarmedge's one line (Ray's own log goes to a file it names)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "good"}\n{"text": nope}\n')
    r = runner.invoke(cli, ["run", str(text_bundle), "--file", str(bad), "-o", str(tmp_path / "b.jsonl"),
                            "--ray", "local"])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "bad.jsonl:2: not valid JSON" in r.stderr and "Traceback" not in r.stderr


def test_ray_stays_out_of_the_device_install(text_bundle, tmp_path):
    """The base install has no ray; the module imports without it and names the extra when used."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("ray") for d in project["dependencies"])
    assert project["optional-dependencies"]["ray"] == ["ray[data]==2.60.0"]
    assert "ray" in re.search(r"\[(.*)\]", project["optional-dependencies"]["dev"][0]).group(1).split(",")
    code = ("import sys; sys.modules['ray'] = None\n"
            "import swarmedge.ray_data as r\n"
            "from swarmedge.errors import MissingExtraError\n"
            f"try: r.classify_corpus({str(text_bundle)!r}, 'x.txt', 'y.jsonl')\n"
            "except MissingExtraError as e: print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "this needs ray.data, which is not installed: pip install 'swarmedge[ray]'", \
        done.stderr
