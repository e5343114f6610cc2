"""Whole-sequence kernels with a hand-written backward pass: the fast path of `rnnjax.unroll`.

For the simple and LSTM cells, `unroll` runs one of these instead of scanning `cell.step`, unless an
option needs the general path (see `unroll`'s `fast`). The GRU kernel (reset_after=True) is here and
tested, but not the GRU's default (it measured slower than plain autodiff on CPU; the README's
performance section has the numbers and the command). Attach it with `cell.with_kernel(...)` to use or
measure it elsewhere (e.g. on a GPU). Each kernel is a
`jax.custom_vjp` that computes exactly the cell equations of `rnnjax.cells`, and differs from plain
autodiff of the step scan only in how the gradient is organised:

  * forward: a scan of the step with one fused element-wise block per step; when differentiated it
    also stores what the backward pass needs (the gate activations; the LSTM also its cell states),
    and when not, nothing. (The input projection is not hoisted out of the loop as one matmul: that
    measured slower on XLA:CPU, see the README's performance section.)
  * backward: a reverse scan that carries only the hidden-state gradient (and the LSTM's cell-state
    gradient) and does one matmul dz @ W_hh^T per step, stacking the pre-activation gradients dz;
  * after the loop, the weight gradients are single large matmuls over all steps at once:
    dW_ih = X^T dZ, dW_hh = H_prev^T dZ, db = Σ dZ, dxs = dZ W_ih^T (X, H_prev, dZ flattened over time
    and batch), where autodiff would accumulate T small outer products inside the loop.

Sigmoids are computed as σ(a) = (1 + tanh(a/2)) / 2, so one tanh covers a whole fused gate block.

Reverse-mode derivatives of any order work (the backward pass is itself differentiable JAX code);
forward mode (`jax.jvp`, `jax.jacfwd`) cannot go through a `custom_vjp`, which is why `unroll` falls back
to the plain path when it sees forward-mode inputs (see `unroll`). The equivalence tests run every
kernel against the NumPy reference (float64, hand-derived BPTT) and against autodiff of the step scan.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, backend
from rnnjax.cell_types import (
    GRUParams,
    LSTMCarry,
    LSTMParams,
    RNNCarry,
    SimpleParams,
    check_carry,
    check_params,
)
from rnnjax.cell_types import lstm_gate_scale as _lstm_scale

__all__ = ["gru_sequence", "lstm_sequence", "simple_sequence"]


# --------------------------------------------------------------------------------------------
# Shared pieces


def _check_args(
    kind, params, params_type, num_blocks, carry, carry_type, xs, reverse, unroll, reset_after=None
):
    """The arguments of a public kernel (static shapes and Python values only: free under `jit`); returns
    xs as an array. The hidden size is the carry's; the params must fit it and read xs' features."""
    _checks.check_bool("reverse", reverse)
    backend.scan_unroll(unroll)
    xs = _checks.check_float_array("xs", xs, "array [T, *batch, I]")
    if xs.ndim < 2 or xs.shape[0] < 1:
        raise ValueError(f"xs: expected time-major inputs [T, *batch, I] with T >= 1, got shape {xs.shape}")
    h = getattr(carry, "h", None) if isinstance(carry, carry_type) else None
    hidden_size = jnp.shape(h)[-1] if h is not None and jnp.ndim(h) >= 1 else 0
    check_carry(
        carry,
        carry_type,
        (*xs.shape[1:-1], hidden_size),
        kind=kind,
        why=" ([*batch, H] for xs [T, *batch, I])",
    )
    input_size = check_params(
        params, params_type, kind=kind, hidden_size=hidden_size, num_blocks=num_blocks,
        reset_after=reset_after, owner="the carry",
    )  # fmt: skip
    if xs.shape[-1] != input_size:
        raise ValueError(
            f"xs: expected {input_size} features (params.w_ih reads {input_size}), got shape {xs.shape}"
        )
    return xs


def _previous(first: jax.Array, stacked: jax.Array, reverse: bool) -> jax.Array:
    """<[T, *batch, H]>: the carry each step read, given the initial carry and the carries it wrote."""
    if reverse:  # step t reads the carry written by step t + 1
        return jnp.concatenate([stacked[1:], first[None]], axis=0)
    return jnp.concatenate([first[None], stacked[:-1]], axis=0)


def _weight_grads(xs, h_prev, dz_in, dz_rec):
    """Weight gradients as one matmul each over all T * batch rows.

    Args:
      xs: <[T, *batch, I]> inputs; h_prev: <[T, *batch, H]> carries read by each step.
      dz_in: <[T, *batch, G]> gradient of the input-side pre-activations (x W_ih + b).
      dz_rec: <[T, *batch, G]> gradient of the recurrent pre-activations (h W_hh).
    Returns:
      (dW_ih <[I, G]>, dW_hh <[H, G]>, db <[G]>).
    """
    rows_in = dz_in.reshape(-1, dz_in.shape[-1])
    rows_rec = dz_rec.reshape(-1, dz_rec.shape[-1])
    d_w_ih = xs.reshape(-1, xs.shape[-1]).T @ rows_in
    d_w_hh = h_prev.reshape(-1, h_prev.shape[-1]).T @ rows_rec
    return d_w_ih, d_w_hh, rows_in.sum(axis=0)


def _sigmoid_from_tanh(t):
    return 0.5 + 0.5 * t


class _Loop(NamedTuple):
    """The kernels' static loop options (a hashable non-differentiable argument of each custom_vjp)."""

    unroll: int | bool  # lax.scan's unroll
    precision: str | None  # matmul precision of the forward and the backward pass


