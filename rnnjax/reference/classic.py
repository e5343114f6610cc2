"""The classic cells in NumPy: Elman ("simple"), LSTM and GRU, each step with its hand-derived backward.

Kernels are ``(in, out)`` with gates fused along the last axis (LSTM: i, f, g, o; GRU: r, z, n). The
output of each step is its new hidden state h. See ``_float64`` for the step contract.
"""

from __future__ import annotations

import numpy as np

from ._float64 import Kind, SizeFrom, sigmoid, split

# --------------------------------------------------------------------------
# Elman: h = act(x W_ih + h_prev W_hh + b)
# --------------------------------------------------------------------------


def _act(activation, a):
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0.0)
    if activation == "sigmoid":
        return sigmoid(a)
    return a


def _act_grad(activation, a, h):
    """Derivative of the activation, given pre-activation a and h = act(a)."""
    if activation == "tanh":
        return 1.0 - h**2
    if activation == "relu":
        return (a > 0).astype(np.float64)  # 0 at exactly a == 0
    if activation == "sigmoid":
        return h * (1.0 - h)
    return np.ones_like(a)


def affine_grads(x, h_prev, dz):
    """Grads of z = x W_ih + h_prev W_hh + b w.r.t. W_ih, W_hh, b."""
    return {"w_ih": x.T @ dz, "w_hh": h_prev.T @ dz, "b": dz.sum(axis=0)}


def _simple_step(p, x, carry, opts):
    a = x @ p["w_ih"] + carry["h"] @ p["w_hh"] + p["b"]
    h = _act(opts["activation"], a)
    return {"h": h}, h, (x, carry["h"], a, h)


def _simple_back(p, cache, d_new, dy, opts):
    # h = act(a), a = x W_ih + h_prev W_hh + b  =>  da = dh * act'(a).
    x, h_prev, a, h = cache
    da = (d_new["h"] + dy) * _act_grad(opts["activation"], a, h)
    d_prev = {"h": da @ p["w_hh"].T}
    return affine_grads(x, h_prev, da), da @ p["w_ih"].T, d_prev


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------


def _lstm_step(p, x, carry, opts):
    z = x @ p["w_ih"] + carry["h"] @ p["w_hh"] + p["b"]
    z_i, z_f, z_g, z_o = split(z, 4)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
    c = f * carry["c"] + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    cache = (x, carry["h"], carry["c"], i, f, g, o, tanh_c)
    return {"h": h, "c": c}, h, cache


def _lstm_back(p, cache, d_new, dy, opts):
    # c = f c_prev + i g,  h = o tanh(c).  The new cell state c gets gradient
    # both directly (it is carried) and through h:
    #   dc_total = dc + dh * o * (1 - tanh(c)^2).
    # Then di = dc_total g, df = dc_total c_prev, dg = dc_total i,
    # do = dh tanh(c), each times its nonlinearity's derivative
    # (sigmoid: s (1 - s); tanh: 1 - t^2), and dc_prev = dc_total f.
    x, h_prev, c_prev, i, f, g, o, tanh_c = cache
    dh = d_new["h"] + dy
    dc = d_new["c"] + dh * o * (1.0 - tanh_c**2)
    dz = np.concatenate(
        [
            dc * g * i * (1.0 - i),
            dc * c_prev * f * (1.0 - f),
            dc * i * (1.0 - g**2),
            dh * tanh_c * o * (1.0 - o),
        ],
        axis=-1,
    )
    d_prev = {"h": dz @ p["w_hh"].T, "c": dc * f}
    return affine_grads(x, h_prev, dz), dz @ p["w_ih"].T, d_prev


# --------------------------------------------------------------------------
# GRU, in both forms
# --------------------------------------------------------------------------


def _gru_after_step(p, x, carry):
    """GRU with the reset gate applied after the recurrent matmul."""
    h_prev = carry["h"]
    x_r, x_z, x_n = split(x @ p["w_ih"] + p["b"], 3)
    h_r, h_z, h_n = split(h_prev @ p["w_hh"], 3)
    r = sigmoid(x_r + h_r)
    z = sigmoid(x_z + h_z)
    hn_b = h_n + p["b_hn"]
    n = np.tanh(x_n + r * hn_b)
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, h, (x, h_prev, r, z, n, hn_b)


