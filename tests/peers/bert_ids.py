"""Token ids from transformers' pure-Python BertTokenizer (runs in the peers venv).

Usage: bert_ids.py VOCAB SEQ_LEN TEXTS.json OUT.npy
"""

import json
import sys

import numpy as np
from transformers import BertTokenizer

vocab, seq_len, texts_path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
tok = BertTokenizer(vocab_file=vocab, do_lower_case=True)
texts = json.load(open(texts_path, encoding="utf-8"))
enc = tok(texts, padding="max_length", truncation=True, max_length=seq_len)
np.save(out, np.array(enc["input_ids"], dtype=np.int64))
