"""The linear recurrent unit, LRU (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023, "Resurrecting
recurrent neural networks for long sequences").

    λ_j = exp(−exp(ν_j) + i θ_j)                 (complex diagonal; |λ_j| = exp(−exp(ν_j)) < 1 for any ν)
    γ_j = √(1 − |λ_j|²)                          (normalize=True; 1 otherwise)
    s_t = λ ⊙ s_{t−1} + γ ⊙ (x_t B),            B = B_re + i B_im <[I, H]>,  s_t ∈ ℂ^H
    y_t = Re(s_t C) + x_t D,                     C = C_re + i C_im <[H, H]>,  D <[I, H]>

The carry holds the complex state as two real arrays, `LRUCarry(h = Re s, h_im = Im s)`; the step's output
is y_t (not the carry). The paper's skip D ⊙ x_t is the case I = H with a diagonal D; rnnjax cells all
output H features whatever the input size, so D is a full <[I, H]> matrix.

Ring initialisation (their Lemma 3.2): |λ| uniform on the ring r_min ≤ |λ| ≤ r_max in the complex plane
(|λ|² ~ U[r_min², r_max²]) and θ ~ U[0, max_phase]. γ normalises each unit's input: without it, for white
inputs and r_min = r_max = r, E‖s_∞‖² = E‖x B‖² / (1 − r²) (their Proposition 3), which grows without
bound as r → 1; with it, E‖s_∞‖² ≈ E‖x B‖².

Linear in the carry with a fixed diagonal, so ∂s_t/∂s_{t−k} = diag(λ)^k exactly: the gradient over a lag k
shrinks as |λ_j|^k, a rate log10 |λ_j| per step, set by ν alone, never explodes (|λ| < 1). The whole
sequence is one diagonal linear recurrence (`rnnjax.linear_scan.solve`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, linear_scan
from rnnjax.cell_core import Cell, cached, check_hidden_size, checked_step, initial_carry_of, shapes_check
from rnnjax.kinds.mingru import check_method, scan_method

__all__ = ["LRUCarry", "LRUParams", "eigenvalues", "lru"]


class LRUParams(NamedTuple):
    nu: jax.Array  # [H], |λ| = exp(−exp(ν))
    theta: jax.Array  # [H], arg λ
    b_re: jax.Array  # [I, H]
    b_im: jax.Array  # [I, H]
    c_re: jax.Array  # [H, H]
    c_im: jax.Array  # [H, H]
    d: jax.Array  # [I, H]


class LRUCarry(NamedTuple):
    h: jax.Array  # [*batch, H], Re s_t
    h_im: jax.Array  # [*batch, H], Im s_t


def eigenvalues(params: LRUParams) -> tuple[jax.Array, jax.Array]:
    """(Re λ, Im λ), each <[H]>."""
    r = jnp.exp(-jnp.exp(params.nu))
    return r * jnp.cos(params.theta), r * jnp.sin(params.theta)


def _input_scale(params: LRUParams, normalize: bool):
    """γ <[H]> = √(1 − |λ|²), written as √(−expm1(−2 exp ν)) to keep its digits as |λ| → 1."""
    return jnp.sqrt(-jnp.expm1(-2 * jnp.exp(params.nu))) if normalize else jnp.ones_like(params.nu)


def output(params: LRUParams, carry: LRUCarry, x):
    """y = Re(s C) + x D <[*batch, H]>."""
    return carry.h @ params.c_re - carry.h_im @ params.c_im + x @ params.d


@cached
def lru(
    hidden_size: int,
    *,
    r_min: float = 0.9,
    r_max: float = 0.999,
    max_phase: float = 2 * math.pi,
    normalize: bool = True,
    scan: str | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Linear recurrent unit (equations, initialisation and γ in the module doc).

    Args:
      hidden_size: H, the number of complex state units and of output features.
      r_min, r_max: the ring of initial |λ|, 0 ≤ r_min ≤ r_max < 1. The defaults keep memories of
        10–1,000 steps (|λ|^k = 1/e at k = −1/ln|λ|).
      max_phase: initial phases θ ~ U[0, max_phase].
      normalize: multiply the input by γ = √(1 − |λ|²) (the paper's normalisation).
      scan: "associative", "sequential" or None (associative on GPU/TPU, the step scan on a CPU), as in
        `cells.mingru`.
      dtype: parameter dtype (the state is complex of the matching width inside the kernel).
    Returns:
      A `Cell` with `LRUParams` and `LRUCarry(h, h_im)`; `cell.output` gives y from the carry.
    """
    check_hidden_size(hidden_size)
    check_method(scan)
    method = scan_method(scan)  # None: no kernel (the step scan is faster on a CPU)
    for name, value in (("r_min", r_min), ("r_max", r_max)):
        _checks.check_number(name, value, minimum=0)
        if value >= 1:
            raise ValueError(f"{name}: expected a number in [0, 1) (|λ| < 1), got {value!r}")
    if r_min > r_max:
        raise ValueError(f"r_min: expected at most r_max={r_max!r}, got {r_min!r}")
    _checks.check_number("max_phase", max_phase, minimum=0)
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize: expected True or False, got {normalize!r}")
    dtype = _checks.check_float_dtype("dtype", dtype)
    H = hidden_size

    def shapes(input_size):
        return {
            "nu": (H,), "theta": (H,), "b_re": (input_size, H), "b_im": (input_size, H),
            "c_re": (H, H), "c_im": (H, H), "d": (input_size, H),
        }  # fmt: skip

    params_check = shapes_check(shapes)
    check = checked_step("lru", H, params_check, LRUParams, LRUCarry)

    def init(key, input_size):
        _checks.check_key("key", key)
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size: expected a positive int, got {input_size!r}")
        k_r, k_t, k_b, k_c, k_d = jax.random.split(key, 5)
        u = jax.random.uniform(k_r, (H,), dtype)
        r = jnp.sqrt(u * (r_max**2 - r_min**2) + r_min**2)
        nu = jnp.log(-jnp.log(jnp.maximum(r, jnp.finfo(dtype).tiny)))
        theta = max_phase * jax.random.uniform(k_t, (H,), dtype)
        b_re, b_im = jax.random.normal(k_b, (2, input_size, H), dtype) / math.sqrt(2 * input_size)
        c_re, c_im = jax.random.normal(k_c, (2, H, H), dtype) / math.sqrt(2 * H)
        d = jax.random.normal(k_d, (input_size, H), dtype) / math.sqrt(input_size)
        return LRUParams(nu, theta, b_re, b_im, c_re, c_im, d)

    def step(params: LRUParams, carry: LRUCarry, x):
        x = check(params, carry, x)
        lam_re, lam_im = eigenvalues(params)
        gamma = _input_scale(params, normalize)
        u_re, u_im = gamma * (x @ params.b_re), gamma * (x @ params.b_im)
        new = LRUCarry(
            lam_re * carry.h - lam_im * carry.h_im + u_re,
            lam_re * carry.h_im + lam_im * carry.h + u_im,
        )
        return new, output(params, new, x)

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        with _checks.matmul_precision(precision):
            lam = jax.lax.complex(*eigenvalues(params))  # <complex[H]>
            gamma = _input_scale(params, normalize)
            u = jax.lax.complex(gamma * (xs @ params.b_re), gamma * (xs @ params.b_im))  # <[T, *batch, H]>
            s = linear_scan.solve(lam, u, jax.lax.complex(carry.h, carry.h_im), method=method,
                                  reverse=reverse)  # fmt: skip
            states = LRUCarry(jnp.real(s), jnp.imag(s))
            ys = output(params, states, xs)
        return jax.tree_util.tree_map(lambda a: a[0] if reverse else a[-1], states), ys

    def recurrent_matrices(params: LRUParams):
        return {"h": jnp.diag(jax.lax.complex(*eigenvalues(params)))}

    cell = Cell(
        init, initial_carry_of(LRUCarry, H), step, "lru", H, "linear",
        params_type=LRUParams, params_check=params_check, recurrent_matrices=recurrent_matrices,
        gamma=1.0, output=output,
    )  # fmt: skip
    return cell.with_kernel(None if method is None else sequence)
