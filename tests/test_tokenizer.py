"""WordPiece: bert-base-uncased ids exactly as the reference tokenizer makes them."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

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
