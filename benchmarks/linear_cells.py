"""The cells linear in their carry (LRU, minGRU, minLSTM) over long sequences: their whole-sequence kernel
with the associative scan, the same kernel with the sequential scan, and the step scan (the definition,
one `cell.step` per `lax.scan` iteration), forward + gradient, time and XLA's temporary memory, in one run.

    python -m benchmarks.linear_cells            # T = 1k, 4k, 16k, LRU and minGRU; a few minutes on 2 cores
    python -m benchmarks.linear_cells --quick    # T = 256, 1024; seconds

Every contender is compiled first and checked against the step scan (max |difference| of the loss
gradient relative to its max), then timed interleaved (median of --repeats). A ratio step / contender > 1
means the contender is faster than the step scan; the crossover is the smallest T at which the associative
kernel beats the sequential one. `rnnjax` chooses the associative scan by default only off the CPU
(`cells.mingru(scan=None)`); this command measures whether that choice holds on the machine it runs on.
Writes results/benchmarks/<run>/linear_cells.json (default run: linear_cells).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

import rnnjax
from benchmarks.linear_scan import _temp_bytes
from benchmarks.timing import compile_time, machine_info, time_interleaved
from rnnjax import cells, results
from rnnjax.command import cli as _cli

CONTENDERS = {  # name -> (cell constructor option `scan`, unroll's `fast`)
    "associative": ("associative", True),
    "sequential": ("sequential", True),
    "step scan": ("sequential", False),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Kernels of the linear cells against their step scan. Expected run time on a 2-core CPU: a few
    minutes; --quick seconds."""

    kinds: tuple[Literal["lru", "mingru", "minlstm"], ...] = ("lru", "mingru")
    lengths: tuple[int, ...] = (1000, 4000, 16000)
    batch: int = 8
    input_size: int = 32
    hidden_size: int = 128
    repeats: int = 5
    quick: bool = False  # T = 256, 1024 and 3 repeats
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/linear_cells
    out: str | None = None  # write linear_cells.json into this folder instead (an empty or earlier one)
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # accepted as by every command (a line per measurement, no progress bar)


def bench(cfg: Config, kind: str, T: int) -> dict:
    """One (kind, T): each contender's jitted gradient of Σ y² w.r.t. params, timed and checked."""
    xs = jax.random.normal(jax.random.key(T), (cfg.batch, T, cfg.input_size))
    fns, grads = {}, {}
    for name, (scan, fast) in CONTENDERS.items():
        cell = cells.make(kind, cfg.hidden_size, scan=scan)
        params = cell.init(jax.random.key(0), cfg.input_size)

        def loss(p, xs, cell=cell, fast=fast):
            return jnp.mean(rnnjax.unroll(cell, p, xs, fast=fast)[1] ** 2)

        fn = jax.jit(jax.grad(loss))
        fns[name] = (fn, (params, xs))
        grads[name] = fn(params, xs)
    scale = lambda g: max(float(jnp.max(jnp.abs(a))) for a in jax.tree_util.tree_leaves(g))  # noqa: E731
    reference = grads["step scan"]
    agree = {
        name: max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(g, reference)) / scale(reference)
        for name, g in grads.items()
    }
    timing = time_interleaved(fns, cfg.repeats)
    median = {name: t["median"] for name, t in timing.items()}
    return dict(
        kind=kind, T=T, batch=cfg.batch, hidden_size=cfg.hidden_size, input_size=cfg.input_size,
        max_relative_difference=agree,
        compile_s={name: compile_time(fn, *args) for name, (fn, args) in fns.items()},
        timing=timing,
        temp_bytes={name: _temp_bytes(fn, *args) for name, (fn, args) in fns.items()},
        step_over={name: median["step scan"] / median[name] for name in CONTENDERS},
        sequential_over_associative=median["sequential"] / median["associative"],
    )  # fmt: skip


def main(cfg: Config) -> None:
    _cli.check_ints(cfg, "lengths", "batch", "input_size", "hidden_size", "repeats")
    out = _cli.output_folder(
        "benchmarks", cfg, "linear_cells", "linear_cells.json"
    )  # checked before the work
    if cfg.quick:
        cfg = dataclasses.replace(cfg, lengths=(256, 1024), repeats=3)
    rows = []
    for kind in cfg.kinds:
        for T in cfg.lengths:
            row = bench(cfg, kind, T)
            rows.append(row)
            ms = {k: v["median"] * 1e3 for k, v in row["timing"].items()}
            mb = {k: (v or 0) / 2**20 for k, v in row["temp_bytes"].items()}
            print(
                f"{kind:>7} T={T:>6} grad: "
                + ", ".join(f"{n} {ms[n]:8.2f} ms {mb[n]:7.1f} MiB" for n in CONTENDERS)
                + f" | seq/assoc {row['sequential_over_associative']:.2f}x | agree to "
                + f"{max(row['max_relative_difference'].values()):.1e}"
            )
    crossover = {}
    for kind in cfg.kinds:
        faster = [r["T"] for r in rows if r["kind"] == kind and r["sequential_over_associative"] > 1.0]
        crossover[kind] = min(faster) if faster else None
    results.write_json(out / "linear_cells.json", dict(machine=machine_info(), config=cfg, rows=rows,
                                                       crossover_T=crossover))  # fmt: skip
    for kind, T in crossover.items():
        said = f"from T = {T}" if T else "at no T measured"
        print(f"{kind}: associative kernel faster than sequential ({jax.default_backend()}): {said}")
    print(f"wrote {out}/linear_cells.json")


if __name__ == "__main__":
    _cli.run(Config, main)
