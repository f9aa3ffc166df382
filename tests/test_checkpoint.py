"""Self-describing checkpoints load safely; reference layouts load; pickled code never runs.

The layouts of training loops and other tools: test_checkpoint_layouts.py.
"""

import json
import pickle
import shutil

import pytest
import torch

from swarmedge.checkpoint import build_model, init_checkpoint, load_checkpoint, save_checkpoint
from swarmedge.errors import CheckpointError, InputError


class _Payload:
    """Unpickling this would create the marker file: the attack a checkpoint must not run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_roundtrip_with_weights_only(tmp_path):
    ckpt = init_checkpoint("boids", {"blocks": 2, "recurrent": False}, seed=3)
    save_checkpoint(ckpt, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)  # plain types only
    assert raw["model_type"] == "boids" and raw["labels"] == ["5", "6"]
    loaded = load_checkpoint(tmp_path / "m.pt")
    model = build_model(loaded)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["state_dict"][k])


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(evil)
    assert not marker.exists()
    # a plain pickle file (not a torch zip) with the same payload
    with open(tmp_path / "evil2.pt", "wb") as f:
        pickle.dump(_Payload(marker), f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_bare_state_dict_and_junk_are_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="neither a SwarmFormer's nor a boid model's"):
        load_checkpoint(tmp_path / "sd.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_reference_swarmformer_layout_loads(conformance_dir, tiny_vocab, tmp_path):
    src = conformance_dir / "swarmformer-tiny"
    # as a directory, and as the .safetensors file with config.json beside it
    for path in (src, src / "model.safetensors"):
        ckpt = load_checkpoint(path, vocab=tiny_vocab)
        assert ckpt["model_type"] == "swarmformer" and ckpt["config"]["d_model"] == 16
        build_model(ckpt)
    # the tokenizer may also come from a vocab.txt beside the weights
    copy = tmp_path / "ref"
    shutil.copytree(src, copy)
    shutil.copy(tiny_vocab, copy / "vocab.txt")
    assert "WordPiece" in load_checkpoint(copy)["preprocessing"]["tokenizer"]


def test_reference_recurrent_boids_with_repeated_block_keys(conformance_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    src = conformance_dir / "boids-recurrent10"
    state = load_file(src / "model.safetensors")
    # the reference's own state dict repeats the shared block under encoder_layers.1..9
    full = {k.replace(".0.", f".{i}.", 1): v.clone() for i in range(10) for k, v in state.items()}
    (tmp_path / "config.json").write_text((src / "config.json").read_text())
    save_file(full, tmp_path / "model.safetensors")
    model = build_model(load_checkpoint(tmp_path))
    assert model.config.blocks == 10 and len(model.encoder_layers) == 1
    full["encoder_layers.3.linear1.bias"] = full["encoder_layers.3.linear1.bias"] + 1
    save_file(full, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="differs"):
        load_checkpoint(tmp_path)


def test_reference_config_errors_are_clear(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "model.safetensors").write_bytes(b"xx")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


def test_mismatched_weights_are_reported(tmp_path):
    ckpt = init_checkpoint("boids", {}, seed=0)
    ckpt["config"]["dim_feedforward"] = 8
    save_checkpoint(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"do not match its config: 3 wrong shape \(encoder_layers"):
        build_model(load_checkpoint(tmp_path / "m.pt"))
    with pytest.raises(CheckpointError, match="does not match its config: 3 wrong shape"):
        build_model(ckpt)


def test_swarmformer_init_needs_a_vocabulary(monkeypatch):
    monkeypatch.delenv("SWARMEDGE_DATA", raising=False)
    with pytest.raises(InputError, match="--vocab"):
        init_checkpoint("swarmformer", {})
