"""Parallel-in-time evaluation (`rnnjax.newton`: DEER, quasi-DEER, ELK, quasi-ELK) against the sequential
scan (`rnnjax.unroll`), forward, over sequence length T and hidden size H, on the device at hand, in one run.

    python -m benchmarks.newton            # T = 100 … 10⁴, H = 4 … 256, GRU; about 20 minutes on 2 CPU cores
    python -m benchmarks.newton --quick    # T = 100, 1000, H = 4, 16; a minute

The network is a GRU at initialisation (contractive: DEER needs a handful of iterations) reading N(0, 1)
inputs in float32 at full matmul precision. Every contender is compiled first, checked against the
sequential scan (max |Δy|), then timed interleaved (median of --repeats). sequential / method > 1 means the
Newton method is faster. A configuration whose Jacobians would not fit in `--memory-gib` (dense methods:
T·B·n² floats, a few times over in the associative scan) is skipped and recorded as such. The crossover
per method is the smallest T, at each H, where the method beats the sequential scan.
Writes results/benchmarks/<run>/newton.json (default run: newton).
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp

import rnnjax
from benchmarks.timing import compile_time, machine_info, time_interleaved
from rnnjax import cells, newton, results
from rnnjax.command import cli as _cli


@dataclasses.dataclass(frozen=True)
class Config:
    """Each Newton method against the sequential scan. Run time on a 2-core CPU: about 20 minutes;
    --quick a minute."""

    lengths: tuple[int, ...] = (100, 1000, 10000)
    hidden_sizes: tuple[int, ...] = (4, 16, 64, 256)
    methods: tuple[str, ...] = newton.METHODS
    kind: str = "gru"
    batch: int = 4
    input_size: int = 8
    repeats: int = 3
    memory_gib: float = 4.0  # skip a configuration whose dense Jacobians would need more than this
    quick: bool = False  # T = 100, 1000; H = 4, 16
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/newton
    out: str | None = None  # write newton.json into this folder instead
    overwrite: bool = False
    progress: bool = True  # accepted as by every command (a line per measurement)


def _fits(cfg: Config, method: str, T: int, n: int) -> bool:
    dense = not method.startswith("quasi")
    entries = T * cfg.batch * n * (n if dense else 1)
    return 4 * 4 * entries <= cfg.memory_gib * 2**30  # float32, ~4 live copies in the scan


def bench(cfg: Config, H: int, T: int) -> dict:
    cell = cells.make(cfg.kind, H, precision="highest")
    params = cell.init(jax.random.key(0), cfg.input_size)
    xs = jax.random.normal(jax.random.key(T), (cfg.batch, T, cfg.input_size), jnp.float32)
    n = len(cell.initial_carry()) * H
    fns = {"sequential": (jax.jit(lambda p, x: rnnjax.unroll(cell, p, x)[1]), (params, xs))}
    skipped, iterations = [], {}
    for method in cfg.methods:
        if not _fits(cfg, method, T, n):
            skipped.append(method)
            continue
        fn = jax.jit(lambda p, x, m=method: newton.unroll(cell, p, x, method=m, on_failure="sequential"))
        fns[method] = (lambda p, x, f=fn: f(p, x)[1], (params, xs))
    with warnings.catch_warnings(record=True) as fell_back:
        warnings.simplefilter("always", RuntimeWarning)
        compile_s = {name: compile_time(fn, *args) for name, (fn, args) in fns.items()}
        want = fns["sequential"][0](params, xs)
        difference = {}
        for method in (m for m in cfg.methods if m in fns):
            _, ys, info = jax.jit(
                lambda p, x, m=method: newton.unroll(cell, p, x, method=m, on_failure="sequential")
            )(params, xs)
            jax.effects_barrier()
            iterations[method] = int(info.iterations) if bool(info.converged) else None
            difference[method] = float(jnp.max(jnp.abs(ys - want)))
        timing = time_interleaved(fns, cfg.repeats)
    median = {name: t["median"] for name, t in timing.items()}
    return dict(
        kind=cfg.kind, T=T, hidden_size=H, batch=cfg.batch, state_size=n, iterations=iterations,
        max_abs_difference=difference, compile_s=compile_s, timing=timing, skipped_for_memory=skipped,
        fell_back=len(fell_back), sequential_over={m: median["sequential"] / median[m] for m in median},
    )  # fmt: skip


def main(cfg: Config) -> None:
    _cli.check_ints(cfg, "lengths", "hidden_sizes", "batch", "input_size", "repeats")
    for method in cfg.methods:
        if method not in newton.METHODS:
            raise ValueError(f"methods: expected names from {newton.METHODS}, got {method!r}")
    out = _cli.output_folder("benchmarks", cfg, "newton", "newton.json")  # checked before the work
    if cfg.quick:
        cfg = dataclasses.replace(cfg, lengths=(100, 1000), hidden_sizes=(4, 16), repeats=2)
    rows = []
    for H in cfg.hidden_sizes:
        for T in cfg.lengths:
            row = bench(cfg, H, T)
            rows.append(row)
            ms = row["timing"]["sequential"]["median"] * 1e3
            print(
                f"H={H:>4} T={T:>6} sequential {ms:9.2f} ms | "
                + ", ".join(
                    f"{m} {row['sequential_over'][m]:.2g}x ({row['iterations'][m] or '>T'} it)"
                    for m in cfg.methods
                    if m in row["iterations"]
                )  # fmt: skip
                + (
                    f" | skipped (memory): {', '.join(row['skipped_for_memory'])}"
                    if row["skipped_for_memory"]
                    else ""
                )
            )
    crossover = {}
    for method in cfg.methods:
        crossover[method] = {}
        for H in cfg.hidden_sizes:
            wins = [
                r["T"] for r in rows if r["hidden_size"] == H and r["sequential_over"].get(method, 0) > 1.0
            ]
            crossover[method][H] = min(wins) if wins else None
    results.write_json(
        out / "newton.json", dict(machine=machine_info(), config=cfg, rows=rows, crossover_T=crossover)
    )
    backend = f"{jax.default_backend()} ({jax.devices()[0].device_kind})"
    for method, by_h in crossover.items():
        said = ", ".join(f"H={H}: " + (f"from T = {T}" if T else "never") for H, T in by_h.items())
        print(f"{method} faster than the sequential scan on {backend}: {said}")
    print(f"wrote {out}/newton.json")


if __name__ == "__main__":
    _cli.run(Config, main)
