"""minGRU (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs all we needed?").

    [a_z, h̃_t] = x_t W_ih + b              (blocks z, h̃ of <[I, 2H]>; no W_hh: the gate reads only x_t)
    z_t = σ(a_z)
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t,      y_t = h_t

The carry enters linearly, h_t = a_t ⊙ h_{t−1} + b_t with a_t = 1 − z_t and b_t = z_t ⊙ h̃_t, so the whole
sequence is one diagonal linear recurrence (`rnnjax.linear_scan.solve`): an exact associative scan.
∂h_t/∂h_{t−1} = diag(1 − z_t) is contractive by construction: the gradient over a lag k shrinks like
Π (1 − z_t), about E[1 − z]^k, never grows, and vanishes only as fast as the gates let it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, initializers, linear_scan
from rnnjax.cell_core import Cell, cached, check_hidden_size, checked_step, initial_carry_of, shapes_check
from rnnjax.cell_types import RNNCarry

__all__ = ["MinGRUParams", "mingru", "scan_method"]


class MinGRUParams(NamedTuple):
    w_ih: jax.Array  # [I, 2H], blocks z, h̃
    b: jax.Array  # [2H]


GATES = ("z", "h")


def scan_method(method: str | None) -> str | None:
    """The `linear_scan.solve` method of a linear kind's whole-sequence kernel: `method` if given; by
    default the associative scan on accelerators, and on the CPU no kernel at all (None), since there the
    step scan measured fastest of the three at every T up to 16k (`python -m benchmarks.linear_cells`,
    docs/performance.md)."""
    if method is not None:
        return method
    return None if jax.default_backend() == "cpu" else "associative"


def check_method(method) -> None:
    if method is not None and method not in linear_scan.METHODS:
        raise ValueError(f"scan: expected None or one of {linear_scan.METHODS}, got {method!r}")


def init_input_kernels(key, input_size, hidden_size, blocks, dtype, preset, kernel_init, bias_init):
    """(w_ih <[I, blocks·H]>, b <[blocks·H]>) from the preset's input-kernel and bias initialisers."""
    _checks.check_key("key", key)
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size: expected a positive int, got {input_size!r}")
    p = initializers.preset(preset)
    kernel = kernel_init or p.kernel(hidden_size, blocks)
    bias = bias_init or p.bias(hidden_size, blocks)
    k_w, k_b = jax.random.split(key)
    g = blocks * hidden_size
    return kernel(k_w, (input_size, g), dtype), bias(k_b, (g,), dtype)


@cached
def mingru(
    hidden_size: int,
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    scan: str | None = None,
    dtype=jnp.float32,
) -> Cell:
    """minGRU: a GRU whose update gate and candidate read only the input (equations in the module doc).

    Args:
      hidden_size: H.
      preset, kernel_init, bias_init: initialisers of W_ih <[I, 2H]> and b <[2H]> (as in `cells.simple`).
      scan: how the whole-sequence kernel solves the recurrence: "associative" (O(log T) depth),
        "sequential", or None (associative on GPU/TPU; on a CPU no kernel, the step scan).
      dtype: parameter dtype.
    Returns:
      A `Cell` with `MinGRUParams` and `RNNCarry(h)`; `cell.sequence` is the linear-recurrence kernel.
    """
    check_hidden_size(hidden_size)
    check_method(scan)
    method = scan_method(scan)  # None: no kernel (the step scan is faster on a CPU)
    dtype = _checks.check_float_dtype("dtype", dtype)
    H = hidden_size

    def shapes(input_size):
        return {"w_ih": (input_size, 2 * H), "b": (2 * H,)}

    params_check = shapes_check(shapes)
    check = checked_step("mingru", H, params_check, MinGRUParams, RNNCarry)

    def init(key, input_size):
        return MinGRUParams(*init_input_kernels(key, input_size, H, 2, dtype, preset, kernel_init, bias_init))

    def coefficients(params: MinGRUParams, x):
        """(a, b, z), each <[..., H]>: h_t = a ⊙ h_{t−1} + b, with a = 1 − z and b = z ⊙ h̃."""
        a_z, candidate = jnp.split(x @ params.w_ih + params.b, 2, axis=-1)
        z = jax.nn.sigmoid(a_z)
        return 1 - z, z * candidate, z

    def step(params: MinGRUParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        a, b, _ = coefficients(params, x)
        h = a * carry.h + b
        return RNNCarry(h), h

    def gate_values(params: MinGRUParams, carry: RNNCarry, x):
        keep, _, z = coefficients(params, x)
        return {"z": z, "keep": keep}

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        with _checks.matmul_precision(precision):
            a, b, _ = coefficients(params, xs)  # <[T, *batch, H]>, every step at once
        hs = linear_scan.solve(a, b, carry.h, method=method, reverse=reverse)
        return RNNCarry(hs[0] if reverse else hs[-1]), hs

    cell = Cell(
        init, initial_carry_of(RNNCarry, H), step, "mingru", H, "linear",
        gates=GATES, gate_values=gate_values, memory_gate="keep", params_type=MinGRUParams,
        params_check=params_check, recurrent_matrices=lambda params: {},
    )  # fmt: skip
    return cell.with_kernel(None if method is None else sequence)
