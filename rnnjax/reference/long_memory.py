"""Cells built for long memory, in NumPy, each step with its hand-derived backward.

- "orthogonal": expRNN, h = act(x W_ih + h_prev W) with W = expm(A - A^T) orthogonal
  (Lezcano-Casado & Martínez-Rubio 2019, "Cheap orthogonal constraints in neural networks").
- "lru": the Linear Recurrent Unit, a complex diagonal linear recurrence with a real readout
  (Orvieto et al. 2023, "Resurrecting recurrent neural networks for long sequences").
- "mingru" and "minlstm": gates that read only the input, so the recurrence is linear in h
  (Feng et al. 2024, "Were RNNs all we needed?").

Kernels are ``(in, out)`` (row vectors, ``x @ W``), gate blocks fused along the last axis. See ``_float64``
for the step contract. The matrix exponential and the adjoint of its Fréchet derivative are written here
(float64 scaling and squaring), so that nothing depends on SciPy.
"""

from __future__ import annotations

import numpy as np

from ._float64 import Kind, SizeFrom, sigmoid, split

# --------------------------------------------------------------------------
# Matrix exponential and its gradient
# --------------------------------------------------------------------------

_EXPM_TERMS = 20  # Taylor terms after scaling to norm <= 1/2: remainder <= 0.5^21 / 21! ~ 1e-26
_EXPM_SCALED_NORM = 0.5


def expm(m):
    """Matrix exponential of a square float64 matrix by scaling and squaring.

    exp(M) = (exp(M / 2^s))^(2^s), with s the smallest integer making ||M / 2^s||_1 <= 1/2, and
    exp(M / 2^s) summed as a Taylor series of ``_EXPM_TERMS`` terms.

    Args:
      m: (n, n).

    Returns:
      (n, n), exp(m).
    """
    m = np.asarray(m, dtype=np.float64)
    norm = float(np.abs(m).sum(axis=0).max()) if m.size else 0.0
    squarings = max(0, int(np.ceil(np.log2(norm / _EXPM_SCALED_NORM)))) if norm > 0 else 0
    x = m / 2.0**squarings
    term = np.eye(m.shape[0])
    out = term.copy()
    for k in range(1, _EXPM_TERMS + 1):
        term = term @ x / k
        out = out + term
    for _ in range(squarings):
        out = out @ out
    return out


def expm_frechet_adjoint(s, g):
    """Gradient w.r.t. S of a loss whose gradient w.r.t. W = expm(S) is G.

    The Fréchet derivative of expm at S in direction E is
        L(S, E) = int_0^1 expm(u S) E expm((1 - u) S) du,
    and under the Frobenius inner product <G, L(S, E)> = <L(S^T, G), E> (move each factor across:
    expm(u S)^T = expm(u S^T)). So dS = L(S^T, G), and L(X, E) is the upper-right block of
        expm([[X, E], [0, X]]) = [[expm(X), L(X, E)], [0, expm(X)]]
    (Higham 2008, "Functions of Matrices", thm. 3.6; Lezcano-Casado & Martínez-Rubio 2019, prop. 4.3).

    Args:
      s: (n, n), the point S.
      g: (n, n), dLoss/dW.

    Returns:
      (n, n), dLoss/dS.
    """
    n = s.shape[0]
    block = np.block([[s.T, g], [np.zeros((n, n)), s.T]])
    return expm(block)[:n, n:]


# --------------------------------------------------------------------------
# "orthogonal" (expRNN): z = x W_ih + h_prev W, W = expm(A - A^T)
#   modrelu: h = sign(z) max(|z| + b, 0);   tanh: h = tanh(z + b)
# --------------------------------------------------------------------------


def _orthogonal_expand(params, opts):
    a = params["a"]
    return {"w_ih": params["w_ih"], "w": expm(a - a.T), "b": params["b"]}


def _orthogonal_expand_back(params, d, opts):
    # W = expm(S), S = A - A^T.  dS = L(S^T, dW) (see expm_frechet_adjoint), and
    # dA = dS - dS^T since S is linear in A with dS/dA_ij = e_i e_j^T - e_j e_i^T.
    a = params["a"]
    d_s = expm_frechet_adjoint(a - a.T, d["w"])
    return {"w_ih": d["w_ih"], "a": d_s - d_s.T, "b": d["b"]}


def _orthogonal_step(p, x, carry, opts):
    z = x @ p["w_ih"] + carry["h"] @ p["w"]
    if opts["activation"] == "modrelu":
        h = np.sign(z) * np.maximum(np.abs(z) + p["b"], 0.0)
    else:
        h = np.tanh(z + p["b"])
    return {"h": h}, h, (x, carry["h"], z, h)


