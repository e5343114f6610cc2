"""The sweep of `experiments.gradient_norms`: the cell variants, their draws, ‖∂L_T/∂h_t‖ at every lag from
one backward pass per sweep point (`parallel.sweep_map`), the decay-rate fits, and the rate each long-memory
kind predicts for itself (`predictions`). `cfg` is the experiment's `Config` throughout.

The classic variants (`VARIANTS`) sweep a gain × init grid of recurrent matrices: the field `GAINED_FIELD`
of their params (W_hh <[H, G·H]>, every gate block) is replaced by g·(the draw). The long-memory variants
(`OWN_INIT`) have no such matrix to scale: they run at their kind's own initialisation (gain 1, init "own"),
with the params fields their entry names set to a constant, and their whole carry is measured (the LRU's
complex state s = h + i·h_im as its two real fields).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.gradient_norms_plots import OWN
from rnnjax import cells, diagnostics, readout
from rnnjax.train import parallel
from rnnjax.unrolling import unroll

# The classic variants: name -> (kind, options of `cells.make`) (`experiments.lyapunov` sweeps them too).
VARIANTS = {
    "simple-linear": ("simple", dict(activation="linear")),
    "simple-tanh": ("simple", dict(activation="tanh")),
    "simple-sigmoid": ("simple", dict(activation="sigmoid")),
    "lstm-fb0": ("lstm", dict(forget_bias=0.0)),
    "lstm-fb1": ("lstm", dict(forget_bias=1.0)),
    "gru": ("gru", {}),
}
# The params field of every classic variant that the gain × init axes replace.
GAINED_FIELD = "w_hh"


class Own(NamedTuple):
    """A variant run at its kind's own initialisation."""

    kind: str
    options: dict  # of `cells.make`
    fixed: dict  # params fields set to a constant after init
    linear: bool  # linear in its carry: log10 ρ(W) is its exact long-lag rate (else only a bound)


OWN_INIT = {
    # modReLU(z, b = 0) = sign(z)·|z| = z: the orthogonal linear RNN, ‖∂L/∂h_t‖ constant in t (WᵀW = I)
    "orthogonal-linear": Own("orthogonal", dict(activation="modrelu"), dict(b=0.0), linear=True),
    "orthogonal": Own("orthogonal", dict(activation="modrelu"), {}, linear=False),
    "lru": Own("lru", {}, {}, linear=True),
    "mingru": Own("mingru", {}, {}, linear=True),
    "minlstm": Own("minlstm", {}, {}, linear=True),
}
CELLS = {**VARIANTS, **{name: (own.kind, own.options) for name, own in OWN_INIT.items()}}
INITS = ("orthogonal", "gaussian")


def init_names(cfg) -> tuple[str, ...]:
    """The init axis of the classics: `cfg.inits` for the default preset, else the preset's own W_hh."""
    return tuple(cfg.inits) if cfg.preset == "default" else (cfg.preset,)


def axes_of(cfg, name: str) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """(gains, inits) of variant `name`: the swept ones for a classic, (1.0,), ("own",) otherwise."""
    return (tuple(cfg.gains), init_names(cfg)) if name in VARIANTS else ((1.0,), (OWN,))


def make_cell(cfg, name: str, dtype=None) -> cells.Cell:
    kind, options = CELLS[name]
    dtype = dtype or (jnp.float64 if cfg.float64 else jnp.float32)
    if name in VARIANTS:  # (the own-init kinds take no preset: `validate` refuses one)
        options = dict(options, preset=cfg.preset)
    return cells.make(kind, cfg.hidden_size, dtype=dtype, **options)


