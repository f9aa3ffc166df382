"""torch.export a swarmedge checkpoint for the ExecuTorch peer (runs in swarmedge's venv).

    python program.py CHECKPOINT.pt OUT.pt2   ->  OUT.pt2 (an ExportedProgram, torch.export.save)

The ExecuTorch adapter (executorch_peer.py) loads the file with torch.export.load in its own
venv, which has the same torch version. Dynamic shapes follow export/onnx_export.py, with
upper bounds: ExecuTorch plans its memory for the largest shape a program admits, so an
unbounded dimension (ONNX's 65536) would plan gigabytes.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch.export import Dim

from swarmedge.checkpoint import build_model, load_checkpoint

MAX_BATCH = 64
MAX_BOIDS = 784  # a 28x28 image with every pixel lit


def _example_and_shapes(model_type: str, config: dict) -> tuple[tuple[torch.Tensor, ...], dict]:
    """Example inputs (batch 2, so neither batch nor length specialises to 1) and dynamic shapes."""
    batch = Dim("batch", min=1, max=MAX_BATCH)
    rng = np.random.default_rng(0)
    if model_type == "swarmformer":
        s = config["cluster_size"]
        # Lengths are multiples of cluster_size (as in the ONNX export), up to the model's seq_len:
        # the length the benchmark feeds (256 for Small, 768 for Base).
        clusters = Dim("clusters", min=1, max=max(config["seq_len"], 256) // s)
        ids = torch.from_numpy(rng.integers(1, config["vocab_size"], size=(2, 4 * s), dtype=np.int64))
        return (ids,), {"input_ids": {0: batch, 1: s * clusters}}
    boids = torch.from_numpy(rng.uniform(-10, 10, size=(2, 50, 2)).astype(np.float32))
    lengths = torch.tensor([50, 31], dtype=torch.int64)
    boids[1, 31:] = 0.0
    return (boids, lengths), {"boids": {0: batch, 1: Dim("boids", min=1, max=MAX_BOIDS)}, "lengths": {0: batch}}


def export_program(checkpoint: Path, out: Path) -> Path:
    """torch.export the eager model of a swarmedge checkpoint with dynamic shapes (batch 1..64;
    boids: N 1..784; swarmformer: multiples of cluster_size up to max(seq_len, 256)) and
    torch.export.save it to ``out``; this is sources["program"] for the ExecuTorch adapter."""
    ckpt = load_checkpoint(Path(checkpoint))
    model = build_model(ckpt).eval()
    args, shapes = _example_and_shapes(ckpt["model_type"], ckpt["config"])
    with torch.no_grad():
        program = torch.export.export(model, args, dynamic_shapes=shapes, strict=False)
    out = Path(out)
    torch.export.save(program, out)
    return out


if __name__ == "__main__":
    export_program(Path(sys.argv[1]), Path(sys.argv[2]))
