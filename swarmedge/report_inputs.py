"""Reports measured elsewhere that ``swarmedge compare`` adds: checked whole before they are used.

A ``swarmedge profile --json`` or ``swarmedge arm-check --json`` file may come from another
machine, another swarmedge version or a hand edit. Each is read as strict JSON (no NaN or
infinite numbers), validated against the fields the report writer prints, and refused in
one line naming the first wrong field, before compare evaluates anything or writes a file.
Unknown extra fields are kept: a newer swarmedge may add some.
"""

import json
import math
import os
import stat

from swarmedge.errors import InputError

MAX_REPORT_BYTES = 16 << 20  # a profile of thousands of configurations is well under 1 MiB

_LINE = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}  # one table cell
_COUNT = {"type": "integer", "minimum": 1, "maximum": 1 << 40}
_MS = {"type": "number", "minimum": 0}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_PRECISION = {"enum": ["fp32", "int8"]}

PROFILE_SCHEMA = {
    "type": "object",
    "required": ["model_type", "machine", "configs"],
    "properties": {
        "model_type": {"enum": ["swarmformer", "boids"]},
        "machine": {"type": "object", "required": ["cpu", "machine", "onnxruntime"],
                    "properties": {"cpu": _LINE, "machine": _LINE, "onnxruntime": _LINE}},
        "configs": {"type": "array", "minItems": 1, "maxItems": 100_000, "items": {
            "type": "object",
            "required": ["precision", "threads", "batch", "length", "latency", "throughput_samples_per_s"],
            "properties": {
                "precision": _PRECISION, "threads": _COUNT, "batch": _COUNT, "length": _COUNT,
                "latency": {"type": "object", "required": ["p50_ms", "p99_ms"],
                            "properties": {"p50_ms": _MS, "p99_ms": _MS}},
                "throughput_samples_per_s": _MS,
            },
        }},
    },
}

ARM_CHECK_SCHEMA = {
    "type": "object",
    "required": ["samples", "results"],
    "properties": {
        "samples": _COUNT,
        "results": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": {
            "type": "object",
            "required": ["cpu", "device", "precision", "accuracy", "agreement_with_x86", "agreement_with_fp32",
                         "max_abs_diff_vs_x86"],
            "properties": {
                "cpu": _LINE, "device": _LINE, "precision": _PRECISION, "accuracy": _SHARE,
                "agreement_with_x86": _SHARE, "agreement_with_fp32": _SHARE, "max_abs_diff_vs_x86": _MS,
            },
        }},
    },
}

_PROFILE_HOW = "swarmedge profile BUNDLE --json -o FILE"
_ARM_HOW = "swarmedge arm-check BUNDLE --json -o FILE"
_validators: dict[int, object] = {}


def read_profile(path, model_type: str) -> dict:
    """A ``swarmedge profile --json`` report of a ``model_type`` bundle, as a dict.

    Raises ``InputError`` (one line) for a file that is missing, not a regular file, over
    16 MiB, not strict JSON, lacks a field compare prints or holds a wrong value there
    (the field is named, e.g. ``configs[0].latency.p50_ms``), or profiles another model type.
    """
    report = _read(path, PROFILE_SCHEMA, _PROFILE_HOW)
    if report["model_type"] != model_type:
        raise InputError(f"{path} profiles a {report['model_type']} bundle, not this {model_type} one; "
                         f"pass a profile of this bundle ({_PROFILE_HOW})")
    return report


def read_arm_check(path) -> dict:
    """A ``swarmedge arm-check --json`` report, as a dict; ``InputError`` as :func:`read_profile`."""
    return _read(path, ARM_CHECK_SCHEMA, _ARM_HOW)


def _read(path, schema: dict, how: str) -> dict:
    what = how.split(" BUNDLE")[0]
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; write one with: {how}") from None
    # a FIFO or a device would block or never end; a directory has no JSON to read
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path} is not a regular file; pass a `{what} --json` report (write one with: {how})")
    if info.st_size > MAX_REPORT_BYTES:
        raise InputError(f"{path} is {info.st_size} bytes, too large for a `{what} --json` report "
                         f"(at most {MAX_REPORT_BYTES >> 20} MiB); write one with: {how}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_REPORT_BYTES + 1)
        report = json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constant, parse_float=_finite_float)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; write one with: {how}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise InputError(f"{path} is not a `{what} --json` report (not JSON: {reason}); "
                         f"write one with: {how}") from None
    _validate(report, schema, path, what, how)
    return report


def _validate(report, schema: dict, path, what: str, how: str) -> None:
    import fastjsonschema

    validator = _validators.get(id(schema))
    if validator is None:
        validator = _validators[id(schema)] = fastjsonschema.compile(schema)
    try:
        validator(report)
    except fastjsonschema.JsonSchemaValueException as exc:
        field = _field_name(exc.path)
        if exc.rule == "pattern":
            problem = f"{field} must be one line of printable text"
        elif exc.rule == "required":
            missing = [k for k in exc.rule_definition if not isinstance(exc.value, dict) or k not in exc.value]
            problem = f"{field} lacks {', '.join(repr(k) for k in missing)}" if field else \
                f"it lacks {', '.join(repr(k) for k in missing)}"
        else:
            name = field or "the report"
            problem = f"{name} {exc.message.split(' ', 1)[1]} (got {_short(exc.value)})"
        raise InputError(f"{path} is not a `{what} --json` report: {problem}; write one with: {how}") from None


def _field_name(parts: list[str]) -> str:
    """``['data', 'configs', '0', 'latency']`` -> ``configs[0].latency``."""
    out = ""
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}" if out else part
    return out


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as infinity
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value