def draws(cfg, name: str) -> dict:
    """Per seed (leading axis, the same seeds for every cell): variant `name`'s params (JAX, key `seed`,
    its fixed fields set), and from NumPy's generator seeded (seed, i): for a classic G <[seed, H, G·H]>
    with entries N(0, 1/H), then unit-scale inputs z <[seed, T_max, I]> and the unit vector u <[seed, H]>;
    with the cross-entropy loss also a readout head and a label."""
    cell = make_cell(cfg, name)
    H, I, T_max = cfg.hidden_size, cfg.input_size, max(cfg.lengths)
    # The run's dtype (not `initial_carry()`'s float32 default: float32 inputs would make the carry
    # gradients float32 under --float64, flushed at float32's floor).
    dtype = np.dtype(np.float64 if cfg.float64 else np.float32)
    keys = jax.random.split(jax.random.key(cfg.seed), cfg.seeds)
    params = jax.device_get(jax.jit(jax.vmap(lambda k: cell.init(k, I)))(keys))
    fixed = OWN_INIT[name].fixed if name in OWN_INIT else {}
    d = dict(params=params._replace(**{f: np.full_like(getattr(params, f), v) for f, v in fixed.items()}))
    gauss, z, u = [], [], []
    for i in range(cfg.seeds):
        rng = np.random.default_rng([cfg.seed, i])
        if name in VARIANTS:
            gauss.append(rng.standard_normal(getattr(params, GAINED_FIELD).shape[1:]) / np.sqrt(H))
        z.append(rng.standard_normal((T_max, I)))
        u.append(rng.standard_normal(H))
    u = np.asarray(u)
    d.update(
        gauss=np.asarray(gauss, dtype),
        z=np.asarray(z, dtype),
        u=(u / np.linalg.norm(u, axis=-1, keepdims=True)).astype(dtype),
    )
    if cfg.loss == "cross_entropy":
        head_keys = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), 1), cfg.seeds)
        d["head"] = jax.device_get(
            jax.jit(jax.vmap(lambda k: readout.dense_init(k, H, cfg.classes, dtype=dtype)))(head_keys)
        )
        d["label"] = np.asarray(
            [np.random.default_rng([cfg.seed, i, 1]).integers(cfg.classes) for i in range(cfg.seeds)]
        )
    return d


def recurrent_matrices(cfg, d: dict) -> np.ndarray:
    """A classic's W_hh <[gain, init, seed, H, G·H]>: gain × (the preset's W_hh, or G for "gaussian")."""
    own = getattr(d["params"], GAINED_FIELD)
    w = np.stack([d["gauss"] if name == "gaussian" else own for name in init_names(cfg)])
    gains = np.asarray(cfg.gains)[:, None, None, None, None]
    return (gains * w[None]).astype(w.dtype)


