"""Self-describing checkpoints load safely; reference layouts load; pickled code never runs.

The layouts of training loops and other tools: test_checkpoint_layouts.py.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from click.testing import CliRunner

from swarmedge.checkpoint import build_model, init_checkpoint, load_checkpoint, save_checkpoint
from swarmedge.cli import cli
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
    with pytest.raises(CheckpointError, match="written with pickle.dump"):
        load_checkpoint(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_bare_state_dict_and_junk_are_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="neither a SwarmFormer's nor a boid model's"):
        load_checkpoint(tmp_path / "sd.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
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


# -- what a file that is no checkpoint is called: each kind named, in one line, none read --------

def _boids_state() -> dict:
    return init_checkpoint("boids", {"blocks": 1}, seed=0)


def _kinds(tmp_path) -> dict:
    """name -> (path, words the refusal must hold)."""
    good = tmp_path / "good.pt"
    save_checkpoint(_boids_state(), good)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "ten-bytes.pt").write_bytes(data[:10])
    (tmp_path / "text.pt").write_text("epoch 3, loss 0.12\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    with open(tmp_path / "dumped.pt", "wb") as f:  # plain weights, but pickle.dump's format
        pickle.dump({"model_state_dict": {"w": torch.zeros(2)}, "params": {"blocks": 1}}, f, protocol=4)
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 3)), tmp_path / "sequential.pt")
    torch.save({"model_state_dict": {}, "params": {"blocks": 1}, "epoch": 0}, tmp_path / "empty-state.pt")
    return {"truncated zip": (tmp_path / "truncated.pt", "damaged or truncated"),
            "ten bytes of a zip": (tmp_path / "ten-bytes.pt", "damaged or truncated"),
            "a text file": (tmp_path / "text.pt", "neither torch.save's zip format"),
            "an empty file": (tmp_path / "empty.pt", "neither torch.save's zip format"),
            "pickle.dump": (tmp_path / "dumped.pt", "written with pickle.dump, not torch.save"),
            "torch.save(nn.Sequential)": (tmp_path / "sequential.pt", "whole pickled model"),
            "an empty state dict": (tmp_path / "empty-state.pt", "'model_state_dict' is empty")}


def test_files_that_are_no_checkpoint_are_named_for_what_they_are(tmp_path):
    for kind, (path, words) in _kinds(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert words in message and "\n" not in message, (kind, message)


def test_no_torch_warning_reaches_the_user(tmp_path):
    """torch warns about a pickle's protocol on stderr before refusing; the one line is ours."""
    path, _ = _kinds(tmp_path)["pickle.dump"]
    r = CliRunner().invoke(cli, ["export", str(path), "-q"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "UserWarning" not in r.stderr, r.stderr


def test_the_older_torch_save_format_still_loads(tmp_path):
    ckpt = _boids_state()
    torch.save(ckpt, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(tmp_path / "legacy.pt")
    assert load_checkpoint(tmp_path / "legacy.pt")["model_type"] == "boids"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo.pt")
    r = subprocess.run([sys.executable, "-m", "swarmedge.cli", "export", str(tmp_path / "fifo.pt")],
                       capture_output=True, text=True, timeout=120)  # a blocking open would hang here
    assert r.returncode == 2 and "FIFO" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