def _gru_after_back(p, cache, dh):
    # h = (1 - z) n + z h_prev.  Write a_* for the gate pre-activations:
    #   da_n = dh (1 - z) (1 - n^2)
    #   da_z = dh (h_prev - n) z (1 - z)
    #   a_n = x_n + r (h_n + b_hn)  =>  da_r = da_n (h_n + b_hn) r (1 - r),
    #                                   d(h_n + b_hn) = da_n r.
    # The input projection sees [da_r, da_z, da_n], the recurrent one sees
    # [da_r, da_z, da_n r]; h_prev also gets dh z directly.
    x, h_prev, r, z, n, hn_b = cache
    da_n = dh * (1.0 - z) * (1.0 - n**2)
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    da_r = da_n * hn_b * r * (1.0 - r)
    d_hn = da_n * r
    d_xproj = np.concatenate([da_r, da_z, da_n], axis=-1)
    d_hproj = np.concatenate([da_r, da_z, d_hn], axis=-1)
    d_params = {
        "w_ih": x.T @ d_xproj,
        "w_hh": h_prev.T @ d_hproj,
        "b": d_xproj.sum(axis=0),
        "b_hn": d_hn.sum(axis=0),
    }
    d_prev = {"h": dh * z + d_hproj @ p["w_hh"].T}
    return d_params, d_xproj @ p["w_ih"].T, d_prev


def _gru_before_step(p, x, carry):
    """GRU with the reset gate applied to h_prev before the matmul (Cho 2014)."""
    h_prev = carry["h"]
    x_r, x_z, x_n = split(x @ p["w_ih"] + p["b"], 3)
    w_r, w_z, w_n = split(p["w_hh"], 3)
    r = sigmoid(x_r + h_prev @ w_r)
    z = sigmoid(x_z + h_prev @ w_z)
    rh = r * h_prev
    n = np.tanh(x_n + rh @ w_n)
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, h, (x, h_prev, r, z, n, rh)


def _gru_before_back(p, cache, dh):
    # As for reset_after=True, except a_n = x_n + (r h_prev) W_n, so
    #   d(r h_prev) = da_n W_n^T,  da_r = d(r h_prev) h_prev r (1 - r),
    # and h_prev receives dh z + d(r h_prev) r + da_r W_r^T + da_z W_z^T.
    x, h_prev, r, z, n, rh = cache
    w_r, w_z, w_n = split(p["w_hh"], 3)
    da_n = dh * (1.0 - z) * (1.0 - n**2)
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    d_rh = da_n @ w_n.T
    da_r = d_rh * h_prev * r * (1.0 - r)
    d_xproj = np.concatenate([da_r, da_z, da_n], axis=-1)
    d_params = {
        "w_ih": x.T @ d_xproj,
        "w_hh": np.concatenate([h_prev.T @ da_r, h_prev.T @ da_z, rh.T @ da_n], axis=-1),
        "b": d_xproj.sum(axis=0),
    }
    dh_prev = dh * z + d_rh * r + da_r @ w_r.T + da_z @ w_z.T
    return d_params, d_xproj @ p["w_ih"].T, {"h": dh_prev}


def _gru_step(p, x, carry, opts):
    return (_gru_after_step if opts["reset_after"] else _gru_before_step)(p, x, carry)


def _gru_back(p, cache, d_new, dy, opts):
    back = _gru_after_back if opts["reset_after"] else _gru_before_back
    return back(p, cache, d_new["h"] + dy)


# --------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------


def _gated_shapes(gates):
    def shapes(n_in, n_hid, opts):
        return {"w_ih": (n_in, gates * n_hid), "w_hh": (n_hid, gates * n_hid), "b": (gates * n_hid,)}

    return shapes


def _gru_shapes(n_in, n_hid, opts):
    shapes = _gated_shapes(3)(n_in, n_hid, opts)
    if opts["reset_after"]:
        shapes["b_hn"] = (n_hid,)
    return shapes


SIMPLE = Kind(
    carry=("h",),
    shapes=_gated_shapes(1),
    size=SizeFrom("w_hh", 0, 1, "(H, H)"),
    step=_simple_step,
    step_back=_simple_back,
    options=("activation",),
)
LSTM = Kind(
    carry=("h", "c"),
    shapes=_gated_shapes(4),
    size=SizeFrom("w_hh", 0, 1, "(H, 4H)"),
    step=_lstm_step,
    step_back=_lstm_back,
)
GRU = Kind(
    carry=("h",),
    shapes=_gru_shapes,
    size=SizeFrom("w_hh", 0, 1, "(H, 3H)"),
    step=_gru_step,
    step_back=_gru_back,
    options=("reset_after",),
    shape_options=("reset_after",),
)
