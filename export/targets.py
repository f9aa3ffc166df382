"""int8 quantization presets per CPU target; every choice carries its reason.

Compared with optimum-onnx's ``AutoQuantizationConfig`` (``tests/test_targets.py`` checks
the table in ``OPTIMUM_EQUIVALENT`` against optimum when it is installed):
- ``x86`` differs on purpose: 7-bit weights (``reduce_range``) where optimum's ``avx2``
  uses u8 weights and ``avx512`` full-range s8, because u8 x s8 products summed in pairs by
  VPMADDUBSW saturate int16 on CPUs without VNNI.
- ``x86-vnni``, ``arm64``, ``pi4`` and ``pi5`` keep optimum's numerics (u8 activations,
  symmetric per-channel s8 weights); the Pi presets add what optimum has no notion of:
  which ARM core, whether it has dot-product instructions, and what to expect from int8.
"""

import platform
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from swarmedge.errors import InputError


@dataclass(frozen=True)
class TargetPreset:
    name: str
    description: str
    activation_type: str  # "u8" or "s8": dynamic quantization needs u8 activations
    weight_type: str  # "s8" or "u8"
    per_channel: bool
    reduce_range: bool  # 7-bit weights
    reasons: dict = field(default_factory=dict)  # field -> why this value

    def __post_init__(self) -> None:
        if self.activation_type not in ("u8", "s8") or self.weight_type not in ("u8", "s8"):
            raise ValueError(f"{self.name}: activation/weight types must be u8 or s8")
        if self.activation_type == "s8" and self.weight_type == "u8":
            raise ValueError(f"{self.name}: onnxruntime has no s8 x u8 kernels")
        missing = {"activation_type", "weight_type", "per_channel", "reduce_range"} - set(self.reasons)
        if missing:
            raise ValueError(f"{self.name}: every choice needs a reason, missing {sorted(missing)}")

    def __str__(self) -> str:
        return (f"{self.name}: {self.activation_type} activations x {self.weight_type} weights, "
                f"{'per-channel' if self.per_channel else 'per-tensor'}"
                f"{', 7-bit weights' if self.reduce_range else ''}")

    def to_dict(self) -> dict:
        return asdict(self)


_PER_CHANNEL = "one scale per output channel keeps small rows of the 128-d projections accurate"
_U8_ACT = "onnxruntime's dynamic quantization computes u8 activations at run time (DynamicQuantizeLinear)"

PRESETS = {
    "x86": TargetPreset(
        "x86", "x86-64 with AVX2/AVX-512 but no VNNI (most laptops before Ice Lake / Zen 4)",
        "u8", "s8", True, True,
        {
            "activation_type": _U8_ACT,
            "weight_type": "s8 weights are what the u8 x s8 AVX2/AVX-512 kernels take",
            "per_channel": _PER_CHANNEL,
            "reduce_range": "VPMADDUBSW adds pairs of u8 x s8 products into int16 and can saturate; "
                            "7-bit weights make that impossible",
        },
    ),
    "x86-vnni": TargetPreset(
        "x86-vnni", "x86-64 with AVX-512 VNNI or AVX-VNNI (Ice Lake, Sapphire Rapids, Zen 4, …)",
        "u8", "s8", True, False,
        {
            "activation_type": _U8_ACT,
            "weight_type": "VPDPBUSD multiplies u8 x s8 and accumulates in int32",
            "per_channel": _PER_CHANNEL,
            "reduce_range": "VNNI accumulates in int32 directly: no saturation, keep the full 8 bits",
        },
    ),
    "arm64": TargetPreset(
        "arm64", "generic 64-bit ARM (Armv8-A)",
        "u8", "s8", True, False,
        {
            "activation_type": _U8_ACT,
            "weight_type": "u8 x s8 is faster than u8 x u8 on lower-end ARM cores and equal on the rest",
            "per_channel": _PER_CHANNEL,
            "reduce_range": "ARM int8 kernels widen before accumulating: no saturation",
        },
    ),
    "pi4": TargetPreset(
        "pi4", "Raspberry Pi 4: Cortex-A72, Armv8.0-A, no dot-product (sdot/udot) instructions",
        "u8", "s8", True, False,
        {
            "activation_type": _U8_ACT,
            "weight_type": "u8 x s8 is the faster int8 path on cores without dot product, such as the A72",
            "per_channel": _PER_CHANNEL,
            "reduce_range": "NEON widening multiplies cannot saturate: keep the full 8 bits",
            "expectation": "without dot product int8 MatMul is often no faster than fp32: profile both "
                           "and ship fp32 if int8 does not win; int8 still shrinks the file about 4x",
        },
    ),
    "pi5": TargetPreset(
        "pi5", "Raspberry Pi 5: Cortex-A76, Armv8.2-A with dot-product (sdot/udot) instructions",
        "u8", "s8", True, False,
        {
            "activation_type": _U8_ACT,
            "weight_type": "u8 x s8 runs on the sdot/udot kernels of Armv8.2",
            "per_channel": _PER_CHANNEL,
            "reduce_range": "dot-product instructions accumulate in int32: no saturation",
            "expectation": "dot-product kernels make int8 MatMul markedly faster than fp32",
        },
    ),
}