def _orthogonal_back(p, cache, d_new, dy, opts):
    # modrelu, where |z| + b > 0: h = sign(z) |z| + sign(z) b = z + sign(z) b, so dh/dz = 1 (for
    # z != 0; sign is piecewise constant) and dh/db = sign(z); elsewhere h = 0 and both are 0.
    # tanh: dh/dz = dh/db = 1 - h^2.  Then z = x W_ih + h_prev W gives the affine gradients.
    x, h_prev, z, h = cache
    dh = d_new["h"] + dy
    if opts["activation"] == "modrelu":
        active = (np.abs(z) + p["b"] > 0.0) & (z != 0.0)
        dz = np.where(active, dh, 0.0)
        db = np.where(active, dh * np.sign(z), 0.0)
    else:
        dz = dh * (1.0 - h**2)
        db = dz
    d_params = {"w_ih": x.T @ dz, "w": h_prev.T @ dz, "b": db.sum(axis=0)}
    return d_params, dz @ p["w_ih"].T, {"h": dz @ p["w"].T}


# --------------------------------------------------------------------------
# "lru": s = lambda s_prev + gamma (x (B_re + i B_im)),  y = Re(s (C_re + i C_im)) + x D,
#   lambda = exp(-exp(nu) + i theta),  gamma = sqrt(1 - |lambda|^2) (normalize) or 1.
# In real arithmetic, with s = h + i h_im, u = x B_re, v = x B_im:
#   h'    = lam_re h - lam_im h_im + gamma u
#   h_im' = lam_re h_im + lam_im h + gamma v
#   y     = h' C_re - h_im' C_im + x D
# --------------------------------------------------------------------------


def _lru_expand(params, opts):
    r = np.exp(-np.exp(params["nu"]))  # |lambda|, in (0, 1)
    theta = params["theta"]
    gamma = np.sqrt(1.0 - r**2) if opts["normalize"] else np.ones_like(r)
    p = {k: params[k] for k in ("b_re", "b_im", "c_re", "c_im", "d")}
    return {**p, "lam_re": r * np.cos(theta), "lam_im": r * np.sin(theta), "gamma": gamma}


def _lru_expand_back(params, d, opts):
    # lam_re = r cos(theta), lam_im = r sin(theta):
    #   dr = d_lam_re cos(theta) + d_lam_im sin(theta),
    #   dtheta = -d_lam_re r sin(theta) + d_lam_im r cos(theta).
    # gamma = sqrt(1 - r^2) => dr += dgamma (-r / gamma).  r = exp(-exp(nu)) => dnu = dr (-r exp(nu)).
    nu, theta = params["nu"], params["theta"]
    r = np.exp(-np.exp(nu))
    dr = d["lam_re"] * np.cos(theta) + d["lam_im"] * np.sin(theta)
    if opts["normalize"]:
        dr = dr - d["gamma"] * r / np.sqrt(1.0 - r**2)
    d_params = {k: d[k] for k in ("b_re", "b_im", "c_re", "c_im", "d")}
    d_params["nu"] = dr * (-r * np.exp(nu))
    d_params["theta"] = r * (d["lam_im"] * np.cos(theta) - d["lam_re"] * np.sin(theta))
    return d_params


def _lru_step(p, x, carry, opts):
    h, h_im = carry["h"], carry["h_im"]
    u, v = x @ p["b_re"], x @ p["b_im"]
    new_h = p["lam_re"] * h - p["lam_im"] * h_im + p["gamma"] * u
    new_im = p["lam_re"] * h_im + p["lam_im"] * h + p["gamma"] * v
    y = new_h @ p["c_re"] - new_im @ p["c_im"] + x @ p["d"]
    return {"h": new_h, "h_im": new_im}, y, (x, h, h_im, u, v, new_h, new_im)


def _lru_back(p, cache, d_new, dy, opts):
    # The new state gets its carried gradient plus the readout's: with P, Q the totals for h', h_im',
    #   P = d_new_h + dy C_re^T,  Q = d_new_h_im - dy C_im^T.
    # Then, reading the equations above term by term (sums over the batch for the (H,) parameters):
    #   d lam_re = sum(P h + Q h_im),  d lam_im = sum(Q h - P h_im),  d gamma = sum(P u + Q v),
    #   du = gamma P, dv = gamma Q,  dh = lam_re P + lam_im Q,  dh_im = lam_re Q - lam_im P.
    x, h, h_im, u, v, new_h, new_im = cache
    big_p = d_new["h"] + dy @ p["c_re"].T
    big_q = d_new["h_im"] - dy @ p["c_im"].T
    du, dv = p["gamma"] * big_p, p["gamma"] * big_q
    d_params = {
        "lam_re": (big_p * h + big_q * h_im).sum(axis=0),
        "lam_im": (big_q * h - big_p * h_im).sum(axis=0),
        "gamma": (big_p * u + big_q * v).sum(axis=0),
        "b_re": x.T @ du,
        "b_im": x.T @ dv,
        "c_re": new_h.T @ dy,
        "c_im": -(new_im.T @ dy),
        "d": x.T @ dy,
    }
    dx = du @ p["b_re"].T + dv @ p["b_im"].T + dy @ p["d"].T
    d_prev = {
        "h": p["lam_re"] * big_p + p["lam_im"] * big_q,
        "h_im": p["lam_re"] * big_q - p["lam_im"] * big_p,
    }
    return d_params, dx, d_prev


