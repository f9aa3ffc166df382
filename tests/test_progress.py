"""Progress on stderr for long commands (issue 15, finding 5): a bar on a terminal, one line
per stage elsewhere once a command has run a while, nothing with --quiet, never on stdout."""

import json
import time

import pytest
from click.testing import CliRunner

from swarmedge import progress
from swarmedge.cli import cli
from swarmedge.progress import Stages


@pytest.fixture(autouse=True)
def progress_on(monkeypatch):
    monkeypatch.delenv("SWARMEDGE_QUIET", raising=False)  # conftest quiets every other test


def test_lines_start_once_the_command_has_run_a_while(monkeypatch, capsys):
    monkeypatch.setattr(progress, "QUIET_FOR_S", 0.3)
    with Stages("eval") as on_step:
        on_step("read mnist")
        assert capsys.readouterr().err == ""  # a quick command says nothing
        time.sleep(0.6)  # the stage still running when the time passes is said then
        assert capsys.readouterr().err == "swarmedge: eval: read mnist\n"
        on_step("classify")  # and every later stage as it starts
        assert capsys.readouterr().err == "swarmedge: eval: classify\n"
    time.sleep(0.1)
    assert capsys.readouterr() == ("", "")  # nothing after the end, nothing on stdout


@pytest.mark.parametrize("how", ["flag", "env"])
def test_quiet_says_nothing(monkeypatch, capsys, how):
    monkeypatch.setattr(progress, "QUIET_FOR_S", 0.0)
    if how == "env":
        monkeypatch.setenv("SWARMEDGE_QUIET", "1")
    with Stages("eval", quiet=how == "flag") as on_step:
        on_step("read mnist")
        time.sleep(0.05)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("quiet", [False, True])
def test_eval_progress_keeps_json_clean(zoo_boids_bundle, data_dir, monkeypatch, quiet):
    monkeypatch.setattr(progress, "QUIET_FOR_S", 0.0)
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    args = ["eval", str(zoo_boids_bundle), "--data", "mnist", "--json"] + (["--quiet"] if quiet else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 1850
    lines = result.stderr.splitlines()
    if quiet:
        assert lines == []
    else:
        assert lines[0] == "swarmedge: eval: read mnist"
        assert lines[-1] == "swarmedge: eval: classify 1,536-1,850 of 1,850 inputs"


def test_export_and_profile_say_their_stages(tiny_boids_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "QUIET_FOR_S", 0.0)
    out = tmp_path / "b.bundle"
    result = CliRunner().invoke(cli, ["export", str(tiny_boids_ckpt), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "swarmedge.bundle"
    assert [x for x in result.stderr.splitlines() if x.startswith("swarmedge: export: ")][:2] == [
        "swarmedge: export: load", "swarmedge: export: export"]
    prof = CliRunner().invoke(cli, ["profile", str(out), "--threads", "1", "--batch", "1,2", "--repeat", "2",
                                    "--warmup", "0", "--json"])
    assert prof.exit_code == 0, prof.output
    assert len(json.loads(prof.stdout)["configs"]) == 4
    assert "swarmedge: profile: int8, 1 thread, batch 2, length 150 (4 of 4)" in prof.stderr.splitlines()


def test_train_says_where_it_is_every_tenth_of_an_epoch(data_dir, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    monkeypatch.setattr(progress, "QUIET_FOR_S", 0.0)
    z = np.load(data_dir / "mnist.npz")
    for digit in (5, 6):
        (tmp_path / "digits" / str(digit)).mkdir(parents=True)
        for i, img in enumerate(z["x_train"][z["y_train"] == digit][:20]):
            Image.fromarray(img).save(tmp_path / "digits" / str(digit) / f"{i}.png")
    args = ["train", "boids", "--data", str(tmp_path / "digits"), "--blocks", "1", "--dim-feedforward", "16",
            "--epochs", "1", "--batch-size", "2", "-o", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("swarmedge: train: epoch 1/1: batch ")]
    assert 5 <= len(lines) <= 10 and lines[-1].startswith("swarmedge: train: epoch 1/1: batch 18 of 18, loss ")
    quiet = CliRunner().invoke(cli, [*args[:-2], "-q", "-o", str(tmp_path / "q.pt")])
    assert quiet.exit_code == 0 and "swarmedge: train:" not in quiet.stderr
