"""Long-range tasks: Elman-tanh, LSTM and GRU trained with Adam on the adding problem, temporal order and
copying memory at several time lags T, several seeds at once, reporting success as k of N seeds.

    python -m experiments.long_range             # 34 min measured on a shared 2-core CPU (see below)
    python -m experiments.long_range --quick     # ~20 s smoke run (adding, T=10, clip, 60 steps, 2 seeds)
    python -m experiments.long_range --full      # the wider grid (not run here; see FULL)
    python -m experiments.long_range --replot results/long_range/<run>   # figures + summary from JSON
    python -m experiments.long_range --run NAME --resume   # continue an interrupted run (Ctrl-C saves)

Every configuration (task, T, cell, clip) trains `--seeds` N fresh networks at once (seeds `seed` ..
`seed` + N - 1; `rnnjax.train.synthetic.train_seeds`: one compiled step over a leading seed axis): a
cell (H=64, default init: orthogonal recurrent kernel, LSTM forget bias 1) plus a dense readout, Adam
(lr 3e-3, batch 64, fresh batches), recording each seed's loss and global gradient norm *before*
clipping at every step; "clip" runs pass the gradient through `optax.clip_by_global_norm(1.0)`. Each
seed's final loss is measured on 1024 held-out sequences of its own evaluation stream. A seed succeeds
when that loss is below 0.1 x the task's memoryless baseline (adding: 1/6; copy: 10 ln 8/(T+20);
temporal order: ln 4; see `rnnjax.tasks`); a configuration reports k/N, the seeds that succeed.

The default grid: adding at T = 100 and 200, temporal order at T = 100 (1200 steps each), copying memory
at T = 10 with 3000 steps, all with clipping (`--task-seq-lens`, `--task-steps` and `--clip` change it).

Measured at the defaults (seeds 0-4, 1 x XLA:CPU, jax 0.10.2, a 2-core CPU shared with other jobs, load
average 5-9: 2037 s wall, 1955 s of it training; run `seeds5`). k/N seeds with held-out loss < 0.1 x
baseline, and each seed's loss / baseline:

    task            T    steps  simple-tanh          LSTM                            GRU
    adding          100  1200   0/5 (0.99-1.02)      1/5 (0.021, 0.22, 0.93-0.99)    5/5 (0.0032-0.0097)
    adding          200  1200   0/5 (0.97-1.06)      0/5 (0.97-1.04)                 5/5 (0.0055-0.014)
    temporal_order  100  1200   0/5 (1.00-1.01)      4/5 (2.2e-5 - 9.1e-5; one 1.0)  0/5 (1.00)
    copy            10   3000   0/5 (0.66-0.91)      0/5 (0.49-0.62)                 0/5 (0.55-0.79)

- What holds on every seed: the GRU solves adding at T = 100 and T = 200 (5/5 each); the tanh RNN fails
  adding at T = 100 and 200 and temporal order at T = 100 (0/5); the GRU stays at chance on temporal
  order at T = 100 (0/5, gradient norms at most 0.47 on every seed, so clipping never acts).
- Not on every seed: the LSTM solves temporal order at T = 100 on 4/5 seeds (the fifth stays at 1.0 x)
  and adding at T = 100 on 1/5 (another reaches 0.22 x); at T = 200 it fails 5/5 in this budget.
- Copying memory at T = 10 is a budget failure, not a plateau: no seed passes in 3000 steps, but every
  seed of every cell is still falling (mean training loss / baseline over steps 1000-1200 vs 2800-3000:
  LSTM 0.81-0.87 -> 0.51-0.64, GRU 0.93-0.98 -> 0.56-0.80, tanh 0.96-1.0 -> 0.68-0.92). With five times
  the budget it passes on some seeds: `--tasks copy --task-steps copy=15000 --cells lstm gru` (run
  `copy_budget`, 710 s on the same CPU, less loaded): LSTM 3/5 (0.0042, 0.071, 0.088; 0.12, 0.16), GRU 2/5
  (0.034, 0.090; 0.11, 0.18, 0.41), every seed still falling over the last 3000 steps.
- Clipping against no clipping is not part of the default grid (`--clip False True` adds it). The tanh
  RNN at T = 30 on 10 seeds (`--tasks adding temporal_order --seq-lens 30 --task-seq-lens --cells
  simple-tanh --clip False True --seeds 10`, run `clip_tanh_T30`, 98 s): adding 0/10 without clipping,
  2/10 with it (0.074, 0.085 x; medians 0.14 vs 0.12 x, clipping lower on 5 of 10 seeds, none diverges);
  temporal order 9/10 both ways. The earlier one-seed claim "solves adding at T = 30 only with
  clipping" does not hold as a rule.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib

from experiments import _synthetic
from experiments import long_range_plots as plots
from rnnjax import results, tasks
from rnnjax.command import cli as _cli
from rnnjax.command import runs as runs_lib
from rnnjax.train import synthetic
from rnnjax.train.optimizers import check_positive

matplotlib.use("Agg")

EXPERIMENT = "long_range"
CRITERION = plots.CRITERION


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweep of trainings. Expected run time on a 2-core CPU: 34 min for the default grid (measured
    while the cores were shared with other jobs); --quick about 20 s of CPU; --full many hours."""

    tasks: tuple[str, ...] = ("adding", "temporal_order", "copy")
    seq_lens: tuple[int, ...] = (100, 200)  # T of every task without an entry in task_seq_lens
    task_seq_lens: tuple[str, ...] = ("temporal_order=100", "copy=10")  # 'task=T1,T2,...' per task
    cells: tuple[str, ...] = ("simple-tanh", "lstm", "gru")
    clip: tuple[bool, ...] = (True,)  # train without and/or with clip_by_global_norm(clip_norm)
    clip_norm: float = 1.0
    hidden_size: int = 64
    batch_size: int = 64
    steps: int = 1200  # Adam steps of every task without an entry in task_steps
    task_steps: tuple[str, ...] = ("copy=3000",)  # 'task=steps' per task
    learning_rate: float = 3e-3  # Adam
    eval_batch_size: int = 1024  # held-out sequences for each seed's final loss
    seeds: int = 5  # N: seeds seed, seed + 1, ..., seed + N - 1 train at once
    seed: int = 0  # the first seed
    quick: bool = False  # smoke run: adding at T=10, with clipping, 60 steps, H=32, 2 seeds (see QUICK)
    full: bool = False  # the wider grid of FULL (hours on a 2-core CPU); explicit flags still win
    progress: bool = True  # progress bars (--no-progress for logs)
    run: str | None = None  # results/long_range/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    resume: bool = False  # continue the interrupted --run with its saved settings (finished trainings kept)
    replot: str | None = None  # redo figures and summary.md from an existing run folder, then exit


