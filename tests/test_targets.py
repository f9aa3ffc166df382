"""CPU target presets: valid, reasoned, detected from /proc/cpuinfo, compared with optimum."""

import pytest

from swarmedge.errors import InputError
from swarmedge.export.targets import PRESETS, TargetPreset, detect, resolve

X86_AVX2 = "flags\t\t: fpu sse sse2 avx avx2 fma"
X86_VNNI = "flags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni"
X86_AVX_VNNI = "flags\t\t: fpu sse avx2 avx_vnni"
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"
PI5 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm " \
      "lrcpc dcpop asimddp\nCPU part\t: 0xd0b\n"
OTHER_ARM = "Features\t: fp asimd\nCPU part\t: 0xd40\n"


@pytest.mark.parametrize("cpuinfo,machine,expected", [
    (X86_AVX2, "x86_64", "x86"), (X86_VNNI, "x86_64", "x86-vnni"), (X86_AVX_VNNI, "x86_64", "x86-vnni"),
    (PI4, "aarch64", "pi4"), (PI5, "aarch64", "pi5"), (OTHER_ARM, "aarch64", "arm64"), ("", "x86_64", "x86"),
])
def test_auto_detects_the_cpu(cpuinfo, machine, expected):
    assert detect(cpuinfo, machine) == expected
    assert resolve("auto", cpuinfo, machine).name == expected


def test_every_preset_explains_every_choice():
    for name, preset in PRESETS.items():
        assert preset.name == name and str(preset).startswith(name)
        for key in ("activation_type", "weight_type", "per_channel", "reduce_range"):
            assert len(preset.reasons[key]) > 20


def test_preset_choices_follow_the_cpu_facts():
    assert PRESETS["x86"].reduce_range  # VPMADDUBSW saturation without VNNI
    assert not PRESETS["x86-vnni"].reduce_range
    assert all(p.activation_type == "u8" for p in PRESETS.values())  # dynamic quantization needs u8
    assert "dot" in PRESETS["pi4"].description and "no dot" in PRESETS["pi4"].description
    assert "expectation" in PRESETS["pi4"].reasons and "expectation" in PRESETS["pi5"].reasons


def test_invalid_presets_are_rejected():
    with pytest.raises(ValueError, match="reason"):
        TargetPreset("x", "x", "u8", "s8", True, False, {})
    reasons = dict.fromkeys(("activation_type", "weight_type", "per_channel", "reduce_range"), "r")
    with pytest.raises(ValueError, match="s8 x u8"):
        TargetPreset("x", "x", "s8", "u8", True, False, reasons)
    with pytest.raises(InputError, match="unknown target"):
        resolve("riscv")


def test_presets_against_optimum_autoquantizationconfig():
    """Each preset matches its optimum-onnx counterpart, except the documented differences.

    optimum-onnx lives in its own venv (`make peers`): it pins transformers and tokenizers
    and is a peer to compare with, not a dependency.
    """
    import json
    import os
    import subprocess
    from pathlib import Path

    from swarmedge.export.targets import DELIBERATE_DIFFERENCES, OPTIMUM_EQUIVALENT

    python = os.environ.get("SWARMEDGE_PEERS_PYTHON")
    if not python or not Path(python).exists():
        pytest.fail("SWARMEDGE_PEERS_PYTHON is not set to the optimum-onnx venv: run the tests through `make test`")
    script = Path(__file__).parent / "peers" / "optimum_presets.py"
    r = subprocess.run([python, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    optimum = json.loads(r.stdout)
    for name, preset in PRESETS.items():
        theirs = optimum[OPTIMUM_EQUIVALENT[name]]
        assert theirs["weights_symmetric"] and not theirs["activations_symmetric"]  # as ours
        for key in ("activation_type", "weight_type", "per_channel", "reduce_range"):
            same = getattr(preset, key) == theirs[key]
            assert same != (key in DELIBERATE_DIFFERENCES.get(name, set())), (name, key, theirs[key])
