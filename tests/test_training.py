"""Training: seeded, logged, best checkpoint kept, resumable after an interrupt; eval metrics."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from swarmedge.checkpoint import build_model, init_checkpoint, load_checkpoint
from swarmedge.datasets import Dataset
from swarmedge.metrics import classification_report
from swarmedge.training import TrainConfig, train

from .conftest import TINY_WORDS, default_sigint


def _digits(data_dir, n=96):
    from swarmedge.datasets import load_dataset

    ds = load_dataset("mnist", "test", digits=(5, 6), data=data_dir)
    return ds.subset(np.arange(n))


def test_training_is_seeded_logged_and_keeps_the_best(data_dir, tmp_path):
    ds = _digits(data_dir)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=5e-3, seed=7)
    rows = []
    for run in ("a", "b"):
        ckpt = init_checkpoint("boids", {"blocks": 2, "dim_feedforward": 32}, seed=7)
        result = train(ckpt, ds, tmp_path / f"{run}.pt", cfg, progress=False, on_epoch=rows.append)
        assert result["epoch"] == 2
    a, b = (load_checkpoint(tmp_path / f"{r}.pt") for r in ("a", "b"))
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k])  # same seed, same weights
    log = [json.loads(line) for line in (tmp_path / "a.log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(0 <= r["val_accuracy"] <= 1 for r in log)
    best = max(r["val_accuracy"] for r in log)
    assert a["metadata"]["training"]["val_accuracy"] == best
    assert a["metadata"]["training"]["val_samples"] == round(0.1 * len(ds))
    # the best epoch's probabilities come calibrated on the same validation split
    cal = a["metadata"]["calibration"]
    assert cal["temperature"] > 0 and cal["fitted_on"].startswith(f"the {round(0.1 * len(ds))}-input validation")
    assert cal["after"]["nll"] <= cal["before"]["nll"]


def test_text_training_on_own_data(tmp_path, tiny_vocab):
    texts = ["good film", "bad film", "great plot", "awful actor"] * 8
    ds = Dataset(texts, np.array([1, 0, 1, 0] * 8), ["negative", "positive"], "text", "toy")
    ckpt = init_checkpoint("swarmformer", {"d_model": 8, "seq_len": 8, "cluster_size": 4, "num_layers": 1,
                                           "T_local": 1}, vocab=tiny_vocab)
    result = train(ckpt, ds, tmp_path / "t.pt", TrainConfig(epochs=1, batch_size=8), progress=False)
    assert 0 <= result["best_val_accuracy"] <= 1 and (tmp_path / "t.pt").is_file()


def _train_cmd(out, *extra):
    return [sys.executable, "-m", "swarmedge.cli", "train", "boids", "--epochs", "3", "--batch-size", "8",
            "--blocks", "2", "--dim-feedforward", "32", "-o", str(out), *extra]


def test_interrupted_training_resumes(data_dir, tmp_path):
    (tmp_path / "data").mkdir()
    # a small MNIST-like .npz keeps the run short
    with np.load(data_dir / "mnist.npz") as z:
        keep = np.flatnonzero(np.isin(z["y_train"], (5, 6)))[:1200]
        np.savez(tmp_path / "data" / "mnist.npz", x_train=z["x_train"][keep], y_train=z["y_train"][keep],
                 x_test=z["x_test"][:10], y_test=z["y_test"][:10])
    out = tmp_path / "m.pt"
    env_data = ["--data", str(tmp_path / "data")]
    proc = subprocess.Popen(_train_cmd(out, *env_data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "m.log.jsonl").exists():
        time.sleep(0.01)  # wait for the first epoch to end, then stop the run in the second
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, proc.stderr.read()
    assert "--resume" in proc.stderr.read()
    assert load_checkpoint(out)["metadata"]["training"]["epoch"] == 1  # a valid best checkpoint
    r = subprocess.run(_train_cmd(out, *env_data, "--resume"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    log = [json.loads(line) for line in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3]
    r = subprocess.run(_train_cmd(out, *env_data, "--resume", "--seed", "5"), capture_output=True, text=True)
    assert r.returncode != 0 and "seed" in r.stderr


def test_eval_checkpoint_and_bundle_agree(data_dir, tmp_path):
    from swarmedge.checkpoint import save_checkpoint
    from swarmedge.evaluate import evaluate_model
    from swarmedge.export import export_bundle

    ckpt = init_checkpoint("boids", {"blocks": 2, "dim_feedforward": 32}, seed=1)
    save_checkpoint(ckpt, tmp_path / "m.pt")
    bundle, _ = export_bundle(tmp_path / "m.pt", tmp_path / "m.bundle", agreement_size=16)
    a = evaluate_model(tmp_path / "m.pt", "mnist", data_dir=data_dir, limit=300)
    b = evaluate_model(bundle, "mnist", data_dir=data_dir, limit=300, precision="fp32")
    assert a["samples"] == b["samples"] == 300
    assert a["confusion_matrix"] == b["confusion_matrix"]  # fp32 ONNX == PyTorch on the same sample
    assert b["engine"] == "onnxruntime fp32" and a["engine"] == "pytorch fp32"


def test_metrics_by_hand():
    r = classification_report(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["a", "b"])
    assert r["accuracy"] == pytest.approx(0.6)
    assert r["confusion_matrix"] == [[1, 1], [1, 2]]
    assert r["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_learnt_vocabulary_is_deterministic_and_resumed_with_the_run(tmp_path):
    from swarmedge.tokenizer import train_wordpiece
    from swarmedge.training.loop import resume_checkpoint

    texts = [f"review {i}: the film was {'good' if i % 2 else 'bad'} and the plot {i % 7}" for i in range(64)]
    assert train_wordpiece(texts, 80) == train_wordpiece(list(texts), 80)
    ds = Dataset(texts, np.array([i % 2 for i in range(64)]), ["negative", "positive"], "text", "toy")
    from swarmedge.training.setup import starting_checkpoint

    ckpt = starting_checkpoint("swarmformer", {"d_model": 8, "seq_len": 16, "cluster_size": 4, "num_layers": 1,
                                               "T_local": 1, "vocab_size": 80}, texts=texts)
    train(ckpt, ds, tmp_path / "t.pt", TrainConfig(epochs=1, batch_size=16), progress=False)
    resumed = resume_checkpoint(tmp_path / "t.pt")
    assert resumed["preprocessing"]["tokenizer"] == ckpt["preprocessing"]["tokenizer"]
    assert resumed["config"] == ckpt["config"]


def test_resume_refuses_another_truncation_or_vocabulary(tmp_path, tiny_vocab):
    # Newcomer trial: --truncation and --vocab typed on a SwarmFormer --resume were ignored in silence.
    # Another value is refused; the run's own (the same command typed again) resumes.
    from swarmedge.training.setup import starting_checkpoint

    data = _jsonl(tmp_path / "toy.jsonl", ["positive", "negative"] * 16)
    ckpt = starting_checkpoint("swarmformer", {"d_model": 8, "seq_len": 8, "cluster_size": 4, "num_layers": 1,
                                               "T_local": 1}, vocab=tiny_vocab, truncation="head-tail")
    out = tmp_path / "t.pt"
    ds = Dataset([f"the film was good {i}" for i in range(32)], np.array([1, 0] * 16), ["negative", "positive"],
                 "text", "toy")
    train(ckpt, ds, out, TrainConfig(epochs=1, batch_size=16), progress=False)
    other = tmp_path / "other.txt"
    other.write_text("\n".join([*TINY_WORDS, "plotline"]) + "\n", encoding="utf-8")
    base = ["train", "swarmformer", "--data", data, "--epochs", "1", "--batch-size", "16", "--resume", "-o", out]
    before = out.read_bytes()
    for extra, words in ((["--truncation", "head"], "(truncation head-tail, not head): drop --truncation"),
                         (["--vocab", other], "vocabulary is not " + str(other))):
        line = _one_line_error(_cli(*base, *extra))
        assert words in line and "--overwrite" in line
    assert out.read_bytes() == before
    assert _cli(*base, "--truncation", "head-tail", "--vocab", tiny_vocab).exit_code == 0


def test_resume_with_the_runs_own_config_is_not_refused_for_its_learnt_vocabulary_size():
    # Newcomer trial: `--config small --resume` was refused for "vocab size 5276, not 30522": the
    # preset's vocabulary size is not an ask, the run's tokenizer decides it.
    import click
    from click.core import ParameterSource

    from swarmedge.cli_train import _refuse_other_model
    from swarmedge.models.swarmformer import PRESETS

    small = PRESETS["small"].to_dict()
    with click.Context(click.Command("train")) as ctx:
        ctx.params = {"preset": "small"}
        ctx.set_parameter_source("preset", ParameterSource.COMMANDLINE)
        run = {"model_type": "swarmformer", "config": {**small, "vocab_size": 5276}, "preprocessing": {}}
        _refuse_other_model(small, run)
        with pytest.raises(click.UsageError, match="drop --config"):
            _refuse_other_model(small, {**run, "config": {**run["config"], "d_model": small["d_model"] * 2}})


def test_token_dropout_hides_only_words(tiny_vocab):
    from swarmedge.checkpoint import init_checkpoint
    from swarmedge.training.tasks import SwarmFormerTask

    ckpt = init_checkpoint("swarmformer", {"d_model": 8, "seq_len": 64, "cluster_size": 4, "num_layers": 1},
                           vocab=tiny_vocab)
    model = build_model(ckpt)
    seen = []
    model.forward = lambda ids: seen.append(ids) or torch.zeros(len(ids), 2, requires_grad=True)
    task = SwarmFormerTask(model, ckpt["preprocessing"], token_dropout=0.3)
    ids = torch.from_numpy(task.encode(["the film was good and the plot was great"] * 200))
    torch.manual_seed(0)
    task.loss((ids,), torch.zeros(200, dtype=torch.long))
    hidden = seen[0] != ids
    vocab = task.encoder.tokenizer.get_vocab()
    assert (seen[0][hidden] == vocab["[UNK]"]).all()
    specials = torch.isin(ids, torch.tensor([vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]")]))
    assert not hidden[specials].any()
    share = hidden.sum().item() / (~specials).sum().item()
    assert 0.25 < share < 0.35  # 1,800 words at p = 0.3
    assert (ids[0] != 0).sum() < 64 and (seen[0][:, -1] == 0).all()  # padding stays padding
    unchanged = SwarmFormerTask(model, ckpt["preprocessing"])
    unchanged.loss((ids,), torch.zeros(200, dtype=torch.long))
    assert torch.equal(seen[1], ids)


def test_ppmi_vectors_put_interchangeable_words_together():
    from swarmedge.training.embeddings import ppmi_vectors

    # 3 and 4 ("good"/"great") share every context; 5 ("bad") has contexts of its own;
    # 9 never occurs and 2 is special: both keep NaN rows for the caller to skip.
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(300):
        word = int(rng.choice([3, 4]))
        docs += [[2, 6, word, 7, 2], [2, 8, 5, 6, 2]]
    vectors = ppmi_vectors(docs, vocab_size=10, dim=4, skip_ids=[0, 2])
    assert vectors.shape == (10, 4)
    assert vectors[[0, 2, 9]].isnan().all() and not vectors[3:9].isnan().any()
    assert torch.allclose(vectors[3:9].norm(dim=1), torch.full((6,), 2.0))  # norm sqrt(dim)
    cos = torch.nn.functional.cosine_similarity
    assert cos(vectors[3], vectors[4], dim=0) > 0.99
    assert cos(vectors[3], vectors[5], dim=0) < 0.5
    assert torch.equal(vectors.nan_to_num(), ppmi_vectors(docs, 10, 4, [0, 2]).nan_to_num())  # deterministic


def test_ppmi_initialisation_changes_only_seen_words(tmp_path):
    from swarmedge.training.setup import starting_checkpoint

    texts = [f"the film was {w} and the plot was {w}" for w in ("good", "great", "bad", "awful")] * 16
    ds = Dataset(texts, np.array([1, 1, 0, 0] * 16), ["negative", "positive"], "text", "toy")
    ckpt = starting_checkpoint("swarmformer", {"d_model": 8, "seq_len": 16, "cluster_size": 4, "num_layers": 1,
                                               "T_local": 1, "vocab_size": 60}, texts=texts)
    before = ckpt["state_dict"]["embedding.embed.weight"].clone()
    vocab = json.loads(ckpt["preprocessing"]["tokenizer"])["model"]["vocab"]
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-9, init_embeddings="ppmi")  # lr ~0: see the start
    train(ckpt, ds, tmp_path / "t.pt", cfg, progress=False)
    after = load_checkpoint(tmp_path / "t.pt")["state_dict"]["embedding.embed.weight"]
    changed = ~torch.isclose(after, before, atol=1e-6).all(dim=1)
    assert changed[vocab["film"]] and changed[vocab["good"]]
    assert not changed[vocab["[PAD]"]] and not changed[vocab["[CLS]"]]
    assert not changed[vocab["##m"]]  # a piece that only spells words the texts never need


# --- your own training data (issue 12): the right model, or one line naming the problem and the fix ---

def _cli(*args):
    from click.testing import CliRunner

    from swarmedge.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    lines = [ln for ln in result.output.splitlines() if ln.startswith("swarmedge: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def _class_folders(data_dir, root, classes, per_class=15, names=None):
    """``root/<name>/digits.npy``: ``per_class`` MNIST test digits of each digit in ``classes``."""
    with np.load(data_dir / "mnist.npz") as z:
        x, y = z["x_test"], z["y_test"]
    for digit, name in zip(classes, names or [str(c) for c in classes]):
        (root / name).mkdir(parents=True)
        np.save(root / name / "digits.npy", x[y == digit][:per_class])
    return root


def _jsonl(path, labels, text="the film was good"):
    path.write_text("".join(json.dumps({"text": f"{text} {i}", "label": lab}) + "\n" for i, lab in enumerate(labels)))
    return path


BOIDS_TINY = ["--epochs", "1", "--batch-size", "8", "--blocks", "1", "--dim-feedforward", "16"]


def _file(path, body: bytes):
    path.write_bytes(body)
    return path


def test_own_training_data_that_cannot_train_is_refused_in_one_line(data_dir, tmp_path):
    one = _class_folders(data_dir, tmp_path / "one", [5])
    digs = _class_folders(data_dir, tmp_path / "digs", [5, 6])
    d34 = _class_folders(data_dir, tmp_path / "d34", [3, 4])
    texts = _jsonl(tmp_path / "texts.jsonl", ["positive", "negative"] * 10)
    out = ["-o", tmp_path / "m.pt"]
    cases = [
        (["boids", "--data", one], "only the class '5'"),
        (["swarmformer", "--data", _jsonl(tmp_path / "pos_only.jsonl", ["positive"] * 20)],
         "only the class 'positive'"),
        (["boids", "--data", digs, "--classes", "8"], "--classes 8 disagrees"),
        (["boids", "--data", d34, "--digits", "5", "6"], "--digits 5 6 disagrees"),
        (["swarmformer", "--data", _jsonl(tmp_path / "t1.jsonl", ["a"])], "only the class 'a'"),
        (["swarmformer", "--data", _jsonl(tmp_path / "t5.jsonl", ["a", "b"] * 2 + ["a"])], "at least 6"),
        (["boids", "--data", texts], "holds texts"),
        # Newcomer trial: `--data README.md` was "pickled (object) data"; every file that is not a zip
        # archive (text, CSV, empty, a torn .npz) is named as not an .npz
        *[(["boids", "--data", _file(tmp_path / name, body)], "is not an .npz archive: --data takes MNIST")
          for name, body in (("README.md", b"# notes\n"), ("d.csv", b"a,b\n1,2\n"), ("empty.npz", b""),
                             ("torn.npz", b"PK\x03\x04torn"))],
        (["swarmformer", "--data", digs], "holds digit images"),
        (["swarmformer", "--data", _jsonl(tmp_path / "mixed.jsonl", ["positive", 0] * 10)], "'positive' and 0"),
    ]
    for args, expected in cases:
        line = _one_line_error(_cli("train", *args, *BOIDS_TINY[:4], *out))
        assert expected in line, (args, line)
        assert not (tmp_path / "m.pt").exists()  # refused before training started
    assert "at least 6" in _one_line_error(_cli("train", "swarmformer", "--data",
                                                _jsonl(tmp_path / "t2.jsonl", ["a", "b"]), *out))


def test_own_class_folders_set_the_boid_classes(data_dir, tmp_path):
    d34 = _class_folders(data_dir, tmp_path / "d34", [3, 4])
    for i, extra in enumerate(([], ["--digits", "4", "3"])):  # agreeing with the folders (any order) is accepted
        r = _cli("train", "boids", "--data", d34, *BOIDS_TINY, *extra, "-o", tmp_path / f"m{i}.pt")
        assert r.exit_code == 0, r.output
        ckpt = load_checkpoint(tmp_path / f"m{i}.pt")
        assert ckpt["labels"] == ["3", "4"] and ckpt["config"]["digits"] == [3, 4]
    # names that are not digits: the classes take the slots 0..N-1, the names are the labels
    pets = _class_folders(data_dir, tmp_path / "pets", [1, 7, 0], names=["cat", "dog", "eel"])
    r = _cli("train", "boids", "--data", pets, *BOIDS_TINY, "--classes", "3", "-o", tmp_path / "p.pt")
    assert r.exit_code == 0, r.output
    ckpt = load_checkpoint(tmp_path / "p.pt")
    assert ckpt["labels"] == ["cat", "dog", "eel"] and ckpt["config"]["digits"] == [0, 1, 2]
    assert build_model(ckpt)(torch.zeros(1, 4, 2), torch.tensor([4]))[0].shape == (1, 3)
    assert "--digits 5 6 disagrees" in _one_line_error(
        _cli("train", "boids", "--data", pets, *BOIDS_TINY, "--digits", "5", "6", "-o", tmp_path / "q.pt"))
    assert "not MNIST digits" in _one_line_error(_cli("eval", tmp_path / "p.pt", "--data", "mnist"))


def test_swarmformer_has_one_output_per_label(tmp_path):
    from swarmedge.datasets import load_labelled
    from swarmedge.training.setup import check_training_data, fit_config, starting_checkpoint

    words = {"a": "good great", "b": "bad awful", "c": "plot actor"}
    lines = [{"text": f"the film was {words[lab]} {i}", "label": lab} for i, lab in enumerate("abc" * 10)]
    (tmp_path / "t3.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    ds = load_labelled(tmp_path / "t3.jsonl")
    check_training_data(ds)
    config = fit_config("swarmformer", {"d_model": 8, "seq_len": 16, "cluster_size": 4, "num_layers": 1,
                                        "T_local": 1, "vocab_size": 60}, ds)
    assert config["num_classes"] == 3
    ckpt = starting_checkpoint("swarmformer", config, texts=ds.inputs, labels=ds.label_names)
    train(ckpt, ds, tmp_path / "t.pt", TrainConfig(epochs=1, batch_size=8), progress=False)
    loaded = load_checkpoint(tmp_path / "t.pt")
    assert loaded["labels"] == ["a", "b", "c"] and loaded["config"]["num_classes"] == 3
    assert build_model(loaded)(torch.ones(2, 16, dtype=torch.long)).shape == (2, 3)


def test_train_refuses_a_checkpoint_that_does_not_fit_the_data(data_dir, tmp_path):
    from swarmedge.errors import InputError
    from swarmedge.training.setup import minimum_inputs

    assert minimum_inputs(0.1) == 6 and minimum_inputs(0.5) == 2
    ds = _digits(data_dir, 40)  # labels 5, 6
    ckpt = init_checkpoint("boids", {"digits": [3, 4], "blocks": 1, "dim_feedforward": 16})
    with pytest.raises(InputError, match="differ from the model's"):
        train(ckpt, ds, tmp_path / "m.pt", TrainConfig(epochs=1), progress=False)
    with pytest.raises(InputError, match="at least 6"):
        train(init_checkpoint("boids", {"blocks": 1}), ds.subset(np.arange(5)), tmp_path / "m.pt",
              TrainConfig(epochs=1), progress=False)
    assert not (tmp_path / "m.pt").exists()


def test_checkpoint_with_labels_not_matching_outputs_is_refused_by_every_command(tmp_path):
    from swarmedge.checkpoint import save_checkpoint
    from swarmedge.errors import CheckpointError

    ckpt = init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16})
    save_checkpoint({**ckpt, "labels": ["5"]}, tmp_path / "one.pt")  # what the old `train` wrote for a 5/ folder
    with pytest.raises(CheckpointError, match="scores 2 classes but the checkpoint has 1 label"):
        load_checkpoint(tmp_path / "one.pt")
    line = _one_line_error(_cli("export", tmp_path / "one.pt", "-o", tmp_path / "one.bundle"))
    assert "scores 2 classes" in line and not (tmp_path / "one.bundle").exists()