# What the report reads from a run's files.
METRICS_KEYS = ("runs", "complete", "wall_seconds")
CONFIG_KEYS = ("cells", "clip", "clip_norm", "hidden_size", "learning_rate", "batch_size", "eval_batch_size")
QUICK = dict(
    tasks=("adding",), seq_lens=(10,), task_seq_lens=(), task_steps=(), clip=(True,), steps=60,
    hidden_size=32, eval_batch_size=256, seeds=2,
)  # fmt: skip
FULL = dict(
    seq_lens=(10, 30, 100, 200, 400), task_seq_lens=("temporal_order=10,30,100,200", "copy=10,30,100"),
    task_steps=("copy=20000",), clip=(False, True), seeds=10,
)  # fmt: skip


def parse_task_values(field: str, entries, task_names, *, lists: bool) -> dict:
    """`{"task": value}` from entries 'task=V' (`lists`: 'task=V1,V2,...', a tuple of ints), refusing
    (ValueError naming `field`) a malformed entry, a task not in `task_names`, a repeated task or a
    value that is not an int."""
    form = "'task=T1,T2,...'" if lists else "'task=steps'"
    out = {}
    for entry in entries:
        name, sep, value = str(entry).partition("=")
        if not sep or name not in tasks.TASKS:
            raise ValueError(
                f"{field}: expected entries {form} with a task from {sorted(tasks.TASKS)}, got {entry!r}"
            )
        if name in out:
            raise ValueError(f"{field}: expected each task at most once, got {name!r} twice")
        try:
            values = tuple(int(v) for v in value.split(",")) if lists else int(value)
        except ValueError:
            raise ValueError(f"{field}: expected {form} with ints, got {entry!r}") from None
        if name in task_names:
            out[name] = values
    return out


def grid(cfg: Config) -> list[tuple[str, int, int]]:
    """The (task, T, steps) of every training of `cfg`, in order."""
    lens = parse_task_values("task_seq_lens", cfg.task_seq_lens, cfg.tasks, lists=True)
    steps = parse_task_values("task_steps", cfg.task_steps, cfg.tasks, lists=False)
    return [(t, T, steps.get(t, cfg.steps)) for t in cfg.tasks for T in lens.get(t, cfg.seq_lens)]


