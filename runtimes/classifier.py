"""Classify texts or digit images with a bundle: preprocessing, validation, batching."""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace

import numpy as np

from swarmedge.errors import InputError
from swarmedge.limits import MAX_BATCH
from swarmedge.runtimes.bundle import Bundle

MAX_BATCH_SIZE = MAX_BATCH  # raw inputs preprocessed at a time: more only holds more in memory


@dataclass(frozen=True)
class Prediction:
    """One input's class: label, its index and softmax probability, and the raw scores.

    Text predictions also say how much of the text the model saw: ``tokens_kept`` of its
    ``tokens_total`` word-piece tokens fit the bundle's ``seq_len`` (truncation), and
    ``unknown_share`` of the kept ones are [UNK] (the model is guessing when that is high).
    Image predictions leave these None.
    """

    label: str
    index: int
    probability: float  # softmax of the class scores, divided by the bundle's temperature if it has one
    scores: list[float]
    tokens_kept: int | None = None
    tokens_total: int | None = None
    unknown_share: float | None = None
    tokens_total_is_lower_bound: bool = False  # a text too long to count whole: see TokenStats

    @property
    def truncated(self) -> bool:
        """Whether tokens of the text were cut to fit the model's sequence length."""
        return self.tokens_kept is not None and self.tokens_kept < self.tokens_total

    def to_dict(self) -> dict:
        """The JSON form (``run --json``); the token fields only for texts."""
        out = {"label": self.label, "index": self.index, "probability": self.probability, "scores": self.scores}
        if self.tokens_kept is not None:
            out.update(tokens_kept=self.tokens_kept, tokens_total=self.tokens_total, unknown_share=self.unknown_share)
            if self.tokens_total_is_lower_bound:
                out.update(tokens_total_is_lower_bound=True)
        return out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """A bundle ready to classify: ``Classifier("model.bundle").classify_texts(["great film"])``.

    Everything here is numpy + onnxruntime (+ tokenizers/Pillow): it runs without torch.

    Each input runs on its own (batch 1), spread over ``threads`` worker threads with one
    onnxruntime thread each (``runtimes.batching``): an input's scores are bit-identical
    whatever else is classified with it, in which order, and with how many threads.
    ``batch_size`` only sets how many raw inputs are preprocessed at a time.

    ``threads`` above the cores this process may use is capped at that number: the
    notice is kept in ``notices`` and issued as a ``RuntimeWarning``.

    Raises ``InputError`` for ``threads`` < 1, ``batch_size`` outside 1..``MAX_BATCH_SIZE``,
    a ``precision`` other than "int8"/"fp32" (any case), and ``BundleError`` when the model's
    output does not match the bundle's labels.
    """

    def __init__(self, bundle, precision: str | None = None, threads: int | None = None, batch_size: int = 64):
        import warnings

        from swarmedge.runtimes.batching import PerInputRunner, clamp_threads, default_workers

        self.notices: list[str] = []
        if threads is not None:
            threads, notice = clamp_threads(threads, "threads")
            if notice:
                self.notices.append(notice)
                warnings.warn(notice, RuntimeWarning, stacklevel=2)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InputError(f"batch_size must be an integer in 1..{MAX_BATCH_SIZE}, got {batch_size!r}")
        if precision is not None and not isinstance(precision, str):
            raise InputError(f"precision must be 'int8' or 'fp32', got {precision!r}")
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        m = self.bundle.manifest
        self.precision = self.bundle.default_precision if precision is None else precision.strip().lower()
        self.session = self.bundle.session(self.precision, threads=1)
        self.kind = m["preprocessing"]["kind"]
        self.input_names = [i["name"] for i in m["inputs"]]
        self.scores_output = m["outputs"][0]["name"]
        self.batch_size = batch_size
        self.threads = threads or default_workers()
        self._runner = PerInputRunner(self.session, self.scores_output, self.threads)
        self._encoder = None
        # temperature scaling fitted at training time (swarmedge.calibration); 1: the plain softmax
        calibration = m.get("calibration") or {}
        self.temperature = float(calibration.get("temperature", 1.0))
        self.calibrated = bool(calibration)

    @property
    def computation(self) -> str:
        """What runs, in words: the precision, and for an int8 model that quantized no operator
        (the boid model: every product is too narrow to gain) that it is the fp32 computation."""
        quantized = (self.bundle.manifest.get("quantization") or {}).get("quantized_matmuls")
        if self.precision == "int8" and quantized == 0:
            return "int8 (nothing quantized: the fp32 computation)"
        return self.precision

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    # -- raw feeds ---------------------------------------------------------------------
    def scores(self, feeds: dict[str, np.ndarray], first: int = 0) -> np.ndarray:
        """Class scores ``(B, C)`` float32 for model-ready inputs, checked first (names, shapes,
        values) and run input by input. ``first`` numbers the inputs in error messages.

        Raises ``InputError`` for bad feeds and ``BundleError`` when the model returns a score
        that is NaN or infinite, or a row whose width is not the number of labels.
        """
        from swarmedge.errors import BundleError

        self.validate(feeds)
        scores = self._runner.run(feeds)
        if scores.ndim != 2 or scores.shape[1] != len(self.labels):
            raise BundleError(f"bundle {self.bundle.path}: the {self.precision} model returned scores of shape "
                              f"{scores.shape} for {len(self.labels)} labels; export the bundle again")
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        if bad.size:
            raise BundleError(
                f"the {self.precision} model returned a non-finite score ({scores[bad[0]].tolist()}) for input "
                f"{first + bad[0] + 1}; that is no answer: check the input, try --precision fp32, or export the "
                "bundle again from a checkpoint with finite weights"
            )
        return scores

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
        """One :class:`Prediction` per text, with its token counts and [UNK] share.

        ``texts`` is a list of str. Raises InputError for a bundle that is not a text model,
        a single str instead of a list, no texts, or a text that is not a str, is empty or
        holds lone surrogates (``"text 2: not UTF-8 text …"``).
        """
        from swarmedge.runtimes.text import TextEncoder, check_text

        if self.kind != "text":
            raise InputError("this bundle classifies digit images (classify_images, --image), not texts")
        if isinstance(texts, (str, bytes)):  # list("a film") would classify each letter
            raise InputError("classify_texts takes a list of texts: wrap one text in a list, [text]")
        if texts is None or isinstance(texts, (Mapping, Set)) or not isinstance(texts, Iterable):
            # a dict would be classified by its keys, a set in no particular order
            raise InputError(f"classify_texts takes a list of texts (str), got {type(texts).__name__}")
        texts = list(texts)
        if not texts:
            raise InputError("no text given: classify_texts takes a list of str")
        for i, t in enumerate(texts):  # all checked first, so an error names the text's position
            check_text(t, f"text {i + 1}")
        if self._encoder is None:
            pre = self.bundle.manifest["preprocessing"]
            self._encoder = TextEncoder.for_preprocessing(pre, self.bundle.read_text(pre["tokenizer"]),
                                                          vocab_size=self.bundle.manifest["config"]["vocab_size"])
        stats = []

        def feeds(s):  # tokenized one batch at a time: memory follows batch_size, not len(texts)
            ids, batch_stats = self._encoder.encode_with_stats(texts[s])
            stats.extend(batch_stats)
            return {"input_ids": ids}

        preds = self._predict_batches(feeds, len(texts))
        return [replace(p, tokens_kept=t.kept, tokens_total=t.total, unknown_share=t.unknown_share,
                        tokens_total_is_lower_bound=t.total_is_lower_bound)
                for p, t in zip(preds, stats)]

    def classify_images(self, images) -> list[Prediction]:
        """One :class:`Prediction` per digit, each read as ``run --image``/``--file`` reads it.

        ``images`` is any of:

        - an array (or nested list) of digits: (N, 784), (N, 28, 28), (N, 1, 28, 28),
          (N, 28, 28, 1), or one digit as (28, 28), (784,) or (28, 28, 1); uint8 (or other
          integer) 0..255, or float 0..1 (floats up to 255 are read as 0..255). Light on dark
          or dark on light, framed or not: each digit is levelled and framed as MNIST was
          (``runtimes.images.digits_from_array``); MNIST-ready digits go through unchanged;
        - a path (str or ``os.PathLike``) to an image file (PNG, JPEG, any format Pillow
          decodes) or a .npy/.npz holding one digit (``runtimes.images.load_image``);
        - a list of such paths (``runtimes.images.load_images``).

        What was done to an input (EXIF rotation, inversion, framing, ...) is logged on the
        ``swarmedge.images`` logger, as other library notices are. Raises InputError (one
        line) for a text bundle, another layout or dtype, negative, NaN or above-255 values,
        a missing, undecodable or oversized file, and a blank digit or a filled shape.
        """
        import os

        from swarmedge.runtimes.images import digits_from_array, images_to_boids, load_image, load_images

        if self.kind != "boids":
            raise InputError("this bundle classifies text (classify_texts, --text), not digit images")
        if images is None or isinstance(images, (Mapping, Set, bytes)):
            raise InputError("classify_images takes an array of digits, a path or a list of paths, "
                             f"got {type(images).__name__}")
        if not isinstance(images, (np.ndarray, list, tuple, str, os.PathLike)) and isinstance(images, Iterable):
            images = list(images)  # a generator: of paths or of digits
        if isinstance(images, (list, tuple)) and any(isinstance(p, (str, os.PathLike)) for p in images) \
                and not all(isinstance(p, (str, os.PathLike)) for p in images):
            raise InputError("classify_images takes a list of paths or an array of digits, not a mix of both")
        if isinstance(images, (str, os.PathLike)):
            images = load_image(images)[None]
        elif isinstance(images, (list, tuple)) and images and all(isinstance(p, (str, os.PathLike)) for p in images):
            images = load_images(images)
        else:
            images = digits_from_array(images, "images")
        pre = self.bundle.manifest["preprocessing"]

        def feeds(s):
            boids, lengths = images_to_boids(images[s], pre["threshold"], pre["habitat_scaling"])
            return {"boids": boids, "lengths": lengths}

        return self._predict_batches(feeds, len(images))

    def _predict_batches(self, make_feeds, n: int) -> list[Prediction]:
        out = []
        for start in range(0, n, self.batch_size):
            scores = self.scores(make_feeds(slice(start, start + self.batch_size)), first=start)
            probs = softmax(scores.astype(np.float64) / self.temperature)
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
