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
    # Newcomer trial: a run stopped before its first checkpoint left only fresh.resume.pt, and the
    # same command without --resume started again over it in silence
    Path("fresh.resume.pt").write_bytes(b"state")
    line = refused(["train", "boids", "--data", "no-such-folder", "-o", "fresh.pt"], "--overwrite", reliability,
                   "train over an interrupted run's state")
    assert "holds an interrupted run: --resume to continue it" in line
    assert Path("fresh.resume.pt").read_bytes() == b"state"
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
    line = refused([*command, "-o", name], "a checkpoint is written as a .pt (or .pth) file", reliability,
                   "checkpoint -o without .pt")
    assert line.endswith(f"-o {Path(name).stem}.pt")


@pytest.mark.parametrize(("name", "suggested"), [("x.pt.bak", "x.pt"), (".pt", "model.pt"), ("x.pth.", "x.pt"),
                                                 ("d/..", "d/model.pt")])
def test_the_suggested_checkpoint_name_is_one_a_user_would_give(name, suggested, tmp_path, reliability,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert refused(["init", "boids", "-o", name], "give e.g.", reliability, "odd checkpoint names").endswith(
        f"-o {suggested}")
    assert list(tmp_path.iterdir()) == []


def test_pth_is_a_checkpoint_name_too(tmp_path):
    result = CliRunner().invoke(cli, ["init", "boids", "-o", str(tmp_path / "m.pth")])
    assert result.exit_code == 0 and (tmp_path / "m.pth").is_file()


def test_calibrate_replaces_only_its_own_model_unless_told(tiny_boids_ckpt, tmp_path, reliability):
    # Newcomer trial: `calibrate a.pt -o trained.pt` replaced trained.pt's weights with a.pt's, unasked.
    victim = tmp_path / "trained.pt"
    victim.write_bytes(b"trained weights")
    refused(["calibrate", str(tiny_boids_ckpt), "-o", str(victim)], "--overwrite", reliability,
            "calibrate over another checkpoint")
    assert victim.read_bytes() == b"trained weights"
    own = tmp_path / "own.pt"
    own.write_bytes(Path(tiny_boids_ckpt).read_bytes())
    assert CliRunner().invoke(cli, ["calibrate", str(own), "-o", str(own)]).exit_code == 0  # MODEL itself


def test_an_interrupt_before_the_first_save_does_not_point_to_a_resume_file(data_dir, tmp_path, monkeypatch):
    import swarmedge.training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(swarmedge.training, "train", interrupted)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", "boids", "--data", "mnist", "-o", "m.pt"])
    assert result.exit_code == 130
    assert "interrupted before anything was saved; run the command again (without --resume)" in result.output
    assert not Path("m.resume.pt").exists()