def run_one(
    cfg: Config, task_name: str, seq_len: int, steps: int, cell_name: str, clip: bool, folder: Path | None
) -> dict:
    """Train one (task, T, cell, clip) combination for every seed at once; returns its JSON record. With
    `folder`, the training keeps its log and checkpoint there and continues one found there (an
    interrupted run), replaying exactly the uninterrupted training."""
    task = tasks.make(task_name, seq_len)
    seeds = tuple(range(cfg.seed, cfg.seed + cfg.seeds))
    cell = _synthetic.make_cell(cell_name, cfg.hidden_size)
    params, histories = synthetic.train_seeds(
        cell,
        task,
        seeds=seeds,
        steps=steps,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        clip_norm=cfg.clip_norm if clip else None,
        progress=cfg.progress,
        desc=f"{task_name} T={seq_len} {cell_name}{' clip' if clip else ''} x{len(seeds)}",
        run=folder,
        resume=folder is not None and _has_checkpoint(folder),
    )
    final = synthetic.evaluate_seeds(cell, task, params, seeds=seeds, batch_size=cfg.eval_batch_size)
    success = [task.success(float(f)) and not h["diverged"] for f, h in zip(final, histories)]
    return dict(
        task=task_name,
        seq_len=seq_len,
        cell=cell_name,
        clip=clip,
        steps=steps,
        seeds=list(seeds),
        baseline=task.baseline,
        final_loss=[float(f) for f in final],
        success=success,
        successes=sum(success),
        diverged=[h["diverged"] for h in histories],
        loss=[h["loss"] for h in histories],
        grad_norm=[h["grad_norm"] for h in histories],
        train_seconds=histories[0]["train_seconds"],
    )


def check(cfg: Config) -> Config:
    """Refuse bad settings by name before any training; returns `cfg` with the QUICK or FULL settings if
    asked (explicit flags win)."""
    if cfg.quick and cfg.full:
        raise ValueError("quick, full: expected at most one of them, got both")
    if cfg.quick:
        cfg = _cli.quick(cfg, QUICK)
    if cfg.full:
        cfg = _cli.quick(cfg, FULL)
    for field in ("tasks", "seq_lens", "cells", "clip"):
        if not getattr(cfg, field):
            raise ValueError(f"{field}: expected at least one value, got {getattr(cfg, field)!r}")
    _synthetic.check_cells(cfg.cells)
    check_positive("clip_norm", cfg.clip_norm)  # always given here (the clip runs use it)
    _synthetic.check_training(cfg)
    _cli.check_ints(cfg, "eval_batch_size", "seeds")
    lens = parse_task_values("task_seq_lens", cfg.task_seq_lens, cfg.tasks, lists=True)
    for name in cfg.tasks:  # fail on bad names or lengths before any training
        with _cli.named("tasks", "name"), _cli.named("seq_lens", "seq_len"):
            tasks.make(name, 10)  # the name
            if name not in lens:  # the lengths of --seq-lens that this task runs at
                tasks.make(name, max(cfg.seq_lens))
                tasks.make(name, min(cfg.seq_lens))
    for name, values in lens.items():
        for T in values:
            with _cli.named("task_seq_lens", "seq_len"):
                tasks.make(name, T)
    for name, steps in parse_task_values("task_steps", cfg.task_steps, cfg.tasks, lists=False).items():
        if steps < 1:
            raise ValueError(f"task_steps: expected steps >= 1 for {name}, got {steps}")
    return cfg


def resumed(cfg: Config) -> tuple[Config, Path, dict]:
    """For `--resume`: the run's saved settings (the command line may repeat them, and change only
    `--no-progress`), its folder and its finished trainings by (task, T, cell, clip). Nothing is written."""
    if cfg.run is None:
        raise ValueError("resume: expected the --run to continue, got no --run")
    out = _cli.run_folder(EXPERIMENT, cfg, resume=True)
    if not (out / "config.json").exists():
        raise ValueError(f"resume: {str(out)!r} holds no config.json of a long_range run to continue")
    saved = read_run_file(out, "config.json")
    fields = {f.name for f in dataclasses.fields(Config)}
    kept = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields}
    defaults, free = Config(), ("run", "resume", "overwrite", "progress", "replot")
    changed = [
        f"{k} (saved {kept[k]!r}, given {getattr(cfg, k)!r})"
        for k in sorted(fields - set(free))
        if getattr(cfg, k) != getattr(defaults, k) and k in kept and getattr(cfg, k) != kept[k]
    ]
    if changed:
        raise ValueError(f"resume: run {cfg.run!r} was started with other settings: {'; '.join(changed)}")
    with runs_lib.from_file(out / "config.json"):  # its values, checked as the flags are
        saved_cfg = Config(**kept)
        check(dataclasses.replace(saved_cfg, quick=False, full=False))
    cfg = dataclasses.replace(saved_cfg, run=cfg.run, resume=True, progress=cfg.progress)
    done = {}
    if (out / "metrics.json").exists():
        with runs_lib.from_file(out / "metrics.json"):
            for r in read_run_file(out, "metrics.json")["runs"]:
                done[(r["task"], r["seq_len"], r["cell"], r["clip"])] = r
    return cfg, out, done


