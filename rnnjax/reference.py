"""Independent NumPy reference implementation of the rnnjax recurrent cells.

Explicit Python loops over time in float64, with backpropagation through time
derived and written out by hand (no autodiff), used as ground truth for tests.

Conventions: ``xs`` is batch-major ``(B, T, I)``; kernels are ``(in, out)``
with gates fused along the last axis (LSTM: i, f, g, o; GRU: r, z, n); carries
are dicts ``{"h": (B, H)}`` (plus ``"c"`` for the LSTM); variable-length
batches are right-padded, and a padded step leaves the carry unchanged and
outputs zeros.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

_KINDS = ("simple", "lstm", "gru")
_ACTIVATIONS = ("tanh", "relu", "linear", "sigmoid")
_MODES = ("many_to_many", "many_to_one")


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _sigmoid(x):
    # Equal to 1 / (1 + exp(-x)), but cannot overflow for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _split(a, n):
    """Split the fused gate axis (the last one) into ``n`` equal blocks."""
    return np.split(a, n, axis=-1)


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_dict(name, d, shapes):
    """Check that ``d`` has exactly the keys of ``shapes`` with those shapes.

    Returns a new dict of float64 arrays.
    """
    if not isinstance(d, dict):
        raise TypeError(f"{name} must be a dict with keys {list(shapes)}, got {type(d).__name__}")
    if set(d) != set(shapes):
        raise ValueError(f"{name} must have keys {list(shapes)}, got {list(d)}")
    out = {}
    for key, shape in shapes.items():
        a = _f64(d[key])
        if a.shape != shape:
            raise ValueError(f"{name}[{key!r}] must have shape {shape}, got {a.shape}")
        out[key] = a
    return out


def _carry_keys(kind):
    return ("h", "c") if kind == "lstm" else ("h",)


def _param_shapes(kind, reset_after, n_in, n_hid):
    if kind == "simple":
        return {"w_ih": (n_in, n_hid), "w_hh": (n_hid, n_hid), "b": (n_hid,)}
    gates = 4 if kind == "lstm" else 3
    shapes = {
        "w_ih": (n_in, gates * n_hid),
        "w_hh": (n_hid, gates * n_hid),
        "b": (gates * n_hid,),
    }
    if kind == "gru" and reset_after:
        shapes["b_hn"] = (n_hid,)
    return shapes


def _check_lengths(lengths, batch, steps):
    """Return ``lengths`` as an int array of shape (B,), defaulting to all T."""
    if lengths is None:
        return np.full((batch,), steps, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.shape != (batch,):
        raise ValueError(
            f"lengths must have shape ({batch},) (one entry per batch example), got shape {arr.shape}"
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths must be an integer array, got dtype {arr.dtype}")
    if np.any(arr < 1) or np.any(arr > steps):
        raise ValueError(f"lengths must satisfy 1 <= lengths[b] <= T={steps}, got {arr.tolist()}")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------
# Cells: one step forward, and its hand-derived backward.
#
# ``step(p, x, carry) -> (new_carry, cache)`` with x (B, I) and carry fields
# (B, H).  ``step_back(p, cache, d_new) -> (d_params, dx, d_carry_prev)``
# maps the gradient w.r.t. the step's new carry to gradients w.r.t. the
# parameters (this step's contribution), the input and the previous carry.
# --------------------------------------------------------------------------


def _act(activation, a):
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0.0)
    if activation == "sigmoid":
        return _sigmoid(a)
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


def _affine_grads(x, h_prev, dz):
    """Grads of z = x W_ih + h_prev W_hh + b w.r.t. W_ih, W_hh, b."""
    return {"w_ih": x.T @ dz, "w_hh": h_prev.T @ dz, "b": dz.sum(axis=0)}


def _simple_step(p, x, carry, *, activation):
    a = x @ p["w_ih"] + carry["h"] @ p["w_hh"] + p["b"]
    h = _act(activation, a)
    return {"h": h}, (x, carry["h"], a, h)


def _simple_back(p, cache, d_new, *, activation):
    # h = act(a), a = x W_ih + h_prev W_hh + b  =>  da = dh * act'(a).
    x, h_prev, a, h = cache
    da = d_new["h"] * _act_grad(activation, a, h)
    d_prev = {"h": da @ p["w_hh"].T}
    return _affine_grads(x, h_prev, da), da @ p["w_ih"].T, d_prev


def _lstm_step(p, x, carry):
    z = x @ p["w_ih"] + carry["h"] @ p["w_hh"] + p["b"]
    z_i, z_f, z_g, z_o = _split(z, 4)
    i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
    c = f * carry["c"] + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    cache = (x, carry["h"], carry["c"], i, f, g, o, tanh_c)
    return {"h": h, "c": c}, cache


def _lstm_back(p, cache, d_new):
    # c = f c_prev + i g,  h = o tanh(c).  The new cell state c gets gradient
    # both directly (it is carried) and through h:
    #   dc_total = dc + dh * o * (1 - tanh(c)^2).
    # Then di = dc_total g, df = dc_total c_prev, dg = dc_total i,
    # do = dh tanh(c), each times its nonlinearity's derivative
    # (sigmoid: s (1 - s); tanh: 1 - t^2), and dc_prev = dc_total f.
    x, h_prev, c_prev, i, f, g, o, tanh_c = cache
    dh = d_new["h"]
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
    return _affine_grads(x, h_prev, dz), dz @ p["w_ih"].T, d_prev


def _gru_after_step(p, x, carry):
    """GRU with the reset gate applied after the recurrent matmul."""
    h_prev = carry["h"]
    x_r, x_z, x_n = _split(x @ p["w_ih"] + p["b"], 3)
    h_r, h_z, h_n = _split(h_prev @ p["w_hh"], 3)
    r = _sigmoid(x_r + h_r)
    z = _sigmoid(x_z + h_z)
    hn_b = h_n + p["b_hn"]
    n = np.tanh(x_n + r * hn_b)
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, (x, h_prev, r, z, n, hn_b)


def _gru_after_back(p, cache, d_new):
    # h = (1 - z) n + z h_prev.  Write a_* for the gate pre-activations:
    #   da_n = dh (1 - z) (1 - n^2)
    #   da_z = dh (h_prev - n) z (1 - z)
    #   a_n = x_n + r (h_n + b_hn)  =>  da_r = da_n (h_n + b_hn) r (1 - r),
    #                                   d(h_n + b_hn) = da_n r.
    # The input projection sees [da_r, da_z, da_n], the recurrent one sees
    # [da_r, da_z, da_n r]; h_prev also gets dh z directly.
    x, h_prev, r, z, n, hn_b = cache
    dh = d_new["h"]
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
    x_r, x_z, x_n = _split(x @ p["w_ih"] + p["b"], 3)
    w_r, w_z, w_n = _split(p["w_hh"], 3)
    r = _sigmoid(x_r + h_prev @ w_r)
    z = _sigmoid(x_z + h_prev @ w_z)
    rh = r * h_prev
    n = np.tanh(x_n + rh @ w_n)
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, (x, h_prev, r, z, n, rh)


def _gru_before_back(p, cache, d_new):
    # As for reset_after=True, except a_n = x_n + (r h_prev) W_n, so
    #   d(r h_prev) = da_n W_n^T,  da_r = d(r h_prev) h_prev r (1 - r),
    # and h_prev receives dh z + d(r h_prev) r + da_r W_r^T + da_z W_z^T.
    x, h_prev, r, z, n, rh = cache
    w_r, w_z, w_n = _split(p["w_hh"], 3)
    dh = d_new["h"]
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


def _cell_fns(kind, activation, reset_after):
    if kind == "simple":
        return (
            functools.partial(_simple_step, activation=activation),
            functools.partial(_simple_back, activation=activation),
        )
    if kind == "lstm":
        return _lstm_step, _lstm_back
    if reset_after:
        return _gru_after_step, _gru_after_back
    return _gru_before_step, _gru_before_back


# --------------------------------------------------------------------------
# Validation and the masked time loop
# --------------------------------------------------------------------------


class _Problem(NamedTuple):
    kind: str
    params: dict  # float64 arrays
    xs: np.ndarray  # (B, T, I) float64
    carry0: dict  # float64 arrays (B, H)
    mask: np.ndarray  # (B, T) bool, True at valid steps
    lengths: np.ndarray  # (B,) int
    step: Callable
    step_back: Callable


def _setup(kind, params, xs, carry0, lengths, activation, reset_after):
    _check_choice("kind", kind, _KINDS)
    _check_choice("activation", activation, _ACTIVATIONS)
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"reset_after must be a bool, got {reset_after!r}")
    xs = _f64(xs)
    if xs.ndim != 3 or xs.shape[0] < 1 or xs.shape[1] < 1:
        raise ValueError(f"xs must have shape (B, T, I) with B >= 1 and T >= 1, got shape {xs.shape}")
    batch, steps, n_in = xs.shape

    shapes = _param_shapes(kind, bool(reset_after), n_in, 0)
    form = f"kind {kind!r}" + (f" with reset_after={bool(reset_after)}" if kind == "gru" else "")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    if set(params) != set(shapes):
        raise ValueError(f"params for {form} must have keys {list(shapes)}, got {list(params)}")
    w_hh_shape = np.shape(params["w_hh"])
    if len(w_hh_shape) != 2:
        raise ValueError(f"params['w_hh'] must be 2-D (H, gates * H), got shape {w_hh_shape}")
    n_hid = w_hh_shape[0]
    params = _check_dict("params", params, _param_shapes(kind, bool(reset_after), n_in, n_hid))

    carry_shapes = {k: (batch, n_hid) for k in _carry_keys(kind)}
    if carry0 is None:
        carry0 = {k: np.zeros(s) for k, s in carry_shapes.items()}
    else:
        carry0 = _check_dict("carry0", carry0, carry_shapes)

    lengths = _check_lengths(lengths, batch, steps)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    step, step_back = _cell_fns(kind, activation, bool(reset_after))
    return _Problem(kind, params, xs, carry0, mask, lengths, step, step_back)


def _run(prob):
    """Masked forward loop. Returns (final_carry, ys (B,T,H), per-step caches)."""
    carry = dict(prob.carry0)
    batch, steps, _ = prob.xs.shape
    n_hid = carry["h"].shape[1]
    ys = np.zeros((batch, steps, n_hid))
    caches = []
    for t in range(steps):
        m = prob.mask[:, t, None]
        # The cell's result at a padded step is discarded, so padded inputs are
        # zeroed: garbage there (even NaN) then never enters any computation.
        x = np.where(m, prob.xs[:, t], 0.0)
        new, cache = prob.step(prob.params, x, carry)
        carry = {k: np.where(m, new[k], carry[k]) for k in carry}
        ys[:, t] = np.where(m, new["h"], 0.0)
        caches.append(cache)
    return carry, ys, caches


def _bptt(prob, dys, d_final):
    """Backward through the masked loop; see ``backward``."""
    _, _, caches = _run(prob)
    d_carry = dict(d_final)
    d_params = {k: np.zeros_like(v) for k, v in prob.params.items()}
    dxs = np.zeros_like(prob.xs)
    for t in reversed(range(prob.xs.shape[1])):
        m = prob.mask[:, t, None]
        # carry_t = where(m, new, carry_{t-1}) and y_t = where(m, new_h, 0):
        # at valid steps the gradient flows into the cell's new state, at padded
        # steps it passes straight through to carry_{t-1}.
        d_new = {k: np.where(m, d_carry[k], 0.0) for k in d_carry}
        d_new["h"] = d_new["h"] + np.where(m, dys[:, t], 0.0)
        dp, dx, d_prev = prob.step_back(prob.params, caches[t], d_new)
        for k in d_params:
            d_params[k] += dp[k]
        dxs[:, t] = np.where(m, dx, 0.0)
        d_carry = {k: np.where(m, 0.0, d_carry[k]) + d_prev[k] for k in d_carry}
    return {"params": d_params, "xs": dxs, "carry0": d_carry}


# --------------------------------------------------------------------------
# Public API: cells
# --------------------------------------------------------------------------


def forward(kind, params, xs, carry0=None, *, lengths=None, activation="tanh", reset_after=True):
    """Run a recurrent cell over a (possibly right-padded) batch of sequences.

    Args:
      kind: "simple" (Elman), "lstm" or "gru".
      params: dict of arrays. simple: w_ih (I,H), w_hh (H,H), b (H,).
        lstm: w_ih (I,4H), w_hh (H,4H), b (4H,), gates i, f, g, o.
        gru: w_ih (I,3H), w_hh (H,3H), b (3H,), gates r, z, n, plus
        b_hn (H,) when reset_after is True.
      xs: inputs, (B, T, I).
      carry0: initial carry, {"h": (B,H)} (plus "c": (B,H) for lstm);
        None means zeros.
      lengths: (B,) ints in [1, T], or None for all T. Steps t >= lengths[b]
        are padding: the carry is unchanged there and the output is zero.
      activation: "tanh", "relu", "linear" or "sigmoid" (used by kind "simple").
      reset_after: GRU form; True applies the reset gate after the recurrent
        matmul (PyTorch/cuDNN/Keras), False before it (Cho et al. 2014).

    Returns:
      (final_carry, ys): the carry after each example's last valid step, as a
      dict like carry0, and the outputs ys (B, T, H) (the new hidden states,
      zero at padded steps).
    """
    prob = _setup(kind, params, xs, carry0, lengths, activation, reset_after)
    final, ys, _ = _run(prob)
    return final, ys


def backward(
    kind,
    params,
    xs,
    dys,
    carry0=None,
    *,
    d_final_carry=None,
    lengths=None,
    activation="tanh",
    reset_after=True,
):
    """Hand-written backpropagation through time for ``forward``.

    Args:
      kind, params, xs, carry0, lengths, activation, reset_after: as in
        ``forward``.
      dys: (B, T, H), gradient of the loss w.r.t. the outputs ys (entries at
        padded steps are ignored, as ys there are constant zeros).
      d_final_carry: dict like the carry (exactly its keys), gradient of the
        loss w.r.t. the final carry; None means zeros.

    Returns:
      {"params": dict with the keys of params, "xs": (B, T, I) (exactly zero at
      padded steps), "carry0": dict like the carry}.
    """
    prob = _setup(kind, params, xs, carry0, lengths, activation, reset_after)
    batch, steps, _ = prob.xs.shape
    n_hid = prob.carry0["h"].shape[1]
    dys = _f64(dys)
    if dys.shape != (batch, steps, n_hid):
        raise ValueError(f"dys must have shape {(batch, steps, n_hid)}, got {dys.shape}")
    carry_shapes = {k: (batch, n_hid) for k in _carry_keys(kind)}
    if d_final_carry is None:
        d_final = {k: np.zeros(s) for k, s in carry_shapes.items()}
    else:
        d_final = _check_dict("d_final_carry", d_final_carry, carry_shapes)
    return _bptt(prob, dys, d_final)


# --------------------------------------------------------------------------
# Public API: readout and loss
# --------------------------------------------------------------------------


def _check_readout(readout, n_hid):
    if not isinstance(readout, dict) or set(readout) != {"w", "b"}:
        got = list(readout) if isinstance(readout, dict) else type(readout).__name__
        raise ValueError(f"readout must be a dict with keys ['w', 'b'], got {got}")
    w_shape = np.shape(readout["w"])
    if len(w_shape) != 2 or w_shape[0] != n_hid:
        raise ValueError(f"readout['w'] must have shape ({n_hid}, V), got {w_shape}")
    return _check_dict("readout", readout, {"w": w_shape, "b": (w_shape[1],)})


def readout_logits(readout, ys):
    """Dense readout applied at every step.

    Args:
      readout: {"w": (H, V), "b": (V,)}.
      ys: (B, T, H) outputs.

    Returns:
      logits (B, T, V) = ys @ w + b.
    """
    ys = _f64(ys)
    if ys.ndim != 3:
        raise ValueError(f"ys must have shape (B, T, H), got shape {ys.shape}")
    readout = _check_readout(readout, ys.shape[2])
    return ys @ readout["w"] + readout["b"]


def _label_grid(labels, mode, prob, n_classes):
    """Per-step labels (B, T) and loss weights (B, T) for the given mode.

    Positions with zero weight (padded steps; every step but the last valid one
    in many_to_one) get label 0 and never contribute.
    """
    labels = np.asarray(labels)
    batch, steps = prob.mask.shape
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    if mode == "many_to_many":
        if labels.shape != (batch, steps):
            raise ValueError(
                f"labels for mode 'many_to_many' must have shape {(batch, steps)}, got {labels.shape}"
            )
        grid = labels.astype(np.int64)
        weights = prob.mask / prob.mask.sum()
    else:
        if labels.shape != (batch,):
            raise ValueError(f"labels for mode 'many_to_one' must have shape {(batch,)}, got {labels.shape}")
        grid = np.zeros((batch, steps), dtype=np.int64)
        weights = np.zeros((batch, steps))
        last = prob.lengths - 1
        grid[np.arange(batch), last] = labels
        weights[np.arange(batch), last] = 1.0 / batch
    used = grid[weights > 0]
    if np.any(used < 0) or np.any(used >= n_classes):
        raise ValueError(f"labels must lie in [0, V={n_classes}) at valid steps, got {used.tolist()}")
    return np.where(weights > 0, grid, 0), weights


def _cross_entropy(logits, labels, weights):
    """Weighted softmax cross-entropy and its gradient w.r.t. the logits.

    loss = sum_{b,t} weights[b,t] * (logsumexp(logits[b,t]) - logits[b,t,label]),
    dloss/dlogits = (softmax(logits) - onehot(label)) * weights.
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    value = float(-(weights * picked).sum())
    onehot = labels[..., None] == np.arange(logits.shape[-1])
    d_logits = (np.exp(log_probs) - onehot) * weights[..., None]
    return value, d_logits


