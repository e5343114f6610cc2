"""Parameter and carry types of the rnnjax cells (the data, without the equations).

They live apart from `rnnjax.cells` so that the whole-sequence kernels (`rnnjax.fused`) and the cells can
both use them without importing each other. Kernels are stored `(in, out)` and fused across gates.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "GRUParams",
    "LSTMCarry",
    "LSTMParams",
    "RNNCarry",
    "SimpleParams",
    "check_carry",
    "check_params",
    "lstm_gate_scale",
]


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


def shape_and_dtype(value) -> tuple[tuple[int, ...], np.dtype]:
    """Static shape and dtype of an array, a tracer or anything NumPy can read."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return tuple(value.shape), value.dtype
    array = np.asarray(value)
    return array.shape, array.dtype


def check_params(
    params,
    params_type: type,
    *,
    kind: str,
    hidden_size: int,
    num_blocks: int,
    reset_after: bool | None = None,
    name: str = "params",
    owner: str = "cell",
) -> int:
    """Raise unless `params` are a `params_type` whose arrays fit a cell of `hidden_size` with `num_blocks`
    fused gate blocks: w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]> and, for a GRU, b_hn <[H]> exactly when
    `reset_after`. Reads static shapes only (free under `jit`). Returns the input size I.

    `name` is how the caller calls the params ("params", "params[0].forward") and `owner` how it calls the
    cell ("cell", "the lstm cell"); both appear in the messages.
    """
    H, G = hidden_size, num_blocks * hidden_size
    blocks = f"{num_blocks} gate block{'s' if num_blocks > 1 else ''}"
    if not isinstance(params, params_type):
        want = f"w_ih [I, {G}], w_hh [{H}, {G}], b [{G}]" + (f", b_hn [{H}]" if reset_after else "")
        given = ""
        if hasattr(params, "_fields"):
            shapes = (
                f"{f} {shape_and_dtype(v)[0]}" for f, v in zip(params._fields, params) if v is not None
            )
            given = f" of shapes {', '.join(shapes)}"
        raise TypeError(
            f"{name}: a {kind} cell expected {params_type.__name__}, got {type(params).__name__}{given} "
            f"(expected {want}: hidden_size={H}, {blocks})"
        )
    why = f" ({owner} has hidden_size={H}, {blocks})"
    arrays = {field: getattr(params, field) for field in ("w_ih", "w_hh", "b")}
    if "b_hn" in params_type._fields:
        if reset_after and params.b_hn is None:
            raise ValueError(f"{name}.b_hn: a reset_after=True GRU needs b_hn of shape ({H},), got None")
        if not reset_after and params.b_hn is not None:
            raise ValueError(f"{name}.b_hn: a reset_after=False GRU has no b_hn, got an array")
        if reset_after:
            arrays["b_hn"] = params.b_hn
    shape, _ = shape_and_dtype(arrays["w_ih"])
    input_size = shape[0] if len(shape) == 2 else "input_size"
    want = {"w_ih": (input_size, G), "w_hh": (H, G), "b": (G,), "b_hn": (H,)}
    for field, value in arrays.items():
        shape, dtype = shape_and_dtype(value)
        if shape != want[field]:
            expected = str(want[field]).replace("'", "")
            raise ValueError(f"{name}.{field}: expected shape {expected}{why}, got {shape}")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{name}.{field}: expected a floating-point array, got dtype {dtype}")
    return input_size


def check_carry(carry, carry_type: type, want: tuple[int, ...], *, kind: str, why: str = "") -> None:
    """Raise unless `carry` is a `carry_type` whose fields all have shape `want` ([*batch, H]); `why` says
    where `want` comes from (e.g. " (batch shape of x + hidden_size)")."""
    if not isinstance(carry, carry_type):
        raise TypeError(
            f"carry: {kind} cell expected a {carry_type.__name__}{carry_type._fields}, "
            f"got {type(carry).__name__}"
        )
    for field, value in zip(carry._fields, carry):
        if jnp.shape(value) != tuple(want):
            raise ValueError(f"carry.{field}: expected shape {tuple(want)}{why}, got {jnp.shape(value)}")
