"""Timing helpers shared by the benchmarks: compile first, then time interleaved repetitions with
`block_until_ready`, and describe the machine and library versions for the JSON record."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata

import jax
import numpy as np


def compile_time(fn: Callable, *args) -> float:
    """Seconds for the first call (tracing + compilation + one run)."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def time_interleaved(contenders: dict[str, tuple[Callable, tuple]], repeats: int = 10) -> dict[str, dict]:
    """Time already-compiled functions in round-robin order, so machine noise hits all of them alike.

    Returns per name: median, q25, q75, min (seconds) and the raw times.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (fn, args) in contenders.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return {
        name: dict(
            median=float(np.median(t)),
            q25=float(np.quantile(t, 0.25)),
            q75=float(np.quantile(t, 0.75)),
            min=float(np.min(t)),
            times=t,
        )
        for name, t in times.items()
    }


def machine_info() -> dict:
    versions = {}
    for pkg in ("jax", "jaxlib", "numpy", "flax", "optax", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return dict(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        devices=[str(d) for d in jax.devices()],
        versions=versions,
    )
