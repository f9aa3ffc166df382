"""The workstation side: torch.onnx export, parity checks and int8 quantization.

Needs the ``[export]`` extra (torch, onnx, onnxscript):

>>> from swarmedge.export import export_bundle  # doctest: +SKIP
>>> path, manifest = export_bundle("model.pt", quantize_mode="dynamic", target="pi5")  # doctest: +SKIP
"""

from swarmedge.errors import require_extra

for _module in ("torch", "onnx", "onnxscript"):
    require_extra(_module, "export")

from swarmedge.export.pipeline import default_bundle_path, export_bundle  # noqa: E402

__all__ = ["default_bundle_path", "export_bundle"]
