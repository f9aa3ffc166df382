"""The export's algebraic rewrites compute what the trained model computes, one by one and together."""

import json

import onnx
import pytest
import torch

from swarmedge.export.quantize import MIN_WEIGHT_DIM, small_matmuls
from swarmedge.export.rewrites import ALL, REWRITES, rewrite
from swarmedge.manifest import PRECISION_FILES
from swarmedge.models import build


def _trained_like(model, scale: float = 0.3):
    """Weights far from initialisation (biases too), so a wrong fold cannot hide behind zeros."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def _prefixes(family):
    names = REWRITES[family]
    return [names[: i + 1] for i in range(len(names))]


@pytest.mark.parametrize("names", _prefixes("swarmformer") + [("split-gates",), ("split-gates", "per-cluster")])
def test_swarmformer_rewrites_are_exact(names):
    model = _trained_like(build("swarmformer", {"vocab_size": 50, "d_model": 16, "seq_len": 32, "cluster_size": 4,
                                                "num_layers": 2, "T_local": 3}))
    ids = torch.randint(1, 50, (3, 32))
    ids[1, 9:] = 0
    with torch.no_grad():
        expected, got = model(ids), rewrite(model, names)(ids)
    assert rewrite(model, names).rewrites == names
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (got - expected).abs().max()


@pytest.mark.parametrize("names", _prefixes("boids") + [("fold-value-output",)])
@pytest.mark.parametrize("recurrent", [True, False])
def test_boid_rewrites_are_exact(names, recurrent):
    model = _trained_like(build("boids", {"blocks": 3, "recurrent": recurrent, "dim_feedforward": 32}))
    boids = torch.rand(3, 40, 2) * 20 - 10
    lengths = torch.tensor([40, 13, 1])
    with torch.no_grad():
        expected, got = model(boids, lengths), rewrite(model, names)(boids, lengths)
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, atol=1e-5, rtol=1e-5), (g - e).abs().max()


def test_rewrite_names_are_checked():
    model = build("swarmformer", {"vocab_size": 50, "d_model": 8, "seq_len": 8, "cluster_size": 4})
    with pytest.raises(ValueError, match="unknown rewrites"):
        rewrite(model, ("fold-everything",))
    with pytest.raises(ValueError, match="needs split-gates"):
        rewrite(model, ("merge-matmuls",))
    assert rewrite(model, ()) is model
    assert rewrite(model, REWRITES["boids"]) is model  # other families' rewrites do not apply


def test_bundles_record_rewrites_and_hold_parity(text_bundle, boids_bundle):
    for bundle, family in ((text_bundle, "swarmformer"), (boids_bundle, "boids")):
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["export"]["graph_passes"]["rewrites"] == list(REWRITES[family])
        assert manifest["parity"]["passed"]  # the rewritten graph against the original model


def test_narrow_matmuls_stay_float(boids_bundle, text_bundle):
    """The boid model's 3-wide products are not worth quantizing; SwarmFormer's 16-wide ones are."""
    manifest = json.loads((boids_bundle / "manifest.json").read_text())
    fp32 = onnx.load(str(boids_bundle / PRECISION_FILES["fp32"]))
    kept = small_matmuls(fp32)
    assert kept and manifest["quantization"]["kept_float"]["nodes"] == kept
    int8 = onnx.load(str(boids_bundle / PRECISION_FILES["int8"]))
    assert not [n for n in int8.graph.node if n.op_type in ("DynamicQuantizeMatMul", "MatMulInteger")]
    text = json.loads((text_bundle / "manifest.json").read_text())
    assert text["config"]["d_model"] >= MIN_WEIGHT_DIM and text["quantization"]["kept_float"]["nodes"] == []
    ops = {n.op_type for n in onnx.load(str(text_bundle / PRECISION_FILES["int8"])).graph.node}
    assert "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops


def test_all_lists_every_family():
    assert set(ALL) == {n for names in REWRITES.values() for n in names}
