"""Boid training settings: --augment and --loss, and what --resume keeps of a run."""

from unittest import mock

import numpy as np
import pytest
import torch

from swarmedge.checkpoint import init_checkpoint
from swarmedge.datasets import Dataset
from swarmedge.training import TrainConfig, train

from .test_training import BOIDS_TINY, _class_folders, _cli, _digits, _one_line_error


def test_affine_augmentation_moves_each_digit_within_its_range_and_is_seeded():
    from swarmedge.training import tasks

    task = tasks.BoidsTask(None, {"habitat_scaling": 10.0}, augment=True)
    boids = torch.tensor([[[5.0, 0.0], [0.0, 0.0], [-5.0, 2.0]]]).repeat(64, 1, 1)  # (64, 3, 2)
    torch.manual_seed(3)
    moved = task.random_affine(boids)
    torch.manual_seed(3)
    assert torch.equal(task.random_affine(boids), moved)  # torch's generator: restored on --resume
    pixel = 20 / 27
    shift = moved[:, 1]  # the image centre only moves by the shift
    assert shift.abs().max() <= tasks.SHIFT_PIXELS * pixel and shift.std() > 0
    # distances from the centre scale by 0.9-1.1, whatever the turn; the turn stays within 15 degrees
    ratio = (moved[:, 0] - shift).norm(dim=1) / 5
    assert ratio.min() >= tasks.SCALE_RANGE[0] - 1e-5 and ratio.max() <= tasks.SCALE_RANGE[1] + 1e-5
    angle = torch.rad2deg(torch.atan2((moved[:, 0] - shift)[:, 1], (moved[:, 0] - shift)[:, 0])).abs()
    assert angle.max() <= tasks.ROTATION_DEGREES + 1e-4 and angle.max() > 1


def _tiny_text_run(tiny_vocab):
    """32 toy reviews and a tiny SwarmFormer: for checks that refuse boid-only settings."""
    text = Dataset(["good film", "bad film"] * 16, np.array([1, 0] * 16), ["negative", "positive"], "text", "toy")
    ckpt = init_checkpoint("swarmformer", {"d_model": 8, "seq_len": 8, "cluster_size": 4, "num_layers": 1,
                                           "T_local": 1}, vocab=tiny_vocab)
    return text, ckpt


def test_augment_is_for_digits_and_kept_on_resume(data_dir, tmp_path, tiny_vocab):
    from swarmedge.errors import InputError

    text, ckpt = _tiny_text_run(tiny_vocab)
    with pytest.raises(InputError, match="--augment applies to boid"):
        train(ckpt, text, tmp_path / "t.pt", TrainConfig(epochs=1, batch_size=8, augment="affine"), progress=False)
    ds = _digits(data_dir, 48)
    boids = init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16})
    from swarmedge.training import tasks

    with mock.patch.object(tasks.BoidsTask, "random_affine", autospec=True,
                           side_effect=lambda task, points: points) as affine:
        train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=1, batch_size=16, augment="affine"), progress=False)
    assert affine.call_count == 3  # every training batch of 43 digits (48 less the validation split), none else
    with pytest.raises(InputError, match="--resume: the run used --augment affine, not none: give --augment affine to"):
        train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=2, batch_size=16), resume=True, progress=False)
    # a resume file written before --augment existed ran without it
    resume = tmp_path / "b.resume.pt"
    payload = torch.load(resume, weights_only=True)
    del payload["config"]["augment"]
    torch.save(payload, resume)
    with pytest.raises(InputError, match="--resume: the run used --augment none, not affine"):
        train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=2, batch_size=16, augment="affine"), resume=True,
              progress=False)


def test_distance_loss_is_the_mean_unsquared_distance_of_the_valid_boids():
    from swarmedge.models.boids import BoidsConfig, BoidSwarm
    from swarmedge.training import tasks

    torch.manual_seed(0)
    model = BoidSwarm(BoidsConfig(blocks=1, dim_feedforward=8)).train()
    boids, lengths = torch.randn(3, 5, 2) * 5, torch.tensor([5, 2, 4])
    labels = torch.tensor([0, 1, 1])
    final = model(boids, lengths)[2][:, -1]
    per_boid = [(final[i, :n] - model.targets(labels)[i]).norm(dim=-1) for i, n in enumerate(lengths)]
    want = torch.cat(per_boid)
    got, _ = tasks.BoidsTask(model, {}, loss="distance").loss((boids, lengths), labels)
    assert torch.allclose(got, want.mean(), rtol=1e-6)
    squared, _ = tasks.BoidsTask(model, {}).loss((boids, lengths), labels)
    assert torch.allclose(squared, (want ** 2).mean(), rtol=1e-5)
    # boids exactly on their targets: sqrt's infinite slope at 0 must not make the gradient NaN
    at = model.targets(labels).detach()[:, None, None, :].repeat(1, 2, 5, 1).requires_grad_()  # (B, S+1, N, D)
    fake = mock.Mock(return_value=(None, None, at), targets=model.targets)
    on_target, _ = tasks.BoidsTask(fake, {}, loss="distance").loss((boids, lengths), labels)
    on_target.backward()
    assert on_target.item() < 1e-5 and torch.isfinite(at.grad).all()


