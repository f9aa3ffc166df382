"""The CLI: help with examples, --version, init -> export -> run, clean one-line errors."""

import json

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
        (["export", "junk.pt"], "not a readable"),
        (["init", "boids", "--config", "huge", "-o", "x.pt"], "unknown boids config"),
        (["init", "boids", "--set", "d_model=2", "-o", "x.pt"], "d_model must be >= 3"),
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
    assert r.exit_code != 0 and "not a bundle" in r.output
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "do not delete"
