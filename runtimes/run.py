"""``swarmedge run``: stream inputs (texts, files, images, stdin) through a bundle, chunk by chunk.

Inputs are read, classified and handed back a chunk at a time (``runtimes.stream``), so the
first results come out while the input is still arriving and memory follows the chunk size,
not the input. Each chunk runs input by input on all cores (``runtimes.batching``): results
are in input order, and bit-identical whatever the chunk size or thread count.
"""

from collections import deque
from collections.abc import Iterator
from pathlib import Path

from swarmedge.errors import InputError
from swarmedge.runtimes.classifier import Classifier, Prediction
from swarmedge.runtimes.stream import CHUNK, Item, array_items, chunked, file_items, image_items, text_items
from swarmedge.runtimes.text import MOSTLY_UNKNOWN
from swarmedge.runtimes.textfiles import check_text

# What a text bundle takes, said when it is given an image, an array or another binary file.
TEXT_BUNDLE_INPUTS = "this bundle classifies text: pass texts with --text, a .txt/.jsonl with --file, or stdin"
GUESS_NOTES = 10  # "this prediction is a guess" notices shown before they are only counted


def input_chunks(kind: str, *, texts=(), file: Path | None = None, images=(), stdin=None,
                 notices: list[str], size: int = CHUNK) -> Iterator[list[Item]]:
    """The inputs for a bundle of ``kind`` ("text" or "boids") as lists of at most ``size``
    :class:`~swarmedge.runtimes.stream.Item`, read lazily. ``stdin`` is a binary stream
    (``sys.stdin.buffer``) read one text per line. Notices about the inputs are appended to
    ``notices`` as they arise. Raises InputError for inputs the bundle cannot take.
    """
    if kind == "text":
        if images:
            raise InputError("this bundle classifies text: pass --text, --file or -, not --image")
        if texts:
            wheres = ["--text" if len(texts) == 1 else f"--text {i}" for i in range(1, len(texts) + 1)]
            items = [Item(i, check_text(t, w), w, t) for i, (t, w) in enumerate(zip(texts, wheres))]
            return chunked([items], size)
        if file:
            return chunked(file_items(Path(file), TEXT_BUNDLE_INPUTS, notices), size)
        return chunked(text_items(stdin, "stdin", jsonl=False, expects=TEXT_BUNDLE_INPUTS, notices=notices), size)
    if texts or stdin is not None:
        raise InputError("this bundle classifies digit images: pass --image or --file, not text")
    if file:
        if Path(file).suffix.lower() not in (".npy", ".npz"):
            raise InputError(_not_an_array(Path(file)))
        return chunked(array_items(Path(file), notices, size), size)
    return chunked(image_items([Path(p) for p in images], notices, size), size)


def predict_chunks(clf: Classifier, chunks, *, skip: int = 0, check_skipped=None, check_last: int = 8,
                   notices: list[str] | None = None) -> Iterator[list[tuple[Item, Prediction]]]:
    """``(item, prediction)`` pairs of each chunk, in input order, chunk by chunk.

    ``skip`` inputs (already done: ``run --resume``) are read but not classified; the last
    ``check_last`` of them are passed to ``check_skipped(items)``, which may raise to say the
    input is not the one the results came from. Raises InputError when the input holds fewer
    than ``skip`` inputs. "This prediction is a guess" notices go to ``notices`` (the first
    ``GUESS_NOTES``, then a count at the end).
    """
    seen, guesses, skipped = 0, 0, deque(maxlen=check_last)
    for chunk in chunks:
        seen += len(chunk)
        if chunk[0].position < skip:
            done = chunk[:skip - chunk[0].position]
            skipped.extend(done)
            if len(done) < len(chunk) or seen == skip:  # the last skipped input is here: check them
                if check_skipped:
                    check_skipped(list(skipped))
            chunk = chunk[len(done):]
            if not chunk:
                continue
        values = [item.value for item in chunk]
        preds = clf.classify_texts(values) if clf.kind == "text" else clf.classify_images(values)
        for item, pred in zip(chunk, preds):
            note = guessing_notice(item.where, pred)
            if note:
                guesses += 1
                if notices is not None and guesses <= GUESS_NOTES:
                    notices.append(note)
        yield list(zip(chunk, preds))
    if seen < skip:
        raise InputError(f"the results already hold {skip} inputs, but this input has only {seen}: it is not the "
                         "input they came from; choose another -o, or --overwrite to start again")
    if notices is not None and guesses > GUESS_NOTES:
        notices.append(f"{guesses - GUESS_NOTES} more predictions were guesses (mostly unknown tokens): see "
                       "unknown_share in the --json results")


def guessing_notice(where: str, pred: Prediction) -> str | None:
    """A notice naming ``where`` when the model saw (almost) nothing it knows in the text, so
    its answer is a guess: no tokens at all, or at least ``MOSTLY_UNKNOWN`` of them [UNK]."""
    if pred.tokens_total == 0:
        return f"{where}: the tokenizer found no words in it, so this prediction is a guess"
    if pred.unknown_share is not None and pred.unknown_share >= MOSTLY_UNKNOWN:
        return (f"{where}: {pred.unknown_share:.0%} of its tokens are unknown to the model's vocabulary, "
                "so this prediction is a guess (another language, or mostly emoji or symbols?)")
    return None


def _not_an_array(file: Path) -> str:
    from swarmedge.runtimes.images import image_suffixes

    if file.suffix.lower() in image_suffixes():
        return f"{file} is an image: --file on a digit bundle takes a .npy/.npz array; pass it with --image {file}"
    return (f"{file}: --file on a digit bundle takes a .npy/.npz array of digits (N x 28 x 28 or N x 784); "
            "pass image files (or a folder of them) with --image")
