"""Class names (a bundle's ``labels``) that a person can read and tell apart on a terminal.

Labels are printed by ``swarmedge run``, reports and every app on the device, so each must
show something (not only zero-width, filler or combining characters) and no two may look
the same once invisible characters are dropped and compatibility forms folded (NFKC:
full-width "５" is "5"). Used by the manifest check, so export refuses the same names.
"""

import re
import unicodedata

# Characters that reorder or hide text on a terminal or in a report: C0/C1 controls and
# DEL, the line/paragraph separators and the bidirectional marks, embeddings, overrides
# and isolates (U+202E shows "evil" as "live"), lone surrogates. Listed rather than taken
# from categories: they are refused outright, even inside a label that shows other text.
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")

# Categories that draw nothing on their own: format (zero-width space, joiners, soft
# hyphen, BOM), combining marks, spaces and separators, controls, private use, surrogates.
# Unassigned (Cn) is not among them: an emoji newer than this Python's Unicode tables is
# Cn here and visible on the exporting machine, and the same bundle must open on both.
_SHOWS_NOTHING = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Cc", "Co", "Cs"})
# Letters and symbols that are drawn as blank space: Hangul fillers, braille blank,
# Khitan filler, and the Khmer inherent vowels (Mn already, kept here for clarity).
_BLANK = frozenset("\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800\U00016fe4")
# Dropped before two labels are compared: they change no glyph (U+FE0F asks for the emoji
# form of a character that is shown anyway, U+034F joins nothing visibly).
_VARIATION = re.compile("[\u034f\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def _visible(ch: str) -> bool:
    return ch not in _BLANK and unicodedata.category(ch) not in _SHOWS_NOTHING


def _drop_invisible(text: str) -> str:
    text = _VARIATION.sub("", text)
    return "".join(ch for ch in text if ch not in _BLANK and unicodedata.category(ch) != "Cf")


def looks_like(label: str) -> str:
    """What ``label`` looks like when printed: format characters, variation selectors and
    blank letters dropped, NFKC-folded, blank ends trimmed. Two labels with the same
    result cannot be told apart by someone reading the output."""
    return _drop_invisible(unicodedata.normalize("NFKC", _drop_invisible(label))).strip()


def shown(label: str, limit: int = 60) -> str:
    """``label`` in single quotes for a one-line message: every character that prints
    nothing or could garble the line written as ``\\uXXXX`` (a combining mark too, unless
    it follows a character that is shown), the rest as is; cut to ``limit`` characters."""
    out, after_shown = [], False
    for ch in label:
        cat = unicodedata.category(ch)
        plain = ch != "\\" and ch.isprintable() and ch not in _BLANK and not _VARIATION.match(ch)
        plain = plain and (after_shown or cat not in ("Mn", "Me"))
        code = ord(ch)
        out.append(ch if plain else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        after_shown = plain
    text = "".join(out)
    return "'" + (text if len(text) <= limit else text[: limit - 3] + "...") + "'"


def label_problem(labels: list) -> str | None:
    """The first label that garbles a terminal, shows nothing, or looks like an earlier
    one, as one line ending in the fix; None if every label is fine.

    ``labels``: a list of str (the schema has checked their type and length).
    """
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        bad = _UNSHOWABLE.search(label)
        if bad:
            return (f"labels[{i}] holds U+{ord(bad.group()):04X}, a control, separator or bidi character that "
                    "garbles terminals and reports; rename the class with printable characters")
        if not any(_visible(ch) for ch in label):
            return (f"labels[{i}] is blank ({shown(label)}: no visible character); "
                    "name the class with visible characters")
        key = looks_like(label)
        if key in seen:
            j = seen[key]
            return (f"labels[{i}] ({shown(label)}) looks the same as labels[{j}] ({shown(labels[j])}); "
                    "give the classes names that differ visibly")
        seen[key] = i
    return None
