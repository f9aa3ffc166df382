"""The device side: numpy + onnxruntime (+ tokenizers, Pillow) only, never torch or onnx.

This is what runs on a Raspberry Pi after ``pip install swarmedge``.

>>> from swarmedge.runtimes import Classifier  # doctest: +SKIP
>>> Classifier("model.bundle").classify_texts(["a wonderful film"])[0].label  # doctest: +SKIP
'positive'
"""

from swarmedge.runtimes.bundle import Bundle
from swarmedge.runtimes.classifier import Classifier, Prediction

__all__ = ["Bundle", "Classifier", "Prediction"]
