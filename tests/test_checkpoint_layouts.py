"""Checkpoint layouts users have (issue 12 §3): training-loop dicts, bare state dicts, wrapper
prefixes, half precision, whole pickled modules, non-finite weights; one loader for every command."""

import json
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from click.testing import CliRunner

from swarmedge.checkpoint import build_model, init_checkpoint, load_checkpoint, save_checkpoint
from swarmedge.cli import cli
from swarmedge.errors import CheckpointError

SF_CONFIG = {"d_model": 16, "seq_len": 32, "cluster_size": 4, "num_layers": 2, "T_local": 2}


@pytest.fixture(scope="module")
def case_inputs(tmp_path_factory, cases_dir):
    """The training-loop case's inputs, made by its make_tiny.py in an empty folder."""
    folder = tmp_path_factory.mktemp("case")
    script = cases_dir / "training-loop-checkpoint-refused" / "make_tiny.py"
    subprocess.run([sys.executable, str(script)], cwd=folder, check=True, capture_output=True, timeout=300)
    return folder


@pytest.fixture(scope="module")
def tiny_sf(tiny_vocab):
    """A small SwarmFormer checkpoint (swarmedge's own) whose weights the other layouts carry."""
    return init_checkpoint("swarmformer", SF_CONFIG, seed=5, vocab=tiny_vocab)


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("swarmedge: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def _same_weights(loaded, state):
    assert set(loaded["state_dict"]) == set(state)
    for k, v in state.items():
        assert loaded["state_dict"][k].dtype == torch.float32
        assert torch.equal(loaded["state_dict"][k], v.float()), k


def test_case_training_loop_checkpoint_from_gpu_exports(case_inputs, tmp_path):
    ckpt = case_inputs / "train_ckpt_cuda.pt"
    # the case's storages really are tagged as GPU-saved: a plain load would need CUDA
    with zipfile.ZipFile(ckpt) as z:
        assert b"cuda:0" in z.read("train_ckpt_cuda/data.pkl")
    out = tmp_path / "t.bundle"
    result = _cli("export", ckpt, "--vocab", case_inputs / "vocab.txt", "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["vocab_size"] == 100 and manifest["config"]["T_local"] == 3
    assert "optimizer_state_dict" in result.output  # the summary says what was ignored
    meta = manifest["source"]["metadata"]
    assert meta["config_from"] == "the config under 'params'" and meta["training"]["epoch"] == 4


@pytest.mark.parametrize("where", ["case", "ref_bigvocab"])
def test_vocab_larger_than_embedding_is_refused_before_export(where, cases_dir, case_inputs, tmp_path,
                                                              monkeypatch):
    import swarmedge.export.pipeline as pipeline

    def export_started(*a, **k):
        raise AssertionError("export work started before the vocabulary was checked")

    monkeypatch.setattr(pipeline, "export_onnx", export_started)
    monkeypatch.setattr(pipeline, "staged_directory", export_started)
    model = cases_dir / "vocab-larger-than-embedding" / "model" if where == "case" else case_inputs / "ref_bigvocab"
    work = tmp_path / "work"
    work.mkdir()
    line = _one_line_error(_cli("export", model, "-o", work / "tiny.bundle"))
    assert "vocab.txt has 110 tokens" in line and "embedding has 100 rows" in line and "vocab_size 100" in line
    assert list(work.iterdir()) == []  # no bundle, no staging folder


def test_config_vocab_size_that_disagrees_with_the_embedding(tiny_sf, tmp_path):
    params = {**SF_CONFIG, "vocab_size": 30522}
    torch.save({"model_state_dict": tiny_sf["state_dict"], "params": params}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="vocab_size 30522 but the embedding has 24 rows"):
        load_checkpoint(tmp_path / "m.pt")


def test_vocab_smaller_than_embedding_is_a_notice(conformance_dir, tiny_vocab):
    notices = []
    ckpt = load_checkpoint(conformance_dir / "swarmformer-tiny", vocab=tiny_vocab, notices=notices)
    assert ckpt["config"]["vocab_size"] == 1000
    assert any("24 tokens, the embedding 1000 rows" in n for n in notices)


def test_whole_module_is_refused_and_the_advice_works(case_inputs, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(case_inputs, work, ignore=shutil.ignore_patterns("*.bundle", "*.weights.pt"))
    marker_before = sorted(p.name for p in work.iterdir())
    line = _one_line_error(_cli("export", work / "whole_module.pt"))
    assert "whole pickled model" in line and sorted(p.name for p in work.iterdir()) == marker_before
    command = line.split('python -c "', 1)[1].split('"', 1)[0]
    subprocess.run([sys.executable, "-c", command], cwd="/", check=True, timeout=120)
    fixed = work / "whole_module.weights.pt"
    assert f"then use {fixed}" in line
    result = _cli("export", fixed, "-o", tmp_path / "fixed.bundle")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fixed.bundle" / "model.int8.onnx").is_file()


def test_whole_module_of_a_foreign_class_gets_the_config_values_it_stores(tiny_sf, tmp_path):
    # a user's own class (not swarmedge's): the advice must spell the config out
    (tmp_path / "mynet.py").write_text(
        "from swarmedge.models import SwarmFormer\n\n\nclass MyNet(SwarmFormer):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        from mynet import MyNet

        from swarmedge.models import config_from_dict

        net = MyNet(config_from_dict("swarmformer", tiny_sf["config"]))
        net.load_state_dict(tiny_sf["state_dict"])
        torch.save(net, tmp_path / "net.pt")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mynet", None)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "net.pt")
    message = str(err.value)
    assert "'seq_len': 32, 'cluster_size': 4, 'T_local': 2" in message and "\n" not in message
    command = message.split('python -c "', 1)[1].split('"', 1)[0]
    subprocess.run([sys.executable, "-c", command], cwd=tmp_path, check=True, timeout=120)
    loaded = load_checkpoint(tmp_path / "net.weights.pt", vocab=_vocab_of(tiny_sf, tmp_path))
    _same_weights(loaded, tiny_sf["state_dict"])


def _vocab_of(ckpt, folder):
    vocab = json.loads(ckpt["preprocessing"]["tokenizer"])["model"]["vocab"]
    path = folder / "vocab.txt"
    path.write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    return path


def test_bare_state_dict_names_the_config_it_needs_and_config_json_beside_it_works(case_inputs, tmp_path):
    shutil.copy(case_inputs / "state_dict.pt", tmp_path / "state_dict.pt")
    shutil.copy(case_inputs / "vocab.txt", tmp_path / "vocab.txt")
    line = _one_line_error(_cli("export", tmp_path / "state_dict.pt"))
    assert "seq_len, cluster_size, T_local" in line and "config.json beside it" in line
    assert "vocab_size 100, d_model 16, num_layers 2" in line  # what the weights already tell
    (tmp_path / "config.json").write_text(json.dumps({"seq_len": 32, "cluster_size": 4, "T_local": 3}))
    ckpt = load_checkpoint(tmp_path / "state_dict.pt")
    assert ckpt["config"]["num_layers"] == 2 and ckpt["metadata"]["config_from"] == "config.json beside it"
    build_model(ckpt)


def _prefixed(state, prefix):
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.module.", "module._orig_mod.", "model."])
def test_wrapper_prefixes_are_removed(prefix, tiny_sf, tiny_vocab, tmp_path):
    torch.save({"state_dict": _prefixed(tiny_sf["state_dict"], prefix), "hparams": SF_CONFIG}, tmp_path / "m.pt")
    notices = []
    loaded = load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab, notices=notices)
    _same_weights(loaded, tiny_sf["state_dict"])
    assert any("prefix" in n for n in notices)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_are_cast_to_float32(dtype, tiny_sf, tiny_vocab, tmp_path):
    half = {k: v.to(dtype) for k, v in tiny_sf["state_dict"].items()}
    torch.save({"model": half, "model_args": SF_CONFIG}, tmp_path / "m.pt")
    notices = []
    loaded = load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab, notices=notices)
    _same_weights(loaded, half)
    assert any(str(dtype).removeprefix("torch.") in n and "float32" in n for n in notices)
    build_model(loaded)


@pytest.mark.parametrize("layout", [
    {"model_state_dict": "W", "params": "C"},
    {"state_dict": "W", "config": "C", "optimizer": {}},
    {"model": "W", "model_args": "C", "iter_num": 3, "config": {"batch_size": 8, "learning_rate": 1e-3}},
    {"model": "W", "args": "NS"},
    {"state_dict": "W", "hyper_parameters": {"lr": 0.1, "model_config": "C"}},
    {"net": "W", "cfg": "C", "best_acc": "NP"},
])
def test_training_loop_layouts(layout, tiny_sf, tiny_vocab, tmp_path):
    import argparse

    import numpy as np

    fill = {"W": tiny_sf["state_dict"], "C": {**SF_CONFIG, "batch_size": 32, "dropout": 0.3},
            "NS": argparse.Namespace(**SF_CONFIG, lr=0.01), "NP": np.float64(0.9)}

    def filled(value):
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        return fill.get(value, value) if isinstance(value, str) else value

    torch.save(filled(layout), tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab)
    _same_weights(loaded, tiny_sf["state_dict"])
    assert {k: loaded["config"][k] for k in SF_CONFIG} == SF_CONFIG


def test_config_lacking_a_key_names_it_and_where(tiny_sf, tiny_vocab, tmp_path):
    params = {k: v for k, v in SF_CONFIG.items() if k != "T_local"}
    torch.save({"model_state_dict": tiny_sf["state_dict"], "params": params}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"the config under 'params' lacks T_local"):
        load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab)


def test_boids_training_loop_checkpoint(tmp_path):
    ckpt = init_checkpoint("boids", {"blocks": 3, "recurrent": False, "dim_feedforward": 32, "digits": (3, 8)}, seed=2)
    hparams = {"num_layers": 3, "recurrent": False, "residual_scaling": 0.1, "habitat_scaling": 10.0,
               "digits": [3, 8], "epochs": 5}
    torch.save({"epoch": 5, "model_state_dict": _prefixed(ckpt["state_dict"], "module."),
                "optimizer_state_dict": {}, "hparams": hparams}, tmp_path / "b.pt")
    loaded = load_checkpoint(tmp_path / "b.pt")
    assert loaded["labels"] == ["3", "8"] and loaded["config"]["dim_feedforward"] == 32
    boids = torch.rand(2, 10, 2)
    lengths = torch.tensor([10, 6])
    with torch.no_grad():
        assert torch.equal(build_model(loaded)(boids, lengths)[0], build_model(ckpt)(boids, lengths)[0])


def test_recurrent_boids_state_with_repeated_blocks_in_a_training_dict(tmp_path):
    ckpt = init_checkpoint("boids", {"blocks": 4, "recurrent": True, "dim_feedforward": 16}, seed=1)
    full = {k.replace(".0.", f".{i}.", 1): v for i in range(4) for k, v in ckpt["state_dict"].items()}
    config = {"num_layers": 4, "recurrent": True, "residual_scaling": 0.1, "habitat_scaling": 10.0}
    torch.save({"model": full, "config": config}, tmp_path / "b.pt")
    loaded = load_checkpoint(tmp_path / "b.pt")
    assert loaded["config"]["blocks"] == 4 and set(loaded["state_dict"]) == set(ckpt["state_dict"])


def test_weights_that_do_not_fit_name_the_keys(tiny_sf, tiny_vocab, tmp_path):
    state = dict(tiny_sf["state_dict"])
    state["layers.0.global_attn.query.weight"] = torch.zeros(16, 8)  # wrong shape
    del state["layers.1.broadcast.linear.bias"]  # missing
    state["layers.0.extra.weight"] = torch.zeros(2)  # unexpected
    torch.save({"model_state_dict": state, "params": SF_CONFIG}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab)
    message = str(err.value)
    assert "\n" not in message and "the config under 'params'" in message
    assert "1 missing (layers.1.broadcast.linear.bias)" in message
    assert "1 unexpected (layers.0.extra.weight)" in message
    assert "1 wrong shape (layers.0.global_attn.query.weight expected [16, 16] got [16, 8])" in message


def test_too_many_layers_in_the_config_counts_the_missing_keys(tiny_sf, tiny_vocab, tmp_path):
    torch.save({"model_state_dict": tiny_sf["state_dict"], "params": {**SF_CONFIG, "num_layers": 3}},
               tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"missing \(layers\.2\.[^)]*, …\)"):
        load_checkpoint(tmp_path / "m.pt", vocab=tiny_vocab)


def test_swarmedge_resume_file_loads_and_resume_refuses_nan(tmp_path, tiny_sf):
    from swarmedge.training.loop import resume_checkpoint, side_files

    skeleton = {k: v for k, v in tiny_sf.items() if k != "state_dict"}
    resume = side_files(tmp_path / "out.pt")[0]
    torch.save({"checkpoint": skeleton, "model": tiny_sf["state_dict"], "optimizer": {}}, resume)
    _same_weights(load_checkpoint(resume), tiny_sf["state_dict"])
    state = dict(tiny_sf["state_dict"])
    state["classifier.bias"] = torch.tensor([float("nan"), 0.0])
    torch.save({"checkpoint": skeleton, "model": state, "optimizer": {}}, resume)
    with pytest.raises(CheckpointError, match=r"classifier\.bias \(1 NaN\)"):
        resume_checkpoint(tmp_path / "out.pt")


@pytest.fixture(scope="module")
def nan_boids(tmp_path_factory, tiny_boids_ckpt):
    ckpt = torch.load(tiny_boids_ckpt, weights_only=True)
    ckpt["state_dict"]["encoder_layers.0.linear1.weight"][0, 0] = float("nan")
    ckpt["state_dict"]["encoder_layers.0.linear2.bias"][1] = float("inf")
    path = tmp_path_factory.mktemp("nan") / "nan.pt"
    save_checkpoint(ckpt, path)
    return path


@pytest.mark.parametrize("command", ["export", "eval", "compare", "visualize"])
def test_non_finite_weights_are_refused_by_every_command(command, nan_boids, boids_bundle, data_dir, tmp_path):
    args = {"export": ["export", nan_boids, "-o", tmp_path / "x.bundle"],
            "eval": ["eval", nan_boids, "--data", "mnist", "--data-dir", data_dir, "--limit", "10"],
            "compare": ["compare", nan_boids, boids_bundle, "--data", "mnist", "--data-dir", data_dir,
                        "--limit", "10", "-o", tmp_path / "report"],
            "visualize": ["visualize", nan_boids, "--fields", "-o", tmp_path / "f.png"]}[command]
    line = _one_line_error(_cli(*args))
    assert "non-finite weights" in line
    assert "encoder_layers.0.linear1.weight (1 NaN)" in line and "encoder_layers.0.linear2.bias (1 inf)" in line
    assert not (tmp_path / "x.bundle").exists() and not (tmp_path / "f.png").exists()