def _forward_loss(kind, params, readout, xs, labels, carry0, lengths, mode, activation, reset_after):
    _check_choice("mode", mode, _MODES)
    prob = _setup(kind, params, xs, carry0, lengths, activation, reset_after)
    readout = _check_readout(readout, prob.carry0["h"].shape[1])
    _, ys, _ = _run(prob)
    logits = ys @ readout["w"] + readout["b"]
    grid, weights = _label_grid(labels, mode, prob, logits.shape[-1])
    value, d_logits = _cross_entropy(logits, grid, weights)
    return prob, readout, ys, value, d_logits


def loss(
    kind,
    params,
    readout,
    xs,
    labels,
    carry0=None,
    *,
    lengths=None,
    mode="many_to_many",
    activation="tanh",
    reset_after=True,
):
    """Softmax cross-entropy of the readout of a recurrent cell.

    Args:
      kind, params, xs, carry0, lengths, activation, reset_after: as in
        ``forward``.
      readout: {"w": (H, V), "b": (V,)}.
      labels: ints in [0, V). mode "many_to_many": (B, T), loss is the mean
        over valid steps (labels at padded steps are ignored). mode
        "many_to_one": (B,), loss is the mean over examples of the loss at each
        example's last valid step.
      mode: "many_to_many" or "many_to_one".

    Returns:
      The loss, a Python float.
    """
    return _forward_loss(kind, params, readout, xs, labels, carry0, lengths, mode, activation, reset_after)[3]


