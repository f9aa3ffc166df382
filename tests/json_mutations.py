"""Hypothesis strategies that damage JSON documents the way copies, editors and other tools do.

A mutation is drawn as plain data (a tuple naming what to do and where), so a failing
example prints readably, then applied to a deep copy of the document. Used for bundle
manifests (test_bundle_properties.py) and for the reports `compare` reads (test_compare.py).
"""

import copy
import json
import random

from hypothesis import strategies as st

# Values of every JSON type, with the edges that break naive readers: huge and negative
# numbers, numbers written as strings, control characters, long and non-ASCII text.
ODD_VALUES = [
    None, True, False, 0, -1, 1, 2, 0.5, -0.5, 2**31, 2**63, 10**30, -(10**30), 1e308, 5e-324,
    "", "NaN", "Infinity", "-Infinity", "1e999", "32", "x" * 100_000, "ünïcødé ✓ 🐝", "a\nb", "\x00", "../x",
    [], [None], [1, "a"], list(range(1000)), {}, {"a": {"b": None}},
]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
odd_values = st.sampled_from(ODD_VALUES) | json_values


def paths(doc, prefix=()) -> list[tuple]:
    """Every place in ``doc``: dict keys and list indices, depth first, the root ``()`` first."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, prefix + (i,))
    return out


def get(doc, path: tuple):
    for part in path:
        doc = doc[part]
    return doc


def json_type(value) -> str:
    """JSON's own type name: ints and floats are both numbers, bools are not."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {type(None): "null", str: "string", list: "array", dict: "object"}[type(value)]


def mutations(doc, focus: tuple = ()) -> st.SearchStrategy:
    """One structural change to ``doc`` as a tuple: ("replace", path, value), ("delete", path),
    ("add", path, key, value), ("enlarge", path, times), ("reorder", seed).

    ``focus``: paths (that exist in ``doc``) drawn as often as all the others together, so
    the fields a reader depends on are hit even in a large document."""
    where = paths(doc)
    containers = [p for p in where if isinstance(get(doc, p), dict)]
    lists = [p for p in where if isinstance(get(doc, p), list) and get(doc, p)]
    children = [p for p in where if p]
    focus = [p for p in focus if p in where]
    anywhere = st.sampled_from(focus) | st.sampled_from(where) if focus else st.sampled_from(where)
    child = st.sampled_from([p for p in focus if p]) | st.sampled_from(children) if focus else st.sampled_from(children)
    options = [
        st.tuples(st.just("replace"), anywhere, odd_values),
        st.tuples(st.just("delete"), child),
        st.tuples(st.just("add"), st.sampled_from(containers), st.text(min_size=1, max_size=12), odd_values),
        st.tuples(st.just("reorder"), st.integers(0, 2**16)),
    ]
    if lists:
        options.append(st.tuples(st.just("enlarge"), st.sampled_from(lists), st.sampled_from([2, 50, 10_000])))
    return st.one_of(options)


def apply(doc, mutation: tuple):
    """``doc`` changed by ``mutation`` (a new object; ``doc`` is left as it was)."""
    doc = copy.deepcopy(doc)
    kind = mutation[0]
    if kind == "replace":
        _, path, value = mutation
        if not path:
            return copy.deepcopy(value)
        get(doc, path[:-1])[path[-1]] = copy.deepcopy(value)
    elif kind == "delete":
        del get(doc, mutation[1][:-1])[mutation[1][-1]]
    elif kind == "add":
        _, path, key, value = mutation
        get(doc, path).setdefault(key, copy.deepcopy(value))
    elif kind == "enlarge":
        _, path, times = mutation
        items = get(doc, path)
        items[:] = [copy.deepcopy(items[i % len(items)]) for i in range(len(items) * times)]
    elif kind == "reorder":
        doc = _shuffled(doc, random.Random(mutation[1]))
    else:
        raise ValueError(kind)
    return doc


def _shuffled(doc, rng: random.Random):
    if isinstance(doc, dict):
        keys = list(doc)
        rng.shuffle(keys)
        return {k: _shuffled(doc[k], rng) for k in keys}
    if isinstance(doc, list):
        return [_shuffled(v, rng) for v in doc]
    return doc


# Damage to the serialized file itself, as (kind, argument); applied by :func:`damage_bytes`.
raw_damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("append"), st.sampled_from([b"\n", b"}", b"\x00" * 10, b"garbage", b"\xff\xfe", b" " * 4096])),
    st.tuples(st.just("prefix"), st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"//", b"\x00"])),
    st.tuples(st.just("replace_all"), st.sampled_from([b"", b"null", b"[]", b"{}", b"NaN", b"1e400", b"9" * 5000,
                                                       b"[" * 100_000, b'{"a":' * 50_000, b"\x89PNG\r\n\x1a\n"])),
)


def damage_bytes(data: bytes, damage: tuple) -> bytes:
    """``data`` with ``damage`` (from :data:`raw_damage`) done to it."""
    kind = damage[0]
    if kind == "truncate":
        return data[: int(len(data) * damage[1])]
    if kind == "flip":
        i = int(len(data) * damage[1])
        return data[:i] + bytes([data[i] ^ damage[2]]) + data[i + 1:]
    if kind == "append":
        return data + damage[1]
    if kind == "prefix":
        return damage[1] + data
    if kind == "replace_all":
        return damage[1]
    raise ValueError(kind)


def dumps(doc) -> bytes:
    """``doc`` as JSON bytes; NaN and infinite floats come out as JavaScript's literals, as
    Python's json writes them by default, since such files exist in the wild."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
