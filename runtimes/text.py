"""Text -> token ids as the SwarmFormer checkpoints expect: [CLS] … [SEP], padded with 0."""

from dataclasses import dataclass

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.textfiles import check_text

TRUNCATIONS = ("head", "head-tail")
# At or above this share of [UNK] among the tokens the model sees, most of what it is given
# carries no information for it, so its answer is a guess (emoji, another language or
# script): English reviews have well under 1% [UNK] with the bert-base-uncased vocabulary,
# and training hides at most 10% behind [UNK] (--token-dropout), so half is far outside
# anything the model learnt from, while a few odd words in a review stay well below it.
MOSTLY_UNKNOWN = 0.5


@dataclass(frozen=True)
class TokenStats:
    """How much of a text the model saw: ``kept`` of its ``total`` word-piece tokens (special
    tokens not counted) fit the ``seq_len`` budget; ``unknown`` of the kept ones are [UNK]."""

    kept: int
    total: int
    unknown: int

    @property
    def unknown_share(self) -> float:
        """Share of [UNK] among the kept tokens (0.0 for a text with no tokens)."""
        return self.unknown / self.kept if self.kept else 0.0


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
        unk = getattr(self.tokenizer.model, "unk_token", None)
        self.unk_id = self.tokenizer.token_to_id(unk) if unk else None

    @classmethod
    def for_preprocessing(cls, pre: dict, tokenizer_json: str, seq_len: int | None = None) -> "TextEncoder":
        """The encoder a checkpoint's or bundle's ``preprocessing`` describes."""
        return cls(tokenizer_json, seq_len or pre["seq_len"], pre["pad_id"], pre.get("truncation", "head"))

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), seq_len)`` int64 ids; see :meth:`encode_with_stats`."""
        return self.encode_with_stats(texts)[0]

    def encode_with_stats(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStats]]:
        """Token ids ``(len(texts), seq_len)`` int64 and each text's :class:`TokenStats`.

        Raises InputError when ``texts`` is empty or a text is not a str, is empty or
        whitespace only, or holds lone surrogates (text ``i`` is named ``text i``).
        """
        if not texts:
            raise InputError("no text given: pass --text 'some text', --file FILE or pipe text on stdin")
        for i, t in enumerate(texts):
            check_text(t, f"text {i + 1}")
        out = np.full((len(texts), self.seq_len), self.pad_id, dtype=np.int64)
        stats = []
        for row, e in enumerate(self.tokenizer.encode_batch(texts)):
            ids, special = self._cut(e.ids), e.special_tokens_mask.count(1)
            # head truncation happens in the tokenizer: the tokens it cut are in ``overflowing``
            total = len(e.ids) - special + sum(len(o.ids) - o.special_tokens_mask.count(1) for o in e.overflowing)
            kept = min(total, self.seq_len - special)
            stats.append(TokenStats(kept, total, ids.count(self.unk_id) if self.unk_id is not None else 0))
            out[row, : len(ids)] = ids
        return out, stats

    def _cut(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.seq_len:
            return ids
        # head-tail: [CLS] first tokens … last tokens [SEP]
        keep = self.seq_len - 2
        head = keep // 4
        return ids[: 1 + head] + ids[len(ids) - 1 - (keep - head):]
