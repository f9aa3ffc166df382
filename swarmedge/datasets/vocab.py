"""bert-base-uncased's WordPiece vocabulary: what a new SwarmFormer tokenizes with by default,
as the published SwarmFormer checkpoints do. Found in the data search order (``sources``) or
downloaded into the cache, verified, on first use."""

from pathlib import Path

from swarmedge.datasets.sources import RemoteFile, fetch

# 30,522 tokens; size and sha256 of the file Hugging Face serves for bert-base-uncased.
VOCAB = RemoteFile(
    "bert-base-uncased-vocab.txt",
    ("https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt",
     "https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt"),
    231_508, sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3")


def bert_vocab(download: bool = True) -> Path:
    """Path of bert-base-uncased's vocab.txt: $SWARMEDGE_DATA, the cache, else downloaded there.

    Raises InputError (one line naming --vocab and SWARMEDGE_DATA) when it is nowhere and
    cannot be downloaded.
    """
    return fetch([VOCAB], "bert-base-uncased's vocabulary", None, download, option="--vocab VOCAB.txt") / VOCAB.name
