"""Text -> token ids as the SwarmFormer checkpoints expect: [CLS] … [SEP], padded with 0."""

import numpy as np

from swarmedge.errors import InputError

TRUNCATIONS = ("head", "head-tail")


class TextEncoder:
    """Encodes texts with the bundle's WordPiece tokenizer to ``(B, seq_len)`` int64 ids.

    ``truncation`` says which tokens of a long text are kept: ``head`` (the first ones, as
    the reference does) or ``head-tail`` (the first quarter and the last three quarters of
    the budget: reviews tend to end with their verdict; Sun et al. 2019 found this best).

    >>> enc = TextEncoder(open("bundle/tokenizer.json").read(), seq_len=256)  # doctest: +SKIP
    >>> enc.encode(["a fine film"]).shape  # doctest: +SKIP
    (1, 256)
    """

    def __init__(self, tokenizer_json: str, seq_len: int, pad_id: int = 0, truncation: str = "head"):
        from tokenizers import Tokenizer

        if truncation not in TRUNCATIONS:
            raise InputError(f"unknown truncation {truncation!r}: use one of {', '.join(TRUNCATIONS)}")
        try:
            self.tokenizer = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise InputError(f"the bundle's tokenizer is corrupt ({exc}); export the bundle again") from None
        self.seq_len, self.pad_id, self.truncation = seq_len, pad_id, truncation
        if truncation == "head":  # the library keeps room for [CLS]/[SEP] itself
            self.tokenizer.enable_truncation(max_length=seq_len)
        else:
            self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    @classmethod
    def for_preprocessing(cls, pre: dict, tokenizer_json: str, seq_len: int | None = None) -> "TextEncoder":
        """The encoder a checkpoint's or bundle's ``preprocessing`` describes."""
        return cls(tokenizer_json, seq_len or pre["seq_len"], pre["pad_id"], pre.get("truncation", "head"))

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            raise InputError("no text given: pass --text 'some text', --file FILE or pipe text on stdin")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"text {i + 1} is {type(t).__name__}, not a string")
            if not t.strip():
                raise InputError(f"text {i + 1} is empty: give some words to classify")
        out = np.full((len(texts), self.seq_len), self.pad_id, dtype=np.int64)
        for row, e in enumerate(self.tokenizer.encode_batch(texts)):
            ids = self._cut(e.ids)
            out[row, : len(ids)] = ids
        return out

    def _cut(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.seq_len:
            return ids
        # head-tail: [CLS] first tokens … last tokens [SEP]
        keep = self.seq_len - 2
        head = keep // 4
        return ids[: 1 + head] + ids[len(ids) - 1 - (keep - head):]