def test_loss_is_for_digits_and_kept_on_resume(data_dir, tmp_path, tiny_vocab):
    from swarmedge.errors import InputError

    text, ckpt = _tiny_text_run(tiny_vocab)
    with pytest.raises(InputError, match="--loss applies to boid"):
        train(ckpt, text, tmp_path / "t.pt", TrainConfig(epochs=1, batch_size=8, boid_loss="distance"), progress=False)
    boids, ds = init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16}), _digits(data_dir, 48)
    with pytest.raises(InputError, match="unknown boid loss 'l1': use squared or distance"):
        train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=1, batch_size=16, boid_loss="l1"), progress=False)
    train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=1, batch_size=16, boid_loss="distance"), progress=False)
    saved = torch.load(tmp_path / "b.pt", weights_only=True)["metadata"]["training"]
    assert saved["boid_loss"] == "distance"
    with pytest.raises(InputError, match="--resume: the run used --loss distance, not squared: give --loss distance"):
        train(boids, ds, tmp_path / "b.pt", TrainConfig(epochs=2, batch_size=16), resume=True, progress=False)


def test_resume_refuses_a_typed_model_option_the_run_did_not_use(data_dir, tmp_path):
    # Newcomer trial: `train boids --blocks 2 --resume` after a --blocks 1 run trained the 1-block
    # model on and said nothing. A model option typed with another value is refused; left at its
    # default it is not the user's ask, and the run's own model goes on.
    folders, out = _class_folders(data_dir, tmp_path / "digits", (5, 6)), tmp_path / "m.pt"
    assert _cli("train", "boids", "--data", folders, *BOIDS_TINY, "-o", out).exit_code == 0
    base = ["train", "boids", "--data", folders, "--epochs", "1", "--batch-size", "8", "--resume", "-o", out]
    before = out.read_bytes()
    for extra, words in ((["--blocks", "2"], "own model (blocks 1, not 2): drop --blocks"),
                         (["--dim-feedforward", "32"], "(dim feedforward 16, not 32): drop --dim-feedforward"),
                         (["--no-recurrent"], "(recurrent True, not False): drop --no-recurrent")):
        line = _one_line_error(_cli(*base, *extra))
        assert words in line and "--overwrite" in line
    assert out.read_bytes() == before
    assert _cli(*base, "--dim-feedforward", "16").exit_code == 0  # the run's own value: no conflict
    assert torch.load(out, weights_only=True)["config"]["blocks"] == 1


def test_resume_refuses_another_lr_weight_decay_or_length_before_reading_data(data_dir, tmp_path):
    # Newcomer trial: --lr, --weight-decay and --epochs typed on --resume were ignored (the optimizer
    # restored from the file kept its own) or bent the cosine schedule mid-run, in silence.
    import shutil

    folders, out = _class_folders(data_dir, tmp_path / "digits", (5, 6)), tmp_path / "m.pt"
    run = ["train", "boids", *BOIDS_TINY, "--lr", "5e-3", "--weight-decay", "0"]
    assert _cli(*run, "--data", folders, "-o", out).exit_code == 0
    shutil.rmtree(folders)  # the settings are checked first: no data is read to refuse them
    before = out.read_bytes()
    for option, value, used in (("--lr", "1e-3", "0.005"), ("--weight-decay", "0.01", "0.0"),
                                ("--epochs", "3", "1")):
        asked = [*run, option, value]  # click keeps the last of a repeated option
        line = _one_line_error(_cli(*asked, "--data", folders, "--resume", "-o", out))
        assert f"the run used {option} {used}, not " in line and f"give {option} {used}" in line
    assert out.read_bytes() == before
    # the run's own settings go on to read the (now missing) data: refused for that, not a setting
    line = _one_line_error(_cli(*run, "--data", folders, "--resume", "-o", out))
    assert "the run used" not in line


