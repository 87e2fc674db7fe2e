"""One latency timer for everything the project times (``quantize`` and the repository's ``benchmarks/``).

Every runner is timed once per round, in an order shuffled anew each round by a seeded RNG, so that no runner always
follows the same neighbour (whose threads may still be busy) and slow drift of the machine hits every runner alike.
The orders are returned so a report can record them. ONNX Runtime sessions that are timed should be opened with
:func:`ort_timing_options`: spin-waiting threads turned off, so one session's idle threads do not steal the cores of
the next one on a small machine.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ("ORT_NO_SPINNING", "ort_timing_options", "summary", "time_interleaved")

# ONNX Runtime session config keys (documented in onnxruntime_session_options_config_keys.h); "0" turns spinning off
ORT_NO_SPINNING = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


def ort_timing_options(options: Any = None) -> Any:
    """ONNX Runtime ``SessionOptions`` for timing: ``options`` (or new ones) with thread spin-waiting turned off."""
    import onnxruntime as ort

    options = options if options is not None else ort.SessionOptions()
    for key, value in ORT_NO_SPINNING.items():
        options.add_session_config_entry(key, value)
    return options


def summary(values: list[float]) -> dict[str, float]:
    """Median, min, max and interquartile range of ``values`` (IQR 0 for a single value)."""
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) >= 2 else [values[0]] * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "iqr": q[2] - q[0]}


def time_interleaved(
    runners: dict[Hashable, Callable[[], Any]],
    rounds: int,
    warmup: int = 1,
    seed: int = 0,
    progress: Callable[[range], Any] | None = None,
) -> tuple[dict[Hashable, list[float]], list[list[Hashable]]]:
    """Time each runner once per round, in a freshly shuffled order each round, after ``warmup`` calls of each.

    Args:
        runners (dict): Key -> a callable that does one timed unit of work (it must synchronize a device itself).
        rounds (int): Timed rounds.
        warmup (int): Untimed calls of every runner first (in the runners' order).
        seed (int): Seed of the RNG that shuffles the order of every round.
        progress (Callable | None): Wraps the range of rounds (e.g. a progress bar).

    Returns:
        (tuple): Key -> its ``rounds`` times in ms (round order), and the order of keys of every round.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    rng = random.Random(seed)
    keys = list(runners)
    for key in keys:
        for _ in range(warmup):
            runners[key]()
    times: dict[Hashable, list[float]] = {key: [] for key in keys}
    orders = []
    for _ in progress(range(rounds)) if progress else range(rounds):
        order = keys[:]
        rng.shuffle(order)
        orders.append(order)
        for key in order:
            t = time.perf_counter()
            runners[key]()
            times[key].append((time.perf_counter() - t) * 1e3)
    return times, orders
