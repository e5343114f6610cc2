"""The orthogonal RNN of expRNN (Lezcano-Casado & Martínez-Rubio, ICML 2019).

    W = expm(A − Aᵀ)                          (A <[H, H]> free; A − Aᵀ is skew-symmetric, so W is orthogonal)
    z_t = x_t W_ih + h_{t−1} W
    h_t = modReLU(z_t, b) = sign(z_t) ⊙ max(|z_t| + b, 0)     (default; b <[H]> learnt)
    or   h_t = tanh(z_t + b)                                  (activation="tanh"),       y_t = h_t

Why W stays orthogonal: every A gives an orthogonal W, so any optimiser, taking any step on A, keeps W on
the orthogonal group; no projection or retraction is needed. Why modReLU by default (as the paper): its
slope is exactly 1 wherever a unit is active, so ‖∂h_t/∂h_{t−1}‖ = ‖diag(φ') Wᵀ‖ is 1 on the active units:
an orthogonal W with modReLU neither shrinks nor grows the gradient through them, where tanh (slope < 1
away from 0) still shrinks it by the product of its slopes. Both have γ = max |φ'| = 1, so the Pascanu
bound ‖∂h_t/∂h_{t−1}‖ ≤ γ σ_max(W) = 1: gradients cannot explode.

Initialisation (Henaff, Szlam & LeCun 2016, used by expRNN): A − Aᵀ block-diagonal with 2×2 blocks
[[0, s], [−s, 0]], s ~ U[−π, π], so W is a block rotation whose eigenvalues e^{±is} cover the unit circle.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, initializers
from rnnjax.cell_core import Cell, cached, check_hidden_size, checked_step, initial_carry_of, shapes_check
from rnnjax.cell_types import RNNCarry

__all__ = ["ACTIVATIONS", "OrthogonalParams", "orthogonal", "recurrent_matrix"]


class OrthogonalParams(NamedTuple):
    w_ih: jax.Array  # [I, H]
    a: jax.Array  # [H, H], free; W_hh = expm(a − aᵀ)
    b: jax.Array  # [H], modReLU's bias (activation "modrelu") or the pre-activation bias ("tanh")


def _modrelu(z, b):
    return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + b)


def _tanh(z, b):
    return jnp.tanh(z + b)


ACTIVATIONS = {"modrelu": _modrelu, "tanh": _tanh}


def recurrent_matrix(a: jax.Array) -> jax.Array:
    """<[H, H]> W = expm(a − aᵀ), orthogonal for every `a`."""
    return jax.scipy.linalg.expm(a - a.T)


def henaff_init(key, shape, dtype):
    """A strictly upper-triangular A whose A − Aᵀ has the 2×2 blocks [[0, s], [−s, 0]], s ~ U[−π, π]."""
    n = shape[0]
    s = jax.random.uniform(key, (n // 2,), dtype, -math.pi, math.pi)
    rows = jnp.arange(n // 2) * 2
    return jnp.zeros(shape, dtype).at[rows, rows + 1].set(s)


@cached
def orthogonal(
    hidden_size: int,
    activation: str = "modrelu",
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Orthogonal RNN with W_hh = expm(A − Aᵀ) (expRNN; equations and the choice of modReLU in the module
    doc).

    Args:
      hidden_size: H.
      activation: "modrelu" (the paper's; b initialised U[−0.01, 0.01]) or "tanh" (b initialised 0).
      preset, kernel_init: the initialiser of W_ih <[I, H]> (as in `cells.simple`). A is initialised as
        Henaff et al. (2016): W a block rotation by angles U[−π, π].
      dtype: parameter dtype.
    Returns:
      A `Cell` with `OrthogonalParams` and `RNNCarry(h)`; its whole-sequence kernel computes expm once
      per sequence (the step computes it every step, as its definition).
    """
    check_hidden_size(hidden_size)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {tuple(ACTIVATIONS)}, got {activation!r}")
    dtype = _checks.check_float_dtype("dtype", dtype)
    phi = ACTIVATIONS[activation]
    H = hidden_size

    def shapes(input_size):
        return {"w_ih": (input_size, H), "a": (H, H), "b": (H,)}

    params_check = shapes_check(shapes)
    check = checked_step("orthogonal", H, params_check, OrthogonalParams, RNNCarry)

    def init(key, input_size):
        _checks.check_key("key", key)
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size: expected a positive int, got {input_size!r}")
        k_w, k_a, k_b = jax.random.split(key, 3)
        kernel = kernel_init or initializers.preset(preset).kernel(H, 1)
        if activation == "modrelu":
            b = jax.random.uniform(k_b, (H,), dtype, -0.01, 0.01)
        else:
            b = jnp.zeros((H,), dtype)
        return OrthogonalParams(kernel(k_w, (input_size, H), dtype), henaff_init(k_a, (H, H), dtype), b)

    def step(params: OrthogonalParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        h = phi(x @ params.w_ih + carry.h @ recurrent_matrix(params.a), params.b)
        return RNNCarry(h), h

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        with _checks.matmul_precision(precision):
            w = recurrent_matrix(params.a)  # once per sequence
            inputs = xs @ params.w_ih  # <[T, *batch, H]>, every step at once

            def body(h, u):
                h = phi(u + h @ w, params.b)
                return h, h

            final, hs = jax.lax.scan(body, carry.h, inputs, reverse=reverse, unroll=unroll or 1)
        return RNNCarry(final), hs

    cell = Cell(
        init, initial_carry_of(RNNCarry, H), step, "orthogonal", H, activation,
        params_type=OrthogonalParams, params_check=params_check,
        recurrent_matrices=lambda params: {"h": recurrent_matrix(params.a)}, gamma=1.0,
    )  # fmt: skip
    return cell.with_kernel(sequence)
