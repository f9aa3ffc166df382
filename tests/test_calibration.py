"""Temperature scaling (issue 15, "probabilities that mean something"): fitted on held-out data,
stored in the checkpoint and the bundle, applied by the device, measured by ECE and NLL."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from swarmedge.calibration import calibration_figures, ece, fit_temperature, nll
from swarmedge.cli import cli
from swarmedge.errors import InputError


def _overconfident(n: int, true_t: float, seed: int = 0):
    """Scores whose labels are drawn from softmax(scores / true_t): a model true_t times too sure."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 4, (n, 3))
    p = np.exp(scores / true_t)
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    return scores, labels


def test_fit_recovers_the_temperature_and_lowers_nll_and_ece():
    scores, labels = _overconfident(20_000, 3.0)
    t = fit_temperature(scores, labels)
    assert 2.8 < t < 3.2
    assert nll(scores, labels, t) < nll(scores, labels) and ece(scores, labels, t) < 0.02 < ece(scores, labels)
    # the minimum: a little either side is worse
    assert nll(scores, labels, t) <= min(nll(scores, labels, t * 0.95), nll(scores, labels, t * 1.05))


def test_ece_by_hand():
    # two inputs at confidence 0.9 (one right), two at 0.6 (both right): bins 9 and 6
    scores = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]))
    labels = np.array([0, 1, 0, 0])
    assert ece(scores, labels) == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6))
    figures = calibration_figures(scores, labels)
    assert figures["mean_confidence_when_wrong"] == pytest.approx(0.9) and figures["inputs"] == 4


def test_nothing_to_fit_on_is_one_line():
    with pytest.raises(InputError, match="at least 2 held-out inputs"):
        fit_temperature(np.zeros((1, 2)), np.array([0]))
    with pytest.raises(InputError):
        fit_temperature(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1]))


def test_calibrate_export_and_run_apply_the_temperature(tiny_boids_ckpt, data_dir, tmp_path, monkeypatch):
    from swarmedge.checkpoint import load_checkpoint
    from swarmedge.runtimes import Classifier

    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    out = tmp_path / "cal.pt"
    result = CliRunner().invoke(cli, ["calibrate", str(tiny_boids_ckpt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    record = load_checkpoint(out)["metadata"]["calibration"]
    assert record["fitted_on"] == "the 1134-input validation split of MNIST train (seed 0)"
    assert record["after"]["nll"] <= record["before"]["nll"]
    assert result.stdout.startswith(f"probabilities: temperature {record['temperature']:.3f} fitted on")
    plain, scaled = tmp_path / "plain.bundle", tmp_path / "scaled.bundle"
    for src, dst in ((tiny_boids_ckpt, plain), (out, scaled)):
        assert CliRunner().invoke(cli, ["export", str(src), "-o", str(dst), "-q"]).exit_code == 0
    manifest = json.loads((scaled / "manifest.json").read_text())
    assert manifest["calibration"]["temperature"] == record["temperature"]
    assert json.loads((plain / "manifest.json").read_text())["calibration"] is None
    digits = np.load(data_dir / "mnist.npz")["x_test"][:20].astype(np.float32) / 255
    a, b = Classifier(plain).classify_images(digits), Classifier(scaled).classify_images(digits)
    t = record["temperature"]
    for p, q in zip(a, b):
        assert p.scores == q.scores and p.label == q.label  # the same model, the same classes
        s = np.array(q.scores, dtype=np.float64) / t
        assert q.probability == pytest.approx(np.exp(s.max() - np.logaddexp.reduce(s)))
    ev = CliRunner().invoke(cli, ["eval", str(scaled), "--data", "mnist", "--limit", "200", "-q"])
    assert f"probabilities: temperature-scaled (T = {t:.3f}); ECE" in ev.stdout
    ev = CliRunner().invoke(cli, ["eval", str(plain), "--data", "mnist", "--limit", "200", "-q"])
    assert "probabilities: plain softmax (no temperature fitted: swarmedge calibrate adds one)" in ev.stdout


def test_calibrate_refuses_data_the_model_was_not_trained_on(tiny_boids_ckpt, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    args = ["calibrate", str(tiny_boids_ckpt), "--data", "imdb", "-o", str(tmp_path / "x.pt")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        "swarmedge: error: imdb holds texts, but this boids model was trained on digit images: pass --data a "
        "folder with one sub-folder of images per label (e.g. digits/5/a.png), or no --data for MNIST"]
    assert not (tmp_path / "x.pt").exists()


def test_a_failed_fit_leaves_the_output_as_it_was(tiny_boids_ckpt, data_dir, tmp_path, monkeypatch):
    # found by a newcomer: calibrate copied MODEL to -o first, so Ctrl-C left an uncalibrated copy
    from swarmedge import evaluate

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setenv("SWARMEDGE_DATA", str(data_dir))
    monkeypatch.setattr(evaluate, "torch_scores", broken)
    out = tmp_path / "x.pt"
    result = CliRunner().invoke(cli, ["calibrate", str(tiny_boids_ckpt), "-o", str(out)])
    assert result.exit_code == 130 and not out.exists() and list(tmp_path.iterdir()) == []
    out.write_bytes(b"an earlier file")
    assert CliRunner().invoke(cli, ["calibrate", str(tiny_boids_ckpt), "-o", str(out), "--overwrite"]).exit_code == 130
    assert out.read_bytes() == b"an earlier file"
