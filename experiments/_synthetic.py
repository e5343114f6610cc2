"""What the synthetic-task experiments (quickstart, long_range, gradient_norms_training) share: the cells
they compare, the check of their training settings, and one call of `rnnjax.train.synthetic.train`.

Each of their configs has the fields `cells`, `hidden_size`, `batch_size`, `steps`, `learning_rate`,
`seed` and `progress` (and optionally `clip_norm`).
"""

from __future__ import annotations

from rnnjax import cells, tasks
from rnnjax.command import cli as _cli
from rnnjax.train import parallel, synthetic
from rnnjax.train.optimizers import check_positive

__all__ = ["CELLS", "check_cells", "check_training", "make_cell", "train"]

# The cells compared, as `cells.make(kind, hidden_size, **options)` arguments.
CELLS = {
    "simple-tanh": ("simple", {"activation": "tanh"}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "orthogonal": ("orthogonal", {}),  # expRNN with modReLU
    "lru": ("lru", {}),
    "mingru": ("mingru", {}),
    "minlstm": ("minlstm", {}),
}
INPUT_SIZE_BOUND = 1024  # the tasks' inputs are narrower than this (for the memory estimate)


def make_cell(name: str, hidden_size: int) -> cells.Cell:
    """The cell `name` of `CELLS` with `hidden_size` units."""
    kind, options = CELLS[name]
    return cells.make(kind, hidden_size, **options)


def check_cells(names) -> None:
    """Refuse (ValueError) an empty list of cells or a name that is not in `CELLS`."""
    if not names:
        raise ValueError(f"cells: expected names from {sorted(CELLS)}, got none")
    for name in names:
        if name not in CELLS:
            raise ValueError(f"cells: expected names from {sorted(CELLS)}, got {name!r}")


def check_training(cfg) -> None:
    """Refuse the first bad training setting of `cfg` by name: the sizes and steps (ints >= 1), the seed
    (an int >= 0), the learning rate and clipping norm (`check_positive`), and a hidden size whose
    weights would not fit in memory."""
    _cli.check_ints(cfg, "hidden_size", "batch_size", "steps")
    _cli.check_ints(cfg, "seed", minimum=0)
    check_positive("learning_rate", cfg.learning_rate)
    check_positive("clip_norm", getattr(cfg, "clip_norm", None), allow_none=True)
    for name in set(cfg.cells) & set(CELLS):
        gates = len(make_cell(name, 1).gates)
        parallel.check_recurrent_size(
            "hidden_size",
            cfg.hidden_size,
            gates=gates,
            input_size=INPUT_SIZE_BOUND,
            hidden_size=cfg.hidden_size,
        )


def train(cfg, name: str, task: tasks.Task, *, clip_norm: float | None = None, params=None, desc: str = ""):
    """`(cell, synthetic.train(...))`: cell `name` trained on `task` with `cfg`'s settings (Adam)."""
    cell = make_cell(name, cfg.hidden_size)
    result = synthetic.train(
        cell,
        task,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        clip_norm=clip_norm,
        seed=cfg.seed,
        params=params,
        progress=cfg.progress,
        desc=desc or name,
    )
    return cell, result
