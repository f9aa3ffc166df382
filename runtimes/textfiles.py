"""Reading texts: the one decoding policy for every path that brings text to a model.

``run --text/--file/-``, ``eval``/``compare``/``train`` data, ``export --calibration`` and
``Classifier.classify_texts`` all read through here, so a text gives the same tokens, and a
bad input the same one-line error, whichever way it came in.

The policy:

- bytes are UTF-8, with or without a byte-order mark; lines end in LF, CRLF or a lone CR;
- anything else (Latin-1/cp1252 bytes, UTF-16, NUL bytes) is refused, naming the file and
  line (``reviews.txt:3``, ``stdin line 3``, ``--text 2``) and how to convert it: guessing an
  encoding would silently classify mojibake;
- in ``.txt`` files and on stdin a line is one text, and blank or whitespace-only lines are
  skipped (they are not texts); in JSONL each non-blank line is one ``{"text": …}`` object;
- a text that is given explicitly but is empty (``--text ""``, ``{"text": ""}``, ``""`` in the
  API) is an error, not a skip: skipping it would shift every later result against its
  input.
"""

import gzip
import json
import re
import zlib

from swarmedge.errors import InputError

_BREAK = re.compile(r"\r\n|\r|\n")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
TEXT_RECORD = '{"text": "…"}'
LABELLED_RECORD = '{"text": "…", "label": …}'
_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
               list: "a list", dict: "an object"}


def read_bytes(path) -> bytes:
    """The bytes of ``path``, gunzipped when its name ends in ``.gz``.

    Raises InputError when the file is missing, unreadable or not valid gzip.
    """
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"file not found: {name}") from None
    except IsADirectoryError:
        raise InputError(f"{name} is a folder: give a .txt or .jsonl file") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read {name} as gzip ({exc}); gzip it again or give it uncompressed") from None
    return data


def decode_lines(data: bytes, source: str) -> list[tuple[str, str]]:
    """Split UTF-8 ``data`` into ``(where, line)`` pairs, numbering lines from 1.

    ``source`` is a file name (lines are named ``name:N``) or ``"stdin"`` (``stdin line N``).
    A leading UTF-8 byte-order mark is dropped; LF, CRLF and lone CR all end a line.
    Raises InputError for UTF-16, NUL bytes or bytes that are not UTF-8, naming the line.
    """
    if data.startswith(_UTF16_BOMS):
        raise InputError(f"{source} is UTF-16 text, not UTF-8; {_convert_hint(source, 'utf-16')}")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where, column = _locate(data, exc.start, source)
        raise InputError(f"cannot read {where} as UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} "
                         f"is not UTF-8; {_convert_hint(source, 'cp1252')}") from None
    if "\0" in text:  # valid UTF-8, but UTF-16 without a byte-order mark looks like this
        where, _ = _locate(data, data.index(b"\0"), source)
        raise InputError(f"{where} holds NUL bytes: UTF-16 or binary, not UTF-8 text; "
                         f"{_convert_hint(source, 'utf-16')}")
    lines = _BREAK.split(text)
    if lines and lines[-1] == "":  # the break that ends the last line does not start another
        lines.pop()
    return [(line_name(source, n), line) for n, line in enumerate(lines, 1)]


def decode_text(data: bytes, source: str) -> str:
    """A whole document (one text per file, e.g. an aclImdb review) read by the same policy:
    UTF-8 with its BOM dropped; raises InputError naming ``source`` and the line otherwise."""
    return "\n".join(line for _, line in decode_lines(data, source))


def line_name(source: str, n: int) -> str:
    """How errors and notices name line ``n`` of ``source``: ``reviews.txt:3`` or ``stdin line 3``."""
    return f"stdin line {n}" if source == "stdin" else f"{source}:{n}"


def _locate(data: bytes, offset: int, source: str) -> tuple[str, int]:
    before = data[:offset]
    starts = [m.end() for m in re.finditer(rb"\r\n|\r|\n", before)]
    line_start = starts[-1] if starts else 0
    column = len(before[line_start:].decode("utf-8", "replace")) + 1
    return line_name(source, len(starts) + 1), column


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


def text_lines(data: bytes, source: str) -> tuple[list[str], list[str]]:
    """Texts of a one-text-per-line file or stdin: ``(texts, wheres)``, blank lines skipped."""
    texts, wheres = [], []
    for where, line in decode_lines(data, source):
        if line.strip():
            texts.append(line)
            wheres.append(where)
    return texts, wheres


def jsonl_records(data: bytes, source: str, *, label: bool = False) -> list[tuple[str, dict]]:
    """``(where, record)`` for each non-blank line of JSONL ``data``, each checked.

    Every record must be an object with a non-empty string "text" (and a "label" when
    ``label``). Raises InputError naming the line: invalid JSON, not an object, "text"
    missing, null, not a string or empty, "label" missing.
    """
    shape = LABELLED_RECORD if label else TEXT_RECORD
    records = []
    for where, line in decode_lines(data, source):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                             f"each line must be {shape}") from None
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object, got {_json_type(record)}; each line must be {shape}")
        if "text" not in record:
            raise InputError(f'{where}: no "text" field; each line must be {shape}')
        text = record["text"]
        if not isinstance(text, str):
            raise InputError(f'{where}: "text" is {_json_type(text)}, not a string; each line must be {shape}')
        if not text.strip():  # the rule of --text "": an error, said the JSONL way
            raise InputError(f'{where}: "text" is empty; give some words or drop the line')
        check_text(text, where)  # a \udXXX escape can still smuggle in a lone surrogate
        if label and "label" not in record:
            raise InputError(f'{where}: no "label" field; each line must be {shape}')
        records.append((where, record))
    return records


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def is_jsonl(path) -> bool:
    """Whether ``path`` is read as JSON lines (``.jsonl`` or ``.jsonl.gz``) rather than one text per line."""
    return str(path).lower().endswith((".jsonl", ".jsonl.gz"))


def read_texts_from(path) -> tuple[list[str], list[str]]:
    """Texts of a file: ``(texts, wheres)``; ``.jsonl[.gz]`` by record, anything else by line.

    Raises InputError for a missing or undecodable file, a bad record, or a file with no text.
    """
    data = read_bytes(path)
    if is_jsonl(path):
        records = jsonl_records(data, str(path))
        texts, wheres = [r["text"] for _, r in records], [w for w, _ in records]
    else:
        texts, wheres = text_lines(data, str(path))
    if not texts:
        raise InputError(f"{path} holds no text: give one text per line, or {TEXT_RECORD} per line in .jsonl")
    return texts, wheres
