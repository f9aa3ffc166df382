"""Probabilities that mean what they say: temperature scaling and how to measure calibration.

Temperature scaling (Guo, Pleiss, Sun, Weinberger: "On Calibration of Modern Neural Networks",
ICML 2017) divides a model's class scores by one number T > 0, fitted on held-out data to
minimise the negative log-likelihood, before the softmax. The predicted class never changes,
only how sure the model says it is. Numpy only: the device applies T in ``runtimes``.

The measures:
- **NLL**: mean -log p(true class).
- **ECE**: expected calibration error with 10 equal-width confidence bins (Naeini, Cooper,
  Hauskrecht, AAAI 2015; as used by Guo et al.):
  ``sum_b |b| / N * |accuracy(b) - mean confidence(b)|``.
"""

import numpy as np

from swarmedge.errors import InputError

BINS = 10
_LOG_T = (-4.0, 6.0)  # T from 0.018 to 403: wider than any fit seen here, narrow enough to stay finite


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) float64 log-probabilities of ``scores / temperature``."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(scores: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes ``labels`` (N,) int under softmax(scores / T)."""
    logp = log_softmax(scores, temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def ece(scores: np.ndarray, labels: np.ndarray, temperature: float = 1.0, bins: int = BINS) -> float:
    """Expected calibration error (equal-width confidence bins) of softmax(scores / T)."""
    probs = np.exp(log_softmax(scores, temperature))
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == labels
    # bin edges (0, 0.1], (0.1, 0.2], ... : a confidence of exactly 1 falls in the last bin
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising ``nll(scores, labels, T)`` (golden-section search over log T).

    ``scores``: (N, C) class scores of held-out inputs, never the test set; ``labels``: (N,) int.
    Raises InputError when there is nothing to fit on.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if len(labels) < 2 or scores.shape != (len(labels), scores.shape[1]) or not np.isfinite(scores).all():
        raise InputError("temperature scaling needs finite scores of at least 2 held-out inputs")
    lo, hi = _LOG_T
    ratio = (5 ** 0.5 - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(scores, labels, np.exp(a)), nll(scores, labels, np.exp(b))
    for _ in range(80):  # the bracket shrinks by 0.618 each step: 1e-16 of its width
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(scores, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(scores, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def calibration_figures(scores: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> dict:
    """ECE, NLL and the mean confidence on wrongly classified inputs, at ``temperature``."""
    probs = np.exp(log_softmax(scores, temperature))
    wrong = probs.argmax(axis=1) != labels
    return {"ece": ece(scores, labels, temperature), "nll": nll(scores, labels, temperature),
            "mean_confidence_when_wrong": float(probs.max(axis=1)[wrong].mean()) if wrong.any() else None,
            "inputs": int(len(labels))}


def with_temperature(checkpoint: dict, scores: np.ndarray, labels: np.ndarray, source: str) -> dict:
    """``checkpoint`` with a temperature fitted on held-out ``scores``/``labels`` (from ``source``)
    in ``metadata["calibration"]``, with the held-out figures before and after; what export
    carries into the bundle and the device applies."""
    temperature = fit_temperature(scores, labels)
    record = {"method": "temperature scaling (Guo et al., 2017)", "temperature": temperature,
              "fitted_on": source, "before": calibration_figures(scores, labels),
              "after": calibration_figures(scores, labels, temperature)}
    return {**checkpoint, "metadata": {**checkpoint.get("metadata", {}), "calibration": record}}
