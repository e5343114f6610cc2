"""The Elman (simple) recurrent cell: h_t = φ(x_t W_ih + h_{t−1} W_hh + b) (Elman, 1990)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnjax import _checks, fused, initializers
from rnnjax.cell_core import (
    ACTIVATIONS,
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
from rnnjax.cell_types import RNNCarry, SimpleParams

__all__ = ["GAMMA", "RNNCarry", "SimpleParams", "simple"]

PARAMS_CHECK = classic_params_check(1)

# max |φ'| of each activation: γ of the Pascanu bound ‖∂h_t/∂h_{t−1}‖ ≤ γ σ_max(W_hh).
GAMMA = {"tanh": 1.0, "relu": 1.0, "linear": 1.0, "sigmoid": 0.25}


def recurrent_matrices(params: SimpleParams) -> dict[str, jax.Array]:
    return {"h": params.w_hh}


@cached
def simple(
    hidden_size: int,
    activation: str = "tanh",
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Elman (simple) recurrent cell (Elman, 1990).

        a_t = x_t W_ih + h_{t-1} W_hh + b
        h_t = φ(a_t),      y_t = h_t,      φ ∈ {tanh, relu, linear, sigmoid}

    Args:
      hidden_size: H.
      activation: "tanh", "relu", "linear" or "sigmoid". `relu` with
        `recurrent_init=initializers.identity()` is the IRNN of Le, Jaitly & Hinton (2015). `sigmoid` is the
        logistic unit of the early vanishing-gradient analyses (Hochreiter 1991; Bengio et al. 1994):
        its derivative is at most γ = 1/4, so the gradient shrinks at least as fast as (σ_max(W_hh)/4)^lag.
      preset: default initialisers: "default" (glorot input, orthogonal recurrent, zero bias),
        "keras", "pytorch" or "flax" (reproducing those libraries' defaults in distribution).
      kernel_init, recurrent_init, bias_init: override the preset's initialisers of W_ih <[I, H]>,
        W_hh <[H, H]> and b <[H]>.
      gain: multiplies W_hh after initialisation.
      spectral_radius: if given, W_hh is rescaled to this spectral radius (overrides `gain`).
      dtype: parameter dtype.
    Returns:
      A `Cell` with `SimpleParams` and `RNNCarry(h)`.
    """
    check_hidden_size(hidden_size)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    dtype = _checks.check_float_dtype("dtype", dtype)
    phi = ACTIVATIONS[activation]
    kernel, recurrent, bias, scale = recurrent_options(
        preset, hidden_size, 1, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )

    def init(key, input_size):
        return SimpleParams(
            *init_kernels(key, input_size, hidden_size, 1, dtype, kernel, recurrent, bias, scale)
        )

    check = checked_step("simple", hidden_size, PARAMS_CHECK, SimpleParams, RNNCarry)

    def step(params: SimpleParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        a = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., H)
        h = phi(a)
        return RNNCarry(h), h

    cell = Cell(
        init, initial_carry_of(RNNCarry, hidden_size), step, "simple", hidden_size, activation,
        params_type=SimpleParams, params_check=PARAMS_CHECK, recurrent_matrices=recurrent_matrices,
        gamma=GAMMA[activation],
    )  # fmt: skip
    return cell.with_kernel(kernel_of(fused.simple_sequence, activation=activation))