def block_spectra(w_hh: np.ndarray, num_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """(σ_max, ρ) of W_hh <[..., H, G·H]>: the largest singular value and the largest |eigenvalue| of each
    (H, H) gate block, the largest over blocks, in float64, <[...]>."""
    blocks = np.stack(np.split(w_hh.astype(np.float64), num_blocks, axis=-1))
    sigma = np.linalg.norm(blocks, ord=2, axis=(-2, -1)).max(axis=0)
    rho = np.abs(np.linalg.eigvals(blocks)).max(axis=-1).max(axis=0)
    return sigma, rho


def gradient_fn(cfg, cell: cells.Cell, name: str):
    """`point -> (∂L_T/∂h_t <[T, H]>, ∂L_T/∂W_hh)` for one sweep point (params, xs <[T, I]>, u, head,
    label) of a classic, the loss on the last step; `(∂L_T/∂c_t <[T, fields·H]>, None)` (the whole carry)
    for an own-init variant."""

    def grads(point):
        def loss_fn(ys):  # ys <[T, H]>
            if cfg.loss == "linear":  # L_T = <u, y_T>, u a random unit vector
                return ys[-1] @ point["u"]
            return readout.cross_entropy(readout.dense(point["head"], ys[-1]), point["label"])

        _, g_params, g_carry = diagnostics.loss_and_hidden_state_grads(
            cell, point["params"], point["xs"], loss_fn
        )
        if name in VARIANTS:
            return g_carry.h, getattr(g_params, GAINED_FIELD)
        return jnp.concatenate(list(g_carry), axis=-1), None

    return grads


def sweep_points(cfg, d: dict, w_hh, T: int, scales=None, dtype=None, name: str = "simple-linear") -> dict:
    """Every (gain, init, scale, seed) of length T flattened into one leading axis N (in that order): the
    params (a classic's with its W_hh from `w_hh`), xs = scale · z[:T] <[N, T, I]>, u, head and label."""
    scales = cfg.input_scales if scales is None else scales
    gains, inits = axes_of(cfg, name)
    shape = (len(gains), len(inits), len(scales), cfg.seeds)
    gi, ii, ci, si = (a.ravel() for a in np.meshgrid(*map(np.arange, shape), indexing="ij"))
    pick = jax.tree_util.tree_map(
        lambda a: a[si], {k: d[k] for k in ("params", "u", "head", "label") if k in d}
    )
    if name in VARIANTS:
        pick["params"] = pick["params"]._replace(**{GAINED_FIELD: w_hh[gi, ii, si]})
    pick["xs"] = np.asarray(scales, np.float64)[ci, None, None] * d["z"][si, :T]
    if dtype is not None:
        pick = jax.tree_util.tree_map(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a, pick)
    else:
        pick["xs"] = pick["xs"].astype(d["z"].dtype)
    return pick


def sweep_cell(cfg, name: str, *, lengths=None, scales=None, dtype=None, d=None) -> dict:
    """Every gain × init × input scale × seed of variant `name`, one `parallel.sweep_map` call per T.

    Weights and inputs are drawn per seed in the run's dtype (the same draws for every gain, init, scale and
    T; T uses the first T inputs) and scaled on the host. `dtype` (e.g. float64) recomputes the same draws
    in another precision. Returns a dict keyed by T of NumPy arrays indexed [gain, init, scale, seed, ...]:
    "log10_norm_by_lag" log10 ‖∂L_T/∂h_t‖ at lag T − t <[..., T]>; for a classic also "log10_grad_w_hh"
    log10 ‖∂L_T/∂W_hh‖_F, and "sigma_max", "radius" <[gain, init, seed]>: σ_max and ρ of W_hh (largest
    over gate blocks).
    """
    lengths = cfg.lengths if lengths is None else lengths
    scales = cfg.input_scales if scales is None else scales
    cell = make_cell(cfg, name)
    d = draws(cfg, name) if d is None else d
    gained = name in VARIANTS
    w_hh = recurrent_matrices(cfg, d) if gained else None
    run_cell = cell if dtype is None else make_cell(cfg, name, dtype)
    shape = (*map(len, axes_of(cfg, name)), len(scales), cfg.seeds)
    out = {}
    for T in lengths:  # (an overflowed float64 norm is +inf, which is what log10_norm reports)
        g_h, g_w = parallel.sweep_map(
            gradient_fn(cfg, run_cell, name), sweep_points(cfg, d, w_hh, T, scales, dtype, name)
        )
        with np.errstate(over="ignore"):
            out[T] = dict(log10_norm_by_lag=diagnostics.log10_norm(g_h).reshape(*shape, T)[..., ::-1])
            if gained:
                out[T]["log10_grad_w_hh"] = diagnostics.log10_norm(g_w.reshape(len(g_w), -1)).reshape(shape)
    if gained:
        sigma, rho = block_spectra(w_hh, len(cell.gates))
        for entry in out.values():
            entry.update(sigma_max=sigma, radius=rho)
    return out


def backend_facts() -> dict:
    """The backend that ran, and whether it flushes float32 subnormals to zero: a jitted multiply of the
    smallest normal float32 (1.18e-38) by 0.5 gives 0 where subnormals are flushed (XLA:CPU), 5.9e-39 where
    they are kept (gradual underflow, e.g. NVIDIA GPUs)."""
    tiny = np.float32(np.finfo(np.float32).tiny)
    halved = float(jax.jit(lambda x: x * np.float32(0.5))(tiny))
    return dict(
        platform=jax.default_backend(),
        device_kind=jax.devices()[0].device_kind,
        device_count=jax.device_count(),
        float32_smallest_normal=float(tiny),
        smallest_normal_times_half=halved,
        flushes_subnormals=halved == 0.0,
    )


def _quartiles(w: np.ndarray) -> dict:
    """Median and quartiles (linearly interpolated) of `w` <[seed]>."""
    return dict(median=float(np.median(w)), q25=float(np.quantile(w, 0.25)), q75=float(np.quantile(w, 0.75)))


def _smallest_finite(curves: np.ndarray) -> float | None:
    finite = curves[np.isfinite(curves)]
    return float(finite.min()) if finite.size else None


# Curves by lag are stored to this many decimals of log10 (they are only drawn; the fits use every digit).
CURVE_DECIMALS = 4


def summarise(cfg, raw: dict, dtype) -> dict:
    """Per (cell, init, input scale, gain): curves by lag at the longest T (median and quartiles over
    seeds, and the smallest finite value), decay-rate fits per T on the window `fit_bounds(dtype)`
    (`diagnostics.decay_stats`); for the classics ‖∂L/∂W_hh‖ per T (median and quartiles) and per (cell,
    init, gain) σ_max and ρ of every seed's W_hh; per cell its γ."""
    T_max, bounds = max(cfg.lengths), diagnostics.fit_bounds(dtype)
    out: dict = dict(curves={}, decay={}, grad_w_hh={}, sigma_max={}, spectral_radius={}, gamma={})
    for name in cfg.cells:
        gains, inits = axes_of(cfg, name)
        sections = ("curves", "decay", *(("grad_w_hh", "sigma_max", "spectral_radius") * (name in VARIANTS)))
        for section in sections:
            out[section][name] = {init: {} for init in inits}
        out["gamma"][name] = make_cell(cfg, name).gamma  # the kind's γ = max |φ'| (None: no such bound)
        for (gi, gain), (ii, init) in itertools.product(enumerate(gains), enumerate(inits)):
            g = str(gain)
            if name in VARIANTS:
                out["sigma_max"][name][init][g] = raw[name][T_max]["sigma_max"][gi, ii]
                out["spectral_radius"][name][init][g] = raw[name][T_max]["radius"][gi, ii]
            for ci, scale in enumerate(cfg.input_scales):
                s = str(float(scale))
                at = {str(T): {k: v[gi, ii, ci] for k, v in a.items() if k.startswith("log10")}
                      for T, a in raw[name].items()}  # fmt: skip
                last = at[str(T_max)]["log10_norm_by_lag"]  # [seed, T_max]
                q = diagnostics.log_norm_quartiles(last, axis=0)
                curves = {k: np.round(q[k], CURVE_DECIMALS) for k in ("median", "q25", "q75")}
                curves["smallest_finite"] = _smallest_finite(last)
                out["curves"][name][init].setdefault(s, {})[g] = curves
                out["decay"][name][init].setdefault(s, {})[g] = {
                    T: diagnostics.decay_stats(a["log10_norm_by_lag"], bounds=bounds) for T, a in at.items()
                }
                if name in VARIANTS:
                    out["grad_w_hh"][name][init].setdefault(s, {})[g] = {
                        T: _quartiles(a["log10_grad_w_hh"]) for T, a in at.items()
                    }
    return out


def float64_rerun(cfg, name: str, d: dict | None = None) -> dict:
    """A linear variant on the run's own float32 draws, recomputed in float64 at the longest T and input
    scale 1 (a linear cell's gradients do not depend on the inputs): per init and gain the decay fit on
    float64's window and the smallest finite norm. `d`: the float32 sweep's draws (default: drawn again)."""
    T_max = max(cfg.lengths)
    d = draws(cfg, name) if d is None else d  # float32 draws, as in the sweep
    with jax.enable_x64(True):
        raw = sweep_cell(cfg, name, lengths=(T_max,), scales=(1.0,), dtype=jnp.float64, d=d)[T_max]
    out = {}
    gains, inits = axes_of(cfg, name)
    for (gi, gain), (ii, init) in itertools.product(enumerate(gains), enumerate(inits)):
        curves = raw["log10_norm_by_lag"][gi, ii, 0]
        stats = diagnostics.decay_stats(curves, bounds=diagnostics.fit_bounds(np.float64))
        out.setdefault(init, {})[str(gain)] = dict(stats, smallest_finite=_smallest_finite(curves))
    return out


def memory_gates(cell: cells.Cell):
    """`point -> <[T, H]>`: the memory gate (`cell.memory_gate`, e.g. the min cells' "keep", the factor
    ∂h_t/∂h_{t−1} = diag(keep_t)) at every step of the point's trajectory, from `cell.gate_values`."""

    def gates(point):
        xs = point["xs"]
        carries, _ = unroll(cell, point["params"], xs, return_carries=True)
        first = cell.initial_carry((), xs.dtype)
        prev = jax.tree_util.tree_map(lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]]), first, carries)
        return cell.gate_values(point["params"], prev, xs)[cell.memory_gate]

    return gates


