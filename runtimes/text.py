"""Text -> token ids as the SwarmFormer checkpoints expect: [CLS] … [SEP], padded with 0."""

from dataclasses import dataclass

import numpy as np

from swarmedge.errors import BundleError, InputError
from swarmedge.runtimes.textfiles import check_text

TRUNCATIONS = ("head", "head-tail")
# At or above this share of [UNK] among the tokens the model sees, most of what it is given
# carries no information for it, so its answer is a guess (emoji, another language or
# script): English reviews have well under 1% [UNK] with the bert-base-uncased vocabulary,
# and training hides at most 10% behind [UNK] (--token-dropout), so half is far outside
# anything the model learnt from, while a few odd words in a review stay well below it.
MOSTLY_UNKNOWN = 0.5
# Texts longer than this many characters are tokenized only at their head and tail (what
# truncation keeps), so a 12 MB line costs megabytes, not gigabytes. Far above any review
# (the longest IMDB review is under 14,000 characters), so those take the full path.
LONG_TEXT_CHARS = 100_000
# Characters next to a slice's cut whose tokens are not trusted: more than twice the longest
# pattern a normalizer replaces, so every token kept is the one the whole text gives.
_CUT_MARGIN = 256
_FIRST_SLICE = 16  # characters per kept token in the first slices tried (English: about 4)
_SLICEABLE_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFD", "StripAccents", "Replace"}
_SLICEABLE_PRE_TOKENIZERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


