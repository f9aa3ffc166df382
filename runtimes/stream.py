"""The inputs of ``swarmedge run`` as a stream of chunks, so that memory follows the chunk size
and results come out while the input is still arriving.

Texts (stdin, ``.txt``, ``.jsonl``, each optionally ``.gz``) are read block by block with the
decoding policy of ``textfiles.py``, applied to whole lines: a block is cut at its last line
break, and its lines are numbered on from the block before, so an error names the same line
as reading the whole file would. ``read1`` returns what a pipe holds rather than waiting
for a full block, so a line piped in is classified at once. ``.npy`` digit arrays are memory
mapped and framed a chunk at a time; image files are decoded a chunk at a time.

Every input becomes an :class:`Item` numbered by its ``position`` in the input (from 0;
blank lines are not inputs), which keys its result (``runtimes.results``).
"""

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from swarmedge.errors import InputError
from swarmedge.runtimes.jsonlines import is_jsonl, jsonl_lookalike, jsonl_records, lookalike_hint
from swarmedge.runtimes.results import NO_ID
from swarmedge.runtimes.textfiles import (
    MAX_TEXT_BYTES,
    TEXT_INPUTS,
    TEXT_RECORD,
    check_start,
    line_name,
    open_binary,
    text_lines,
)

BLOCK = 1 << 16  # bytes asked of the input per read: a block of short lines is ~2,000 texts
CHUNK = 256  # inputs classified, then written, at a time: results appear chunk by chunk
# One line is held whole before it is decoded; past this it is no text a classifier of
# 256-token windows needs (War and Peace is 3.2 MB), and /dev/urandom-like input would
# otherwise grow without end.
MAX_LINE_BYTES = 16 << 20
_BREAKS = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Item:
    """One input of a stream: ``value`` is a text (str) or a digit ((28, 28) float32 in 0..1).

    ``position`` counts inputs from 0; ``where`` names it in errors and notices
    (``reviews.txt:3``); ``name`` is its result's ``input`` field, None for corpus lines;
    ``id`` the input record's ``"id"`` field (``null`` is None), ``NO_ID`` when it has none.
    """

    position: int
    value: object
    where: str
    name: str | None = None
    id: object = NO_ID


def chunked(batches: Iterable[list], size: int = CHUNK) -> Iterator[list]:
    """Lists of at most ``size`` from ``batches``, never waiting to fill one: a batch that
    arrived is passed on at once (a pipe's lines are classified while the next ones come)."""
    for batch in batches:
        for start in range(0, len(batch), size):
            yield batch[start:start + size]


def line_blocks(f, source: str, expects: str = TEXT_INPUTS) -> Iterator[tuple[int, bytes]]:
    """``(number of its first line, bytes)`` for blocks of whole lines of binary stream ``f``.

    A block ends after a line break (a CR at a block's end is held back: it may be half of a
    CRLF); the last block may end without one. The first bytes are checked for being another
    kind of file at once, so /dev/zero or a PNG is refused before more is read. Raises
    InputError for those, for a line longer than ``MAX_LINE_BYTES``, and for a gzip stream
    that is cut short or corrupt.
    """
    read = getattr(f, "read1", None) or f.read
    pending, line, started = bytearray(), 1, False
    while True:
        try:
            block = read(BLOCK)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            what = "the file is cut short" if isinstance(exc, EOFError) else str(exc)
            raise InputError(f"cannot read {source} as gzip ({what}); gzip it again or give it uncompressed") from None
        if not started and block:
            check_start(bytes(block[:8192]), source, expects)
            started = True
        if not block:
            if pending:
                yield line, bytes(pending)
            return
        pending += block
        cut = _after_last_break(pending)
        if cut:
            piece = bytes(pending[:cut])
            del pending[:cut]
            yield line, piece
            line += len(_BREAKS.findall(piece))
        elif len(pending) > MAX_LINE_BYTES:
            raise InputError(f"{line_name(source, line)} is longer than {MAX_LINE_BYTES >> 20} MiB with no line break; "
                             "give one text per line (is this a text file?)")


def _after_last_break(buf: bytearray) -> int:
    end = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
    if end == len(buf) - 1 and buf[end] == 0x0D:  # CR last: its LF may be in the next read
        end = max(buf.rfind(b"\n", 0, end), buf.rfind(b"\r", 0, end))
    return end + 1


