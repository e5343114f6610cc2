"""Recurrent cells as pure functions, and the registry of cell kinds.

A cell is a `Cell` value of pure functions, in the style of optax's `GradientTransformation`:

    params = cell.init(key, input_size)
    carry = cell.initial_carry(batch_shape)           # zeros
    carry, y = cell.step(params, carry, x)            # x: <float>[*batch, input_size]

`step` works for any leading batch shape, including none, and under `jit`, `vmap`, `grad`, `jvp` and
grad-of-grad. Unroll over time with `rnnjax.unroll`. Each kind is one module of `rnnjax.kinds`:

- "simple": Elman, h_t = φ(x_t W_ih + h_{t−1} W_hh + b)
- "lstm", "gru": the gated classics (fused kernels, LSTM gate order i, f, g, o; GRU r, z, n)
- "orthogonal": expRNN, W_hh = expm(A − Aᵀ) stays orthogonal under any optimiser
- "lru": the linear recurrent unit, complex diagonal λ with ring initialisation
- "mingru", "minlstm": gates that read only the input, linear in the carry

`KINDS` is the one table keyed by kind; `make(kind, H, **options)` builds any of them.
"""

from __future__ import annotations

from collections.abc import Callable

from rnnjax.cell_core import Cell, check_cell, check_params, perturbed, with_precision
from rnnjax.cell_types import GRUParams, LSTMCarry, LSTMParams, RNNCarry, SimpleParams
from rnnjax.kinds.gru import gru
from rnnjax.kinds.lru import LRUCarry, LRUParams, lru
from rnnjax.kinds.lstm import lstm
from rnnjax.kinds.mingru import MinGRUParams, mingru
from rnnjax.kinds.minlstm import MinLSTMParams, minlstm
from rnnjax.kinds.orthogonal import OrthogonalParams, orthogonal
from rnnjax.kinds.simple import simple

__all__ = [
    "KINDS",
    "Cell",
    "GRUParams",
    "LRUCarry",
    "LRUParams",
    "LSTMCarry",
    "LSTMParams",
    "MinGRUParams",
    "MinLSTMParams",
    "OrthogonalParams",
    "RNNCarry",
    "SimpleParams",
    "check_cell",
    "check_params",
    "gru",
    "lru",
    "lstm",
    "make",
    "mingru",
    "minlstm",
    "orthogonal",
    "perturbed",
    "simple",
    "with_precision",
]

# The registry: the one table keyed by cell kind.
KINDS: dict[str, Callable[..., Cell]] = {
    "simple": simple,
    "lstm": lstm,
    "gru": gru,
    "orthogonal": orthogonal,
    "lru": lru,
    "mingru": mingru,
    "minlstm": minlstm,
}


def make(kind: str, hidden_size: int, **options) -> Cell:
    """The cell of `kind` (a key of `KINDS`) with `hidden_size` and constructor keyword `options`,
    e.g. `make("simple", 64, activation="relu")`, `make("lstm", 128, forget_bias=0.0)`,
    `make("lru", 64, r_min=0.9)`.

    Like the named constructors, equal arguments give the same `Cell` object.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind: expected one of {tuple(KINDS)}, got {kind!r}")
    return KINDS[kind](hidden_size, **options)
