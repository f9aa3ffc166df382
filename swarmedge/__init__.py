"""swarmedge: swarm-style transformer classifiers from PyTorch to the edge.

Importing this package loads neither torch nor onnx: the device side (``swarmedge.runtimes``)
runs on numpy and onnxruntime alone.
"""

import os

from swarmedge.errors import SwarmedgeError

# onnxruntime (measured with 1.31/1.32 on Linux) writes a device id and an event database under
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime as soon as it is imported, unless
# ORT_DISABLE_TELEMETRY is set beforehand. Every swarmedge module imports onnxruntime after this
# package, so setting it here keeps runs from writing there; a user's own value is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
__all__ = ["SwarmedgeError", "__version__"]
