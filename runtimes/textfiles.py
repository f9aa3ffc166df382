"""Reading texts: the one decoding policy for every path that brings text to a model.

``run --text/--file/-``, ``eval``/``compare``/``train`` data, ``export --calibration`` and
``Classifier.classify_texts`` all read through here, so a text gives the same tokens, and a
bad input the same one-line error, whichever way it came in.

The policy:

- bytes are UTF-8, with or without a byte-order mark; lines end in LF, CRLF or a lone CR;
- anything else (Latin-1/cp1252 bytes, UTF-16, NUL bytes) is refused, naming the file and
  line (``reviews.txt:3``, ``stdin line 3``, ``--text 2``) and how to convert it: guessing an
  encoding would silently classify mojibake;
- which files are JSON Lines is decided by the name alone, the same on every path: ``.jsonl``,
  ``.ndjson`` and ``.json``, each optionally ``.gz`` (``jsonlines.py`` checks their records).
  Every other name (``.txt``, ``.csv``, none) and stdin hold one text per line, blank or
  whitespace-only lines skipped (they are not texts);
- a file that is not text at all (an image, a NumPy array, a checkpoint, gzip without
  ``.gz``, …) is recognised by its first bytes and refused, saying what the path takes;
- a text that is given explicitly but is empty (``--text ""``, ``{"text": ""}``, ``""`` in the
  API) is an error, not a skip: skipping it would shift every later result against its
  input.
"""

import re
import zlib

from swarmedge.errors import InputError

_BREAK = re.compile(r"\r\n|\r|\n")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
TEXT_RECORD = '{"text": "…"}'
LABELLED_RECORD = '{"text": "…", "label": …}'
# What each path takes, said after "X is a PNG image, not text; ": callers pass their own.
TEXT_INPUTS = "give UTF-8 text: one text per line (.txt) or JSON Lines (.jsonl)"
# First bytes of files people hand a text path by mistake (zip, pickle, BMP, WebP, tar: binary_kind).
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"), (b"II*\0", "a TIFF image"), (b"MM\0*", "a TIFF image"),
    (b"\x93NUMPY", "a NumPy array (.npy)"), (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x1f\x8b", "gzip-compressed but not named .gz: add .gz to its name, or gunzip it"),
    (b"\xfd7zXZ\0", "xz-compressed: unxz it"), (b"\x28\xb5\x2f\xfd", "zstd-compressed: unzstd it"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"%PDF-", "a PDF document"), (b"\x7fELF", "a program (ELF)"),
)
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))


# Text inputs are read whole (one file, or stdin) before they are checked and tokenized; past
# this size memory, not the model, is the limit (a 210 MB one-line file peaked at 3.3 GB), and a
# path such as /dev/zero would never end. Larger collections: split them, e.g. split -l 100000.
MAX_TEXT_BYTES = 256 << 20
_BLOCK = 1 << 20


def read_stream(f, name: str, limit: int | None = None) -> bytes:
    """Everything binary file object ``f`` holds, refused past ``limit`` bytes (default
    ``MAX_TEXT_BYTES``; at most ``limit`` + one block is read). ``name`` names it in the error (a path, or ``stdin``).

    Raises InputError when the input is larger than ``limit``. An input whose first block is
    binary (a device such as /dev/zero, an executable) is not read further: that block is
    returned, and the text checks refuse it naming its kind.
    """
    limit = MAX_TEXT_BYTES if limit is None else limit
    chunks, size = [], 0
    while block := f.read(_BLOCK):
        if not chunks and not name.lower().endswith(".gz") and binary_kind(block, name):
            return block  # binary from its first block on: enough for the caller's refusal, which names the kind
        chunks.append(block)
        size += len(block)
        if size > limit:
            raise InputError(f"{name} is larger than {limit >> 20} MiB, more than swarmedge reads as one text input; "
                             "split it (e.g. split -l 100000 FILE part-) and run each part")
    return b"".join(chunks)


def read_bytes(path) -> bytes:
    """The bytes of ``path``, gunzipped when its name ends in ``.gz``; at most ``MAX_TEXT_BYTES``
    either way.

    Raises InputError when the file is missing, unreadable, too large or not valid gzip.
    """
    name = str(path)
    with open_binary(path) as f:
        try:
            data = read_stream(f, name)
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if name.lower().endswith(".gz"):
        data = _gunzip(data, name)
    return data


def open_binary(path):
    """``path`` opened for reading bytes; InputError (one line) for a missing file, a folder or
    a file that cannot be opened."""
    name = str(path)
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise InputError(f"file not found: {name}") from None
    except IsADirectoryError:
        raise InputError(f"{name} is a folder: give a .txt or .jsonl file") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None


