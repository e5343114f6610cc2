"""Experiment: how many Newton iterations parallel-in-time evaluation (`rnnjax.newton`) needs, against the
sequence length T and against the largest Lyapunov exponent λ_max of the network, and what it costs in
wall time against the sequential scan on the device at hand.

    python -m experiments.parallel_in_time                      # the default sweep (run time: docs)
    python -m experiments.parallel_in_time --quick --run smoke  # about a minute, in results/parallel_in_time/
    python -m experiments.parallel_in_time --plot-only results/parallel_in_time/<run>

The networks: the tanh RNN (W_hh = g·Q, Q orthogonal) over gains g that carry λ_max from negative to
positive, and the GRU and LSTM at initialisation and after Adam training on the adding task (T = 100). Each
reads batches of the adding task's inputs (`rnnjax.tasks.adding`) in float64. For every network and seed:

- λ_max per step (natural log) from `rnnjax.diagnostics.lyapunov` on one trajectory of `lyapunov_length`
  steps (the forward QR method, after its warm-up, averaged over its random frames);
- the iterations DEER and quasi-DEER take to reach the default float64 tolerance at each T, capped at
  `max_iters` (a run that needs more is recorded as censored: it fell back to the sequential scan).

The predictability result (Gonzalez et al. 2025) says: bounded iterations as T grows when λ_max < 0, growing
with T when λ_max > 0. Wall time: one network (the GRU at initialisation), every method and the sequential
`rnnjax.unroll`, each compiled once and timed as the median of `repeats` calls.

Outputs in `results/parallel_in_time/<run>/`: config.json, metrics.json, iterations_vs_length.png,
iterations_vs_lyapunov.png, wall_time.png, summary.md.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import rnnjax
from experiments.parallel_in_time_plots import METRICS_KEYS, plot_all, summary_text
from rnnjax import cells, diagnostics, newton, tasks
from rnnjax.command import cli as _cli
from rnnjax.train import synthetic
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "parallel_in_time"
ITERATION_METHODS = ("deer", "quasi-deer")


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep. Run time on a 2-core CPU: docs/parallel_in_time.md; --quick about a minute."""

    gains: tuple[float, ...] = (0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0)  # the tanh RNN's W_hh = g·Q
    lengths: tuple[int, ...] = (100, 300, 1000, 3000, 10000)  # T of the iteration counts and timings
    hidden_size: int = 16
    batch_size: int = 4  # sequences per evaluation (Newton stops when all have converged)
    seeds: int = 2  # initialisations of every network
    max_iters: int = 100  # Newton steps before a run counts as censored (at most T)
    lyapunov_length: int = 2000  # steps of the trajectory λ_max is measured on
    train_steps: int = 300  # Adam steps of the trained GRU and LSTM on the adding task (0: no trained ones)
    train_length: int = 100  # T of that training
    learning_rate: float = 3e-3
    repeats: int = 5  # timed calls per method and T (the median is reported)
    timed_methods: tuple[str, ...] = newton.METHODS  # the Newton methods timed against the sequential scan
    seed: int = 0
    quick: bool = False  # a smoke run of about a minute
    progress: bool = True
    run: str | None = None  # results/parallel_in_time/<run>; default: a timestamp
    overwrite: bool = False
    plot_only: Path | None = None  # redraw the figures of an existing run from its metrics.json


QUICK = dict(
    gains=(0.5, 1.0, 2.0), lengths=(100, 300, 1000), seeds=1, max_iters=100, lyapunov_length=500,
    train_steps=60, repeats=2,
)  # fmt: skip


def validate(cfg: Config) -> Config:
    if cfg.quick:
        cfg = _cli.quick(cfg, QUICK)
    if not cfg.gains or not cfg.lengths:
        raise ValueError(
            f"gains, lengths: expected at least one value each, got {cfg.gains!r} and {cfg.lengths!r}"
        )
    for gain in cfg.gains:
        check_positive("gains", gain)
    for length in cfg.lengths:
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise ValueError(f"lengths: expected ints >= 2, got {length!r}")
    _cli.check_ints(cfg, "hidden_size", "batch_size", "seeds", "max_iters", "repeats")
    _cli.check_ints(cfg, "train_steps", minimum=0)
    _cli.check_ints(cfg, "lyapunov_length", "train_length", minimum=10)
    _cli.check_ints(cfg, "seed", minimum=0)
    check_positive("learning_rate", cfg.learning_rate)
    for method in cfg.timed_methods:
        if method not in newton.METHODS:
            raise ValueError(f"timed_methods: expected names from {newton.METHODS}, got {method!r}")
    return cfg


def networks(cfg: Config):
    """(name, cell, [params of each seed]) of every network. The tanh RNNs of all gains share one cell
    (their params are drawn with the gain), so one compiled program serves them all."""
    H, task = cfg.hidden_size, tasks.make("adding", cfg.train_length)
    simple = cells.make("simple", H, dtype=jnp.float64)
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    out = []
    for gain in cfg.gains:
        scaled = cells.make("simple", H, gain=float(gain), dtype=jnp.float64)
        params = [scaled.init(jax.random.key(s), task.input_size) for s in seeds]
        out.append((f"tanh g={gain:g}", simple, params))
    for gated in ("gru", "lstm"):
        cell = cells.make(gated, H, dtype=jnp.float64)
        model = [synthetic.init_params(cell, task, s) for s in seeds]
        out.append((f"{gated} init", cell, [m["rnn"]["layer_0"] for m in model]))
        if not cfg.train_steps:
            continue
        trained = []
        for s in seeds:
            result = synthetic.train(
                cell, task, steps=cfg.train_steps, learning_rate=cfg.learning_rate, clip_norm=1.0, seed=s,
                progress=cfg.progress, desc=f"{gated} seed {s}",
            )  # fmt: skip
            trained.append(result.params["rnn"]["layer_0"])
        out.append((f"{gated} trained", cell, trained))
    return out


