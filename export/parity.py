"""Does the ONNX model compute what the PyTorch model computes? And what does int8 change?"""

from pathlib import Path

import numpy as np
import torch

from swarmedge.errors import InputError, ParityError
from swarmedge.export.onnx_export import spec_for

DEFAULT_TOLERANCE = 1e-4
# Relative part of the tolerance, scaled by the output's largest magnitude (normwise, not per
# element): float32 rounding grows with the size of the terms summed, not of the result. A
# trained boid swarm attends with scores in the hundreds, where re-associating a sum moves a
# score by ~|s| * 6e-8 and so every attention-weighted position by ~1e-5 of the swarm's
# extent (measured: 4.7e-4 on positions up to 23.5 for the 2-block model). An export bug
# moves outputs by their own size. Logits of order 1 are held to about the absolute 1e-4.
DEFAULT_RTOL = 1e-4


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_parity(model, model_type: str, onnx_path: Path, tolerance: float = DEFAULT_TOLERANCE,
                 raise_on_mismatch: bool = True, rtol: float = DEFAULT_RTOL) -> dict:
    """Run PyTorch and onnxruntime on the same inputs at several batch sizes and lengths.

    Checks every output's name, shape and values (|ONNX - PyTorch| <= tolerance + rtol * max|PyTorch|
    over that output); collects all failures, then raises one ParityError listing each (unless
    ``raise_on_mismatch`` is False).
    """
    config = model.config.to_dict()
    spec = spec_for(model_type, config)
    session = _session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    if names != list(spec.outputs):
        raise ParityError(f"ONNX outputs are {names}, expected {list(spec.outputs)}")
    rng = np.random.default_rng(1)
    cases, failures = [], []
    worst = dict.fromkeys(spec.outputs, 0.0)
    used = dict.fromkeys(spec.outputs, 0.0)  # the largest share of its tolerance a difference took
    for batch, length in spec.parity_shapes:
        feeds = spec.example(config, batch, length, rng)
        with torch.no_grad():
            expected = model(*(torch.from_numpy(v) for v in feeds.values()))
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, feeds)
        diffs = {}
        for name, e, g in zip(spec.outputs, expected, got):
            e = e.numpy()
            if e.shape != g.shape:
                failures.append(f"{name} at batch {batch}, length {length}: shape {g.shape} != {e.shape}")
                diffs[name] = float("inf")
                continue
            err = np.abs(e - g)
            diffs[name] = float(err.max()) if e.size else 0.0
            bound = tolerance + rtol * (float(np.abs(e).max()) if e.size else 0.0)
            used[name] = max(used[name], diffs[name] / bound)
            if not np.all(err <= bound):
                failures.append(f"{name} at batch {batch}, length {length}: max diff {diffs[name]:.3g}")
            worst[name] = max(worst[name], diffs[name])
        cases.append({"batch": batch, "length": length, "max_abs_diff": diffs})
    report = {"tolerance": tolerance, "rtol": rtol, "cases": cases, "max_abs_diff": worst,
              "share_of_tolerance": used, "passed": not failures,
              "failures": failures}
    if failures and raise_on_mismatch:
        raise ParityError(
            f"ONNX differs from PyTorch beyond {tolerance:g} + {rtol:g}*max|value|: {'; '.join(failures)} "
            "(no bundle written; --allow-mismatch keeps it anyway)"
        )
    return report


def int8_agreement(fp32_path: Path, int8_path: Path, feeds: list[dict], source: str) -> dict:
    """Top-1 agreement and score differences of the int8 model against the fp32 model.

    Each input runs alone, as the device runner runs it (``runtimes.batching``), so the
    figures describe the scores users get, not ones that depend on this check's batching.
    """
    from swarmedge.runtimes.batching import split_inputs

    fp32, int8 = _session(fp32_path), _session(int8_path)
    output = fp32.get_outputs()[0].name
    singles = [one for f in feeds for one in split_inputs(f)]
    if not singles:
        raise InputError(f"no inputs to compare int8 with fp32 on ({source}); give inputs that are not blank")
    a = np.concatenate([fp32.run([output], f)[0] for f in singles])
    b = np.concatenate([int8.run([output], f)[0] for f in singles])
    diff = np.abs(a - b)
    return {
        "inputs": int(len(a)),
        "source": source,
        "output": output,
        "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }
