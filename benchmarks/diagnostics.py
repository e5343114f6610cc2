"""Cost of the one-pass per-timestep gradients (`rnnjax.diagnostics`) relative to a plain loss+grad.

    python -m benchmarks.diagnostics            # ~1-2 min on a 2-core CPU
    python -m benchmarks.diagnostics --quick

Contenders, same cell, params, inputs and loss (cross-entropy on every step), float32, all compiled first
and then timed interleaved (median of --repeats):
  - loss+grad:       `jax.value_and_grad` of the loss w.r.t. the params (the ordinary training call);
  - hidden grads:    `diagnostics.hidden_state_grads`, ∂L/∂c_t for all t;
  - loss+grad+hidden: `diagnostics.loss_and_hidden_state_grads`, both in one pass.
Target (issue 3): hidden grads cost ≤ 3× one loss+grad. Writes results/benchmarks/<run>/diagnostics.json
(default run: diagnostics).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax

import rnnjax
from benchmarks.timing import compile_time, machine_info, time_interleaved
from rnnjax import diagnostics, readout, results
from rnnjax.command import cli as _cli


@dataclasses.dataclass(frozen=True)
class Config:
    """Per-timestep gradients against a plain loss+grad. Expected run time on a 2-core CPU: ~1-2 min."""

    cells: tuple[Literal["simple", "lstm", "gru"], ...] = ("simple", "lstm", "gru")
    batch: int = 32
    lengths: tuple[int, ...] = (128, 1000)
    input_size: int = 32
    hidden_size: int = 128
    classes: int = 32
    repeats: int = 10
    quick: bool = False  # one length (64), 5 repeats
    run: str | None = None  # results/benchmarks/<run>; None: results/benchmarks/diagnostics
    overwrite: bool = False  # replace an earlier run in that folder (without it, it is refused)
    progress: bool = True  # accepted as by every command (a line per measurement, no progress bar)


def bench(cfg: Config, kind: str, T: int) -> dict:
    cell = rnnjax.cells.make(kind, cfg.hidden_size)
    k = jax.random.split(jax.random.key(0), 4)
    params = cell.init(k[0], cfg.input_size)
    head = readout.dense_init(k[1], cfg.hidden_size, cfg.classes)
    xs = jax.random.normal(k[2], (cfg.batch, T, cfg.input_size))
    labels = jax.random.randint(k[3], (cfg.batch, T), 0, cfg.classes)

    def loss_fn(ys):
        return readout.sequence_loss(head, ys, labels)

    plain = jax.jit(jax.value_and_grad(lambda p, x: loss_fn(rnnjax.unroll(cell, p, x)[1])))
    hidden = jax.jit(lambda p, x: diagnostics.hidden_state_grads(cell, p, x, loss_fn))
    both = jax.jit(lambda p, x: diagnostics.loss_and_hidden_state_grads(cell, p, x, loss_fn))
    contenders = {
        "loss+grad": (plain, (params, xs)),
        "hidden grads": (hidden, (params, xs)),
        "loss+grad+hidden": (both, (params, xs)),
    }
    compiled = {name: compile_time(fn, *args) for name, (fn, args) in contenders.items()}
    timing = time_interleaved(contenders, cfg.repeats)
    base = timing["loss+grad"]["median"]
    return dict(
        cell=kind,
        batch=cfg.batch,
        T=T,
        input_size=cfg.input_size,
        hidden_size=cfg.hidden_size,
        compile_s=compiled,
        timing=timing,
        ratio_to_loss_grad={name: t["median"] / base for name, t in timing.items()},
    )


def main(cfg: Config) -> None:
    _cli.check_ints(cfg, "batch", "lengths", "input_size", "hidden_size", "classes", "repeats")
    out = _cli.output_folder("benchmarks", cfg, "diagnostics", "diagnostics.json")  # checked before the work
    if cfg.quick:
        cfg = dataclasses.replace(cfg, lengths=(64,), repeats=5)
    rows = []
    for T in cfg.lengths:
        for kind in cfg.cells:
            row = bench(cfg, kind, T)
            rows.append(row)
            r = row["ratio_to_loss_grad"]
            print(
                f"{kind:>6} B={cfg.batch} T={T:>5} H={cfg.hidden_size}: loss+grad "
                f"{row['timing']['loss+grad']['median'] * 1e3:7.1f} ms"
                f" | hidden grads {r['hidden grads']:.2f}x"
                f" | loss+grad+hidden {r['loss+grad+hidden']:.2f}x"
            )
    results.write_json(out / "diagnostics.json", dict(machine=machine_info(), config=cfg, rows=rows))
    worst = max(r["ratio_to_loss_grad"]["loss+grad+hidden"] for r in rows)
    print(
        f"worst ratio (loss+grad+hidden / loss+grad): {worst:.2f}x (target <= 3x); "
        f"wrote {out}/diagnostics.json"
    )


if __name__ == "__main__":
    _cli.run(Config, main)
