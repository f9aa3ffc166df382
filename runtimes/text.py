"""Text -> token ids as the SwarmFormer checkpoints expect: [CLS] … [SEP], padded with 0."""

import numpy as np

from swarmedge.errors import InputError


class TextEncoder:
    """Encodes texts with the bundle's WordPiece tokenizer to ``(B, seq_len)`` int64 ids.

    >>> enc = TextEncoder(open("bundle/tokenizer.json").read(), seq_len=256)  # doctest: +SKIP
    >>> enc.encode(["a fine film"]).shape  # doctest: +SKIP
    (1, 256)
    """

    def __init__(self, tokenizer_json: str, seq_len: int, pad_id: int = 0):
        from tokenizers import Tokenizer

        try:
            self.tokenizer = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise InputError(f"the bundle's tokenizer is corrupt ({exc}); export the bundle again") from None
        self.seq_len = seq_len
        # Truncation keeps room for [CLS]/[SEP]; padding to a fixed length as the reference does.
        self.tokenizer.enable_truncation(max_length=seq_len)
        self.tokenizer.enable_padding(length=seq_len, pad_id=pad_id, pad_token="[PAD]")

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            raise InputError("no text given: pass --text 'some text', --file FILE or pipe text on stdin")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"text {i + 1} is {type(t).__name__}, not a string")
            if not t.strip():
                raise InputError(f"text {i + 1} is empty: give some words to classify")
        encodings = self.tokenizer.encode_batch(texts)
        return np.array([e.ids for e in encodings], dtype=np.int64)
