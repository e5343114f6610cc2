"""Per-backend defaults of the recurrent loop.

`lax.scan` runs one loop iteration per `unroll` steps. Each iteration has a fixed cost besides the cell's
own work; on a GPU it dominates small and medium shapes, on a CPU it is lost in the noise. `rnnjax.unroll`
and the kernels of `rnnjax.fused` take `unroll=None` (their default) to mean `SCAN_UNROLL[platform]` of
JAX's default backend (`jax.default_backend()`), read when the call is traced: a computation placed on
another backend (`jax.jit(..., backend="cpu")` on a GPU machine) gets the default backend's value, so
pass `unroll=` there.

Where the values come from:
  - cpu 1: `python -m benchmarks.throughput --quick --unrolls 1 2 4 8 16` on a 2-core CPU (README,
    "Performance"): larger unrolls change times by about ±10% with no consistent winner, and cost compile
    time, so the loop stays rolled.
  - gpu 16: measured in the issue that asked for it (one NVIDIA H200, jax 0.11, B=32, T=128, I=128,
    H=256): the loop costs about 13 µs per step; unroll 16 removes most of it (LSTM forward+backward
    3.13 -> 1.67 ms, GRU 5.26 -> 2.60, simple 2.45 -> 0.95), unroll 4 about two thirds. Not re-measured by
    this project yet: `make gpu-check` does.
  - tpu and others: 1 (not measured; scan's own default).
Change an entry of `SCAN_UNROLL` (before tracing) or pass `unroll=` to override.
"""

from __future__ import annotations

import jax

from rnnjax import _checks

__all__ = ["SCAN_UNROLL", "default_scan_unroll", "scan_unroll"]

SCAN_UNROLL: dict[str, int] = {"cpu": 1, "gpu": 16, "cuda": 16, "rocm": 16, "tpu": 1}


def default_scan_unroll(platform: str | None = None) -> int:
    """`SCAN_UNROLL` of `platform` ("cpu", "gpu", "tpu", ...; None: `jax.default_backend()`), 1 for a
    platform the table does not name."""
    if platform is None:
        platform = jax.default_backend()
    if not isinstance(platform, str):
        raise TypeError(f"platform: expected a backend name such as 'cpu' or 'gpu', got {platform!r}")
    return SCAN_UNROLL.get(platform.lower(), 1)


def scan_unroll(unroll) -> int | bool:
    """`unroll` checked (an int >= 1 or a bool, see `lax.scan`), or the backend's default when None."""
    if unroll is None:
        return default_scan_unroll()
    _checks.check_scan_unroll(unroll)
    return unroll
