"""Run a model one input at a time, spread over cores, so that an input's scores never depend
on what else shares its batch.

Why: dynamic int8 quantization (onnxruntime's ``DynamicQuantizeLinear``) computes one
activation scale per tensor, i.e. per batch, so an input's int8 scores used to change with
its neighbours (``../shared/cases/int8-result-depends-on-batch``); boid inputs were also
padded to the longest swarm in the batch. One input per ``session.run`` removes both
causes. onnxruntime releases the GIL inside ``run``, so a thread pool over one session with
one intra-op thread each keeps every core busy: measured on an idle 2-core Xeon, 2 workers
at batch 1 ran SwarmFormer Small int8 at 719 reviews/s against 635/s for batch 32 on 2
intra-op threads, and the boid model at 1,817 against 1,039 digits/s (``make bench``
repeats this side by side). One intra-op thread per run also makes the result independent
of the thread count.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def split_inputs(feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One feed dict per input, each with batch 1 and no padding.

    Text feeds ``{"input_ids": (B, L) int64}`` become ``B`` feeds of shape ``(1, L)``; boid
    feeds ``{"boids": (B, N, 2) float32, "lengths": (B,) int64}`` become ``B`` feeds of
    shape ``(1, lengths[i], 2)``, so an input's padding no longer depends on its batch.
    """
    if "lengths" in feeds:
        boids, lengths = feeds["boids"], feeds["lengths"]
        return [{"boids": boids[i:i + 1, :int(n)], "lengths": lengths[i:i + 1]} for i, n in enumerate(lengths)]
    batch = len(next(iter(feeds.values())))
    return [{name: arr[i:i + 1] for name, arr in feeds.items()} for i in range(batch)]


def default_workers() -> int:
    """The cores this process may use (``sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def clamp_threads(threads, option: str = "--threads") -> tuple[int, str | None]:
    """``threads`` checked and capped at the cores this process may use (``default_workers``).

    Returns (threads to use, a one-line notice when capped, else None). More threads than
    cores only time-slice the same cores: ``--threads 1000`` once took 87 s for one digit
    that takes 0.5 s on 2 threads. Raises ``InputError`` for a value that is not an integer >= 1.
    """
    from swarmedge.errors import InputError

    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise InputError(f"{option} must be an integer >= 1, got {threads!r}")
    cores = default_workers()
    if threads > cores:
        return cores, f"{option} {threads} is more than the {cores} cores this process may use; using {cores}"
    return int(threads), None


class PerInputRunner:
    """Runs ``session`` on one input at a time with ``workers`` threads; results in input order.

    ``session`` must have ``intra_op_num_threads == 1`` (see the module docstring).

    >>> runner = PerInputRunner(session, "logits", workers=2)  # doctest: +SKIP
    >>> runner.run({"input_ids": ids}).shape  # doctest: +SKIP
    (B, 2)
    """

    def __init__(self, session, output: str, workers: int):
        self.session, self.output, self.workers = session, output, workers
        self._pool: ThreadPoolExecutor | None = None

    def _one(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output], feed)[0]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Scores ``(B, C)`` of a model-ready batch, computed input by input."""
        singles = split_inputs(feeds)
        if self.workers > 1 and len(singles) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="swarmedge-run")
            outs = list(self._pool.map(self._one, singles))
        else:
            outs = [self._one(f) for f in singles]
        return np.concatenate(outs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
