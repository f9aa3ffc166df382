"""swarmedge: swarm-style transformer classifiers from PyTorch to the edge.

Importing this package loads neither torch nor onnx: the device side (``swarmedge.runtimes``)
runs on numpy and onnxruntime alone.
"""

from swarmedge.errors import SwarmedgeError

__version__ = "0.1.0"
__all__ = ["SwarmedgeError", "__version__"]
