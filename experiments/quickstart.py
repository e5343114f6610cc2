"""Quickstart: train Elman (tanh), LSTM and GRU cells to remember the first of T symbols, and check one
gradient against the NumPy reference's hand-written BPTT.

    python -m experiments.quickstart                           # the default run (time and results: README)
    python -m experiments.quickstart --seq-len 20              # a shorter memory
    python -m experiments.quickstart --quick --run smoke       # ~10 s: T=10, 60 steps

`--run NAME` writes to `results/quickstart/NAME/` (default: a timestamp); `--no-progress` hides the
progress bars; bad input prints one line `error: ...` (`--debug`: traceback).

Task (`first_symbol`, an `rnnjax.tasks.Task`): each sequence holds T one-hot symbols from an alphabet of
K; the label is the first symbol, so the network must carry it through T-1 distracting steps (many-to-one,
read at the last step). Chance is accuracy 1/K and cross-entropy ln K (the task's baseline). Each cell is
trained by `rnnjax.train.synthetic.train` (a dense readout at every step, `rnnjax.models.sequence_model`;
Adam; one fresh batch per step) and tested on 1024 fresh sequences.

A cell that ends at chance is reported with a measurement of its gradient path at initialisation, on a
batch of the task: the share of the label's gradient that reaches the first step, ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖
(median over the batch), and the mean of its memory gate at the first step (the GRU's update gate z, the
LSTM's forget gate f). For the GRU at the defaults z starts at 0.50 and the ratio is about 10^-7.

Writes `results/quickstart/<run>/`: config.json, metrics.json (per cell: loss and gradient norm per step,
test loss and accuracy, the gradient path at initialisation), loss.png (drawn from metrics.json),
summary.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _synthetic
from rnnjax import cells, diagnostics, models, readout, reference, results, tasks
from rnnjax.command import cli as _cli
from rnnjax.command.plots import plt, save
from rnnjax.train import synthetic

EXPERIMENT = "quickstart"
CELLS = _synthetic.CELLS
TEST_SIZE = 1024  # fresh sequences the trained cells are scored on
PATH_BATCH = 256  # sequences the gradient path at initialisation is measured on
CHANCE_MARGIN = 0.05  # a test accuracy within this of 1/K counts as "at chance"


@dataclasses.dataclass(frozen=True)
class Config:
    """Three cells on one memory task. Expected run time on a 2-core CPU: about 28 s at the defaults
    (README); --quick about 10 s."""

    seq_len: int = 50  # T, steps between the symbol and the question
    alphabet: int = 4  # K symbols
    hidden_size: int = 32
    batch_size: int = 64
    steps: int = 600
    learning_rate: float = 3e-3
    seed: int = 0  # initial weights and batches (`synthetic.train`); the test set is drawn from seed + 1
    cells: tuple[str, ...] = ("simple-tanh", "lstm", "gru")
    quick: bool = False  # a seconds-long smoke run: see QUICK
    progress: bool = True  # tqdm progress bars
    run: str | None = None  # results/quickstart/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)


QUICK = dict(seq_len=10, steps=60)


def check_config(cfg: Config) -> Config:
    """Refuses bad settings by name; returns `cfg` with the QUICK settings if asked."""
    _cli.check_ints(cfg, "seq_len")
    _cli.check_ints(cfg, "alphabet", minimum=2)
    if not cfg.cells or not set(cfg.cells) <= set(CELLS):
        raise ValueError(f"cells: expected names from {sorted(CELLS)}, got {list(cfg.cells)}")
    _synthetic.check_training(cfg)
    return _cli.quick(cfg, QUICK) if cfg.quick else cfg


def first_symbol(seq_len: int, alphabet: int) -> tasks.Task:
    """Remember the first of `seq_len` one-hot symbols: xs <float32>[B, T, K], labels <int32>[B] (the first
    symbol); the loss is the cross-entropy of the outputs <[B, T, K]> at the last step, the baseline ln K."""

    def sample(key, batch_size: int):
        symbols = jax.random.randint(key, (batch_size, seq_len), 0, alphabet)
        return jax.nn.one_hot(symbols, alphabet, dtype=jnp.float32), symbols[:, 0]

    def loss(outputs, labels):
        return readout.cross_entropy(outputs[:, -1], labels).mean()

    return tasks.Task(
        "first_symbol", seq_len, seq_len, alphabet, alphabet, "many_to_one", sample, loss, math.log(alphabet)
    )


def train(name: str, task: tasks.Task, cfg: Config) -> dict:
    """Train cell `name` on `task` (`synthetic.train`); the history, the test loss and accuracy, and, if it
    ends at chance, its gradient path at initialisation (`gradient_path`)."""
    cell, (params, history) = _synthetic.train(cfg, name, task, desc=f"{name:>12}")
    xs, labels = task.sample(jax.random.key(cfg.seed + 1), TEST_SIZE)
    outputs = synthetic.outputs(cell, params, xs)  # (B, T, K)
    accuracy = float(jnp.mean(jnp.argmax(outputs[:, -1], -1) == labels))
    at_chance = accuracy <= 1.0 / cfg.alphabet + CHANCE_MARGIN
    return dict(
        loss=history["loss"],
        grad_norm=history["grad_norm"],
        diverged=history["message"] if history["diverged"] else None,
        test_loss=float(task.loss(outputs, labels)),
        test_accuracy=accuracy,
        init=gradient_path(cell, task, cfg.seed) if at_chance else None,
    )


def gradient_path(cell: cells.Cell, task: tasks.Task, seed: int) -> dict:
    """Measured at the params training starts from (`synthetic.init_params`), on `PATH_BATCH` sequences:
    "log10_ratio", the median over the batch of log10 ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ (how much of the label's
    gradient reaches the step holding the symbol), "per_step" = 10^(log10_ratio / (T - 1)), and
    "memory_gate" (its name and mean value at the first step, from zero carries) for gated cells."""
    params = synthetic.init_params(cell, task, seed)
    xs, labels = task.sample(jax.random.key(seed + 2), PATH_BATCH)
    model = synthetic.make_model(cell, task)
    (layer,) = diagnostics.model_hidden_state_grads(model, params, xs, lambda out: task.loss(out, labels))
    log_norms = diagnostics.log10_norm(np.asarray(layer.h, np.float64))  # (B, T)
    log_ratio = float(np.median(log_norms[:, 0] - log_norms[:, -1]))
    out = dict(log10_ratio=log_ratio, per_step=10 ** (log_ratio / max(task.seq_len - 1, 1)))
    if cell.memory_gate is not None:
        carry = jax.tree.map(lambda c: jnp.broadcast_to(c, (PATH_BATCH, *c.shape)), cell.initial_carry())
        gates = cell.gate_values(params["rnn"]["layer_0"], carry, xs[:, 0])
        out.update(memory_gate=cell.memory_gate, memory_gate_mean=float(jnp.mean(gates[cell.memory_gate])))
    return out


def chance_note(name: str, m: dict, cfg: Config) -> str | None:
    """The measured gradient path of a cell that ended at chance (None if it learned)."""
    p, T = m["init"], cfg.seq_len
    if p is None:
        return None
    gate = (
        f"its memory gate {p['memory_gate']} averages {p['memory_gate_mean']:.2f} at the first step, and "
        if "memory_gate" in p
        else ""
    )
    return (
        f"{name} ended at chance (test accuracy {m['test_accuracy']:.1%}, chance {1 / cfg.alphabet:.0%}). "
        f"Measured at initialisation: {gate}‖∂L/∂h_1‖ / ‖∂L/∂h_{T}‖ = 10^{p['log10_ratio']:.1f} "
        f"(x{p['per_step']:.2f} per step over {T - 1} steps): the gradient that would teach it to keep the "
        f"first symbol reaches that step 10^{-p['log10_ratio']:.1f} times weaker than the last one."
    )


def gradient_check(task: tasks.Task) -> float:
    """The gradient of the task loss of an LSTM model (`models.sequence_model`) by `jax.grad` against the
    NumPy reference's hand-written BPTT (float32 vs float64): the max relative error over the cell's and
    the readout's parameters."""
    cell = cells.lstm(8)
    model = models.sequence_model(cell, task.output_size)
    params = synthetic.init_params(cell, task, seed=1)
    xs, labels = task.sample(jax.random.key(3), 4)
    grads = jax.jit(jax.grad(lambda p: task.loss(model.apply({"params": p}, xs)[0], labels)))(params)
    as_dict = lambda tree: {k: np.asarray(v) for k, v in tree._asdict().items()}  # noqa: E731
    _, ref = reference.loss_and_grads(
        "lstm", as_dict(params["rnn"]["layer_0"]), as_dict(params["readout"]), np.asarray(xs),
        np.asarray(labels), mode="many_to_one",
    )  # fmt: skip
    ours = {"params": as_dict(grads["rnn"]["layer_0"]), "readout": as_dict(grads["readout"])}
    return reference.max_relative_error(ours, {"params": ref["params"], "readout": ref["readout"]})


