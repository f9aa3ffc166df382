"""Export: ONNX parity with PyTorch, dynamic shapes, int8, manifests, all-or-nothing writes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swarmedge.checkpoint import build_model, load_checkpoint
from swarmedge.errors import InputError, ParityError
from swarmedge.export import export_bundle
from swarmedge.manifest import read_manifest, sha256_file

from .conftest import default_sigint


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_text_bundle_contents_and_manifest(text_bundle):
    m = read_manifest(text_bundle)
    assert sorted(m["files"]) == ["model.int8.onnx", "model.onnx", "tokenizer.json"]
    for name, entry in m["files"].items():
        assert sha256_file(text_bundle / name) == entry["sha256"]
    assert m["parity"]["passed"] and max(m["parity"]["max_abs_diff"].values()) <= 1e-4
    assert len(m["parity"]["cases"]) >= 3
    assert {c["batch"] for c in m["parity"]["cases"]} >= {1, 2, 3}
    assert 0.0 <= m["int8_vs_fp32"]["top1_agreement"] <= 1.0 and m["int8_vs_fp32"]["inputs"] == 64
    assert m["quantization"]["target"]["name"] in ("x86", "x86-vnni", "arm64", "pi4", "pi5")
    assert [i["name"] for i in m["inputs"]] == ["input_ids"]
    proto = onnx.load(str(text_bundle / "model.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["swarmedge.model_type"] == "swarmformer"
    assert json.loads(meta["swarmedge.labels"]) == ["negative", "positive"]
    assert len(proto.graph.input) == 1 and proto.graph.input[0].name == "input_ids"


def test_onnx_has_dynamic_batch_and_length(text_bundle, tiny_text_ckpt):
    model = build_model(load_checkpoint(tiny_text_ckpt))
    sess = _session(text_bundle / "model.onnx")
    rng = np.random.default_rng(5)
    for batch, length in [(1, 4), (7, 96), (2, 1024)]:  # lengths the trace never saw
        ids = rng.integers(0, model.config.vocab_size, size=(batch, length))
        with torch.no_grad():
            expected = model(torch.from_numpy(ids)).numpy()
        got = sess.run(None, {"input_ids": ids})[0]
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_boids_bundle_outputs_and_any_boid_count(boids_bundle, tiny_boids_ckpt):
    m = read_manifest(boids_bundle)
    assert [o["name"] for o in m["outputs"]] == ["scores", "mean_position", "trajectory"]
    model = build_model(load_checkpoint(tiny_boids_ckpt))
    sess = _session(boids_bundle / "model.onnx")
    for batch, n in [(1, 3), (5, 333)]:
        boids = np.random.default_rng(n).uniform(-10, 10, (batch, n, 2)).astype(np.float32)
        lengths = np.full(batch, n, dtype=np.int64)
        lengths[-1] = max(1, n // 2)
        with torch.no_grad():
            expected = model(torch.from_numpy(boids), torch.from_numpy(lengths))
        for e, g in zip(expected, sess.run(None, {"boids": boids, "lengths": lengths})):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=0)
    traj = sess.run(["trajectory"], {"boids": boids[:1], "lengths": lengths[:1]})[0]
    assert traj.shape == (1, model.config.blocks + 1, n, 3)


def test_parity_failure_leaves_no_bundle(tiny_boids_ckpt, tmp_path, monkeypatch):
    import swarmedge.export.pipeline as pipeline

    real_export = pipeline.export_onnx

    def broken_export(model, model_type, path, *args, **kw):
        out = real_export(model, model_type, path, *args, **kw)
        proto = onnx.load(str(path))
        init = max(proto.graph.initializer, key=lambda i: int(np.prod(i.dims)))  # the feed-forward weight
        arr = onnx.numpy_helper.to_array(init) + 0.5  # a wrong weight: a real mismatch
        init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
        onnx.save(proto, str(path))
        return out

    monkeypatch.setattr(pipeline, "export_onnx", broken_export)
    out = tmp_path / "broken.bundle"
    with pytest.raises(ParityError, match="scores at batch"):
        export_bundle(tiny_boids_ckpt, out)
    assert not out.exists() and os.listdir(tmp_path) == []
    path, manifest = export_bundle(tiny_boids_ckpt, out, allow_mismatch=True, quantize_mode=None)
    assert not manifest["parity"]["passed"] and manifest["parity"]["failures"]


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_static_qdq_with_calibration(tiny_text_ckpt, tmp_path, method):
    texts = [f"the film was {w} and the plot {v}" for w in ("good", "bad", "great", "awful")
             for v in ("is", "was not", "!")] * 3
    (tmp_path / "cal.txt").write_text("\n".join(texts))
    path, m = export_bundle(tiny_text_ckpt, tmp_path / "s.bundle", quantize_mode="static",
                            calibration=tmp_path / "cal.txt", method=method, calibration_size=16)
    assert m["quantization"]["format"] == "QDQ" and m["quantization"]["calibration_method"] == method
    assert m["quantization"]["calibration"]["inputs"] == 16
    assert m["int8_vs_fp32"]["inputs"] == len(texts) - 16
    ops = {n.op_type for n in onnx.load(str(path / "model.int8.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops


def test_static_needs_calibration_and_bad_options_are_clear(tiny_text_ckpt, tmp_path):
    with pytest.raises(InputError, match="calibration"):
        export_bundle(tiny_text_ckpt, tmp_path / "x.bundle", quantize_mode="static")
    with pytest.raises(InputError, match="opset"):
        export_bundle(tiny_text_ckpt, tmp_path / "x.bundle", opset=12)
    with pytest.raises(InputError, match="unknown target"):
        export_bundle(tiny_text_ckpt, tmp_path / "x.bundle", target="sparc")
    assert not (tmp_path / "x.bundle").exists()


def test_reference_safetensors_checkpoint_exports(conformance_dir, tiny_vocab, tmp_path):
    # swarmformer-tiny has a 1000-token vocabulary; pad the tiny vocab to that size
    vocab = tmp_path / "vocab.txt"
    words = tiny_vocab.read_text().split()
    vocab.write_text("\n".join(words + [f"w{i}" for i in range(1000 - len(words))]) + "\n")
    path, m = export_bundle(conformance_dir / "swarmformer-tiny", tmp_path / "ref.bundle", vocab=vocab)
    assert m["parity"]["passed"]
    ids = np.load(conformance_dir / "swarmformer-tiny" / "input_ids.npy")
    got = _session(path / "model.onnx").run(None, {"input_ids": ids})[0]
    np.testing.assert_allclose(got, np.load(conformance_dir / "swarmformer-tiny" / "logits.npy"), atol=1e-5)
    path, m = export_bundle(conformance_dir / "boids-recurrent10", tmp_path / "b.bundle")
    assert m["parity"]["passed"] and m["config"]["blocks"] == 10


def _start_export(ckpt, out):
    return subprocess.Popen([sys.executable, "-m", "swarmedge.cli", "export", str(ckpt), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_export_leaves_nothing_and_keeps_old_bundle(tiny_boids_ckpt, tmp_path, sig):
    out = tmp_path / "b.bundle"
    proc = _start_export(tiny_boids_ckpt, out)
    assert proc.wait(timeout=180) == 0, proc.stderr.read()
    before = {p.name: sha256_file(p) for p in out.iterdir()}
    for _ in range(2):  # once onto the existing bundle, once onto a new path
        for target in (out, tmp_path / "new.bundle"):
            proc = _start_export(tiny_boids_ckpt, target)
            deadline = time.time() + 120
            staging = f".{target.name}.staging"
            while time.time() < deadline and not any(p.name.startswith(staging) for p in tmp_path.iterdir()):
                time.sleep(0.02)
            time.sleep(0.3)  # mid-export: staging exists, ONNX being written
            proc.send_signal(sig)
            rc = proc.wait(timeout=60)
            assert rc != 0, "the export finished before it could be interrupted"
            assert "interrupted" in proc.stderr.read()
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bundle"]


@pytest.mark.parametrize("preset", ["small", "base"])
def test_full_size_swarmformer_int8_is_under_30_percent(data_dir, tmp_path, preset):
    from swarmedge.checkpoint import init_checkpoint, save_checkpoint
    from swarmedge.models.swarmformer import PRESETS

    save_checkpoint(init_checkpoint("swarmformer", PRESETS[preset].to_dict(),
                                    vocab=data_dir / "bert-base-uncased-vocab.txt"), tmp_path / "m.pt")
    _, m = export_bundle(tmp_path / "m.pt", tmp_path / "m.bundle", agreement_size=32)
    assert m["parity"]["passed"] and max(m["parity"]["max_abs_diff"].values()) <= 1e-4
    ratio = m["files"]["model.int8.onnx"]["bytes"] / m["files"]["model.onnx"]["bytes"]
    assert ratio <= 0.30, f"int8 is {ratio:.1%} of fp32"
