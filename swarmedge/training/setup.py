"""From CLI choices to a starting checkpoint and a data set (kept out of cli.py)."""

from pathlib import Path

from swarmedge.errors import InputError

# What each model family reads, and how to give it such data (for the kind-mismatch line).
_READS = {"swarmformer": ("texts", "a .jsonl of {\"text\", \"label\"} lines, or no --data for IMDB"),
          "boids": ("digit images", "a folder with one sub-folder of images per label "
                                    "(e.g. digits/5/a.png), or no --data for MNIST")}
_OTHER = {"swarmformer": "boids", "boids": "swarmformer"}
MAX_BOID_CLASSES = 8  # classes sit on the vertices of a cube


def load_training_data(model_type: str, data: Path | None, digits=None, reads: str | None = None):
    """The train split of the model's data set (from --data or the usual places),
    or the user's own labelled data when --data points at a .jsonl or a folder of class folders.

    Own data of the other kind (texts for a boid model, images for SwarmFormer) is refused
    with an ``InputError`` before anything is decoded; ``reads`` words the refusal for another
    command than train (e.g. "this boids model was trained on").
    """
    from swarmedge.datasets import load_dataset, load_labelled

    name = "imdb" if model_type == "swarmformer" else "mnist"
    if data is not None and str(data).lower() in ("mnist", "imdb") and not Path(data).exists():
        if str(data).lower() != name:  # --data imdb for the boid model
            _check_kind(model_type, Path(data), "texts" if str(data).lower() == "imdb" else "digit images", reads)
        data = None  # the model's own data set, from the usual places
    if data is not None and Path(data).exists() and _is_own_data(Path(data)):
        _check_kind(model_type, Path(data), "texts" if Path(data).is_file() else "digit images", reads)
        dataset = load_labelled(Path(data))
        _check_kind(model_type, Path(data), "texts" if dataset.kind == "text" else "digit images", reads)
        return dataset
    return load_dataset(name, "train", digits=digits, data=data)


def _check_kind(model_type: str, path: Path, holds: str, who: str | None = None) -> None:
    reads, how = _READS[model_type]
    if holds != reads:
        if who:  # not train: the model is given, only the data can change
            raise InputError(f"{path} holds {holds}, but {who} {reads}: pass --data {how}")
        raise InputError(f"{path} holds {holds}, but `train {model_type}` learns from {reads}: pass --data {how}; "
                         f"or train {_OTHER[model_type]} on {holds}")


def _is_own_data(p: Path) -> bool:
    if p.is_file():
        return p.name.endswith((".jsonl", ".jsonl.gz")) and not p.name.startswith("imdb_")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]  # .ipynb_checkpoints
    return bool(subdirs) and all(d.name not in ("mnist", "aclImdb", "train", "test") for d in subdirs)


def _is_number(name: str) -> bool:
    return name.lstrip("-").isdigit()


def minimum_inputs(val_fraction: float) -> int:
    """The fewest inputs whose seeded split (``Dataset.split``) leaves both parts non-empty."""
    if not 0 < val_fraction < 1:
        raise InputError(f"the validation share must be between 0 and 1, got {val_fraction}")
    n = 2
    while not 1 <= int(round(n * val_fraction)) < n:
        n += 1
    return n


def check_training_data(dataset, val_fraction: float = 0.1) -> None:
    """Refuse, in one line, labelled data that cannot train a sound classifier.

    At least 2 classes; labels that are all names or all integers (a file mixing them, e.g.
    "positive" and 0, would train a class per spelling); enough inputs for the train/validation
    split the loop carves. Raises ``InputError`` naming the problem and the fix.
    """
    names = list(dataset.label_names)
    if len(names) < 2:
        found = f"only the class {names[0]!r}" if names else "no labels"
        raise InputError(f"{dataset.source} has {found}: a classifier needs at least 2 classes "
                         "(add inputs of another label)")
    numbers = [n for n in names if _is_number(n)]
    words = [n for n in names if not _is_number(n)]
    if numbers and words:
        raise InputError(f"{dataset.source} mixes label names and integers (e.g. {words[0]!r} and {numbers[0]}): "
                         f"label every input by name, or every input by class index 0..{len(names) - 1}")
    least = minimum_inputs(val_fraction)
    if len(dataset) < least:
        raise InputError(f"{dataset.source} has {len(dataset)} input{'s' if len(dataset) != 1 else ''}; training "
                         f"needs at least {least} (a seeded {val_fraction:.0%} is held out for validation): "
                         "add labelled inputs")


def fit_config(model_type: str, config: dict, dataset, asked: tuple[str, tuple[int, ...]] | None = None) -> dict:
    """``config`` with as many outputs as ``dataset`` has labels.

    SwarmFormer: ``num_classes`` = the number of labels. Boid model: ``digits`` follows the data's
    classes (folder names that are MNIST digits 0-9 are used as they are; other names get
    the class slots 0..N-1, the names travel as the checkpoint's labels); at most 8 classes.
    ``asked`` is the flag the user gave (``("--digits", (5, 6))`` or ``("--classes", (0, 1, 2))``):
    refused in one line when it disagrees with the data, accepted when it agrees.
    """
    names = list(dataset.label_names)
    if model_type == "swarmformer":
        return {**config, "num_classes": len(names)}
    if len(names) > MAX_BOID_CLASSES:
        raise InputError(f"{dataset.source} has {len(names)} classes; a boid model tells apart at most "
                         f"{MAX_BOID_CLASSES} (the corners of a cube): keep {MAX_BOID_CLASSES} or fewer class folders")
    as_digits = all(n.isdigit() and str(int(n)) == n and int(n) <= 9 for n in names)
    digits = [int(n) for n in names] if as_digits else list(range(len(names)))
    if asked is not None:
        flag, wanted = asked
        agrees = set(wanted) == set(digits) if as_digits else (flag == "--classes" and len(wanted) == len(names))
        if not agrees:
            given = f"{flag} {len(wanted)}" if flag == "--classes" else f"{flag} {' '.join(map(str, wanted))}"
            raise InputError(f"{given} disagrees with {dataset.source}, whose classes are {', '.join(names)}: "
                             f"drop {flag} (the classes follow the data)")
    return {**config, "digits": digits}


def check_trainable(model_type: str, config: dict) -> None:
    """Raise ``InputError`` (one line) for a config outside ``swarmedge.limits``' bounds, or whose
    training state (weights, gradients and two AdamW moments: 16 bytes a parameter) would not
    fit in the memory available; nothing is built."""
    from swarmedge.limits import TRAIN_BYTES_PER_PARAM
    from swarmedge.models import config_from_dict

    try:
        config_from_dict(model_type, config, bytes_per_param=TRAIN_BYTES_PER_PARAM)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot train this {model_type}: {exc}") from None


def starting_checkpoint(model_type: str, config: dict, texts=None, vocab: Path | None = None,
                        seed: int = 0, labels=None, truncation: str = "head") -> dict:
    """A fresh checkpoint; SwarmFormer gets --vocab's tokenizer or one learnt from the texts."""
    from swarmedge.checkpoint import init_checkpoint
    from swarmedge.tokenizer import train_wordpiece

    check_trainable(model_type, config)
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
