"""The two models reproduce the reference implementations (../shared/conformance)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from swarmedge.models import build
from swarmedge.models.boids import BoidsConfig, class_bits
from swarmedge.models.swarmformer import PRESETS


def test_swarmformer_tiny_reproduces_reference_logits(conformance_dir):
    d = conformance_dir / "swarmformer-tiny"
    model = build("swarmformer", json.loads((d / "config.json").read_text()))
    model.load_state_dict(load_file(d / "model.safetensors"), strict=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(d / "input_ids.npy"))).numpy()
    np.testing.assert_allclose(logits, np.load(d / "logits.npy"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["small", "base"])
def test_swarmformer_presets_match_published_layout(conformance_dir, name):
    ref = json.loads((conformance_dir / f"swarmformer-{name}.keys.json").read_text())
    model = build("swarmformer", PRESETS[name].to_dict())
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters"]
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == ref["state_dict"]
    for key, value in ref["config"].items():
        assert getattr(model.config, key) == value


@pytest.mark.parametrize("name", ["boids-recurrent10", "boids-blocks2"])
def test_boids_reproduce_reference_positions(conformance_dir, name):
    from swarmedge.checkpoint import build_model, load_checkpoint

    d = conformance_dir / name
    model = build_model(load_checkpoint(d))
    tokens, lengths = np.load(d / "tokens.npy"), np.load(d / "lengths.npy")
    with torch.no_grad():
        scores, mean, trajectory = model(torch.from_numpy(tokens), torch.from_numpy(lengths))
    final = np.load(d / "final_positions.npy")
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(trajectory[i, -1, :n].numpy(), final[i, :n], atol=1e-5, rtol=0)
    np.testing.assert_allclose(mean.numpy(), np.load(d / "mean_position.npy"), atol=1e-5, rtol=0)
    # class scores rank the unit-cube vertices as the reference's nearest-vertex rule does
    ref_mean = np.load(d / "mean_position.npy")
    nearest = np.argmin(((ref_mean[:, None, :] - class_bits(2).numpy()) ** 2).sum(-1), axis=1)
    assert scores.argmax(1).tolist() == nearest.tolist()
    assert trajectory.shape[1] == model.config.blocks + 1


def test_recurrent_boids_share_one_block():
    rec = build("boids", {"blocks": 10, "recurrent": True})
    distinct = build("boids", {"blocks": 10, "recurrent": False})
    assert len(rec.encoder_layers) == 1 and len(distinct.encoder_layers) == 10
    assert sum(p.numel() for p in distinct.parameters()) == 10 * sum(p.numel() for p in rec.parameters())


def test_padded_boids_do_not_move_the_swarm():
    model = build("boids", {"blocks": 3})
    boids = torch.rand(1, 5, 2) * 20 - 10
    padded = torch.cat([boids, torch.full((1, 3, 2), 7.0)], dim=1)
    with torch.no_grad():
        a = model(boids, torch.tensor([5]))
        b = model(padded, torch.tensor([5]))
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[2][:, :, :5], b[2][:, :, :5])


def test_class_targets_follow_bits():
    model = build("boids", BoidsConfig(digits=tuple(range(8))).to_dict())
    t = model.targets(torch.tensor([0, 5, 7]))
    assert t.tolist() == [[-10, -10, -10], [10, -10, 10], [10, 10, 10]]


@pytest.mark.parametrize("bad", [{"d_model": 2}, {"nhead": 2}, {"digits": [5]}, {"digits": [5, 5]}])
def test_bad_boids_configs_are_rejected(bad):
    with pytest.raises(ValueError):
        build("boids", bad)


def test_swarmformer_rejects_seq_len_not_multiple_of_cluster():
    with pytest.raises(ValueError, match="multiple"):
        build("swarmformer", {"seq_len": 30, "cluster_size": 4})


@pytest.mark.parametrize("model_type,key,value", [("swarmformer", "seq_len", "32"), ("swarmformer", "d_model", True),
                                                  ("swarmformer", "T_local", 2.5), ("boids", "digits", ["5", "6"]),
                                                  ("boids", "residual_scaling", "0.1"), ("boids", "recurrent", 1)])
def test_config_values_of_the_wrong_type_are_named(model_type, key, value):
    from swarmedge.models import config_from_dict

    with pytest.raises(ValueError, match=f"config key '{key}' must be"):
        config_from_dict(model_type, {key: value})


@pytest.mark.parametrize("config", [{"blocks": 4}, {"blocks": 3, "recurrent": False, "d_model": 8,
                                                     "dim_feedforward": 300}])
def test_boids_training_arithmetic_is_the_plain_arithmetic(config):
    """The training path (chunked feed-forward, flash attention: boids_training.py) gives the
    plain path's positions and gradients to float rounding, padding and ragged chunks included."""
    import swarmedge.models.boids as boids
    from swarmedge.models import boids_training

    torch.manual_seed(0)
    model = build("boids", config).train()
    lengths = torch.tensor([700, 3, 411, 1])  # 1,115 valid boids: chunks of 256 with a ragged end
    points = torch.rand(4, 700, 2) * 20 - 10

    def run(fast: bool):
        model.zero_grad()
        original = boids._training_step
        boids._training_step = original if fast else (lambda module: False)
        try:
            _, mean, trajectory = model(points, lengths)
        finally:
            boids._training_step = original
        valid = torch.arange(700)[None, :] < lengths[:, None]
        (trajectory[:, -1][valid] ** 2).sum().backward()
        return mean.detach(), trajectory.detach(), [p.grad.clone() for p in model.parameters()]

    plain, fast = run(False), run(True)
    assert boids_training.ROWS < int(lengths.sum()) and all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-5, atol=1e-5)
    valid = torch.arange(700)[None, :] < lengths[:, None]
    torch.testing.assert_close(fast[1][:, -1][valid], plain[1][:, -1][valid], rtol=1e-5, atol=1e-5)
    for got, want in zip(fast[2], plain[2]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_boids_training_takes_the_fast_path_and_evaluation_the_plain_one():
    from unittest import mock

    import swarmedge.models.boids as boids

    model = build("boids", {"blocks": 2})
    points, lengths = torch.rand(2, 9, 2), torch.tensor([9, 4])
    with mock.patch.object(boids, "fused_attention", wraps=boids.fused_attention) as attention, \
            mock.patch.object(boids, "chunked_feed_forward", wraps=boids.chunked_feed_forward) as feed_forward:
        model.eval()(points, lengths)
        with torch.no_grad():
            model.train()(points, lengths)
        assert not attention.called and not feed_forward.called
        model.train()(points, lengths)[1].sum().backward()
        assert attention.call_count == feed_forward.call_count == 2  # one per step
