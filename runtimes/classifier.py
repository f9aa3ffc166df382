"""Classify texts or digit images with a bundle: preprocessing, validation, batching."""

from dataclasses import dataclass

import numpy as np

from swarmedge.errors import InputError
from swarmedge.runtimes.bundle import Bundle


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float  # softmax of the class scores
    scores: list[float]

    def to_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "probability": self.probability, "scores": self.scores}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """A bundle ready to classify: ``Classifier("model.bundle").classify_texts(["great film"])``.

    Everything here is numpy + onnxruntime (+ tokenizers/Pillow): it runs without torch.
    """

    def __init__(self, bundle, precision: str | None = None, threads: int | None = None, batch_size: int = 64):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        m = self.bundle.manifest
        self.precision = precision or self.bundle.default_precision
        self.session = self.bundle.session(self.precision, threads)
        self.kind = m["preprocessing"]["kind"]
        self.input_names = [i["name"] for i in m["inputs"]]
        self.scores_output = m["outputs"][0]["name"]
        self.batch_size = batch_size
        self._encoder = None

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    # -- raw feeds ---------------------------------------------------------------------
    def scores(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Class scores (B, C) for model-ready inputs, checked first (names, shapes, values)."""
        self.validate(feeds)
        return self.session.run([self.scores_output], feeds)[0]

    def validate(self, feeds: dict[str, np.ndarray]) -> None:
        if not isinstance(feeds, dict) or set(feeds) != set(self.input_names):
            got = sorted(feeds) if isinstance(feeds, dict) else type(feeds).__name__
            raise InputError(f"inputs must be {self.input_names}, got {got}")
        pre = self.bundle.manifest["preprocessing"]
        if self.kind == "text":
            ids = feeds["input_ids"]
            _check_array("input_ids", ids, np.int64, 2)
            mult = pre["multiple_of"]
            if ids.shape[0] < 1 or ids.shape[1] < 1 or ids.shape[1] % mult:
                raise InputError(f"input_ids has shape {ids.shape}; length must be a positive multiple of {mult}")
            vocab = self.bundle.manifest["config"]["vocab_size"]
            if ids.min() < 0 or ids.max() >= vocab:
                raise InputError(f"input_ids must lie in [0, {vocab}), got {ids.min()}..{ids.max()}")
        else:
            boids, lengths = feeds["boids"], feeds["lengths"]
            _check_array("boids", boids, np.float32, 3)
            _check_array("lengths", lengths, np.int64, 1)
            if boids.shape[2] != 2 or boids.shape[0] != lengths.shape[0] or boids.shape[0] < 1:
                raise InputError(f"boids must be (B, N, 2) with lengths (B,), got {boids.shape} and {lengths.shape}")
            if lengths.min() < 1 or lengths.max() > boids.shape[1]:
                raise InputError(f"lengths must lie in 1..{boids.shape[1]}, got {lengths.min()}..{lengths.max()}")

    # -- raw inputs ----------------------------------------------------------------------
    def classify_texts(self, texts: list[str]) -> list[Prediction]:
        if self.kind != "text":
            raise InputError("this bundle classifies digit images: pass --image, not --text")
        if self._encoder is None:
            from swarmedge.runtimes.text import TextEncoder

            pre = self.bundle.manifest["preprocessing"]
            self._encoder = TextEncoder.for_preprocessing(pre, self.bundle.read_text(pre["tokenizer"]))
        ids = self._encoder.encode(list(texts))
        return self._predict_batches(lambda s: {"input_ids": ids[s]}, len(ids))

    def classify_images(self, images: np.ndarray) -> list[Prediction]:
        if self.kind != "boids":
            raise InputError("this bundle classifies text: pass --text, not --image")
        from swarmedge.runtimes.images import images_to_boids

        pre = self.bundle.manifest["preprocessing"]
        images = np.asarray(images)

        def feeds(s):
            boids, lengths = images_to_boids(images[s], pre["threshold"], pre["habitat_scaling"])
            return {"boids": boids, "lengths": lengths}

        return self._predict_batches(feeds, len(images))

    def _predict_batches(self, make_feeds, n: int) -> list[Prediction]:
        out = []
        for start in range(0, n, self.batch_size):
            scores = self.scores(make_feeds(slice(start, start + self.batch_size)))
            probs = softmax(scores.astype(np.float64))
            for s, p in zip(scores, probs):
                i = int(np.argmax(s))
                out.append(Prediction(self.labels[i], i, float(p[i]), [float(v) for v in s]))
        return out


def _check_array(name: str, arr, dtype, ndim: int) -> None:
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise InputError(f"{name} must be {np.dtype(dtype).name}, got {arr.dtype}")
    if arr.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values")