def loss_and_grads(
    kind,
    params,
    readout,
    xs,
    labels,
    carry0=None,
    *,
    lengths=None,
    mode="many_to_many",
    activation="tanh",
    reset_after=True,
):
    """Loss (as in ``loss``) and its hand-derived gradients.

    Returns:
      (loss, grads) with grads = {"params": dict like params,
      "readout": {"w": (H, V), "b": (V,)}, "xs": (B, T, I),
      "carry0": dict like the carry}.
    """
    prob, readout, ys, value, d_logits = _forward_loss(
        kind, params, readout, xs, labels, carry0, lengths, mode, activation, reset_after
    )
    # logits = ys @ w + b  =>  dw = sum_{b,t} ys^T dlogits, db = sum dlogits,
    # dys = dlogits w^T.
    d_readout = {
        "w": np.einsum("bth,btv->hv", ys, d_logits),
        "b": d_logits.sum(axis=(0, 1)),
    }
    dys = d_logits @ readout["w"].T
    d_final = {k: np.zeros_like(v) for k, v in prob.carry0.items()}
    grads = _bptt(prob, dys, d_final)
    grads["readout"] = d_readout
    return value, grads


# --------------------------------------------------------------------------
# Public API: gradient-checking utilities
# --------------------------------------------------------------------------


