"""The CLI: help with examples, --version, init -> export -> run, clean one-line errors."""

import json
import re

import pytest
from click.testing import CliRunner

from swarmedge import __version__
from swarmedge.cli import cli


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # every command writes into its own temp dir
    return CliRunner()


@pytest.mark.parametrize("command", [[], ["init"], ["export"], ["run"], ["demo"]])
def test_help_has_examples(runner, command):
    for flag in ("--help", "-h"):
        result = runner.invoke(cli, [*command, flag])
        assert result.exit_code == 0
        assert "Example" in result.output or "Try it" in result.output


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_init_export_run_boids(runner, data_dir):
    r = runner.invoke(cli, ["init", "boids", "--set", "blocks=2", "--set", "recurrent=false", "-o", "b.pt"])
    assert r.exit_code == 0, r.output
    assert "7,270 parameters" in r.output
    r = runner.invoke(cli, ["export", "b.pt", "--target", "pi5", "--json"])
    assert r.exit_code == 0, r.output
    manifest = json.loads(r.output)
    assert manifest["quantization"]["target"]["name"] == "pi5"
    assert manifest["config"]["blocks"] == 2 and not manifest["config"]["recurrent"]
    r = runner.invoke(cli, ["export", "b.pt", "--quantize", "none", "-o", "fp.bundle"])
    assert r.exit_code == 0 and "parity" in r.output and "int8" not in r.output.split("parity")[1]
    r = runner.invoke(cli, ["run", "b.bundle", "--file", str(data_dir / "mnist.npz"), "--json"])
    assert r.exit_code == 0 and len(r.output.splitlines()) == 10000