def plot(metrics: dict, cfg: Config, path) -> None:
    """Training loss per step of every cell, with the chance level ln K (from saved metrics)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, m in metrics["cells"].items():
        ax.plot(m["loss"], label=f"{name} (test acc {m['test_accuracy']:.0%})")
    ax.axhline(np.log(cfg.alphabet), color="gray", ls="--", label=f"chance, ln {cfg.alphabet}")
    ax.set(
        xlabel="training step",
        ylabel="cross-entropy (nats)",
        title=f"Remember the first of T={cfg.seq_len} symbols",
    )
    ax.legend()
    save(fig, path)


def main(cfg: Config) -> dict:
    """Check one gradient, train every cell, write the run folder; returns the metrics (and "out")."""
    cfg = check_config(cfg)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    task = first_symbol(cfg.seq_len, cfg.alphabet)
    err = gradient_check(task)
    print(f"LSTM gradient, jax.grad vs NumPy hand-written BPTT: max relative error {err:.2e}")
    metrics = dict(cells={name: train(name, task, cfg) for name in cfg.cells}, gradient_check_rel_error=err)
    results.write_json(out / "metrics.json", metrics)
    plot(json.loads((out / "metrics.json").read_text()), cfg, out / "loss.png")
    lines = ["| cell | test loss | test accuracy |", "|---|---|---|"]
    for name, m in metrics["cells"].items():
        lines.append(f"| {name} | {m['test_loss']:.3f} | {m['test_accuracy']:.1%} |")
    lines += ["", f"LSTM gradient vs the NumPy reference's BPTT: max relative error {err:.2e}"]
    notes = [chance_note(name, m, cfg) for name, m in metrics["cells"].items()]
    lines += [f"\nNote: {note}" for note in notes if note]
    summary = "\n".join(lines)
    results.atomic_write_text(out / "summary.md", f"# quickstart, T={cfg.seq_len}\n\n{summary}\n")
    print(summary)
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    diverged = {name: m["diverged"] for name, m in metrics["cells"].items() if m["diverged"]}
    if diverged:  # the results are written, but a diverged training is a failed run (exit status 1)
        raise _cli.RunFailed(
            f"{len(diverged)} of {len(metrics['cells'])} cells diverged ({'; '.join(diverged.values())}); "
            f"try a lower --learning-rate"
        )
    return metrics | dict(out=out)


if __name__ == "__main__":
    _cli.run(Config, main)
