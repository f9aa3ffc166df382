"""manifest.json against the bundle's JSON Schema (``runtimes/bundle.schema.json``), in one-line errors.

The schema (draft-07) holds the types and bounds of every field the runners read; what a
schema cannot say (sequence length a multiple of the cluster size, one label per class,
the tokenizer listed among the files) is checked here after it. Each violation becomes
one line naming the field path, e.g. ``preprocessing.seq_len must be <= 16384 (got 10000000)``.
"""

import functools
import json
import math
import re

from swarmedge.label_names import label_problem

SCHEMA_FILE = "bundle.schema.json"


@functools.cache
def schema() -> dict:
    """The bundle schema shipped with the installed ``swarmedge.runtimes`` package."""
    from importlib.resources import files

    return json.loads(files("swarmedge.runtimes").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator():
    import fastjsonschema

    def offline(uri):  # every $ref is inside the schema: never fetch one from the network
        raise ValueError(f"the bundle schema refers outside itself ({uri})")

    return fastjsonschema.compile(schema(), handlers={"http": offline, "https": offline})


def problem(manifest: dict) -> str | None:
    """The first way ``manifest`` breaks the schema or the cross-field rules, as one line; None if none.

    ``manifest`` is any parsed JSON value. Integer fields take JSON integers only: parse
    with :func:`parse_float` so that ``32.0`` is not taken for the integer 32.
    """
    import fastjsonschema

    try:
        _validator()(manifest)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _describe(exc)
    return _cross_field(manifest)


class JsonFloat(float):
    """A JSON number written with a fraction or exponent. The schema's draft-07 counts
    ``32.0`` as an integer (``float.is_integer``); the runners would then get a float
    where numpy needs an int, so such numbers say they are not integers."""

    def is_integer(self) -> bool:
        return False


class NumberRefused(ValueError):
    """A JSON number no manifest field can hold; the message reads after "manifest.json holds"."""


# Python's own default cap on int(str) (CVE-2020-10735); no manifest field needs 20 digits.
MAX_INT_DIGITS = 4300


def parse_int(text: str) -> int:
    """``json.loads(..., parse_int=parse_int)``: integers of at most ``MAX_INT_DIGITS`` digits.

    Raises NumberRefused for a longer one, instead of Python's message that points the
    reader at ``sys.set_int_max_str_digits``.
    """
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise NumberRefused(f"a number with more than {MAX_INT_DIGITS:,} digits")
    try:
        return int(text)
    except ValueError:  # PYTHONINTMAXSTRDIGITS set below the default on this machine
        raise NumberRefused(f"a number of {len(text):,} digits, more than this Python converts") from None


def parse_float(text: str) -> float:
    """``json.loads(..., parse_float=parse_float)``: floats that never pass as integers.

    Raises NumberRefused for one beyond float range (``1e400`` would become infinity,
    which compares false with every bound)."""
    value = JsonFloat(text)
    if math.isinf(value):
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise NumberRefused(f"a number too large for a float ({shown})")
    return value


def _show(value, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a number", JsonFloat: "a number", str: "a string",
               list: "an array", dict: "an object", type(None): "null"}


_NOT_A_FILE_NAME = ("not a plain file name inside the bundle (letters, digits, '.', '_', '-'; no folders, "
                    "no leading dot, not manifest.json)")


def _describe(exc) -> str:
    path = exc.name[len("data"):].lstrip(".") if exc.name.startswith("data") else exc.name
    if not path.isprintable() or len(path) > 120:  # keys are the manifest's, whatever they hold: one line
        path = path.encode("unicode_escape").decode("ascii")[:117] + "..." * (len(path) > 117)
    field, rule, definition, value = path or "the manifest", exc.rule, exc.rule_definition, exc.value
    got = f"(got {_show(value)})"
    if rule == "type":
        types = definition if isinstance(definition, list) else [definition]
        kinds = " or ".join({"integer": "an integer", "number": "a number", "string": "a string",
                             "array": "an array", "object": "an object", "boolean": "a boolean",
                             "null": "null"}.get(t, t) for t in types)
        return f"{field} must be {kinds} (got {_JSON_TYPES.get(type(value), type(value).__name__)})"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[rule]
        return f"{field} must be {op} {definition} {got}"
    if rule == "const":
        return f"{field} must be {_show(definition)} {got}"
    if rule == "enum":
        return f"{field} must be one of {', '.join(_show(v) for v in definition)} {got}"
    if rule == "required":
        missing = [k for k in definition if not isinstance(value, dict) or k not in value]
        return f"{field} lacks {_show(missing[0] if missing else definition)}"
    if rule in ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"):
        what = {"Items": "items", "Properties": "entries", "Length": "characters"}[rule[3:]]
        op = "at least" if rule.startswith("min") else "at most"
        count = len(value) if isinstance(value, (list, dict, str)) else "?"
        return f"{field} must have {op} {definition} {what} (got {count})"
    if rule == "uniqueItems":
        return f"{field} must not repeat an item {got}"
    if rule == "propertyNames":  # which key broke it is not in the exception: find it
        plain = re.compile(schema()["definitions"]["file_name"]["pattern"])
        bad = next((k for k in value if not plain.search(k) or k == "manifest.json"), "?")
        return f"{field} names {_show(bad)}, {_NOT_A_FILE_NAME}"
    if rule in ("pattern", "not") and exc.definition == schema()["definitions"]["file_name"]:
        return f"{field} names {_show(value)}, {_NOT_A_FILE_NAME}"
    if rule == "pattern":
        return f"{field} must match {definition} {got}"
    if rule == "additionalProperties" and isinstance(value, dict) and isinstance(exc.definition, dict):
        known = set(exc.definition.get("properties", {}))
        extra = sorted(k for k in value if k not in known)
        return f"{field} has unknown field {_show(extra[0] if extra else '?')} (this swarmedge reads format 1)"
    if rule in ("items", "additionalItems"):
        return f"{field} has {len(value) if isinstance(value, list) else '?'} items, more than this model type has"
    message = exc.message.replace("data.", "", 1) if exc.message.startswith("data.") else exc.message
    return f"{message} {got}"


_DIGIT_NAME = re.compile(r"[0-9]\Z")


def _cross_field(m: dict) -> str | None:
    """Rules between fields; the schema has already checked each field's type and bounds."""
    labels, config, pre, files = m["labels"], m["config"], m["preprocessing"], m["files"]
    issue = label_problem(labels)
    if issue:
        return issue
    if m["model_type"] == "swarmformer":
        if config["num_classes"] != len(labels):
            return f"labels has {len(labels)} names but config.num_classes is {config['num_classes']}"
        if pre["seq_len"] != config["seq_len"]:  # the runner pads to one, the model was trained at the other
            return f"preprocessing.seq_len ({pre['seq_len']}) must equal config.seq_len ({config['seq_len']})"
        if pre["seq_len"] % pre["multiple_of"]:
            return (f"preprocessing.seq_len ({pre['seq_len']}) must be a multiple of preprocessing.multiple_of "
                    f"({pre['multiple_of']})")
        if pre["multiple_of"] != config["cluster_size"]:
            return (f"preprocessing.multiple_of ({pre['multiple_of']}) must equal config.cluster_size "
                    f"({config['cluster_size']})")
        if pre["tokenizer"] not in files:
            return f"preprocessing.tokenizer names {_show(pre['tokenizer'])}, which files does not list"
    else:
        digits = config["digits"]
        if len(digits) != len(labels):
            return f"labels has {len(labels)} names but config.digits has {len(digits)} classes"
        # Classes named by digits are those digits (training names a class "5" only for MNIST's 5);
        # other names (cats, dogs) take the class slots 0..N-1 and say nothing about digits.
        if all(_DIGIT_NAME.match(x) for x in labels) and [int(x) for x in labels] != digits:
            return (f"labels ({', '.join(labels)}) name digits but config.digits is {_show(digits)}: "
                    "each digit label must be its class's digit, in order")
        if pre["habitat_scaling"] != config["habitat_scaling"]:  # coordinates scaled unlike in training
            return (f"preprocessing.habitat_scaling ({_show(pre['habitat_scaling'])}) must equal "
                    f"config.habitat_scaling ({_show(config['habitat_scaling'])})")
    width = m["outputs"][0]["shape"][-1]
    if isinstance(width, int) and width != len(labels):
        return f"outputs[0].shape fixes the class count to {width} but labels has {len(labels)} names"
    names = [t["name"] for t in m["inputs"]] + [t["name"] for t in m["outputs"]]
    if len(set(names)) != len(names):
        return f"inputs and outputs repeat a name ({', '.join(names)})"
    return None