def test_errors_are_one_line_with_exit_code(runner, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    cases = [
        (["export", "missing.pt"], "model not found"),
        (["export", "junk.pt"], "not a PyTorch checkpoint"),
        (["init", "boids", "--config", "huge", "-o", "x.pt"], "unknown boids config"),
        (["init", "boids", "--set", "d_model=2", "-o", "x.pt"], "d_model must be >= 3"),
        (["init", "boids", "--set", "bogus=1", "-o", "x.pt"], "unknown boids config key bogus; the keys are d_model, "),
        (["run", "missing.bundle", "--text", "hi"], "bundle not found"),
    ]
    for args, needle in cases:
        r = runner.invoke(cli, args)
        assert r.exit_code not in (0, None), args
        assert needle in r.output and "Traceback" not in r.output, (args, r.output)
        assert r.output.startswith("swarmedge: error:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "missing.bundle").exists()


def test_export_refuses_to_overwrite_a_non_bundle(runner, tmp_path):
    runner.invoke(cli, ["init", "boids", "-o", "b.pt"])
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("do not delete")
    r = runner.invoke(cli, ["export", "b.pt", "-o", "precious"])
    assert r.exit_code != 0 and re.search(r"not a (swarmedge )?bundle", r.output), r.output
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "do not delete"


# Bad invocations click itself refuses (values, unknown options and commands, missing
# arguments) and those swarmedge refuses as usage errors: each must be one line on stderr,
# in swarmedge's own form, naming the command's help, with click's exit code 2.
USAGE_ERRORS = [
    (["run", "b.bundle", "--text", "hi", "--threads", "0"], "run", "'--threads': 0 is not in the range x>=1"),
    (["run", "b.bundle", "--text", "hi", "--precision", "int4"], "run", "'int4' is not one of"),
    (["run", "b.bundle"], "run", "give exactly one of --text"),
    (["run"], "run", "missing argument 'BUNDLE'"),
    (["run", "b.bundle", "--text", "hi", "--bogus"], "run", "no such option '--bogus'"),
    (["run", "b.bundle", "--tex", "hi"], "run", "did you mean"),
    (["run", "b.bundle", "--text", "hi", "--remote", ""], "run", "'--remote': an empty host"),
    (["run", "b.bundle", "--text", "hi", "--remote", "  "], "run", "'--remote': an empty host"),
    (["run", "b.bundle", "--text"], "run", "'--text' requires an argument"),
    (["profile", "b.bundle", "--boids", "0"], "profile", "'--boids': values must be positive"),
    (["profile", "b.bundle", "--boids", "-1,5"], "profile", "'--boids': values must be positive"),
    (["profile", "b.bundle", "--boids", "1e3"], "profile", "'1e3' is not a comma-separated list of integers"),
    (["profile", "b.bundle", "--boids", "1,,2"], "profile", "'1,,2' is not a comma-separated list of integers"),
    (["profile", "b.bundle", "--precision", "int4"], "profile", "'int4' is not one of int8, fp32"),
    (["profile", "b.bundle", "--batch", "0"], "profile", "'--batch'"),
    (["profile", "b.bundle", "--seq-len", "0"], "profile", "'--seq-len'"),
    (["profile", "b.bundle", "--remote", ""], "profile", "'--remote': an empty host"),
    (["eval", "b.bundle", "--data", "mnist", "--limit", "0"], "eval", "'--limit': 0 is not in the range"),
    (["eval", "b.bundle"], "eval", "missing option '--data'"),
    (["init", "boids", "--set", "=1", "-o", "x.pt"], "init", "'=1' is not KEY=VALUE"),
    (["init", "dragons", "-o", "x.pt"], "init", "'dragons' is not one of"),
    (["init"], "init", "missing argument"),
    (["visualize", "b.pt", "--fps", "0", "-o", "x.gif"], "visualize", "'--fps': 0 is not in the range 1<=x<=30"),
    (["visualize", "b.pt", "-o", "x.gif"], "visualize", "give --image DIGIT"),
    (["arm-check", "b.bundle", "--cpu", "cortex-x9"], "arm-check", "'cortex-x9' is not one of cortex-a72"),
    (["export", "b.pt", "--tolerance", "nan"], "export", "'--tolerance'"),
    (["export", "b.pt", "--quantize", "int4"], "export", "'int4' is not one of"),
    (["train", "boids", "--epochs", "0", "-o", "x.pt"], "train boids", "'--epochs': 0 is not in the range"),
    (["train", "boids", "--digits", "5", "6", "--classes", "3", "-o", "x.pt"], "train boids", "not both"),
    (["train", "swarmformer"], "train swarmformer", "missing option '-o'"),
    (["train", "dragons"], "train", "no such command 'dragons'"),
    (["dragons"], "", "no such command 'dragons'"),
    (["--bogus"], "", "no such option '--bogus'"),
]


@pytest.mark.parametrize("args, command, needle", USAGE_ERRORS, ids=[" ".join(c[0]) or "-" for c in USAGE_ERRORS])
def test_usage_errors_are_one_line(runner, tmp_path, reliability, args, command, needle):
    r = runner.invoke(cli, args)
    assert r.exit_code == 2, (r.exit_code, r.output)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(f"swarmedge: error: {command + ': ' if command else ''}"), line
    assert needle in line, (needle, line)
    assert line.endswith(f"(see: swarmedge {command + ' ' if command else ''}--help)"), line
    assert "Usage:" not in r.output and "Try '" not in r.output and "Traceback" not in r.output
    assert r.stdout == ""
    assert not list(tmp_path.iterdir()), "a refused command wrote something"  # the runner's working dir
    reliability["usage errors"]["one line"] += 1


def test_help_and_bare_group_still_print_usage(runner):
    for args in (["--help"], ["run", "--help"], ["train", "boids", "-h"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0 and r.stdout.startswith("Usage: swarmedge"), r.output
    for args in ([], ["train"]):  # a group given no command shows its help, as click does
        r = runner.invoke(cli, args)
        assert "Usage: swarmedge" in r.output and "Commands:" in r.output and "error" not in r.output
    assert "five.png" in runner.invoke(cli, ["--help"]).stdout  # the boid models tell 5 from 6


def test_export_help_states_the_parity_tolerance_the_check_uses(runner):
    from swarmedge.export.parity import DEFAULT_RTOL

    text = " ".join(runner.invoke(cli, ["export", "--help"]).stdout.split())
    assert f"this plus {DEFAULT_RTOL:g} x that output's largest |PyTorch value|" in text, text


def test_init_refuses_a_set_it_would_not_apply(runner, tmp_path, monkeypatch, reliability):
    r = runner.invoke(cli, ["init", "swarmformer", "--set", "vocab_size=5", "-o", "x.pt"])
    assert r.exit_code == 2 and r.stderr.startswith("swarmedge: error: --set vocab_size") and "--vocab" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / "x.pt").exists()
    # any other field the model did not take, e.g. one a future init fills from the data
    import swarmedge.checkpoint as checkpoint

    real = checkpoint.init_checkpoint

    def overriding(model_type, config, **kw):
        return real(model_type, {**config, "blocks": 3}, **kw)

    monkeypatch.setattr(checkpoint, "init_checkpoint", overriding)
    r = runner.invoke(cli, ["init", "boids", "--set", "blocks=2", "-o", "x.pt"])
    assert r.exit_code == 2 and "--set blocks=2 was not applied (the model has blocks=3)" in r.stderr, r.output
    assert not (tmp_path / "x.pt").exists()
    # values given in another JSON form than the config stores are still applied, not refused
    monkeypatch.setattr(checkpoint, "init_checkpoint", real)
    r = runner.invoke(cli, ["init", "boids", "--set", "digits=[3,8]", "--set", "residual_scaling=1", "-o", "x.pt"])
    assert r.exit_code == 0, r.output
    reliability["usage errors"]["one line"] += 2
