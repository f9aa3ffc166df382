"""WordPiece: bert-base-uncased ids exactly as the reference tokenizer makes them."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from swarmedge.errors import InputError
from swarmedge.runtimes.text import TextEncoder
from swarmedge.tokenizer import train_wordpiece, wordpiece_from_vocab


def test_known_bert_ids(data_dir):
    enc = TextEncoder(wordpiece_from_vocab(data_dir / "bert-base-uncased-vocab.txt"), seq_len=12)
    ids = enc.encode(["Hello, World! Café naïve"])[0].tolist()
    # [CLS] hello , world ! cafe naive [SEP] + padding (accents stripped, lower-cased)
    assert ids == [101, 7592, 1010, 2088, 999, 7668, 15743, 102, 0, 0, 0, 0]


def test_bert_ids_match_transformers_on_imdb(data_dir, tmp_path):
    """Against transformers' pure-Python BertTokenizer (an independent implementation), on
    2,000 IMDB test reviews spread over the file, padded/truncated to 256 as the reference."""
    python = os.environ.get("SWARMEDGE_PEERS_PYTHON")
    if not python or not Path(python).exists():
        pytest.fail("SWARMEDGE_PEERS_PYTHON is not set to the peers venv: run the tests through `make test`")
    from swarmedge.datasets.imdb import load_imdb

    texts, _ = load_imdb("test", data_dir)
    sample = texts[::12][:2000]
    (tmp_path / "texts.json").write_text(json.dumps(sample), encoding="utf-8")
    vocab = data_dir / "bert-base-uncased-vocab.txt"
    script = Path(__file__).parent / "peers" / "bert_ids.py"
    args = [str(vocab), "256", str(tmp_path / "texts.json"), str(tmp_path / "ids.npy")]
    r = subprocess.run([python, str(script), *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    expected = np.load(tmp_path / "ids.npy")
    got = TextEncoder(wordpiece_from_vocab(vocab), seq_len=256).encode(sample)
    mismatched = np.flatnonzero((got != expected).any(axis=1))
    assert mismatched.size == 0, f"{mismatched.size} of {len(sample)} differ, first: {sample[mismatched[0]][:200]!r}"


def test_learnt_vocabulary_round_trips():
    texts = ["the film was wonderful", "the plot was dreadful", "wonderful acting"] * 20
    tok = train_wordpiece(texts, vocab_size=60, min_frequency=1)
    vocab = json.loads(tok)["model"]["vocab"]
    assert {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "wonderful"} <= set(vocab)
    enc = TextEncoder(tok, seq_len=8)
    ids = enc.encode(["The film [MASK]"])[0]
    assert ids[0] == vocab["[CLS]"] and ids[1] == vocab["the"] and vocab["[SEP]"] in ids and ids[-1] == 0
    assert vocab["[MASK]"] in ids  # special tokens are never split
    assert enc.tokenizer.decode(ids.tolist()) == "the film"


def test_head_tail_truncation_keeps_both_ends(tiny_vocab):
    tok = wordpiece_from_vocab(tiny_vocab)
    vocab = json.loads(tok)["model"]["vocab"]
    words = ["the", "a", "film", "movie", "good", "bad", "great", "awful", "plot", "actor", "was", "is"]
    text = " ".join(words)  # 12 tokens + [CLS] [SEP] = 14 > 10
    ids = TextEncoder(tok, seq_len=10, truncation="head-tail").encode([text])[0].tolist()
    keep = 8  # room between [CLS] and [SEP]; a quarter from the head, the rest from the tail
    assert ids == [vocab["[CLS]"]] + [vocab[w] for w in words[: keep // 4] + words[-(keep - keep // 4):]] + [
        vocab["[SEP]"]]
    head = TextEncoder(tok, seq_len=10).encode([text])[0].tolist()
    assert head == [vocab["[CLS]"]] + [vocab[w] for w in words[:8]] + [vocab["[SEP]"]]
    short = "a good film"  # texts that fit are the same either way, padded with 0
    assert (TextEncoder(tok, 10, truncation="head-tail").encode([short]) == TextEncoder(tok, 10).encode([short])).all()
    with pytest.raises(InputError, match="unknown truncation"):
        TextEncoder(tok, 10, truncation="middle")


def test_truncation_travels_from_training_to_the_bundle(tmp_path, tiny_vocab):
    from swarmedge.checkpoint import save_checkpoint
    from swarmedge.export import export_bundle
    from swarmedge.runtimes import Classifier
    from swarmedge.training.setup import starting_checkpoint

    ckpt = starting_checkpoint("swarmformer", {"d_model": 8, "seq_len": 8, "cluster_size": 4, "num_layers": 1},
                               vocab=tiny_vocab, truncation="head-tail")
    save_checkpoint(ckpt, tmp_path / "m.pt")
    out, manifest = export_bundle(tmp_path / "m.pt", tmp_path / "m.bundle", quantize_mode=None)
    assert manifest["preprocessing"]["truncation"] == "head-tail"
    text = "the film was good and the plot was great and the actor was awful"
    got = Classifier(out).classify_texts([text])[0].scores
    tok = ckpt["preprocessing"]["tokenizer"]
    session = Classifier(out).session
    expected = {t: session.run(None, {"input_ids": TextEncoder(tok, 8, truncation=t).encode([text])})[0][0]
                for t in ("head", "head-tail")}
    assert np.allclose(got, expected["head-tail"], atol=1e-6)
    assert not np.allclose(got, expected["head"], atol=1e-6)


def test_learnt_vocabulary_drops_html_breaks_but_bert_keeps_them(tiny_vocab):
    text = "a fine film.<br /><br />really fine"
    learnt = TextEncoder(train_wordpiece([text] * 4, vocab_size=80, min_frequency=1), seq_len=16)
    assert learnt.tokenizer.encode(text).tokens == ["[CLS]", "a", "fine", "film", ".", "really", "fine", "[SEP]"]
    bert = TextEncoder(wordpiece_from_vocab(tiny_vocab), seq_len=32)  # bert-base-uncased ids stay exact
    assert len(bert.tokenizer.encode(text).tokens) == 8 + 8  # each tag: "<", "br", "/", ">"