@dataclass(frozen=True)
class TokenStats:
    """How much of a text the model saw: ``kept`` of its ``total`` word-piece tokens (special
    tokens not counted) fit the ``seq_len`` budget; ``unknown`` of the kept ones are [UNK].
    For a text over ``LONG_TEXT_CHARS`` only its head and tail are tokenized: ``total`` is
    then a lower bound (``total_is_lower_bound``), the kept tokens are still exact."""

    kept: int
    total: int
    unknown: int
    total_is_lower_bound: bool = False

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

    def __init__(self, tokenizer_json: str, seq_len: int, pad_id: int = 0, truncation: str = "head",
                 vocab_size: int | None = None, source: str = "the tokenizer"):
        from tokenizers import Tokenizer

        if truncation not in TRUNCATIONS:
            raise InputError(f"unknown truncation {truncation!r}: use one of {', '.join(TRUNCATIONS)}")
        try:
            self.tokenizer = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise InputError(f"the bundle's tokenizer is corrupt ({exc}); export the bundle again") from None
        if vocab_size is not None:
            check_vocabulary(self.tokenizer, vocab_size, source)
        self.seq_len, self.pad_id, self.truncation = seq_len, pad_id, truncation
        if truncation == "head":  # the library keeps room for [CLS]/[SEP] itself
            self.tokenizer.enable_truncation(max_length=seq_len)
        else:
            self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        unk = getattr(self.tokenizer.model, "unk_token", None)
        self.unk_id = self.tokenizer.token_to_id(unk) if unk else None
        self._ends = _special_ends(self.tokenizer) if _sliceable(tokenizer_json) else None
        self._slicer = None  # an untruncating copy for long texts' slices, made on first use

    @classmethod
    def for_preprocessing(cls, pre: dict, tokenizer_json: str, seq_len: int | None = None,
                          vocab_size: int | None = None) -> "TextEncoder":
        """The encoder a checkpoint's or bundle's ``preprocessing`` describes.

        ``vocab_size`` (a bundle's ``config.vocab_size``): the tokenizer is checked against
        it when given (:func:`check_vocabulary`; BundleError naming ``pre["tokenizer"]``).
        """
        source = f"the bundle's {pre['tokenizer']}" if vocab_size is not None else "the tokenizer"
        return cls(tokenizer_json, seq_len or pre["seq_len"], pre["pad_id"], pre.get("truncation", "head"),
                   vocab_size=vocab_size, source=source)

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
        stats: list[TokenStats | None] = [None] * len(texts)
        short = []
        for row, t in enumerate(texts):
            long = self._encode_long(t) if len(t) > LONG_TEXT_CHARS and self._ends else None
            if long is None:
                short.append(row)
            else:
                ids, stats[row] = long
                out[row, : len(ids)] = ids
        for row, e in zip(short, self.tokenizer.encode_batch([texts[r] for r in short])):
            ids, special = self._cut(e.ids), e.special_tokens_mask.count(1)
            # head truncation happens in the tokenizer: the tokens it cut are in ``overflowing``
            total = len(e.ids) - special + sum(len(o.ids) - o.special_tokens_mask.count(1) for o in e.overflowing)
            kept = min(total, self.seq_len - special)
            stats[row] = TokenStats(kept, total, ids.count(self.unk_id) if self.unk_id is not None else 0)
            out[row, : len(ids)] = ids
        return out, stats

    def _encode_long(self, text: str) -> tuple[list[int], TokenStats] | None:
        # The tokens truncation keeps come from the text's first and last ``keep`` tokens, so
        # only a head and a tail slice are tokenized, each grown until it holds that many
        # tokens away from its cut. None (tokenize it whole) if they would meet.
        cls, sep = self._ends
        keep = self.seq_len - 2
        size = _FIRST_SLICE * self.seq_len + _CUT_MARGIN
        while 2 * size < len(text):
            head = self._slice_ids(text[:size], cut_at_end=True)
            tail = self._slice_ids(text[-size:], cut_at_end=False)
            if len(head) >= keep and len(tail) >= keep:
                first = keep // 4 if self.truncation == "head-tail" else keep
                ids = [cls, *head[:first], *(tail[len(tail) - (keep - first):] if keep > first else []), sep]
                unknown = ids.count(self.unk_id) if self.unk_id is not None else 0
                return ids, TokenStats(keep, len(head) + len(tail), unknown, total_is_lower_bound=True)
            size *= 2
        return None

    def _slice_ids(self, piece: str, cut_at_end: bool) -> list[int]:
        # Content ids of ``piece`` less every word within _CUT_MARGIN characters of its cut:
        # the words left are tokenized exactly as in the whole text.
        if self._slicer is None:
            from tokenizers import Tokenizer

            self._slicer = Tokenizer.from_str(self.tokenizer.to_str())
            self._slicer.no_truncation()
            self._slicer.no_padding()
        e = self._slicer.encode(piece, add_special_tokens=False)
        words, offsets = e.word_ids, e.offsets
        if cut_at_end:
            limit = len(piece) - _CUT_MARGIN
            cut = next((words[i] for i, (_, end) in enumerate(offsets) if end > limit), None)
            return [i for i, w in zip(e.ids, words) if cut is None or w < cut]
        cut = next((words[i] for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < _CUT_MARGIN), None)
        return [i for i, w in zip(e.ids, words) if cut is None or w > cut]

    def _cut(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.seq_len:
            return ids
        # head-tail: [CLS] first tokens … last tokens [SEP]
        keep = self.seq_len - 2
        head = keep // 4
        return ids[: 1 + head] + ids[len(ids) - 1 - (keep - head):]


def check_vocabulary(tokenizer, vocab_size: int, source: str = "the tokenizer") -> None:
    """Raise BundleError unless every id ``tokenizer`` (a ``tokenizers.Tokenizer``) can produce,
    added tokens included, is below ``vocab_size`` (the model's embedding rows): otherwise
    only a text holding such a token would fail, and without naming the tokenizer.
    ``source`` names the file in the message."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    if not vocab:
        raise BundleError(f"{source} has no tokens; export the bundle again")
    token, largest = max(vocab.items(), key=lambda item: item[1])
    if largest >= vocab_size:
        shown = repr(token) if len(token) <= 40 and token.isprintable() else ascii(token)[:40]
        raise BundleError(f"{source} maps {shown} to id {largest}, outside the model's vocabulary "
                          f"(config.vocab_size {vocab_size}): not this model's tokenizer; export the bundle again")


def _sliceable(tokenizer_json: str) -> bool:
    """Whether a long text's head and tail can be tokenized on their own with the same tokens
    as the whole text: WordPiece after per-character normalizers, fixed-string replacements
    that cannot overlap themselves, and a pre-tokenizer that splits on spaces/punctuation."""
    import json

    cfg = json.loads(tokenizer_json)
    if (cfg.get("model") or {}).get("type") != "WordPiece":
        return False
    if (cfg.get("pre_tokenizer") or {}).get("type") not in _SLICEABLE_PRE_TOKENIZERS:
        return False
    norm = cfg.get("normalizer")
    steps = [] if norm is None else norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    for step in steps:
        if step.get("type") not in _SLICEABLE_NORMALIZERS:
            return False
        if step["type"] == "Replace":
            pattern = (step.get("pattern") or {}).get("String")
            if not pattern or 2 * len(pattern) >= _CUT_MARGIN or any(
                    pattern[:k] == pattern[-k:] for k in range(1, len(pattern))):
                return False  # a regex, or a string whose matches could overlap and shift
    return True


def _special_ends(tokenizer) -> tuple[int, int] | None:
    """``([CLS], [SEP])`` ids when the tokenizer wraps a text in exactly those two, else None."""
    ids = tokenizer.encode("", add_special_tokens=True).ids
    return (ids[0], ids[1]) if len(ids) == 2 else None
