"""The gated recurrent unit (Cho et al., 2014), in both of its published forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax import _checks, initializers
from rnnjax.cell_core import (
    Cell,
    cached,
    check_hidden_size,
    checked_step,
    classic_params_check,
    init_kernels,
    initial_carry_of,
    recurrent_options,
)  # fmt: skip
from rnnjax.cell_types import GRUParams, RNNCarry

__all__ = ["GRUParams", "RNNCarry", "gru"]

GATES = ("r", "z", "n")


def recurrent_matrices(params: GRUParams) -> dict[str, jax.Array]:
    """W_hh's gate blocks, each <[H, H]>."""
    return dict(zip(GATES, jnp.split(params.w_hh, len(GATES), axis=-1)))


@cached
def gru(
    hidden_size: int,
    reset_after: bool = True,
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Gated recurrent unit (Cho et al., 2014), in either of its two published forms.

    Gate order r, z, n. With [x_r, x_z, x_n] = x_t W_ih + b and W_hh = [W_hr | W_hz | W_hn]:

        r = σ(x_r + h_{t-1} W_hr),  z = σ(x_z + h_{t-1} W_hz)
        reset_after=True  (PyTorch, cuDNN, Keras default):  n = tanh(x_n + r ⊙ (h_{t-1} W_hn + b_hn))
        reset_after=False (Cho et al. 2014):                n = tanh(x_n + (r ⊙ h_{t-1}) W_hn)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1},      y_t = h_t

    With reset_after=True one matmul `h_{t-1} W_hh` gives all three recurrent terms; with
    reset_after=False the candidate needs a second matmul after the reset gate.

    Args:
      hidden_size: H.
      reset_after: which form (see above). Params carry `b_hn` <[H]> only when True.
      preset, kernel_init, recurrent_init, bias_init, gain, spectral_radius, dtype: as in `simple`,
        for W_ih <[I, 3H]>, W_hh <[H, 3H]>, b <[3H]>; b_hn uses the preset's own initialiser.
    Returns:
      A `Cell` with `GRUParams` and `RNNCarry(h)`.
    """
    check_hidden_size(hidden_size)
    if not isinstance(reset_after, bool):
        raise ValueError(f"reset_after: expected True or False, got {reset_after!r}")
    dtype = _checks.check_float_dtype("dtype", dtype)
    kernel, recurrent, bias, scale = recurrent_options(
        preset, hidden_size, 3, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    bias_hn = initializers.preset(preset).bias_hn(hidden_size)
    H = hidden_size

    def init(key, input_size):
        _checks.check_key("key", key)
        key, k_hn = jax.random.split(key)
        w_ih, w_hh, b = init_kernels(key, input_size, H, 3, dtype, kernel, recurrent, bias, scale)
        b_hn = bias_hn(k_hn, (H,), dtype) if reset_after else None
        return GRUParams(w_ih, w_hh, b, b_hn)

    def gates_reset_after(params: GRUParams, carry: RNNCarry, x):
        """(r, z, n), each <[..., H]>: the gates and candidate of one step."""
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        h_r, h_z, h_n = jnp.split(carry.h @ params.w_hh, 3, axis=-1)  # (..., H) each
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        return r, z, jnp.tanh(x_n + r * (h_n + params.b_hn))

    def gates_reset_before(params: GRUParams, carry: RNNCarry, x):
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        w_hrz, w_hn = params.w_hh[:, : 2 * H], params.w_hh[:, 2 * H :]
        h_r, h_z = jnp.split(carry.h @ w_hrz, 2, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        return r, z, jnp.tanh(x_n + (r * carry.h) @ w_hn)

    gates_of = gates_reset_after if reset_after else gates_reset_before

    params_check = classic_params_check(len(GATES), reset_after)
    check = checked_step("gru", H, params_check, GRUParams, RNNCarry)

    def step(params: GRUParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        _, z, n = gates_of(params, carry, x)
        h = (1 - z) * n + z * carry.h
        return RNNCarry(h), h

    def gate_values(params: GRUParams, carry: RNNCarry, x):
        r, z, _ = gates_of(params, carry, x)
        return {"r": r, "z": z}

    # No whole-sequence kernel by default: `rnnjax.fused.gru_sequence` measured slower than plain autodiff
    # of `step` on CPU (see the README's performance section), so the GRU keeps the plain path.
    return Cell(
        init, initial_carry_of(RNNCarry, H), step, "gru", H, "tanh", reset_after,
        gates=GATES, gate_values=gate_values, memory_gate="z", params_type=GRUParams,
        params_check=params_check, recurrent_matrices=recurrent_matrices,
    )  # fmt: skip