def predictions(cfg, name: str, d: dict, curves: np.ndarray, dtype) -> dict:
    """The decay rate an own-init variant predicts for itself, per input scale and seed, beside the rates
    measured on its curves at the longest T, `curves` <[scale, seed, T]> (lag 0 first).

    A kind with fixed recurrent matrices (`cell.recurrent_matrices`: the orthogonal cell, the LRU) predicts
    log10 ρ, ρ the largest |eigenvalue| (`diagnostics.recurrent_spectrum`, max over blocks): for a cell
    linear in its carry with a normal W (orthogonal with b = 0, the LRU's diagonal λ) the gradient at lag k
    is a sum of |λ_j|^k terms, so the local rate rises to log10 max|λ| as the slowest unit takes over; it is
    compared with the rate at long lags (the fit on the last half of the window). With modReLU and b ≠ 0
    ("linear": False) it is only an upper bound, as is the Pascanu bound log10 γσ_max at every lag.

    A kind whose recurrence is its input-dependent memory gate (minGRU, minLSTM: ∂h_t/∂h_{t−1} =
    diag(keep_t)) predicts max_j mean_t log10 keep_{t,j} over the steps of the fit window: the unit whose
    gate product Π keep shrinks slowest dominates, and the log of a product is a sum of logs, so the
    geometric (not the arithmetic) mean sets the rate; it is compared with the rate fitted on the whole
    window. "log10_mean_keep" is log10 E[keep] over units and steps, for contrast (Jensen: E log keep ≤
    log E keep).
    """
    cell, T = make_cell(cfg, name), max(cfg.lengths)
    params = [type(d["params"])(*(a[i] for a in d["params"])) for i in range(cfg.seeds)]  # per seed
    out: dict = dict(gamma=cell.gamma, linear=OWN_INIT[name].linear, scales={})
    if cell.recurrent_matrices(params[0]):
        spectra = [diagnostics.recurrent_spectrum(cell, p).values() for p in params]
        out.update(
            basis="radius",
            log10_radius=[float(np.log10(max(b["spectral_radius"] for b in s))) for s in spectra],
            log10_sigma_max=[float(np.log10(max(b["sigma_max"] for b in s))) for s in spectra],
        )
    elif cell.memory_gate is not None:
        out["basis"] = "gates"
        points = sweep_points(cfg, d, None, T, name=name)
        gates = memory_gates(cells.with_precision(cell, diagnostics.MEASURE_PRECISION))
        keep = parallel.sweep_map(gates, points).astype(np.float64)
        keep = keep.reshape(len(cfg.input_scales), cfg.seeds, T, -1)  # [scale, seed, step, H]
    else:
        raise ValueError(f"cells: {name!r} predicts no rate (no recurrent matrix and no memory gate)")
    out["compared"] = "long_lag_rate" if out["basis"] == "radius" else "rate"
    bounds, lags = diagnostics.fit_bounds(dtype), np.arange(T)
    for ci, scale in enumerate(cfg.input_scales):
        entry: dict = {k: [] for k in ("rate", "long_lag_rate", "last_lag", "predicted")}
        if out["basis"] == "gates":
            entry["log10_mean_keep"] = []
        for si, curve in enumerate(curves[ci]):
            fit = diagnostics.decay_rate(lags, curve, bounds=bounds)
            last = fit.last_fitted_lag or 0
            tail = diagnostics.decay_rate(lags[last // 2 : last + 1], curve[last // 2 : last + 1])
            entry["rate"].append(fit.slope)
            entry["long_lag_rate"].append(tail.slope)
            entry["last_lag"].append(last)
            if out["basis"] == "radius":
                entry["predicted"].append(out["log10_radius"][si])
            else:  # the steps whose gates multiply the gradient at lags 1..last
                window = keep[ci, si, T - last :]
                entry["predicted"].append(float(np.log10(window).mean(0).max()) if last else np.nan)
                entry["log10_mean_keep"].append(float(np.log10(window.mean())) if last else np.nan)
        out["scales"][str(float(scale))] = entry
    return out
