"""rnnjax: recurrent networks (Elman, LSTM, GRU) as pure JAX functions, for studying how they learn and
why their gradients vanish or explode.

    import jax, rnnjax
    cell = rnnjax.cells.make("lstm", 64)                   # or rnnjax.cells.lstm(64)
    params = cell.init(jax.random.key(0), input_size=8)
    final_carry, ys = rnnjax.unroll(cell, params, xs)      # xs: <float>[batch, time, 8]

Models (`rnnjax.models`) assemble cells one way, as Flax modules over `unroll`; `rnnjax.train.fit` is the
one training loop; `rnnjax.diagnostics` measures gradients of cells and of trained models;
`rnnjax.newton.unroll` evaluates a cell in parallel over time by Newton's method (DEER, ELK).
"""

from rnnjax import backend, cells, diagnostics, fused, initializers, interop, models, newton, readout
from rnnjax.cells import Cell, GRUParams, LSTMCarry, LSTMParams, RNNCarry, SimpleParams
from rnnjax.unrolling import (
    BidirectionalCarry,
    BidirectionalParams,
    unroll,
    unroll_bidirectional,
    unroll_stack,
)

__version__ = "0.1.0"

__all__ = [  # fmt: skip
    "BidirectionalCarry", "BidirectionalParams", "Cell", "GRUParams", "LSTMCarry", "LSTMParams", "RNNCarry",
    "SimpleParams", "backend", "cells", "diagnostics", "fused", "initializers", "interop", "models",
    "newton", "readout", "unroll", "unroll_bidirectional", "unroll_stack",
]
