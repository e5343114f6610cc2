"""Experiment 3: how training changes the per-lag gradient profile ‖∂L/∂h_t‖, per cell.

    python -m experiments.gradient_norms_training                         # adding, T=100; ~1-2 min
    python -m experiments.gradient_norms_training --task temporal_order --seq-len 60
    python -m experiments.gradient_norms_training --quick                 # a smoke run of ~10 s

For each cell (simple-tanh, LSTM, GRU), the profile log10 ‖∂L/∂h_t‖ against lag T − t is measured with
the task's own loss on a held-out batch (one backward pass, `rnnjax.diagnostics`), once at initialisation
and once after `--steps` Adam steps on the task (`rnnjax.train`). For the adding and temporal-order tasks
the loss sits on the last step, so lag is distance from the loss; for copying memory the loss is on
every step and the profile is the total gradient reaching each step.

Outputs in `results/gradient_norms_training/<run>/`: config.json, metrics.json (profiles, loss curves,
final losses), profiles.png, summary.md (decay rate at init and after training, final loss vs baseline).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np

from experiments import _cli, _synthetic
from rnnjax import diagnostics, results, tasks
from rnnjax.train import synthetic

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPERIMENT = "gradient_norms_training"
QUICK = dict(cells=("simple-tanh", "gru"), seq_len=10, steps=60, hidden_size=16, profile_batch=32)


@dataclasses.dataclass(frozen=True)
class Config:
    """Profiles at initialisation and after training. Expected run time on a 2-core CPU: about 71 s at the
    defaults; --quick about 10 s."""

    task: str = "adding"  # "adding", "copy" or "temporal_order"
    seq_len: int = 100
    cells: tuple[str, ...] = tuple(_synthetic.CELLS)
    hidden_size: int = 64
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3
    clip_norm: float | None = 1.0
    profile_batch: int = 256  # held-out examples the profile is measured on
    seed: int = 0
    quick: bool = False  # a smoke run: 2 cells, T=10, 60 steps, H=16, profiles on 32 examples (see QUICK)
    progress: bool = True  # progress bars (--no-progress for logs)
    run: str | None = None  # results/gradient_norms_training/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    plot_only: Path | None = None  # redraw from an existing run's metrics.json


def profile(cell, task, params, xs, targets) -> np.ndarray:
    """log10 ‖∂L/∂h_t‖ per example, indexed by lag (0 = last step): <float64>[batch, length], from the
    trained model itself (`diagnostics.model_hidden_state_grads`)."""
    model = synthetic.make_model(cell, task)

    def grads(p):
        return diagnostics.model_hidden_state_grads(model, p, xs, lambda out: task.loss(out, targets))

    (layer,) = jax.jit(grads)(params)
    return diagnostics.log10_norm(np.asarray(layer.h, np.float64))[:, ::-1]


def summarise_profile(log_norms: np.ndarray) -> dict:
    fits = diagnostics.decay_stats(log_norms)
    return dict(
        diagnostics.log_norm_quartiles(log_norms, axis=0),
        slope_mean=fits["slope_mean"],
        slope_std=fits["slope_std"],
    )


def plot(m: dict, path: Path) -> None:
    names = list(m["cells"])
    fig, axes = plt.subplots(
        2, len(names), figsize=(3.6 * len(names), 6.2), squeeze=False, layout="constrained"
    )
    for col, name in enumerate(names):
        c = m["cells"][name]
        ax = axes[0, col]
        for key, color in (("init", "C0"), ("trained", "C3")):
            p = c["profile"][key]
            med = np.asarray(p["median"], float)
            lag = np.arange(len(med))
            ax.plot(lag, med, color=color, label=f"{key} (slope {p['slope_mean']:.3f}/step)")
            ax.fill_between(
                lag, np.asarray(p["q25"], float), np.asarray(p["q75"], float), color=color, alpha=0.2
            )
        ax.set(title=name, xlabel="lag T − t (steps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.plot(c["loss"], lw=0.8, label="training loss")
        ax.axhline(m["baseline"], color="gray", ls="--", label=f"baseline {m['baseline']:.3g}")
        ax.set_yscale("log")
        ax.set(xlabel="training step", title=f"final held-out loss {c['final_loss']:.3g}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("log10 ‖∂L/∂h_t‖ (median, quartiles)")
    axes[1, 0].set_ylabel("loss")
    fig.suptitle(f"Gradient profile at init and after {m['steps']} steps: {m['task']}, T={m['seq_len']}")
    results.save_figure(fig, path)
    plt.close(fig)


def main(cfg: Config) -> None:
    if cfg.plot_only is not None:
        run = _cli.saved_run(cfg.plot_only, EXPERIMENT)
        plot(json.loads((run / "metrics.json").read_text()), run / "profiles.png")
        return
    if cfg.quick:
        cfg = _cli.quick(cfg, QUICK)
    _synthetic.check_cells(cfg.cells)
    _synthetic.check_training(cfg)
    _cli.check_ints(cfg, "profile_batch")
    with _cli.named("task", "name"):
        task = tasks.make(cfg.task, cfg.seq_len)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    xs, targets = task.sample(jax.random.key(10_000 + cfg.seed), cfg.profile_batch)  # never trained on
    metrics = dict(task=cfg.task, seq_len=cfg.seq_len, steps=cfg.steps, baseline=task.baseline, cells={})
    for name in cfg.cells:
        cell = _synthetic.make_cell(name, cfg.hidden_size)
        init = synthetic.init_params(cell, task, cfg.seed)
        before = profile(cell, task, init, xs, targets)
        _, (params, history) = _synthetic.train(
            cfg, name, task, clip_norm=cfg.clip_norm, params=init, desc=f"{name:>11}"
        )
        after = profile(cell, task, params, xs, targets)
        final = float(jax.jit(synthetic.loss_fn, static_argnums=(0, 1))(cell, task, params, xs, targets))
        metrics["cells"][name] = dict(
            profile=dict(init=summarise_profile(before), trained=summarise_profile(after)),
            loss=history["loss"],
            grad_norm=history["grad_norm"],
            diverged=history["diverged"],
            final_loss=final,
            success=task.success(final),
        )
    metrics["wall_time_s"] = time.perf_counter() - start
    results.write_json(out / "metrics.json", metrics)
    m = json.loads((out / "metrics.json").read_text())
    plot(m, out / "profiles.png")
    lines = [
        f"# gradient_norms_training: {cfg.task}, T={cfg.seq_len}, {cfg.steps} steps",
        "",
        "Decay rate: least-squares slope of log10 ‖∂L/∂h_t‖ per step of lag (mean over held-out examples).",
        "",
        "| cell | slope at init | slope trained | final loss | baseline | success |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in m["cells"].items():
        s0, s1 = c["profile"]["init"]["slope_mean"], c["profile"]["trained"]["slope_mean"]
        lines.append(
            f"| {name} | {s0:.4f} | {s1:.4f} | {c['final_loss']:.4g} | {task.baseline:.4g} | {c['success']} |"
        )
    table = "\n".join(lines)
    results.atomic_write_text(out / "summary.md", table + "\n")
    print(table)
    print(f"wrote {out} in {metrics['wall_time_s']:.0f} s")


if __name__ == "__main__":
    _cli.run(Config, main)
