"""Print optimum-onnx's AutoQuantizationConfig presets as JSON (runs in the peers venv)."""

import json

from optimum.onnxruntime.configuration import AutoQuantizationConfig

DTYPES = {"QUInt8": "u8", "QInt8": "s8"}
out = {}
for name in ("arm64", "avx2", "avx512", "avx512_vnni"):
    cfg = getattr(AutoQuantizationConfig, name)(is_static=False)
    out[name] = {
        "activation_type": DTYPES[cfg.activations_dtype.name],
        "weight_type": DTYPES[cfg.weights_dtype.name],
        "per_channel": cfg.per_channel,
        "reduce_range": cfg.reduce_range,
        "weights_symmetric": cfg.weights_symmetric,
        "activations_symmetric": cfg.activations_symmetric,
    }
print(json.dumps(out))
