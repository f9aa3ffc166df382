"""From CLI choices to a starting checkpoint and a data set (kept out of cli.py)."""

from pathlib import Path

from swarmedge.errors import InputError


def load_training_data(model_type: str, data: Path | None, digits=None):
    """The train split of the model's data set (from --data or the usual places),
    or the user's own labelled data when --data points at a .jsonl or a folder of class folders."""
    from swarmedge.datasets import load_dataset, load_labelled

    name = "imdb" if model_type == "swarmformer" else "mnist"
    if data is not None and Path(data).exists() and _is_own_data(Path(data)):
        return load_labelled(Path(data))
    return load_dataset(name, "train", digits=digits, data=data)


def _is_own_data(p: Path) -> bool:
    if p.is_file():
        return p.name.endswith((".jsonl", ".jsonl.gz")) and not p.name.startswith("imdb_")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]  # .ipynb_checkpoints
    return bool(subdirs) and all(d.name not in ("mnist", "aclImdb", "train", "test") for d in subdirs)


def starting_checkpoint(model_type: str, config: dict, texts=None, vocab: Path | None = None,
                        seed: int = 0, labels=None, truncation: str = "head") -> dict:
    """A fresh checkpoint; SwarmFormer gets --vocab's tokenizer or one learnt from the texts."""
    from swarmedge.checkpoint import init_checkpoint
    from swarmedge.tokenizer import train_wordpiece

    if model_type == "swarmformer" and vocab is None:
        if texts is None:
            raise InputError("SwarmFormer training needs texts or --vocab")
        tokenizer_json = train_wordpiece(texts, config.get("vocab_size", 30522))
        ckpt = init_checkpoint(model_type, config, seed=seed, tokenizer_json=tokenizer_json, truncation=truncation)
    else:
        ckpt = init_checkpoint(model_type, config, seed=seed, vocab=vocab, truncation=truncation)
    if labels is not None:
        ckpt["labels"] = list(labels)
    return ckpt