def _tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_map(fn, v) for v in tree)
    return fn(tree)


def numerical_grad(f, arrays, eps=1e-6):
    """Central finite-difference gradient of a scalar function.

    Args:
      f: callable taking a structure like ``arrays`` and returning a scalar.
      arrays: array, or (possibly nested) dict / list / tuple of arrays.
      eps: perturbation size (absolute).

    Returns:
      The same structure, each leaf a float64 array of df/d(leaf),
      (f(a + eps) - f(a - eps)) / (2 eps) per element. ``f`` is evaluated on
      float64 copies, so the caller's arrays are never modified.
    """
    work = _tree_map(lambda a: np.array(a, dtype=np.float64), arrays)

    def leaf_grad(a):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            orig = a[idx]
            a[idx] = orig + eps
            f_plus = float(f(work))
            a[idx] = orig - eps
            f_minus = float(f(work))
            a[idx] = orig
            g[idx] = (f_plus - f_minus) / (2.0 * eps)
        return g

    return _tree_map(leaf_grad, work)


def _leaf_pairs(a, b, path):
    if isinstance(b, dict):
        if not isinstance(a, dict) or set(a) != set(b):
            raise ValueError(f"structures differ at {path or 'root'}")
        for k in b:
            yield from _leaf_pairs(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        if not isinstance(a, (list, tuple)) or len(a) != len(b):
            raise ValueError(f"structures differ at {path or 'root'}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _leaf_pairs(x, y, f"{path}[{i}]")
    else:
        yield path, a, b


def max_relative_error(a, b):
    """Largest norm-wise relative error between two matching structures.

    Args:
      a: array, or (possibly nested) dict / list / tuple of arrays.
      b: the reference, with the same structure and leaf shapes.

    Returns:
      max over leaves of max|a - b| / max(max|b|, tiny), a float (0.0 for
      empty structures).
    """
    tiny = np.finfo(np.float64).tiny
    worst = 0.0
    for path, x, y in _leaf_pairs(a, b, ""):
        x, y = _f64(x), _f64(y)
        if x.shape != y.shape:
            raise ValueError(f"shapes differ at {path or 'root'}: {x.shape} vs {y.shape}")
        if y.size == 0:
            continue
        err = float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), tiny))
        if np.isnan(err):
            return float("nan")
        worst = max(worst, err)
    return worst
