"""WordPiece tokenizers as the SwarmFormer checkpoints expect (bert-base-uncased rules).

Built with the ``tokenizers`` library and stored as its JSON, which travels inside
checkpoints and bundles; the device side only loads it (``swarmedge.runtimes.text``).
"""

from pathlib import Path

from swarmedge.errors import InputError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def wordpiece_from_vocab(vocab_path: Path) -> str:
    """A bert-uncased WordPiece tokenizer (as JSON) for a ``vocab.txt``, one token per line.

    Lower-cases, strips accents, splits on whitespace and punctuation, wraps in
    ``[CLS] … [SEP]``; padding and truncation are applied by the runtime.
    """
    vocab_path = Path(vocab_path)
    try:
        tokens = vocab_path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read vocabulary {vocab_path}: {exc}; pass a UTF-8 vocab.txt") from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise InputError(f"{vocab_path} has {len(tokens) - len(vocab)} duplicate lines: not a WordPiece vocab.txt")
    return wordpiece_from_vocab_dict(vocab, str(vocab_path))


def wordpiece_from_vocab_dict(vocab: dict[str, int], where: str = "the vocabulary",
                              drop_html_breaks: bool = False) -> str:
    """The tokenizer JSON for a token -> id mapping that includes the special tokens.

    ``drop_html_breaks`` turns the ``<br />`` tags of IMDB-style texts into spaces before
    anything else (vocabularies swarmedge learns; bert's own rules keep each as 4 tokens).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    missing = [s for s in SPECIALS if s not in vocab]
    if missing:
        raise InputError(f"{where} lacks {missing}: pass bert-base-uncased's vocab.txt or one like it")
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    bert = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.normalizer = normalizers.Sequence([normalizers.Replace("<br />", " "), bert]) if drop_html_breaks else bert
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(list(SPECIALS))  # never split, skipped when decoding, as in bert's own tokenizer
    return tok.to_str()


def vocab_size(tokenizer_json: str) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json).get_vocab_size()


def vocabulary(tokenizer_json: str) -> dict[str, int]:
    """The tokenizer's token -> id mapping, specials included."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json).get_vocab(with_added_tokens=True)


def id_count(tokenizer_json: str) -> int:
    """How many embedding rows the tokenizer's ids need: its largest id + 1 (specials included)."""
    from tokenizers import Tokenizer

    ids = Tokenizer.from_str(tokenizer_json).get_vocab(with_added_tokens=True).values()
    return max(ids) + 1 if ids else 0


def train_wordpiece(texts: list[str], vocab_size: int, min_frequency: int = 2) -> str:
    """A WordPiece vocabulary of ``vocab_size`` learnt from ``texts``, deterministically.

    The specials, every character seen (word-initial and ``##``-continuation), then whole
    words by frequency (ties alphabetical). Words outside the vocabulary fall back to
    characters. The ``tokenizers`` trainer was not used: its ties break differently from
    run to run, so the same seed gave different vocabularies.
    """
    from collections import Counter

    from tokenizers import Tokenizer

    base = Tokenizer.from_str(wordpiece_from_vocab_dict({s: i for i, s in enumerate(SPECIALS)}))
    words: Counter = Counter()
    for text in texts:
        normal = base.normalizer.normalize_str(text.replace("<br />", " "))
        words.update(w for w, _ in base.pre_tokenizer.pre_tokenize_str(normal))
    pieces: Counter = Counter()
    for word, n in words.items():
        pieces[word[0]] += n
        for ch in word[1:]:
            pieces["##" + ch] += n
    tokens = list(SPECIALS) + sorted(pieces, key=lambda p: (-pieces[p], p))
    if len(tokens) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(tokens)} characters in the texts")
    seen = set(tokens)
    frequent = sorted((w for w, n in words.items() if n >= min_frequency and w not in seen),
                      key=lambda w: (-words[w], w))
    tokens += frequent[: vocab_size - len(tokens)]
    return wordpiece_from_vocab_dict({t: i for i, t in enumerate(tokens)}, drop_html_breaks=True)
