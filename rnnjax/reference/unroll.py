"""The reference's one table of cell kinds, its masked time loop with hand-written BPTT, and the loss.

Every kind is a ``Kind`` record (``_float64``) from its cell module; nothing here knows one kind's
equations or field names. Variable-length batches are right-padded: a padded step leaves the carry
unchanged and outputs zeros.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import classic, long_memory
from ._float64 import Kind, f64

# The one table keyed by kind.
KINDS: dict[str, Kind] = {
    "simple": classic.SIMPLE,
    "lstm": classic.LSTM,
    "gru": classic.GRU,
    "orthogonal": long_memory.ORTHOGONAL,
    "lru": long_memory.LRU,
    "mingru": long_memory.MINGRU,
    "minlstm": long_memory.MINLSTM,
}
_MODES = ("many_to_many", "many_to_one")
_BOOL_OPTIONS = ("reset_after", "normalize")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def check_choice(name, value, choices, where=""):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}{where}, got {value!r}")


def check_dict(name, d, shapes):
    """Check that ``d`` has exactly the keys of ``shapes`` with those shapes.

    Returns a new dict of float64 arrays.
    """
    if not isinstance(d, dict):
        raise TypeError(f"{name} must be a dict with keys {list(shapes)}, got {type(d).__name__}")
    if set(d) != set(shapes):
        raise ValueError(f"{name} must have keys {list(shapes)}, got {list(d)}")
    out = {}
    for key, shape in shapes.items():
        a = f64(d[key])
        if a.shape != shape:
            raise ValueError(f"{name}[{key!r}] must have shape {shape}, got {a.shape}")
        out[key] = a
    return out


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


def _check_options(kind, spec, options):
    """The options ``spec`` reads, validated; activation None means the kind's default."""
    activation = spec.activations[0] if options["activation"] is None else options["activation"]
    check_choice("activation", activation, spec.activations, f" for kind {kind!r}")
    for name in _BOOL_OPTIONS:
        if not isinstance(options[name], (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {options[name]!r}")
    given = {**{name: bool(options[name]) for name in _BOOL_OPTIONS}, "activation": activation}
    return {name: given[name] for name in spec.options}


def _check_params(kind, spec, params, n_in, opts):
    """Params as float64 arrays of the kind's shapes, and the hidden size H."""
    keys = spec.shapes(n_in, 0, opts)
    form = f"kind {kind!r}"
    if spec.shape_options:
        form += " with " + ", ".join(f"{name}={opts[name]}" for name in spec.shape_options)
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    if set(params) != set(keys):
        raise ValueError(f"params for {form} must have keys {list(keys)}, got {list(params)}")
    size = spec.size
    shape = np.shape(params[size.key])
    if len(shape) != len(keys[size.key]) or shape[size.axis] % size.blocks:
        raise ValueError(f"params[{size.key!r}] must have shape {size.shape} for {form}, got shape {shape}")
    n_hid = shape[size.axis] // size.blocks
    return check_dict("params", params, spec.shapes(n_in, n_hid, opts)), n_hid


# --------------------------------------------------------------------------
# The masked time loop and its backward
# --------------------------------------------------------------------------


class _Problem(NamedTuple):
    spec: Kind
    opts: dict  # the options the kind reads
    params: dict  # float64 arrays, as given
    cell_params: dict  # what the step sees: spec.expand(params) (or params)
    xs: np.ndarray  # (B, T, I) float64
    carry0: dict  # float64 arrays (B, H)
    mask: np.ndarray  # (B, T) bool, True at valid steps
    lengths: np.ndarray  # (B,) int


def _carry_shapes(prob):
    return {k: v.shape for k, v in prob.carry0.items()}


def _setup(kind, params, xs, carry0, lengths, options):
    check_choice("kind", kind, tuple(KINDS))
    spec = KINDS[kind]
    opts = _check_options(kind, spec, options)
    xs = f64(xs)
    if xs.ndim != 3 or xs.shape[0] < 1 or xs.shape[1] < 1:
        raise ValueError(f"xs must have shape (B, T, I) with B >= 1 and T >= 1, got shape {xs.shape}")
    batch, steps, n_in = xs.shape
    params, n_hid = _check_params(kind, spec, params, n_in, opts)

    carry_shapes = {k: (batch, n_hid) for k in spec.carry}
    if carry0 is None:
        carry0 = {k: np.zeros(s) for k, s in carry_shapes.items()}
    else:
        carry0 = check_dict("carry0", carry0, carry_shapes)

    lengths = _check_lengths(lengths, batch, steps)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    cell_params = params if spec.expand is None else spec.expand(params, opts)
    return _Problem(spec, opts, params, cell_params, xs, carry0, mask, lengths)


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
        new, y, cache = prob.spec.step(prob.cell_params, x, carry, prob.opts)
        carry = {k: np.where(m, new[k], carry[k]) for k in carry}
        ys[:, t] = np.where(m, y, 0.0)
        caches.append(cache)
    return carry, ys, caches


def _bptt(prob, dys, d_final):
    """Backward through the masked loop; see ``backward``."""
    _, _, caches = _run(prob)
    d_carry = dict(d_final)
    d_cell = {k: np.zeros_like(v) for k, v in prob.cell_params.items()}
    dxs = np.zeros_like(prob.xs)
    for t in reversed(range(prob.xs.shape[1])):
        m = prob.mask[:, t, None]
        # carry_t = where(m, new, carry_{t-1}) and y_t = where(m, y, 0):
        # at valid steps the gradient flows into the cell's new state and output,
        # at padded steps it passes straight through to carry_{t-1}.
        d_new = {k: np.where(m, d_carry[k], 0.0) for k in d_carry}
        dy = np.where(m, dys[:, t], 0.0)
        dp, dx, d_prev = prob.spec.step_back(prob.cell_params, caches[t], d_new, dy, prob.opts)
        for k in d_cell:
            d_cell[k] += dp[k]
        dxs[:, t] = np.where(m, dx, 0.0)
        d_carry = {k: np.where(m, 0.0, d_carry[k]) + d_prev[k] for k in d_carry}
    if prob.spec.expand_back is None:
        d_params = d_cell
    else:
        d_params = prob.spec.expand_back(prob.params, d_cell, prob.opts)
    return {"params": d_params, "xs": dxs, "carry0": d_carry}


# --------------------------------------------------------------------------
# Public API: cells
# --------------------------------------------------------------------------


def forward(
    kind, params, xs, carry0=None, *, lengths=None, activation=None, reset_after=True, normalize=True
):
    """Run a recurrent cell over a (possibly right-padded) batch of sequences.

    Args:
      kind: one of "simple" (Elman), "lstm", "gru", "orthogonal" (expRNN), "lru", "mingru", "minlstm".
      params: dict of arrays. Kernels are (in, out), gate blocks fused along the last axis.
        simple: w_ih (I,H), w_hh (H,H), b (H,).
        lstm: w_ih (I,4H), w_hh (H,4H), b (4H,), gates i, f, g, o.
        gru: w_ih (I,3H), w_hh (H,3H), b (3H,), gates r, z, n, plus b_hn (H,) when reset_after is True.
        orthogonal: w_ih (I,H), a (H,H), b (H,); the recurrent kernel is expm(a - a^T).
        lru: nu (H,), theta (H,), b_re (I,H), b_im (I,H), c_re (H,H), c_im (H,H), d (I,H).
        mingru: w_ih (I,2H), b (2H,), blocks z, h~.
        minlstm: w_ih (I,3H), b (3H,), blocks f, i, h~.
      xs: inputs, (B, T, I).
      carry0: initial carry, {"h": (B,H)}, plus "c" (B,H) for lstm; lru's is {"h": Re s, "h_im": Im s};
        None means zeros.
      lengths: (B,) ints in [1, T], or None for all T. Steps t >= lengths[b]
        are padding: the carry is unchanged there and the output is zero.
      activation: simple: "tanh" (default), "relu", "linear" or "sigmoid"; orthogonal: "modrelu"
        (default) or "tanh". Other kinds ignore it (and accept simple's choices). None: the default.
      reset_after: GRU form; True applies the reset gate after the recurrent
        matmul (PyTorch/cuDNN/Keras), False before it (Cho et al. 2014). Other kinds ignore it.
      normalize: LRU input scaling; True multiplies the input by sqrt(1 - |lambda|^2), False by 1.
        Other kinds ignore it.

    Returns:
      (final_carry, ys): the carry after each example's last valid step, as a
      dict like carry0, and the outputs ys (B, T, H) (the new hidden states, or the LRU's readout
      Re(s C) + x D; zero at padded steps).
    """
    options = {"activation": activation, "reset_after": reset_after, "normalize": normalize}
    prob = _setup(kind, params, xs, carry0, lengths, options)
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
    activation=None,
    reset_after=True,
    normalize=True,
):
    """Hand-written backpropagation through time for ``forward``.

    Args:
      kind, params, xs, carry0, lengths, activation, reset_after, normalize: as in
        ``forward``.
      dys: (B, T, H), gradient of the loss w.r.t. the outputs ys (entries at
        padded steps are ignored, as ys there are constant zeros).
      d_final_carry: dict like the carry (exactly its keys), gradient of the
        loss w.r.t. the final carry; None means zeros.

    Returns:
      {"params": dict with the keys of params, "xs": (B, T, I) (exactly zero at
      padded steps), "carry0": dict like the carry}.
    """
    options = {"activation": activation, "reset_after": reset_after, "normalize": normalize}
    prob = _setup(kind, params, xs, carry0, lengths, options)
    batch, steps, _ = prob.xs.shape
    n_hid = prob.carry0["h"].shape[1]
    dys = f64(dys)
    if dys.shape != (batch, steps, n_hid):
        raise ValueError(f"dys must have shape {(batch, steps, n_hid)}, got {dys.shape}")
    if d_final_carry is None:
        d_final = {k: np.zeros(s) for k, s in _carry_shapes(prob).items()}
    else:
        d_final = check_dict("d_final_carry", d_final_carry, _carry_shapes(prob))
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
    return check_dict("readout", readout, {"w": w_shape, "b": (w_shape[1],)})


def readout_logits(readout, ys):
    """Dense readout applied at every step.

    Args:
      readout: {"w": (H, V), "b": (V,)}.
      ys: (B, T, H) outputs.

    Returns:
      logits (B, T, V) = ys @ w + b.
    """
    ys = f64(ys)
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


def _forward_loss(kind, params, readout, xs, labels, carry0, lengths, mode, options):
    check_choice("mode", mode, _MODES)
    prob = _setup(kind, params, xs, carry0, lengths, options)
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
    activation=None,
    reset_after=True,
    normalize=True,
):
    """Softmax cross-entropy of the readout of a recurrent cell.

    Args:
      kind, params, xs, carry0, lengths, activation, reset_after, normalize: as in
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
    options = {"activation": activation, "reset_after": reset_after, "normalize": normalize}
    return _forward_loss(kind, params, readout, xs, labels, carry0, lengths, mode, options)[3]


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
    activation=None,
    reset_after=True,
    normalize=True,
):
    """Loss (as in ``loss``) and its hand-derived gradients.

    Returns:
      (loss, grads) with grads = {"params": dict like params,
      "readout": {"w": (H, V), "b": (V,)}, "xs": (B, T, I),
      "carry0": dict like the carry}.
    """
    options = {"activation": activation, "reset_after": reset_after, "normalize": normalize}
    prob, readout, ys, value, d_logits = _forward_loss(
        kind, params, readout, xs, labels, carry0, lengths, mode, options
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