def _gunzip(data: bytes, name: str) -> bytes:
    """``data`` gunzipped (every member, as gzip -d does), refused past ``MAX_TEXT_BYTES``."""
    out, left = [], MAX_TEXT_BYTES + 1
    try:
        while data and left > 0:
            z = zlib.decompressobj(wbits=31)  # gzip framing; max_length bounds a gzip bomb
            out.append(z.decompress(data, left))
            left -= len(out[-1])
            if not z.eof and left > 0:
                raise InputError(f"cannot read {name} as gzip (the file is cut short); gzip it again or give it "
                                 "uncompressed")
            data = z.unused_data
    except zlib.error as exc:
        raise InputError(f"cannot read {name} as gzip ({exc}); gzip it again or give it uncompressed") from None
    if left <= 0:
        raise InputError(f"{name} unpacks to more than {MAX_TEXT_BYTES >> 20} MiB, more than swarmedge reads as one "
                         "text input; split it and run each part")
    return b"".join(out)


def decode_lines(data: bytes, source: str, expects: str = TEXT_INPUTS, *,
                 first_line: int = 1, at_start: bool = True) -> list[tuple[str, str]]:
    """Split UTF-8 ``data`` into ``(where, line)`` pairs, numbering lines from ``first_line``.

    ``source`` is a file name (lines are named ``name:N``) or ``"stdin"`` (``stdin line N``).
    A leading UTF-8 byte-order mark is dropped; LF, CRLF and lone CR all end a line.
    Raises InputError for a file that is not text at all (saying what the path takes:
    ``expects``), UTF-16, NUL bytes or bytes that are not UTF-8, naming the line.

    A stream is decoded block by block (``runtimes.stream``): each block holds whole lines,
    ``first_line`` numbers its first, and only the first block (``at_start``) is checked for
    a byte-order mark and for being another kind of file.
    """
    if at_start:
        check_start(data, source, expects)
        if data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where, column = _locate(data, exc.start, source, first_line)
        raise InputError(f"cannot read {where} as UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} "
                         f"is not UTF-8; {_convert_hint(source, 'cp1252')}") from None
    if "\0" in text:  # stray NULs in otherwise good text (UTF-16 was caught above)
        where, column = _locate(data, data.index(b"\0"), source, first_line)
        fix = "remove it, e.g. tr -d '\\000' < FILE > clean.txt" if source == "stdin" \
            else f"remove it, e.g. tr -d '\\000' < {source} > clean.txt"
        raise InputError(f"{where} holds a NUL byte at column {column}, which text does not; {fix}")
    lines = _BREAK.split(text)
    if lines and lines[-1] == "":  # the break that ends the last line does not start another
        lines.pop()
    return [(line_name(source, n), line) for n, line in enumerate(lines, first_line)]


def check_start(data: bytes, source: str, expects: str = TEXT_INPUTS) -> None:
    """Raise InputError when the first bytes of ``source`` show it is not UTF-8 text: another
    kind of file (saying what the path takes: ``expects``) or UTF-16."""
    kind = binary_kind(data, source)
    if kind:  # compressed text needs unpacking, not another kind of input
        raise InputError(f"{source} is {kind}" if "compressed" in kind else f"{source} is {kind}, not text; {expects}")
    if data.startswith(_UTF16_BOMS) or _looks_utf16(data):
        raise InputError(f"{source} is UTF-16 text, not UTF-8; {_convert_hint(source, 'utf-16')}")