def inputs(cfg: Config, T: int, batch: int, salt: int) -> jax.Array:
    """<float64>[batch, T, 2] adding-task inputs, the same for every network."""
    xs, _ = tasks.make("adding", T).sample(jax.random.key(10_000 + 97 * cfg.seed + salt), batch)
    return jnp.asarray(xs, jnp.float64)


def counted(cfg: Config, cell, method: str, T: int):
    """A compiled `(params, xs) -> (iterations, converged)` for one cell, method and T."""
    cap = min(T, cfg.max_iters)

    @jax.jit
    def run(params, xs):
        info = newton.unroll(cell, params, xs, method=method, max_iters=cap, on_failure="sequential")[2]
        return info.iterations, info.converged

    return run


def iterations(cfg: Config, nets, say) -> list[dict]:
    """For every network, seed and T: λ_max and each method's iterations (None where censored)."""
    rows = []
    lyap_xs = inputs(cfg, cfg.lyapunov_length, 1, salt=1)[0]
    data = {T: inputs(cfg, T, cfg.batch_size, salt=2) for T in cfg.lengths}
    compiled = {}
    work = [(name, cell, k, p) for name, cell, ps in nets for k, p in enumerate(ps)]
    for name, cell, k, params in tqdm(work, desc="iterations", unit="net", disable=not cfg.progress):
        lam = float(diagnostics.lyapunov(cell, params, lyap_xs, k=1).exponents[0])
        row = {"network": name, "seed": cfg.seed + k, "lyapunov": lam, "iterations": {}}
        for method in ITERATION_METHODS:
            counts = []
            for T in cfg.lengths:
                key = (cell, method, T)
                if key not in compiled:
                    compiled[key] = counted(cfg, cell, method, T)
                with warnings.catch_warnings():  # a censored run's fallback warning: it is recorded below
                    warnings.simplefilter("ignore", RuntimeWarning)
                    its, ok = compiled[key](params, data[T])
                    jax.effects_barrier()
                counts.append(int(its) if bool(ok) else None)
            row["iterations"][method] = counts
        rows.append(row)
    for row in rows:
        say(f"{row['network']:>14} seed {row['seed']}: λ_max {row['lyapunov']:+.4f}/step, DEER iterations "
            + " ".join("-" if c is None else str(c) for c in row["iterations"]["deer"]))  # fmt: skip
    return rows


def wall_times(cfg: Config, nets) -> dict:
    """Median seconds per call of every method and of the sequential scan on the GRU at initialisation."""
    name, cell, params = next(n for n in nets if n[0] == "gru init")
    params = params[0]
    out = {"network": name, "seconds": {}, "iterations": {}}
    contenders = ("sequential", *cfg.timed_methods)
    work = [(c, T) for c in contenders for T in cfg.lengths]
    for contender, T in tqdm(work, desc="wall time", unit="run", disable=not cfg.progress):
        xs = inputs(cfg, T, cfg.batch_size, salt=3)
        fn = jax.jit(_timed(cell, contender, min(T, cfg.max_iters)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            jax.block_until_ready(fn(params, xs))  # compile
            times = []
            for _ in range(cfg.repeats):
                start = time.perf_counter()
                ys, its = jax.block_until_ready(fn(params, xs))
                times.append(time.perf_counter() - start)
        out["seconds"].setdefault(contender, []).append(float(np.median(times)))
        out["iterations"].setdefault(contender, []).append(int(its))
    return out


def _timed(cell, contender: str, cap: int):
    """`(params, xs) -> (ys, iterations)` of one contender (the sequential scan reports 0 iterations)."""

    def run(params, xs):
        if contender == "sequential":
            return rnnjax.unroll(cell, params, xs)[1], jnp.int32(0)
        _, ys, info = newton.unroll(
            cell, params, xs, method=contender, max_iters=cap, on_failure="sequential"
        )
        return ys, info.iterations

    return run


def main(cfg: Config) -> Path:
    if cfg.plot_only is not None:
        return _cli.redraw(cfg.plot_only, EXPERIMENT, plot_all, METRICS_KEYS)
    cfg = validate(cfg)
    jax.config.update("jax_enable_x64", True)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    say = _cli.Printout(tqdm.write)
    nets = networks(cfg)
    metrics = {
        "lengths": list(cfg.lengths), "max_iters": cfg.max_iters, "hidden_size": cfg.hidden_size,
        "batch_size": cfg.batch_size, "tol": newton.default_tol(jnp.float64),
        "backend": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind}), jax {jax.__version__}",
        "rows": iterations(cfg, nets, say), "wall": wall_times(cfg, nets),
    }  # fmt: skip
    metrics["wall_time_s"] = time.perf_counter() - start
    print(_cli.finish_run(out, EXPERIMENT, metrics, plot_all, summary_text))
    print(f"wrote {out} in {metrics['wall_time_s']:.0f} s")
    return out


if __name__ == "__main__":
    _cli.run(Config, main)