def _under_precision(rule):
    """Trace a kernel's primal, forward or backward rule under its `_Loop`'s matmul precision (JAX traces
    the backward rule later, outside any context the caller set, so the precision travels with it)."""

    @functools.wraps(rule)
    def traced(*args):
        loop = next(a for a in args if isinstance(a, _Loop))
        with _checks.matmul_precision(loop.precision):
            return rule(*args)

    return traced


# --------------------------------------------------------------------------------------------
# Simple (Elman) RNN


def _simple_forward(activation, reverse, loop, params: SimpleParams, h0, xs):
    phi = {"tanh": jnp.tanh, "relu": jax.nn.relu, "linear": lambda a: a, "sigmoid": jax.nn.sigmoid}
    phi = phi[activation]

    def body(h, x):
        h = phi(x @ params.w_ih + h @ params.w_hh + params.b)
        return h, h

    h_final, ys = jax.lax.scan(body, h0, xs, reverse=reverse, unroll=loop.unroll)
    return h_final, ys


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
@_under_precision
def _simple(activation, reverse, loop, params, h0, xs):
    return _simple_forward(activation, reverse, loop, params, h0, xs)


@_under_precision
def _simple_fwd(activation, reverse, loop, params, h0, xs):
    h_final, ys = _simple_forward(activation, reverse, loop, params, h0, xs)
    return (h_final, ys), (params, h0, xs, ys)


@_under_precision
def _simple_bwd(activation, reverse, loop, residuals, cotangents):
    params, h0, xs, ys = residuals
    d_final, d_ys = cotangents
    w_hh_t = params.w_hh.T

    def body(dh, inputs):
        dy, h = inputs
        dh = dh + dy
        if activation == "tanh":
            da = dh * (1 - h * h)
        elif activation == "relu":
            da = jnp.where(h > 0, dh, 0)
        elif activation == "sigmoid":
            da = dh * h * (1 - h)
        else:
            da = dh
        return da @ w_hh_t, da

    dh0, das = jax.lax.scan(body, d_final, (d_ys, ys), reverse=not reverse, unroll=loop.unroll)
    h_prev = _previous(h0, ys, reverse)
    d_w_ih, d_w_hh, d_b = _weight_grads(xs, h_prev, das, das)
    return SimpleParams(d_w_ih, d_w_hh, d_b), dh0, das @ params.w_ih.T


_simple.defvjp(_simple_fwd, _simple_bwd)


def simple_sequence(
    params: SimpleParams,
    carry: RNNCarry,
    xs,
    *,
    activation="tanh",
    reverse=False,
    unroll=None,
    precision=None,
):
    """Elman RNN over a whole sequence (equations of `rnnjax.cells.simple`).

    Args:
      params: `SimpleParams` in the compute dtype.
      carry: `RNNCarry(h)` with h <[*batch, H]>.
      xs: <[T, *batch, I]> (time-major).
      activation: "tanh", "relu", "linear" or "sigmoid".
      reverse: as in `jax.lax.scan`.
      unroll: steps per loop iteration, as in `jax.lax.scan`; None: the backend's default
        (`rnnjax.backend.SCAN_UNROLL`).
      precision: matmul precision of the forward and backward passes (see `rnnjax.unroll`).
    Returns:
      (final `RNNCarry`, ys <[T, *batch, H]>).
    """
    if activation not in ("tanh", "relu", "linear", "sigmoid"):
        raise ValueError(f"activation: expected 'tanh', 'relu', 'linear' or 'sigmoid', got {activation!r}")
    _checks.check_precision(precision)
    xs = _check_args("simple", params, SimpleParams, 1, carry, RNNCarry, xs, reverse, unroll)
    loop = _Loop(backend.scan_unroll(unroll), precision)
    h_final, ys = _simple(activation, reverse, loop, params, carry.h, xs)
    return RNNCarry(h_final), ys