def text_items(f, source: str, *, jsonl: bool, expects: str = TEXT_INPUTS,
               notices: list[str] | None = None) -> Iterator[list[Item]]:
    """Lists of text :class:`Item` from binary stream ``f``, one list per block read.

    ``jsonl``: each non-blank line is a ``{"text": …}`` record (its ``"id"``, if any, is kept);
    else each non-blank line is a text. A one-text-per-line input whose first block is all
    ``{"text": …}`` objects adds a notice to ``notices`` (it looks like misnamed JSON Lines).
    Raises InputError as ``line_blocks``, ``jsonl_records`` and ``text_lines`` do, naming the line.
    """
    position, at_start = 0, True
    blocks = line_blocks(f, source, expects)
    for first, piece in blocks:
        if jsonl:
            try:
                records = jsonl_records(piece, source, expects=expects, first_line=first, at_start=at_start)
            except InputError:
                if at_start:  # one JSON document (an array, an indented object) gets its own advice
                    _refuse_json_document(piece, blocks, source, expects)
                raise
            items = [Item(position + i, r["text"], where, None, r.get("id", NO_ID))
                     for i, (where, r) in enumerate(records)]
        else:
            texts, wheres = text_lines(piece, source, expects, first_line=first, at_start=at_start)
            items = [Item(position + i, t, w) for i, (t, w) in enumerate(zip(texts, wheres))]
            if at_start and notices is not None and jsonl_lookalike(texts):
                notices.append(_lookalike_notice(source))
        at_start = False
        position += len(items)
        if items:
            yield items
    if position == 0:
        raise InputError("stdin held no text: pipe one text per line" if source == "stdin" else
                         f"{source} holds no text: give one text per line, or {TEXT_RECORD} per line in .jsonl")


def _refuse_json_document(piece: bytes, blocks, source: str, expects: str) -> None:
    """Read on (up to ``MAX_TEXT_BYTES``) and raise the one-document refusal of
    ``jsonl_records`` if the whole input is one JSON document; return otherwise."""
    data, size = [piece], len(piece)
    for _, more in blocks:
        data.append(more)
        size += len(more)
        if size > MAX_TEXT_BYTES:
            return
    jsonl_records(b"".join(data), source, expects=expects)


def _lookalike_notice(source: str) -> str:
    if source == "stdin":
        return (f"the lines on stdin are {TEXT_RECORD} objects, but stdin is read one text per line, so each whole "
                "line is classified as text; pass the file with --file FILE.jsonl")
    return (f"the lines of {source} are {TEXT_RECORD} objects, but only .jsonl/.ndjson/.json files are read as "
            f"JSON Lines, so each whole line is classified as text; {lookalike_hint(source)}")


def file_items(path: Path, expects: str = TEXT_INPUTS, notices: list[str] | None = None) -> Iterator[list[Item]]:
    """Lists of text :class:`Item` of a .txt/.jsonl file, gunzipped as it is read when its name
    ends in ``.gz``; JSON Lines by name (``jsonlines.is_jsonl``). Raises InputError as
    :func:`text_items` does, and for a missing, unreadable or folder path."""
    raw = open_binary(path)
    f = gzip.GzipFile(fileobj=raw, mode="rb") if str(path).lower().endswith(".gz") else raw
    try:
        yield from text_items(f, str(path), jsonl=is_jsonl(path), expects=expects, notices=notices)
    finally:
        f.close()
        raw.close()  # closing a GzipFile leaves the file it reads open


def array_items(path: Path, notices: list[str] | None = None, size: int = CHUNK) -> Iterator[list[Item]]:
    """Lists of digit :class:`Item` of a .npy (memory mapped: only a chunk is in memory) or
    .npz array, each digit read as ``run --file`` always has (``images.stream_array``).
    Raises InputError as ``images.read_image_array`` does, naming ``NAME[i]``."""
    from swarmedge.runtimes.images import stream_array

    path = Path(path)
    for start, digits in stream_array(path, notices, size):
        yield [Item(start + i, d, f"{path.name}[{start + i}]", f"{path.name}[{start + i}]")
               for i, d in enumerate(digits)]


def image_items(paths: list[Path], notices: list[str] | None = None, size: int = CHUNK) -> Iterator[list[Item]]:
    """Lists of digit :class:`Item` of image files and folders of them (their images, sorted,
    sub-folders too), decoded a chunk at a time, each read as ``run --image`` reads it
    (``images.load_image``; a folder's notices are one line of counts). Raises InputError
    naming the first file that cannot be read."""
    from swarmedge.runtimes.images import load_image, stream_folder

    position = 0
    for p in map(Path, paths):
        parts = stream_folder(p, notices, size) if p.is_dir() else [[(p, load_image(p, notices))]]
        for part in parts:
            yield [Item(position + i, digit, str(f), str(f)) for i, (f, digit) in enumerate(part)]
            position += len(part)
