"""Checkpoint outputs (init, train, calibrate -o): a trained model is never replaced without
being asked, and a checkpoint is written only under a PyTorch checkpoint name (.pt, .pth)."""

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarmedge.cli import cli

from .test_outputs import refused


def test_init_and_train_refuse_to_replace_a_checkpoint_unless_told(tmp_path, reliability, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["init", "boids", "-o", "trained.pt"]).exit_code == 0
    before = hashlib.sha256(Path("trained.pt").read_bytes()).hexdigest()
    refused(["init", "boids", "--seed", "1", "-o", "trained.pt"], "--overwrite", reliability, "init over a checkpoint")
    # refused before the data is read: --data names nothing that exists
    refused(["train", "boids", "--data", "no-such-folder", "-o", "trained.pt"], "--overwrite", reliability,
            "train over a checkpoint")
    Path("trained.resume.pt").write_bytes(b"")
    assert "--resume" in refused(["train", "boids", "-o", "trained.pt"], "--overwrite", reliability,
                                 "train over an interrupted run")
    refused(["train", "boids", "--resume", "--overwrite", "-o", "trained.pt"], "not both", reliability,
            "train --resume --overwrite")
    assert hashlib.sha256(Path("trained.pt").read_bytes()).hexdigest() == before
    r = CliRunner().invoke(cli, ["init", "boids", "--seed", "1", "--overwrite", "-o", "trained.pt"])
    assert r.exit_code == 0 and hashlib.sha256(Path("trained.pt").read_bytes()).hexdigest() != before


@pytest.mark.parametrize("name", ["model", "model.onnx", "results.json", "x.txt", "runs.37x4"])
@pytest.mark.parametrize("command", [["init", "boids"], ["train", "boids", "--data", "no-such-folder"],
                                     ["calibrate", "{ckpt}"]])
def test_a_checkpoint_output_that_is_not_a_pt_file_is_refused(command, name, tiny_boids_ckpt, tmp_path, reliability,
                                                             monkeypatch):
    """`train -o model.onnx` is a mix-up with export: refused before any work, naming a .pt to give."""
    monkeypatch.chdir(tmp_path)
    command = [str(tiny_boids_ckpt) if arg == "{ckpt}" else arg for arg in command]
    line = refused([*command, "-o", name], "a checkpoint is written as a .pt file", reliability,
                   "checkpoint -o without .pt")
    assert line.endswith(f"-o {Path(name).stem}.pt")
    assert list(tmp_path.iterdir()) == []


def test_pth_is_a_checkpoint_name_too(tmp_path):
    result = CliRunner().invoke(cli, ["init", "boids", "-o", str(tmp_path / "m.pth")])
    assert result.exit_code == 0 and (tmp_path / "m.pth").is_file()
