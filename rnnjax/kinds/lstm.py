"""The LSTM cell (Hochreiter & Schmidhuber, 1997; forget gate: Gers et al., 2000)."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from rnnjax import _checks, fused, initializers
from rnnjax.cell_core import (
    Cell,
    cached,
    check_hidden_size,
    checked_step,
    classic_params_check,
    init_kernels,
    initial_carry_of,
    kernel_of,
    recurrent_options,
)  # fmt: skip
from rnnjax.cell_types import LSTMCarry, LSTMParams, lstm_gate_scale

__all__ = ["LSTMCarry", "LSTMParams", "lstm"]

GATES = ("i", "f", "g", "o")
PARAMS_CHECK = classic_params_check(len(GATES))


def recurrent_matrices(params: LSTMParams) -> dict[str, jax.Array]:
    """W_hh's gate blocks, each <[H, H]>."""
    return dict(zip(GATES, jnp.split(params.w_hh, len(GATES), axis=-1)))


@cached
def lstm(
    hidden_size: int,
    *,
    forget_bias: float | None = None,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Long short-term memory cell (Hochreiter & Schmidhuber, 1997; forget gate: Gers et al., 2000).

        [z_i, z_f, z_g, z_o] = x_t W_ih + h_{t-1} W_hh + b         (gate order i, f, g, o)
        i = σ(z_i),  f = σ(z_f),  g = tanh(z_g),  o = σ(z_o)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t),      y_t = h_t

    Args:
      hidden_size: H.
      forget_bias: initial value added to the forget-gate block of b; None takes the preset's (1.0 for
        "default" and "keras" after Jozefowicz et al. 2015, 0.0 for "pytorch" and "flax").
      preset, kernel_init, recurrent_init, bias_init, gain, spectral_radius, dtype: as in `simple`,
        for the fused W_ih <[I, 4H]>, W_hh <[H, 4H]> and b <[4H]>; `gain` and `spectral_radius`
        act on each gate's <[H, H]> block of W_hh.
    Returns:
      A `Cell` with `LSTMParams` and `LSTMCarry(h, c)`.
    """
    check_hidden_size(hidden_size)
    dtype = _checks.check_float_dtype("dtype", dtype)
    kernel, recurrent, bias, scale = recurrent_options(
        preset, hidden_size, 4, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    if forget_bias is None:
        forget_bias = initializers.preset(preset).forget_bias
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
        raise ValueError(f"forget_bias: expected a number (finite), got {forget_bias!r}")
    _checks.check_number("forget_bias", forget_bias)
    H = hidden_size

    def init(key, input_size):
        w_ih, w_hh, b = init_kernels(key, input_size, H, 4, dtype, kernel, recurrent, bias, scale)
        b = b.at[H : 2 * H].add(forget_bias)
        return LSTMParams(w_ih, w_hh, b)

    def gates_of(params: LSTMParams, carry: LSTMCarry, x):
        """(i, f, g, o), each <[..., H]>: the gate activations of one step."""
        z = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., 4H)
        # One tanh over all four blocks, σ(a) = (1 + tanh(a/2)) / 2: a single fused element-wise op on
        # the whole matmul output. Splitting z first lets XLA turn slice(dot) into four narrow dots,
        # which ran slower on CPU (see the README's performance section).
        t = jnp.tanh(z * lstm_gate_scale(H, z.dtype))
        t_i, t_f, g, t_o = jnp.split(t, 4, axis=-1)
        return 0.5 + 0.5 * t_i, 0.5 + 0.5 * t_f, g, 0.5 + 0.5 * t_o

    check = checked_step("lstm", H, PARAMS_CHECK, LSTMParams, LSTMCarry)

    def step(params: LSTMParams, carry: LSTMCarry, x):
        x = check(params, carry, x)
        i, f, g, o = gates_of(params, carry, x)
        c = f * carry.c + i * g
        h = o * jnp.tanh(c)
        return LSTMCarry(h, c), h

    def gate_values(params: LSTMParams, carry: LSTMCarry, x):
        i, f, _, o = gates_of(params, carry, x)
        return {"i": i, "f": f, "o": o}

    cell = Cell(
        init, initial_carry_of(LSTMCarry, H), step, "lstm", H,
        gates=GATES, gate_values=gate_values, memory_gate="f", params_type=LSTMParams,
        params_check=PARAMS_CHECK, recurrent_matrices=recurrent_matrices,
    )  # fmt: skip
    return cell.with_kernel(kernel_of(fused.lstm_sequence))
