"""Interleaved timing: every variant measured in every round, in a shuffled order.

A busy neighbour or a frequency change then hits all variants alike instead of whichever
happened to run at that moment, so the ratios between them stay honest on a noisy machine.
"""

import time

import numpy as np

ROUND_S = 0.1  # target time per variant per round
# Between two variants' turns: thread pools that spin after their last call (OpenMP, TBB,
# onnxruntime's) park within a few ms, so one variant's idle spinning does not steal a core
# from the next - which matters most when the next runs in a peer's process.
SETTLE_S = 0.02


def timed_calls(run, feeds: dict, calls: int) -> list[float]:
    """Seconds per call. A runner with ``timed`` (a peer in its own process) clocks its calls
    itself, so the pipe to it is not counted."""
    if hasattr(run, "timed"):
        return run.timed(feeds, calls)
    seconds = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run(feeds)
        seconds.append(time.perf_counter() - t0)
    return seconds


def interleaved(runners: dict, feeds: dict, rounds: int, warmup: int = 3, seed: int = 0,
                progress=None) -> dict[str, np.ndarray]:
    """Milliseconds per call for each runner, ``rounds`` rounds of about ROUND_S each."""
    calls = {}
    for name, run in runners.items():
        timed_calls(run, feeds, warmup)
        first = timed_calls(run, feeds, 1)[0]
        calls[name] = int(np.clip(ROUND_S / max(first, 1e-6), 1, 200))
    times = {name: [] for name in runners}
    names = list(runners)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            time.sleep(SETTLE_S)
            times[names[i]] += timed_calls(runners[names[i]], feeds, calls[names[i]])
        if progress:
            progress()
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def summary(ms: np.ndarray) -> dict:
    """Median and spread; ``noisy`` when the middle half is wider than a fifth of the median."""
    p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {"p50_ms": float(p50), "p10_ms": float(p10), "p90_ms": float(p90), "calls": int(ms.size),
            "noisy": bool((p75 - p25) > 0.2 * p50)}