# --------------------------------------------------------------------------------------------
# LSTM


def _lstm_forward(reverse, loop, params: LSTMParams, h0, c0, xs, keep: bool):
    """Final carry and ys; with `keep`, also the stacked cell states and gate activations."""
    scale = _lstm_scale(h0.shape[-1], xs.dtype)

    def body(carry, x):
        h, c = carry
        z = x @ params.w_ih + h @ params.w_hh + params.b  # (*batch, 4H)
        t = jnp.tanh(z * scale)  # tanh(z_i/2), tanh(z_f/2), g, tanh(z_o/2)
        t_i, t_f, g, t_o = jnp.split(t, 4, axis=-1)
        c = _sigmoid_from_tanh(t_f) * c + _sigmoid_from_tanh(t_i) * g
        h = _sigmoid_from_tanh(t_o) * jnp.tanh(c)
        return (h, c), ((h, c, t) if keep else h)

    (h_final, c_final), out = jax.lax.scan(body, (h0, c0), xs, reverse=reverse, unroll=loop.unroll)
    if not keep:
        return (h_final, c_final, out), None
    ys, cs, ts = out
    return (h_final, c_final, ys), (cs, ts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
@_under_precision
def _lstm(reverse, loop, params, h0, c0, xs):
    return _lstm_forward(reverse, loop, params, h0, c0, xs, keep=False)[0]


@_under_precision
def _lstm_fwd(reverse, loop, params, h0, c0, xs):
    out, (cs, ts) = _lstm_forward(reverse, loop, params, h0, c0, xs, keep=True)
    return out, (params, h0, c0, xs, out[2], cs, ts)


@_under_precision
def _lstm_bwd(reverse, loop, residuals, cotangents):
    params, h0, c0, xs, ys, cs, ts = residuals
    dh_final, dc_final, d_ys = cotangents
    w_hh_t = params.w_hh.T
    c_prev = _previous(c0, cs, reverse)

    def body(carry, inputs):
        dh, dc = carry
        dy, t, c, c_before = inputs
        t_i, t_f, g, t_o = jnp.split(t, 4, axis=-1)
        tc = jnp.tanh(c)  # recomputed rather than stored: one tanh instead of T*batch*H more memory
        dh = dh + dy
        dc = dc + dh * _sigmoid_from_tanh(t_o) * (1 - tc * tc)
        dz = jnp.concatenate(
            [
                dc * g * 0.25 * (1 - t_i * t_i),  # dσ(a)/da = (1 - tanh²(a/2)) / 4
                dc * c_before * 0.25 * (1 - t_f * t_f),
                dc * _sigmoid_from_tanh(t_i) * (1 - g * g),
                dh * tc * 0.25 * (1 - t_o * t_o),
            ],
            axis=-1,
        )  # (*batch, 4H)
        return (dz @ w_hh_t, dc * _sigmoid_from_tanh(t_f)), dz

    (dh0, dc0), dzs = jax.lax.scan(
        body, (dh_final, dc_final), (d_ys, ts, cs, c_prev), reverse=not reverse, unroll=loop.unroll
    )
    h_prev = _previous(h0, ys, reverse)
    d_w_ih, d_w_hh, d_b = _weight_grads(xs, h_prev, dzs, dzs)
    return LSTMParams(d_w_ih, d_w_hh, d_b), dh0, dc0, dzs @ params.w_ih.T


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_sequence(params: LSTMParams, carry: LSTMCarry, xs, *, reverse=False, unroll=None, precision=None):
    """LSTM over a whole sequence (equations of `rnnjax.cells.lstm`).

    Args:
      params: `LSTMParams` in the compute dtype.
      carry: `LSTMCarry(h, c)`, each <[*batch, H]>.
      xs: <[T, *batch, I]> (time-major).
      reverse: as in `jax.lax.scan`.
      unroll: steps per loop iteration, as in `jax.lax.scan`; None: the backend's default
        (`rnnjax.backend.SCAN_UNROLL`).
      precision: matmul precision of the forward and backward passes (see `rnnjax.unroll`).
    Returns:
      (final `LSTMCarry`, ys <[T, *batch, H]>).
    """
    _checks.check_precision(precision)
    xs = _check_args("lstm", params, LSTMParams, 4, carry, LSTMCarry, xs, reverse, unroll)
    loop = _Loop(backend.scan_unroll(unroll), precision)
    h_final, c_final, ys = _lstm(reverse, loop, params, carry.h, carry.c, xs)
    return LSTMCarry(h_final, c_final), ys


# --------------------------------------------------------------------------------------------
# GRU (reset_after=True)


def _gru_forward(reverse, loop, params: GRUParams, h0, xs, keep: bool):
    """Final h and ys; with `keep`, also the stacked [tanh(a_r/2), tanh(a_z/2), n, h W_hn + b_hn]."""
    H = h0.shape[-1]

    def body(h, x):
        xp = x @ params.w_ih + params.b  # (*batch, 3H): x_r, x_z, x_n
        hh = h @ params.w_hh  # (*batch, 3H)
        s = jnp.tanh(0.5 * (xp[..., : 2 * H] + hh[..., : 2 * H]))  # tanh of half the r, z pre-activations
        r, z = jnp.split(_sigmoid_from_tanh(s), 2, axis=-1)
        hn = hh[..., 2 * H :] + params.b_hn
        n = jnp.tanh(xp[..., 2 * H :] + r * hn)
        h = n + z * (h - n)  # (1 - z) n + z h
        return h, ((h, jnp.concatenate([s, n, hn], axis=-1)) if keep else h)

    h_final, out = jax.lax.scan(body, h0, xs, reverse=reverse, unroll=loop.unroll)
    if not keep:
        return (h_final, out), None
    ys, saved = out
    return (h_final, ys), saved


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
@_under_precision
def _gru(reverse, loop, params, h0, xs):
    return _gru_forward(reverse, loop, params, h0, xs, keep=False)[0]


@_under_precision
def _gru_fwd(reverse, loop, params, h0, xs):
    out, saved = _gru_forward(reverse, loop, params, h0, xs, keep=True)
    return out, (params, h0, xs, out[1], saved)


@_under_precision
def _gru_bwd(reverse, loop, residuals, cotangents):
    params, h0, xs, ys, saved = residuals
    d_final, d_ys = cotangents
    w_hh_t = params.w_hh.T
    h_prev = _previous(h0, ys, reverse)

    def body(dh, inputs):
        dy, sv, h_before = inputs
        s_r, s_z, n, hn = jnp.split(sv, 4, axis=-1)
        r, z = _sigmoid_from_tanh(s_r), _sigmoid_from_tanh(s_z)
        dh = dh + dy
        da_n = dh * (1 - z) * (1 - n * n)  # gradient of the candidate's pre-activation
        da_r = da_n * hn * 0.25 * (1 - s_r * s_r)
        da_z = dh * (h_before - n) * 0.25 * (1 - s_z * s_z)
        d_hn = da_n * r
        d_rec = jnp.concatenate([da_r, da_z, d_hn], axis=-1)  # d(h W_hh), (*batch, 3H)
        d_in = jnp.concatenate([da_r, da_z, da_n], axis=-1)  # d(x W_ih + b), (*batch, 3H)
        return dh * z + d_rec @ w_hh_t, (d_in, d_rec)

    dh0, (d_ins, d_recs) = jax.lax.scan(
        body, d_final, (d_ys, saved, h_prev), reverse=not reverse, unroll=loop.unroll
    )
    d_w_ih, d_w_hh, d_b = _weight_grads(xs, h_prev, d_ins, d_recs)
    H = h0.shape[-1]
    d_b_hn = d_recs[..., 2 * H :].reshape(-1, H).sum(axis=0)
    return GRUParams(d_w_ih, d_w_hh, d_b, d_b_hn), dh0, d_ins @ params.w_ih.T


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_sequence(params: GRUParams, carry: RNNCarry, xs, *, reverse=False, unroll=None, precision=None):
    """GRU (reset_after=True) over a whole sequence (equations of `rnnjax.cells.gru`).

    Args:
      params: `GRUParams` with b_hn, in the compute dtype.
      carry: `RNNCarry(h)` with h <[*batch, H]>.
      xs: <[T, *batch, I]> (time-major).
      reverse: as in `jax.lax.scan`.
      unroll: steps per loop iteration, as in `jax.lax.scan`; None: the backend's default
        (`rnnjax.backend.SCAN_UNROLL`).
      precision: matmul precision of the forward and backward passes (see `rnnjax.unroll`).
    Returns:
      (final `RNNCarry`, ys <[T, *batch, H]>).
    """
    _checks.check_precision(precision)
    xs = _check_args("gru", params, GRUParams, 3, carry, RNNCarry, xs, reverse, unroll, reset_after=True)
    h_final, ys = _gru(reverse, _Loop(backend.scan_unroll(unroll), precision), params, carry.h, xs)
    return RNNCarry(h_final), ys
