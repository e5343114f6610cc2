"""The diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t (`rnnjax.linear_scan.solve`): associative scan
against sequential scan, forward and forward + gradient, time and XLA's temporary memory, in one run.

    python -m benchmarks.linear_scan             # T = 1k, 4k, 16k; ~1-3 min on a 2-core CPU
    python -m benchmarks.linear_scan --quick     # T = 256, 1024; seconds

This is the solve that recurrences linear in their carry (LRU, minGRU, minLSTM) and each Newton step of
parallel-in-time evaluation reduce to. Both methods are compiled first, checked to agree (max |difference|
relative to max |h|), then timed interleaved (median of --repeats); the ratio sequential / associative > 1
means the associative scan is faster. The crossover is the smallest T where it is. On a CPU the associative
scan does ~2x the arithmetic of the sequential one in O(log T) depth, so it gains only where the depth is
what limits (accelerators, long T); on a GPU the same command measures that.
Writes results/benchmarks/<run>/linear_scan.json (default run: linear_scan).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import compile_time, machine_info, time_interleaved
from rnnjax import linear_scan, results
from rnnjax.command import cli as _cli

DTYPES = {"float32": jnp.float32, "complex64": jnp.complex64}


@dataclasses.dataclass(frozen=True)
class Config:
    """Associative against sequential scan. Expected run time on a 2-core CPU: ~1-3 min; --quick seconds."""

    lengths: tuple[int, ...] = (1000, 4000, 16000)
    batch: int = 8
    hidden_size: int = 256
    dtypes: tuple[Literal["float32", "complex64"], ...] = ("float32", "complex64")
    repeats: int = 5
    quick: bool = False  # T = 256, 1024 and 3 repeats
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/linear_scan
    out: str | None = None  # write linear_scan.json into this folder instead (an empty or earlier one)
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # accepted as by every command (a line per measurement, no progress bar)


def inputs(T: int, cfg: Config, dtype) -> tuple[jax.Array, jax.Array]:
    """a with |a| < 1 (a decaying recurrence, as the LRU's λ) and b ~ N(0, 1), shape (T, B, H)."""
    ka, kb, kp = jax.random.split(jax.random.key(T), 3)
    shape = (T, cfg.batch, cfg.hidden_size)
    a = jax.random.uniform(ka, shape, minval=0.5, maxval=0.999)
    b = jax.random.normal(kb, shape)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        a = a * jnp.exp(1j * jax.random.uniform(kp, shape, maxval=2 * np.pi))
        b = b + 1j * jax.random.normal(kp, shape)
    return a.astype(dtype), b.astype(dtype)


def _temp_bytes(fn, *args) -> int | None:
    """XLA's temporary buffer bytes of the compiled `fn` (None where the backend does not report them)."""
    analysis = fn.lower(*args).compile().memory_analysis()
    return None if analysis is None else int(analysis.temp_size_in_bytes)


def bench(cfg: Config, T: int, dtype_name: str) -> dict:
    a, b = inputs(T, cfg, DTYPES[dtype_name])
    fns = {}
    for method in linear_scan.METHODS:
        forward = jax.jit(lambda a, b, m=method: linear_scan.solve(a, b, method=m))
        energy = lambda a, b, m=method: jnp.sum(jnp.abs(linear_scan.solve(a, b, method=m)) ** 2)  # noqa: E731
        grad = jax.jit(jax.grad(energy, argnums=(0, 1)))
        fns[f"{method} forward"] = (forward, (a, b))
        fns[f"{method} grad"] = (grad, (a, b))
    h_assoc, h_seq = fns["associative forward"][0](a, b), fns["sequential forward"][0](a, b)
    agree = float(jnp.max(jnp.abs(h_assoc - h_seq)) / jnp.max(jnp.abs(h_seq)))
    compiled = {name: compile_time(fn, *args) for name, (fn, args) in fns.items()}
    timing = time_interleaved(fns, cfg.repeats)
    median = {name: t["median"] for name, t in timing.items()}
    return dict(
        T=T,
        dtype=dtype_name,
        batch=cfg.batch,
        hidden_size=cfg.hidden_size,
        max_relative_difference=agree,
        compile_s=compiled,
        timing=timing,
        temp_bytes={name: _temp_bytes(fn, *args) for name, (fn, args) in fns.items()},
        sequential_over_associative={
            part: median[f"sequential {part}"] / median[f"associative {part}"] for part in ("forward", "grad")
        },
    )


def crossover(rows: list[dict], dtype: str, part: str) -> int | None:
    """The smallest T at which the associative scan was faster (ratio > 1), or None."""
    faster = [r["T"] for r in rows if r["dtype"] == dtype and r["sequential_over_associative"][part] > 1.0]
    return min(faster) if faster else None


def main(cfg: Config) -> None:
    _cli.check_ints(cfg, "lengths", "batch", "hidden_size", "repeats")
    out = _cli.output_folder("benchmarks", cfg, "linear_scan", "linear_scan.json")  # checked before the work
    if cfg.quick:
        cfg = dataclasses.replace(cfg, lengths=(256, 1024), repeats=3)
    rows = []
    for dtype in cfg.dtypes:
        for T in cfg.lengths:
            row = bench(cfg, T, dtype)
            rows.append(row)
            r, ms = (
                row["sequential_over_associative"],
                {k: v["median"] * 1e3 for k, v in row["timing"].items()},
            )
            print(
                f"{dtype:>9} T={T:>6}: forward assoc {ms['associative forward']:8.2f} ms, seq "
                f"{ms['sequential forward']:8.2f} ms (seq/assoc {r['forward']:.2f}x) | grad assoc "
                f"{ms['associative grad']:8.2f} ms, seq {ms['sequential grad']:8.2f} ms (seq/assoc "
                f"{r['grad']:.2f}x) | agree to {row['max_relative_difference']:.1e}"
            )
    summary = {
        dtype: {part: crossover(rows, dtype, part) for part in ("forward", "grad")} for dtype in cfg.dtypes
    }
    results.write_json(out / "linear_scan.json", dict(machine=machine_info(), config=cfg, rows=rows,
                                                      crossover_T=summary))  # fmt: skip
    for dtype, parts in summary.items():
        said = ", ".join(
            f"{part}: {'from T = ' + str(T) if T else 'at no T measured'}" for part, T in parts.items()
        )
        print(f"associative scan faster than sequential ({dtype}, {jax.default_backend()}): {said}")
    print(f"wrote {out}/linear_scan.json")


if __name__ == "__main__":
    _cli.run(Config, main)