def read_run_file(out: Path, name: str) -> dict:
    """The run's config.json or metrics.json, with the keys the command reads (`runs.read_json`)."""
    keys = {"config.json": CONFIG_KEYS, "metrics.json": METRICS_KEYS}[name]
    return runs_lib.read_json(out / name, keys, what=f"the {name} of a {EXPERIMENT} run")


def _has_checkpoint(folder: Path) -> bool:
    ckpt = folder / "checkpoints"
    return ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())


def main(cfg: Config) -> None:
    if cfg.replot:
        keys = {"metrics.json": METRICS_KEYS, "config.json": CONFIG_KEYS}
        report(_cli.saved_run(cfg.replot, EXPERIMENT, what="replot", keys=keys))
        return
    if cfg.resume:
        cfg, out, done = resumed(cfg)
    else:
        cfg = check(cfg)
        out, done = _cli.new_run(EXPERIMENT, dataclasses.replace(cfg, overwrite=False)), {}
    start, runs = time.perf_counter(), []
    earlier = read_run_file(out, "metrics.json")["wall_seconds"] if done else 0.0
    for task_name, seq_len, steps in grid(cfg):
        for cell_name in cfg.cells:
            for clip in cfg.clip:
                key = (task_name, seq_len, cell_name, clip)
                if key in done:  # finished before the run was interrupted
                    runs.append(done[key])
                    continue
                folder = out / "train" / f"{task_name}-T{seq_len}-{cell_name}-{'clip' if clip else 'noclip'}"
                runs.append(run_one(cfg, task_name, seq_len, steps, cell_name, clip, folder))
                # Rewritten after every run, so an interrupted sweep keeps what it finished.
                metrics = _metrics(runs, earlier + time.perf_counter() - start, complete=False)
                results.write_json(out / "metrics.json", metrics)
    metrics = _metrics(runs, earlier + time.perf_counter() - start, complete=True)
    results.write_json(out / "metrics.json", metrics)
    report(out)
    print(f"wrote {out} in {metrics['wall_seconds']:.0f} s")


def _metrics(runs: list[dict], wall_seconds: float, complete: bool) -> dict:
    """The sweep's metrics.json record."""
    return dict(
        runs=runs, criterion=CRITERION, backend=_backend(), wall_seconds=wall_seconds, complete=complete
    )


def _backend() -> str:
    import jax

    devices = jax.devices()
    return f"{len(devices)} x {devices[0].platform} ({devices[0].device_kind}), jax {jax.__version__}"


def report(out: Path) -> None:
    """Figures and summary.md from `out/config.json` and `out/metrics.json`."""
    cfg, metrics = read_run_file(out, "config.json"), read_run_file(out, "metrics.json")
    with runs_lib.from_file(out / "metrics.json"):  # the figures' and the table's values, as saved
        _report(out, cfg, metrics)


def _report(out: Path, cfg: dict, metrics: dict) -> None:
    runs = metrics["runs"]
    plots.plot_loss(runs, out / "loss.png")
    plots.plot_grad_norm(runs, cfg, out / "grad_norm.png")
    plots.plot_final_loss(runs, cfg, out / "final_loss.png")
    table = plots.summary_table(runs)
    seeds = runs[0]["seeds"]
    header = (
        f"# long_range: {len(runs)} configurations x {len(seeds)} seeds"
        f"{'' if metrics['complete'] else ' (incomplete)'}, {metrics['wall_seconds']:.0f} s on "
        f"{metrics.get('backend', '?')}\n\n"
        f"H={cfg['hidden_size']}, Adam at lr {cfg['learning_rate']}, batch {cfg['batch_size']}, clip = "
        f"`clip_by_global_norm({cfg['clip_norm']})`, seeds {seeds[0]}..{seeds[-1]} (trained at once). Each "
        f"seed's final loss on {cfg['eval_batch_size']} held-out sequences; success: {CRITERION}; k/N = "
        f"seeds that succeed.\n\n"
    )
    successes = sum(r["successes"] for r in runs)
    total = sum(len(r["seeds"]) for r in runs)
    footer = f"\n\n{successes} of {total} seed trainings succeed.\n"
    results.atomic_write_text(out / "summary.md", header + table + footer)
    print(table)


if __name__ == "__main__":
    _cli.run(Config, main)
