"""The benchmark's peer runtimes run in venvs of their own, behind a worker process: its
protocol, its failures, and timing that leaves the pipe out."""

import sys

import numpy as np
import pytest

from benchmarks.peers.remote import Peer, PeerError, RemoteRunner, build_all
from benchmarks.timing import interleaved

from .conftest import ROOT

FAKE = ROOT / "tests" / "fixtures" / "fake_peer.py"


def _onnx(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    w = onnx.numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2])], [w])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), str(path))
    return path


@pytest.fixture
def peer(tmp_path):
    p = Peer("fake", sys.executable, FAKE, tmp_path / "fake.log")
    yield p
    p.close()


def test_variants_built_and_run_through_the_worker(tmp_path, peer):
    sources = {"model_type": "test", "onnx": str(_onnx(tmp_path))}
    calibration = [{"x": np.ones((2, 3), np.float32)}]
    built = build_all(peer, sources, calibration, tmp_path / "work", log=lambda *_: None)
    assert set(built) == {"Fake fp32", "Fake broken", "Fake crash"}
    assert built["Fake broken"]["error"] == "fake: RuntimeError: this variant cannot be built"
    assert built["Fake fp32"]["bytes"] == (tmp_path / "model.onnx").stat().st_size
    run = RemoteRunner(peer, "Fake fp32", built["Fake fp32"]["artifact"], 1)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    expected = x @ np.arange(6, dtype=np.float32).reshape(3, 2)
    assert np.allclose(run({"x": x}), expected, atol=1e-6)
    seconds = run.timed({"x": x}, 5)
    assert len(seconds) == 5 and all(0 < s < 1 for s in seconds)
    # interleaved timing uses the worker's own clock for it, beside an in-process runner
    feeds = {"x": x}
    ms = interleaved({"remote": run, "local": lambda f: f["x"] @ f["x"].T}, feeds, rounds=2, warmup=1)
    assert set(ms) == {"remote", "local"} and all(len(t) >= 2 for t in ms.values())
    # a second build is served from the cache: the failed one is not retried, nothing rebuilt
    again = build_all(peer, sources, calibration, tmp_path / "work", log=lambda *_: pytest.fail("rebuilt"))
    assert again == built


def test_a_worker_that_dies_is_one_error_and_the_other_variants_go_on(tmp_path, peer):
    sources = {"model_type": "test", "onnx": str(_onnx(tmp_path))}
    built = build_all(peer, sources, [{"x": np.ones((1, 3), np.float32)}], tmp_path / "work", log=lambda *_: None)
    fine = RemoteRunner(peer, "Fake fp32", built["Fake fp32"]["artifact"], 1)
    with pytest.raises(PeerError, match=r"fake worker died during 'load' \(exit code 3\); see .*fake.log"):
        RemoteRunner(peer, "Fake crash", built["Fake crash"]["artifact"], 1)
    # a fresh worker takes over; the runner loaded in the dead one loads again, transparently
    x = {"x": np.ones((2, 3), np.float32)}
    assert np.allclose(fine(x), [[6, 9], [6, 9]]) and len(fine.timed(x, 2)) == 2
    assert peer.generation == 2