def test_resume_names_the_option_typed_for_the_digits():
    # Newcomer trial: `--classes 8 --resume` on a 5-vs-6 run was told to "drop --digits"
    import click
    from click.core import ParameterSource

    from swarmedge.cli_train import _refuse_other_model

    run = {"model_type": "boids", "config": {"digits": [5, 6]}, "preprocessing": {}}
    for option, flag in (("classes", "--classes"), ("digits", "--digits")):
        with click.Context(click.Command("train")) as ctx:
            ctx.params = {option: None}
            ctx.set_parameter_source(option, ParameterSource.COMMANDLINE)
            with pytest.raises(click.UsageError, match=f"own model \\(digits \\[5, 6\\], not .*\\): drop {flag},"):
                _refuse_other_model({"digits": list(range(8))}, run)


def test_an_epoch_resumed_mid_way_logs_the_loss_of_all_its_batches(data_dir, tmp_path):
    # Newcomer trial: after Ctrl-C mid-epoch, --resume logged the mean loss of the resumed batches only
    import json

    ds, cfg = _digits(data_dir, 96), TrainConfig(epochs=1, batch_size=8, seed=3)
    whole = train(init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16}), ds, tmp_path / "a.pt", cfg,
                  progress=False, threads=1)

    def stop(stage):
        raise KeyboardInterrupt

    boids = init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16})
    with pytest.raises(KeyboardInterrupt):  # stopped at the epoch's first tenth (batch 2 of 11)
        train(boids, ds, tmp_path / "b.pt", cfg, progress=False, threads=1, on_step=stop)
    stopped = torch.load(tmp_path / "b.resume.pt", weights_only=True)["state"]
    assert stopped["step"] == len(stopped["losses"]) == 2 and stopped["seconds"] > 0
    resumed = train(boids, ds, tmp_path / "b.pt", cfg, resume=True, progress=False, threads=1)
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-5)
    logged = json.loads((tmp_path / "b.log.jsonl").read_text())
    assert logged["train_loss"] == resumed["train_loss"]


def test_ema_keeps_the_average_and_resumes_it(data_dir, tmp_path):
    from swarmedge.training import loop

    ds, cfg = _digits(data_dir, 96), TrainConfig(epochs=2, batch_size=8, seed=1, ema=0.9)

    def start():
        return init_checkpoint("boids", {"blocks": 1, "dim_feedforward": 16})

    judged = []

    def rising(task, x, y, batch_size, model):  # each epoch better than the last: epoch 2 is kept
        judged.append(model)
        return len(judged) / 10

    with mock.patch.object(loop, "evaluate", side_effect=rising):
        train(start(), ds, tmp_path / "a.pt", cfg, progress=False, threads=1)
    payload = torch.load(tmp_path / "a.resume.pt", weights_only=True)
    kept = torch.load(tmp_path / "a.pt", weights_only=True)
    assert kept["metadata"]["training"]["ema"] == 0.9 and kept["metadata"]["training"]["epoch"] == 2
    for name, value in kept["state_dict"].items():  # the average of the weights was judged and kept
        assert torch.equal(value, payload["averaged"][f"module.{name}"]), name
        assert torch.equal(value, judged[-1].state_dict()[name]), name
    assert any(not torch.equal(v, payload["model"][k]) for k, v in kept["state_dict"].items())
    assert int(payload["averaged"]["n_averaged"]) == 22  # every step of both epochs (11 batches each)
    whole = train(start(), ds, tmp_path / "w.pt", cfg, progress=False, threads=1)
    payload = torch.load(tmp_path / "w.resume.pt", weights_only=True)

    calls = []

    def stop_once(stage):
        calls.append(stage)
        if len(calls) == 12:  # epoch 2, batch 2 of 11
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(start(), ds, tmp_path / "b.pt", cfg, progress=False, threads=1, on_step=stop_once)
    resumed = train(start(), ds, tmp_path / "b.pt", cfg, resume=True, progress=False, threads=1)
    assert resumed["best_val_accuracy"] == whole["best_val_accuracy"]
    again = torch.load(tmp_path / "b.resume.pt", weights_only=True)["averaged"]
    for name, value in payload["averaged"].items():  # the average went on from where it stopped
        assert torch.allclose(again[name].float(), value.float(), atol=1e-6), name
    with pytest.raises(Exception, match="--resume: the run used --ema 0.9, not 0.0"):
        train(start(), ds, tmp_path / "b.pt", TrainConfig(epochs=2, batch_size=8, seed=1), resume=True,
              progress=False)