# The optimum-onnx AutoQuantizationConfig constructor each preset corresponds to.
OPTIMUM_EQUIVALENT = {"x86": "avx512", "x86-vnni": "avx512_vnni", "arm64": "arm64", "pi4": "arm64", "pi5": "arm64"}
DELIBERATE_DIFFERENCES = {"x86": {"reduce_range"}}


def resolve(name: str, cpuinfo: str | None = None, machine: str | None = None) -> TargetPreset:
    """The preset called ``name``; ``auto`` picks from the host CPU."""
    if name == "auto":
        name = detect(cpuinfo, machine)
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown target {name!r}; choose from auto, {', '.join(PRESETS)}") from None


# --weight-type: onnxruntime's QuantType names (QInt8/QUInt8) as optimum-cli spells them
WEIGHT_TYPES = {"int8": "s8", "uint8": "u8", "s8": "s8", "u8": "u8"}


def with_overrides(preset: TargetPreset, per_channel: bool | None = None, reduce_range: bool | None = None,
                   weight_type: str | None = None) -> TargetPreset:
    """``preset`` with the command line's --per-channel/--per-tensor, --reduce-range and
    --weight-type applied; each changed choice's reason says it was asked for."""
    asked = {k: v for k, v in (("per_channel", per_channel), ("reduce_range", reduce_range),
                               ("weight_type", WEIGHT_TYPES.get(weight_type, weight_type))) if v is not None}
    if not asked:
        return preset
    if "weight_type" in asked and asked["weight_type"] not in ("s8", "u8"):
        raise InputError(f"--weight-type {weight_type}: choose int8 or uint8")
    flags = {"per_channel": "--per-channel" if per_channel else "--per-tensor",
             "reduce_range": "--reduce-range" if reduce_range else "--no-reduce-range",
             "weight_type": f"--weight-type {weight_type}"}
    reasons = {**preset.reasons, **{k: f"asked for on the command line ({flags[k]}); the {preset.name} "
                                       f"preset's choice: {getattr(preset, k)}" for k in asked}}
    return replace(preset, **asked, reasons=reasons)


def detect(cpuinfo: str | None = None, machine: str | None = None) -> str:
    """Name the preset that fits this CPU, from /proc/cpuinfo where available."""
    machine = (machine or platform.machine()).lower()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set()
    parts = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key == "cpu part":
            parts.add(value.strip().lower())
    if machine in ("aarch64", "arm64") or "asimd" in flags:
        if "0xd08" in parts:
            return "pi4"
        if "0xd0b" in parts:
            return "pi5"
        return "arm64"
    if {"avx512_vnni", "avx_vnni", "avx512vnni"} & flags:
        return "x86-vnni"
    return "x86"
