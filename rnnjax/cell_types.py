"""Parameter and carry types of the rnnjax cells (the data, without the equations).

They live apart from `rnnjax.cells` so that the whole-sequence kernels (`rnnjax.fused`) and the cells can
both use them without importing each other. Kernels are stored `(in, out)` and fused across gates.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["GRUParams", "LSTMCarry", "LSTMParams", "RNNCarry", "SimpleParams", "lstm_gate_scale"]


class SimpleParams(NamedTuple):
    w_ih: jax.Array  # [I, H]
    w_hh: jax.Array  # [H, H]
    b: jax.Array  # [H]


class LSTMParams(NamedTuple):
    w_ih: jax.Array  # [I, 4H], gate blocks i, f, g, o
    w_hh: jax.Array  # [H, 4H], gate blocks i, f, g, o
    b: jax.Array  # [4H]


class GRUParams(NamedTuple):
    w_ih: jax.Array  # [I, 3H], gate blocks r, z, n
    w_hh: jax.Array  # [H, 3H], gate blocks r, z, n
    b: jax.Array  # [3H], input-side bias (holds b_ir + b_hr, b_iz + b_hz, b_in)
    b_hn: jax.Array | None  # [H] candidate's recurrent bias inside r ⊙ (·); None when reset_after=False


class RNNCarry(NamedTuple):
    h: jax.Array  # [*batch, H]


class LSTMCarry(NamedTuple):
    h: jax.Array  # [*batch, H] hidden state (the output)
    c: jax.Array  # [*batch, H] cell state


def lstm_gate_scale(hidden_size: int, dtype) -> jax.Array:
    """<dtype>[4H]: 1/2 on the sigmoid blocks (i, f, o), 1 on the candidate block g, so that one
    tanh(z * scale) gives every LSTM gate through σ(a) = (1 + tanh(a/2)) / 2."""
    half = jnp.full((hidden_size,), 0.5, dtype)
    return jnp.concatenate([half, half, jnp.ones((hidden_size,), dtype), half])
