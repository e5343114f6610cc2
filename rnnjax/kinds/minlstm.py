"""minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs all we needed?").

    [a_f, a_i, h̃_t] = x_t W_ih + b          (blocks f, i, h̃ of <[I, 3H]>; the gates read only x_t)
    f_t = σ(a_f),  i_t = σ(a_i)
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)        (normalised: f' + i' = 1)
    h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t,      y_t = h_t

Linear in the carry (a_t = f'_t, b_t = i'_t ⊙ h̃_t), so the whole sequence is one diagonal linear
recurrence (`rnnjax.linear_scan.solve`), and ∂h_t/∂h_{t−1} = diag(f'_t) with 0 < f' < 1: contractive.
The normalisation keeps h_t a convex combination of h_{t−1} and h̃_t, so the scale of h does not drift
with time (the paper's "time-independent" form).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, initializers, linear_scan
from rnnjax.cell_core import Cell, cached, check_hidden_size, checked_step, initial_carry_of, shapes_check
from rnnjax.cell_types import RNNCarry
from rnnjax.kinds.mingru import check_method, init_input_kernels, scan_method

__all__ = ["MinLSTMParams", "minlstm"]


class MinLSTMParams(NamedTuple):
    w_ih: jax.Array  # [I, 3H], blocks f, i, h̃
    b: jax.Array  # [3H]


GATES = ("f", "i", "h")


@cached
def minlstm(
    hidden_size: int,
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    scan: str | None = None,
    dtype=jnp.float32,
) -> Cell:
    """minLSTM: forget and input gates that read only the input, normalised to sum to one (equations in
    the module doc).

    Args:
      hidden_size: H.
      preset, kernel_init, bias_init: initialisers of W_ih <[I, 3H]> and b <[3H]> (as in `cells.simple`).
      scan: "associative", "sequential" or None (associative on GPU/TPU, the step scan on a CPU), as in
        `cells.mingru`.
      dtype: parameter dtype.
    Returns:
      A `Cell` with `MinLSTMParams` and `RNNCarry(h)`; `cell.sequence` is the linear-recurrence kernel.
    """
    check_hidden_size(hidden_size)
    check_method(scan)
    method = scan_method(scan)  # None: no kernel (the step scan is faster on a CPU)
    dtype = _checks.check_float_dtype("dtype", dtype)
    H = hidden_size

    def shapes(input_size):
        return {"w_ih": (input_size, 3 * H), "b": (3 * H,)}

    params_check = shapes_check(shapes)
    check = checked_step("minlstm", H, params_check, MinLSTMParams, RNNCarry)

    def init(key, input_size):
        return MinLSTMParams(
            *init_input_kernels(key, input_size, H, 3, dtype, preset, kernel_init, bias_init)
        )

    def coefficients(params: MinLSTMParams, x):
        """(f', i' ⊙ h̃, f, i), each <[..., H]>: h_t = f' ⊙ h_{t−1} + i' ⊙ h̃."""
        a_f, a_i, candidate = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)
        f, i = jax.nn.sigmoid(a_f), jax.nn.sigmoid(a_i)
        total = f + i  # in (0, 2): never zero
        return f / total, (i / total) * candidate, f, i

    def step(params: MinLSTMParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        a, b, _, _ = coefficients(params, x)
        h = a * carry.h + b
        return RNNCarry(h), h

    def gate_values(params: MinLSTMParams, carry: RNNCarry, x):
        keep, _, f, i = coefficients(params, x)
        return {"f": f, "i": i, "keep": keep}

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        with _checks.matmul_precision(precision):
            a, b, _, _ = coefficients(params, xs)  # <[T, *batch, H]>, every step at once
        hs = linear_scan.solve(a, b, carry.h, method=method, reverse=reverse)
        return RNNCarry(hs[0] if reverse else hs[-1]), hs

    cell = Cell(
        init, initial_carry_of(RNNCarry, H), step, "minlstm", H, "linear",
        gates=GATES, gate_values=gate_values, memory_gate="keep", params_type=MinLSTMParams,
        params_check=params_check, recurrent_matrices=lambda params: {},
    )  # fmt: skip
    return cell.with_kernel(None if method is None else sequence)
