"""Quantize an ONNX file with optimum-onnx's dynamic presets (runs in the peers venv).

    python optimum_quantize.py MODEL.onnx OUT_DIR avx512_vnni arm64   ->  OUT_DIR/<preset>.onnx

This is what a user of optimum would do with the same exported model.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig

model, out_dir, presets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
written = {}
with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "model.onnx"
    shutil.copy(model, src)
    for preset in presets:
        config = getattr(AutoQuantizationConfig, preset)(is_static=False)
        quantizer = ORTQuantizer.from_pretrained(tmp, file_name="model.onnx")
        result = Path(quantizer.quantize(config, Path(tmp) / preset))
        target = out_dir / f"{preset}.onnx"
        shutil.move(next(result.glob("*.onnx")) if result.is_dir() else result, target)
        written[preset] = str(target)
print(json.dumps(written))