def binary_kind(data: bytes, source: str = "") -> str | None:
    """What a file that is not text is (``"a PNG image"``, ``"a NumPy array (.npy)"``, …),
    from its first bytes and, for zip archives, its name; None for anything that may be text.

    Cheap: it looks at the first 8 KB only. A file of mostly control bytes with no known
    signature is ``"binary data"``; a single stray NUL in text is not (that gets its own line).
    """
    head = data[:8192]
    name = source.lower()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04"):  # zip: .npz, a torch.save checkpoint, or any archive
        member = head[30:30 + int.from_bytes(head[26:28], "little")]
        if name.endswith(".npz") or member.endswith(b".npy"):
            return "a NumPy archive (.npz)"
        if name.endswith((".pt", ".pth", ".ckpt", ".bin")) or b"data.pkl" in head or b"/data/" in head:
            return "a PyTorch checkpoint"
        return "a zip archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (e.g. a PyTorch checkpoint)"
    if head[:2] == b"BM" and head[6:10] == b"\0\0\0\0":
        return "a BMP image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive"
    if name.endswith(".safetensors") and head[8:10] == b'{"':
        return "a safetensors checkpoint"
    if head and not head.startswith(_UTF16_BOMS) and not _looks_utf16(head):
        controls = sum(head.count(bytes([b])) for b in _CONTROL_BYTES)
        if controls > max(2, len(head) // 20):  # text has next to none; binary formats plenty
            return "binary data"
    return None


def _looks_utf16(data: bytes) -> bool:
    # UTF-16 without a BOM: text in the Latin range has a NUL in every other byte
    head = data[:4096]
    pairs = len(head) // 2
    if pairs < 2:
        return False
    even, odd = head[0:pairs * 2:2].count(0), head[1:pairs * 2:2].count(0)
    return max(even, odd) >= 0.4 * pairs and min(even, odd) <= 0.05 * pairs


def decode_text(data: bytes, source: str) -> str:
    """A whole document (one text per file, e.g. an aclImdb review) read by the same policy:
    UTF-8 with its BOM dropped; raises InputError naming ``source`` and the line otherwise."""
    return "\n".join(line for _, line in decode_lines(data, source))


def line_name(source: str, n: int) -> str:
    """How errors and notices name line ``n`` of ``source``: ``reviews.txt:3`` or ``stdin line 3``."""
    return f"stdin line {n}" if source == "stdin" else f"{source}:{n}"


def _locate(data: bytes, offset: int, source: str, first_line: int = 1) -> tuple[str, int]:
    before = data[:offset]
    starts = [m.end() for m in re.finditer(rb"\r\n|\r|\n", before)]
    line_start = starts[-1] if starts else 0
    column = len(before[line_start:].decode("utf-8", "replace")) + 1
    return line_name(source, len(starts) + first_line), column


def _convert_hint(source: str, guess: str) -> str:
    if source == "stdin":
        return f"pipe UTF-8 instead, e.g. iconv -f {guess} -t utf-8 FILE | swarmedge run BUNDLE -"
    return f"save it as UTF-8, e.g. iconv -f {guess} -t utf-8 {source} > utf8.txt"


def check_text(text, where: str) -> str:
    """``text`` if it is a non-empty str that can be encoded as UTF-8; else InputError naming ``where``.

    A str with lone surrogates is what Python makes of non-UTF-8 bytes in command-line
    arguments (``--text "$(cat latin1.txt)"``, decoded with surrogateescape) or of
    ``bytes.decode(..., "surrogateescape")``; the tokenizer cannot take it.
    """
    if not isinstance(text, str):
        raise InputError(f"{where} is {type(text).__name__}, not a string: give texts as str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        column, char = exc.start + 1, text[exc.start]
        if "\udc80" <= char <= "\udcff":  # surrogateescape keeps the undecodable byte here
            what = f"byte 0x{ord(char) - 0xDC00:02x} at column {column}"
        else:
            what = f"lone surrogate U+{ord(char):04X} at column {column}"
        if where.startswith("--text"):
            fix = 'give UTF-8 text, e.g. --text "$(iconv -f cp1252 -t utf-8 FILE)"'
        elif where.startswith("text "):  # the Python API
            fix = "decode the bytes with their real encoding, e.g. data.decode('cp1252'), not surrogateescape"
        else:  # a JSON \udXXX escape in a file
            fix = "fix the \\u escape in that record"
        raise InputError(f"{where} is not UTF-8 text: {what}; {fix}") from None
    if not text.strip():
        raise InputError(f"{where} is empty: give some words to classify")
    return text


def text_lines(data: bytes, source: str, expects: str = TEXT_INPUTS, *,
               first_line: int = 1, at_start: bool = True) -> tuple[list[str], list[str]]:
    """Texts of a one-text-per-line file or stdin: ``(texts, wheres)``, blank lines skipped.
    ``first_line`` and ``at_start`` as for :func:`decode_lines`."""
    texts, wheres = [], []
    for where, line in decode_lines(data, source, expects, first_line=first_line, at_start=at_start):
        if line.strip():
            texts.append(line)
            wheres.append(where)
    return texts, wheres


def read_texts_from(path, *, expects: str = TEXT_INPUTS,
                    notices: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Texts of a file: ``(texts, wheres)``; JSON Lines by record (:func:`is_jsonl`), anything
    else by line. A non-JSON-Lines file whose every line is a ``{"text": …}`` object adds a
    notice to ``notices`` (it is still read line by line: the name decides).

    Raises InputError for a missing, binary or undecodable file (``expects`` says what the
    path takes), a bad record, or a file with no text.
    """
    from swarmedge.runtimes.jsonlines import is_jsonl, jsonl_lookalike, jsonl_records, lookalike_hint  # imports us

    data = read_bytes(path)
    if is_jsonl(path):
        records = jsonl_records(data, str(path), expects=expects)
        texts, wheres = [r["text"] for _, r in records], [w for w, _ in records]
    else:
        texts, wheres = text_lines(data, str(path), expects)
        if notices is not None and jsonl_lookalike(texts):
            notices.append(f"every line of {path} is a {TEXT_RECORD} object, but only .jsonl/.ndjson/.json files "
                           f"are read as JSON Lines, so each whole line is classified as text; {lookalike_hint(path)}")
    if not texts:
        raise InputError(f"{path} holds no text: give one text per line, or {TEXT_RECORD} per line in .jsonl")
    return texts, wheres