# --------------------------------------------------------------------------
# "mingru": z = sigma(x W_z + b_z), h~ = x W_h + b_h, h = (1 - z) h_prev + z h~
# --------------------------------------------------------------------------


def _input_grads(p, x, d_proj):
    """Grads of proj = x W_ih + b w.r.t. W_ih, b and x."""
    return {"w_ih": x.T @ d_proj, "b": d_proj.sum(axis=0)}, d_proj @ p["w_ih"].T


def _mingru_step(p, x, carry, opts):
    a_z, cand = split(x @ p["w_ih"] + p["b"], 2)
    z = sigmoid(a_z)
    h = (1.0 - z) * carry["h"] + z * cand
    return {"h": h}, h, (x, carry["h"], z, cand)


def _mingru_back(p, cache, d_new, dy, opts):
    # dz = dh (h~ - h_prev), da_z = dz z (1 - z), dh~ = dh z, dh_prev = dh (1 - z).
    x, h_prev, z, cand = cache
    dh = d_new["h"] + dy
    d_proj = np.concatenate([dh * (cand - h_prev) * z * (1.0 - z), dh * z], axis=-1)
    d_params, dx = _input_grads(p, x, d_proj)
    return d_params, dx, {"h": dh * (1.0 - z)}


# --------------------------------------------------------------------------
# "minlstm": f = sigma(a_f), i = sigma(a_i), f' = f / (f + i), i' = i / (f + i), h~ = a_h,
#   h = f' h_prev + i' h~, with [a_f, a_i, a_h] = x W_ih + b
# --------------------------------------------------------------------------


def _minlstm_step(p, x, carry, opts):
    a_f, a_i, cand = split(x @ p["w_ih"] + p["b"], 3)
    f, i = sigmoid(a_f), sigmoid(a_i)
    f_n, i_n = f / (f + i), i / (f + i)
    h = f_n * carry["h"] + i_n * cand
    return {"h": h}, h, (x, carry["h"], f, i, cand)


def _minlstm_back(p, cache, d_new, dy, opts):
    # df' = dh h_prev, di' = dh h~, dh~ = dh i', dh_prev = dh f'.  With S = f + i:
    #   f' = f / S: df'/df = i / S^2, df'/di = -f / S^2;  i' = i / S: di'/df = -i / S^2, di'/di = f / S^2,
    # so df = (df' - di') i / S^2, di = (di' - df') f / S^2, then times sigma' = s (1 - s).
    x, h_prev, f, i, cand = cache
    dh = d_new["h"] + dy
    total = f + i
    d_fn, d_in = dh * h_prev, dh * cand
    df = (d_fn - d_in) * i / total**2
    di = (d_in - d_fn) * f / total**2
    d_proj = np.concatenate([df * f * (1.0 - f), di * i * (1.0 - i), dh * i / total], axis=-1)
    d_params, dx = _input_grads(p, x, d_proj)
    return d_params, dx, {"h": dh * f / total}


# --------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------


def _orthogonal_shapes(n_in, n_hid, opts):
    return {"w_ih": (n_in, n_hid), "a": (n_hid, n_hid), "b": (n_hid,)}


def _lru_shapes(n_in, n_hid, opts):
    return {
        "nu": (n_hid,),
        "theta": (n_hid,),
        "b_re": (n_in, n_hid),
        "b_im": (n_in, n_hid),
        "c_re": (n_hid, n_hid),
        "c_im": (n_hid, n_hid),
        "d": (n_in, n_hid),
    }


def _input_gated_shapes(blocks):
    def shapes(n_in, n_hid, opts):
        return {"w_ih": (n_in, blocks * n_hid), "b": (blocks * n_hid,)}

    return shapes


ORTHOGONAL = Kind(
    carry=("h",),
    shapes=_orthogonal_shapes,
    size=SizeFrom("a", 0, 1, "(H, H)"),
    step=_orthogonal_step,
    step_back=_orthogonal_back,
    options=("activation",),
    activations=("modrelu", "tanh"),
    expand=_orthogonal_expand,
    expand_back=_orthogonal_expand_back,
)
LRU = Kind(
    carry=("h", "h_im"),
    shapes=_lru_shapes,
    size=SizeFrom("nu", 0, 1, "(H,)"),
    step=_lru_step,
    step_back=_lru_back,
    options=("normalize",),
    expand=_lru_expand,
    expand_back=_lru_expand_back,
)
MINGRU = Kind(
    carry=("h",),
    shapes=_input_gated_shapes(2),
    size=SizeFrom("w_ih", 1, 2, "(I, 2H)"),
    step=_mingru_step,
    step_back=_mingru_back,
)
MINLSTM = Kind(
    carry=("h",),
    shapes=_input_gated_shapes(3),
    size=SizeFrom("w_ih", 1, 3, "(I, 3H)"),
    step=_minlstm_step,
    step_back=_minlstm_back,
)
