"""Interleaved timing: every variant measured in every round, in a shuffled order.

A busy neighbour or a frequency change then hits all variants alike instead of whichever
happened to run at that moment, so the ratios between them stay honest on a noisy machine.
"""

import time

import numpy as np

ROUND_S = 0.1  # target time per variant per round


def interleaved(runners: dict, feeds: dict, rounds: int, warmup: int = 3, seed: int = 0,
                progress=None) -> dict[str, np.ndarray]:
    """Milliseconds per call for each runner, ``rounds`` rounds of about ROUND_S each."""
    calls = {}
    for name, run in runners.items():
        for _ in range(warmup):
            run(feeds)
        t0 = time.perf_counter()
        run(feeds)
        calls[name] = int(np.clip(ROUND_S / max(time.perf_counter() - t0, 1e-6), 1, 200))
    times = {name: [] for name in runners}
    names = list(runners)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            name, run = names[i], runners[names[i]]
            for _ in range(calls[name]):
                t0 = time.perf_counter()
                run(feeds)
                times[name].append(time.perf_counter() - t0)
        if progress:
            progress()
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def summary(ms: np.ndarray) -> dict:
    """Median and spread; ``noisy`` when the middle half is wider than a fifth of the median."""
    p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {"p50_ms": float(p50), "p10_ms": float(p10), "p90_ms": float(p90), "calls": int(ms.size),
            "noisy": bool((p75 - p25) > 0.2 * p50)}
