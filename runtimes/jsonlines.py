"""JSON Lines: which files are read as ``{"text": …}`` records, and each record checked.

The name decides, the same on every path (:func:`is_jsonl`). Each non-blank line must be an
object with a non-empty string ``"text"`` (and a ``"label"`` for labelled data); a bad line is
one error naming ``FILE:LINE``, and a file that is one JSON document (an array, an indented
object) is refused with the ``jq`` command that turns it into JSON Lines. Lines are decoded by
the policy of ``textfiles.py`` first.
"""

import json

from swarmedge.errors import InputError
from swarmedge.runtimes.textfiles import LABELLED_RECORD, TEXT_INPUTS, TEXT_RECORD, check_text, decode_lines

_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
               list: "a list", dict: "an object"}


def jsonl_records(data: bytes, source: str, *, label: bool = False, expects: str = TEXT_INPUTS,
                  first_line: int = 1, at_start: bool = True) -> list[tuple[str, dict]]:
    """``(where, record)`` for each non-blank line of JSONL ``data``, each checked
    (``first_line`` and ``at_start`` as for :func:`decode_lines`).

    Every record must be an object with a non-empty string "text" (and, when ``label``, a
    "label" that is a non-empty string or an integer). Raises InputError naming the line:
    invalid JSON, not an object, "text" missing, null, not a string or empty, "label"
    missing, null, a boolean, a fraction, a list or an object; and, without a line, for a file
    that is one JSON document (an array, a pretty-printed object) rather than JSON Lines.
    """
    shape = LABELLED_RECORD if label else TEXT_RECORD
    lines = decode_lines(data, source, expects, first_line=first_line, at_start=at_start)
    records = []
    for where, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_not_json_number, parse_float=_finite)
        except NotJsonNumber as exc:  # Python's json reads NaN and Infinity; no other JSON reader does
            raise InputError(f"{where}: {exc} is not a JSON number (JSON has no NaN or infinity); write it as a "
                             "string or leave it out") from None
        except json.JSONDecodeError as exc:
            if at_start:
                _refuse_json_document(lines, source, shape)
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                             f"each line must be {shape}") from None
        if not isinstance(record, dict):
            if at_start:
                _refuse_json_document(lines, source, shape)
            raise InputError(f"{where}: expected a JSON object, got {_json_type(record)}; each line must be {shape}")
        if "text" not in record:
            raise InputError(f'{where}: no "text" field; each line must be {shape}')
        text = record["text"]
        if not isinstance(text, str):
            raise InputError(f'{where}: "text" is {_json_type(text)}, not a string; each line must be {shape}')
        if not text.strip():  # the rule of --text "": an error, said the JSONL way
            raise InputError(f'{where}: "text" is empty; give some words or drop the line')
        check_text(text, where)  # a \udXXX escape can still smuggle in a lone surrogate
        if label:
            check_label(record, where)
        records.append((where, record))
    return records


class NotJsonNumber(ValueError):
    """NaN, Infinity or a number too large for a float: Python's json reads them, JSON has none."""


def _not_json_number(token: str):
    raise NotJsonNumber(token)


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise NotJsonNumber(token)
    return value


def check_label(record: dict, where: str):
    """Raise InputError naming ``where`` unless ``record["label"]`` is a class name (a non-empty
    string) or a class index (an integer): ``null``, ``true``, ``1.5``, lists and objects
    would otherwise turn into classes named "None", "True", "1.5", …"""
    if "label" not in record:
        raise InputError(f'{where}: no "label" field; each line must be {LABELLED_RECORD}')
    value = record["label"]
    if isinstance(value, str) and value.strip() or isinstance(value, int) and not isinstance(value, bool):
        return
    what = "empty" if isinstance(value, str) else _json_type(value)
    if isinstance(value, float):
        what = f"the fraction {value!r}"
    elif isinstance(value, bool):
        what = f"the boolean {json.dumps(value)}"
    raise InputError(f'{where}: "label" is {what}; give each label as a class name ("positive") '
                     "or a class index (1)")


def _refuse_json_document(lines, source: str, shape: str):
    # A .json export (json.dump of a list, or an indented object) is one document, not JSON
    # Lines: say so, with the command that converts it, rather than "line 1: not an object".
    if source == "stdin" or sum(bool(line.strip()) for _, line in lines) == 0:
        return
    try:
        doc = json.loads("\n".join(line for _, line in lines))
    except json.JSONDecodeError:
        return
    if isinstance(doc, list):
        raise InputError(f"{source} is one JSON array, not JSON Lines (one {shape} per line); "
                         f"convert it, e.g. jq -c '.[]' {source} > lines.jsonl")
    if isinstance(doc, dict):
        raise InputError(f"{source} is one JSON object spread over several lines, not JSON Lines (one {shape} "
                         f"per line); convert it, e.g. jq -c . {source} > lines.jsonl")


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def is_jsonl(path) -> bool:
    """Whether ``path`` is read as JSON Lines rather than one text per line: the one rule for
    every path (run --file, eval/compare/train data, --calibration) is the name, ``.jsonl``,
    ``.ndjson`` or ``.json``, each optionally gzipped (``.jsonl.gz``)."""
    name = str(path).lower()
    return name.removesuffix(".gz").endswith(JSONL_SUFFIXES)


def jsonl_lookalike(texts: list[str]) -> bool:
    """Whether every one of ``texts`` (the lines of a file read one text per line) is a JSON
    object with a "text" field: JSON Lines under another name, whose raw lines would be
    classified as if they were reviews."""
    for t in texts:
        t = t.strip()
        if not (t.startswith("{") and t.endswith("}")):
            return False
        try:
            record = json.loads(t)
        except json.JSONDecodeError:
            return False
        if not isinstance(record, dict) or "text" not in record:
            return False
    return bool(texts)


def lookalike_hint(path) -> str:
    """The fix for a file :func:`jsonl_lookalike` flags: the name that makes it JSON Lines."""
    name = str(path)
    base = name[:-3] if name.lower().endswith(".gz") else name
    stem = base.rsplit(".", 1)[0] if "." in base.rsplit("/", 1)[-1] else base
    return f"rename it {stem}.jsonl{'.gz' if base != name else ''} to read its \"text\" fields"
