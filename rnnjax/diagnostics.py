"""Why gradients vanish or explode: per-timestep gradients ∂L/∂carry_t in one backward pass, products of
step Jacobians kept finite by renormalisation and QR, spectra of the recurrent matrix, and gate statistics.

Conventions: a trajectory's carries are c_0 … c_{T-1} (c_t is the carry after reading x_t; the initial
carry is c_{-1}), and J_t = ∂c_t/∂c_{t-1} is the step Jacobian with the carry flattened as one vector
(for the LSTM, [h, c] of length 2H). Norms are reported as log10 so that values far below the float
range stay meaningful; an exact zero (a gradient that underflowed) becomes -inf, never a finite number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks
from rnnjax.cells import Cell, check_cell, check_params, perturbed, with_precision
from rnnjax.unrolling import unroll

__all__ = [
    "DecayFit",
    "FIT_MARGIN_DECADES",
    "LyapunovResult",
    "NUM_FRAMES",
    "WARMUP_FRACTION",
    "decay_rate",
    "decay_stats",
    "fit_bounds",
    "gate_statistics",
    "hidden_state_grads",
    "jacobian_norms",
    "log10_norm",
    "log_norm_quartiles",
    "perturbed",
    "loss_and_hidden_state_grads",
    "model_hidden_state_grads",
    "lyapunov",
    "recurrent_spectrum",
    "step_jacobians",
]


# Diagnostics measure at full float32 matmul precision whatever the global default (TF32 on recent NVIDIA
# GPUs changes float32 gradients by 1e-4 to 1e-3 relative, and the chaotic regime by more).
MEASURE_PRECISION = "highest"


def _measured(fn):
    """Add `precision=MEASURE_PRECISION` to a diagnostic: its cell (or model's cell) and every matmul
    traced inside, forward and backward (the user's `loss_fn` included), run at that precision."""

    @functools.wraps(fn)
    def measured(subject, *args, precision: str | None = MEASURE_PRECISION, **kwargs):
        _checks.check_precision(precision)
        if isinstance(subject, Cell):
            subject = with_precision(subject, precision)
        elif isinstance(getattr(subject, "cell", None), Cell) and hasattr(subject, "clone"):  # a model
            subject = subject.clone(cell=with_precision(subject.cell, precision))
        with _checks.matmul_precision(precision):
            return fn(subject, *args, **kwargs)

    measured.__doc__ = (fn.__doc__ or "") + (
        "\n\n    Every matmul runs at `precision` (default \"highest\", full float32, whatever the global "
        "default);\n    None follows JAX's default."
    )
    return measured


def _cast(tree, dtype):
    if dtype is None:
        return tree
    dtype = _checks.check_float_dtype("dtype", dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype: float64 diagnostics need 64-bit JAX; call jax.config.update('jax_enable_x64', True) first"
        )
    return jax.tree_util.tree_map(lambda a: None if a is None else jnp.asarray(a, dtype), tree)


def _scalar_loss(loss_fn, outputs) -> jax.Array:
    """`loss_fn(outputs)`, which must be a scalar (the quantity whose gradients are measured)."""
    value = loss_fn(outputs)
    if jnp.shape(value) != ():
        raise ValueError(
            f"loss_fn: expected a scalar loss (e.g. a mean), got an output of shape {jnp.shape(value)}"
        )
    return value


def _perturbed_loss(cell, params, xs, loss_fn, carry, lengths, time_major, dtype):
    """`loss(params, eps)` with perturbations eps <[*batch, T, fields·H]> added to every carry, the
    cast params, zero eps, and `unpack(g_eps) -> carry-typed gradients`."""
    check_params(cell, params)
    _checks.check_callable("loss_fn", loss_fn, "a function ys -> scalar loss")
    xs = _checks.check_float_array("xs", xs, "array [*batch, T, I]")
    params, xs, carry = _cast((params, xs, carry), dtype)
    p_cell = perturbed(cell)
    carry_type = type(cell.initial_carry())
    fields = len(carry_type._fields)
    eps = jnp.zeros((*xs.shape[:-1], fields * cell.hidden_size), xs.dtype)

    def loss(params, eps):
        x_and_eps = jnp.concatenate([xs, eps], -1)
        _, ys = unroll(p_cell, params, x_and_eps, carry, lengths=lengths, time_major=time_major)
        return _scalar_loss(loss_fn, ys)

    def unpack(g_eps):
        return carry_type(*jnp.split(g_eps, fields, axis=-1))

    return loss, params, eps, unpack


@_measured
def loss_and_hidden_state_grads(
    cell: Cell,
    params,
    xs,
    loss_fn: Callable[[jax.Array], jax.Array],
    carry=None,
    lengths=None,
    *,
    time_major: bool = False,
    dtype=None,
):
    """Loss, parameter gradients and ∂L/∂c_t for every step t, from a single `jax.value_and_grad`.

    A zero perturbation ε_t is added to the carry after every step (c_t ← c_t + ε_t, so y_t = h_t sees
    it as well); ∂L/∂ε_t is then exactly the total derivative ∂L/∂c_t, through y_t and through every
    later step, and all of them come out of one backward pass.

    Args:
      cell, params, xs, carry, lengths, time_major: as for `rnnjax.unroll`.
      loss_fn: `ys -> scalar`, with ys laid out as `unroll` returns them.
      dtype: compute in this dtype (e.g. jnp.float64); None keeps the inputs' dtype.
    Returns:
      `(loss, param_grads, carry_grads)`: carry_grads has the cell's carry type, each field
      <float>[*batch, T, H] (time-major if `time_major`), zero at padded steps.
    """
    loss, params, eps, unpack = _perturbed_loss(cell, params, xs, loss_fn, carry, lengths, time_major, dtype)
    value, (g_params, g_eps) = jax.value_and_grad(loss, argnums=(0, 1))(params, eps)
    return value, g_params, unpack(g_eps)


@_measured
def hidden_state_grads(
    cell: Cell, params, xs, loss_fn, carry=None, lengths=None, *, time_major=False, dtype=None
):
    """∂L/∂c_t for every step t from one backward pass (see `loss_and_hidden_state_grads`).

    Args:
      cell, params, xs, carry, lengths, time_major: as for `rnnjax.unroll`; xs <float>[*batch, T, I].
      loss_fn: `ys -> scalar`, e.g. `lambda ys: loss_on(ys[..., -1, :])` for a loss on the last step.
      dtype: optional compute dtype.
    Returns:
      The cell's carry type with fields <float>[*batch, T, H]: field h is ∂L/∂h_t (and c is ∂L/∂c_t for
      the LSTM), zero at padded steps.
    """
    loss, params, eps, unpack = _perturbed_loss(cell, params, xs, loss_fn, carry, lengths, time_major, dtype)
    return unpack(jax.grad(loss, argnums=1)(params, eps))


@_measured
def model_hidden_state_grads(model, params, inputs, loss_fn, *, lengths=None, carries=None, dtype=None):
    """∂L/∂c_t for every step t of every layer of a model, from one backward pass.

    The same zero-perturbation method as `loss_and_hidden_state_grads`, applied to each layer of an
    `rnnjax.models.RNNModel` (a trained language model, say): L is any scalar function of the model's
    outputs, and ∂L/∂c_t^(k) is its total derivative with respect to layer k's carry after step t.

    Args:
      model: an `rnnjax.models.RNNModel` with a unidirectional stack.
      params: its params (the tree under "params"; a `{"params": ...}` dict is accepted too).
      inputs: what `model.apply` takes: token ids <int>[B, T] or features <float>[B, T, I].
      loss_fn: `outputs -> scalar`, e.g. the cross-entropy of the last step's logits.
      lengths, carries: passed to the model (right padding; initial carries per layer).
      dtype: compute in this dtype (e.g. jnp.float64); None keeps the params' dtype.
    Returns:
      A tuple with one entry per layer, each of the cell's carry type with fields <float>[B, T, H].
    """
    from rnnjax.models import RNNModel  # here: rnnjax.models imports this module

    if not isinstance(model, RNNModel):
        raise TypeError(f"model: expected an rnnjax.models.RNNModel, got {type(model).__name__}")
    _checks.check_callable("loss_fn", loss_fn, "a function outputs -> scalar loss")
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    params = _cast(params, dtype)
    cell = model.cell
    carry_type = type(cell.initial_carry())
    fields = len(carry_type._fields)
    if jnp.ndim(inputs) < 2:
        raise ValueError(
            f"inputs: expected token ids [B, T] or features [B, T, I], got shape {jnp.shape(inputs)}"
        )
    batch, steps = jnp.shape(inputs)[:2]
    leaf = jax.tree_util.tree_leaves(params)[0]
    eps = tuple(
        jnp.zeros((batch, steps, fields * cell.hidden_size), leaf.dtype) for _ in range(model.num_layers)
    )

    def loss(eps):
        outputs, _ = model.apply({"params": params}, inputs, carries, lengths=lengths, perturbations=eps)
        return _scalar_loss(loss_fn, outputs)

    grads = jax.grad(loss)(eps)
    return tuple(carry_type(*jnp.split(g, fields, axis=-1)) for g in grads)


# ---------------------------------------------------------------------------------------------
# Step Jacobians of one (unbatched) trajectory


def _flat_step(cell: Cell, params):
    """`(c_flat <[n]>, x <[I]>) -> c_flat'` for one unbatched example."""
    carry_type = type(cell.initial_carry())
    fields = len(carry_type._fields)

    def f(c_flat, x):
        new, _ = cell.step(params, carry_type(*jnp.split(c_flat, fields)), x)
        return jnp.concatenate(list(new))

    return f


def _trajectory(cell: Cell, params, xs, carry, dtype):
    check_params(cell, params)
    xs = _checks.check_float_array("xs", xs, "trajectory [T, I]")
    params, xs, carry = _cast((params, xs, carry), dtype)
    if xs.ndim != 2:
        raise ValueError(
            f"xs: Jacobian diagnostics take one unbatched trajectory <[T, I]>, got shape {xs.shape}; "
            "use jax.vmap over examples"
        )
    if carry is None:
        carry = cell.initial_carry((), xs.dtype)
    carries, _ = unroll(cell, params, xs, carry, return_carries=True)
    c_prev = jnp.concatenate([jnp.concatenate(list(carry))[None], jnp.concatenate(list(carries), -1)[:-1]])
    return params, xs, c_prev  # c_prev[t] = c_{t-1} flattened, <[T, n]>


@_measured
def step_jacobians(cell: Cell, params, xs, carry=None, *, dtype=None) -> jax.Array:
    """Every step Jacobian J_t = ∂c_t/∂c_{t-1} of one trajectory (memory T·n²: use for short T).

    Args:
      xs: <float>[T, I], one unbatched trajectory; carry: initial carry (default zeros).
    Returns:
      <float>[T, n, n] with n = H (simple, GRU) or 2H (LSTM, state [h, c]).
    """
    params, xs, c_prev = _trajectory(cell, params, xs, carry, dtype)
    return jax.vmap(jax.jacfwd(_flat_step(cell, params)))(c_prev, xs)


@_measured
def jacobian_norms(cell: Cell, params, xs, carry=None, *, dtype=None) -> jax.Array:
    """log10 ‖∂c_{T-1}/∂c_t‖₂ (spectral norm) for every t, exactly, without underflow or overflow.

    The product P_t = J_{T-1} ⋯ J_{t+1} is accumulated backwards as 10^{s_t} M_t with M_t rescaled to
    unit Frobenius norm at every step, so thousands of steps stay representable.

    Args:
      xs: <float>[T, I], one unbatched trajectory; carry: initial carry (default zeros).
    Returns:
      <float>[T]: entry t is log10 of the spectral norm of ∂c_{T-1}/∂c_t (entry T-1 is 0, the identity);
      -inf where the product is exactly zero.
    """
    params, xs, c_prev = _trajectory(cell, params, xs, carry, dtype)
    f = _flat_step(cell, params)
    n = c_prev.shape[-1]

    def body(m, inputs):
        c, x = inputs  # c_{k-1}, x_k: multiply by J_k to go from ∂c_{T-1}/∂c_k to ∂c_{T-1}/∂c_{k-1}
        m = m @ jax.jacfwd(f)(c, x)
        fro = jnp.linalg.norm(m)
        safe = jnp.where(fro > 0, fro, 1)
        m = m / safe  # unit Frobenius norm; the scale is emitted as a log and summed afterwards
        rel = jnp.where(fro > 0, jnp.log10(jnp.linalg.norm(m, 2)), -jnp.inf)
        return m, (jnp.log10(safe), rel)

    eye = jnp.eye(n, dtype=xs.dtype)
    _, (log_scale, rel) = jax.lax.scan(body, eye, (c_prev[1:], xs[1:]), reverse=True)
    # Cumulative scale from the end; cumsum sums pairwise, so float32 rounding grows only as log T.
    out = jnp.flip(jnp.cumsum(jnp.flip(log_scale))) + rel
    return jnp.concatenate([out, jnp.zeros((1,), xs.dtype)])  # out[k-1] = log10‖∂c_{T-1}/∂c_{k-1}‖


class LyapunovResult(NamedTuple):
    exponents: jax.Array  # [k] Lyapunov exponents, natural log per step, largest first (mean over frames)
    log10_growth: jax.Array  # [k] Σ_{t≥warmup} log10|R_ii| (mean over frames): see `lyapunov`
    log_growth: jax.Array  # [T − warmup, k] per-step ln|R_ii| (mean over frames; running mean: convergence)
    frame_exponents: jax.Array  # [num_frames, k] the exponents from each random initial frame Q_0
    spread: jax.Array  # [k] max − min of frame_exponents over frames; NaN with one frame (not measured)


# The default warm-up of `lyapunov`: this fraction of the trajectory's steps (rounded down).
WARMUP_FRACTION = 0.2
# The default number of random initial frames Q_0 whose exponents `lyapunov` averages.
NUM_FRAMES = 4


def _check_warmup(warmup, steps: int) -> int:
    if warmup is None:
        return int(WARMUP_FRACTION * steps)
    if isinstance(warmup, bool) or not isinstance(warmup, int | np.integer) or not 0 <= warmup < steps:
        raise ValueError(
            f"warmup: expected None or an int in [0, {steps - 1}] (steps before the last one of xs), "
            f"got {warmup!r}"
        )
    return int(warmup)


@_measured
def lyapunov(
    cell: Cell,
    params,
    xs,
    carry=None,
    *,
    k: int = 1,
    key=None,
    warmup: int | None = None,
    num_frames: int = NUM_FRAMES,
    dtype=None,
) -> LyapunovResult:
    """Leading Lyapunov exponents of the Jacobian products along a trajectory, by repeated QR
    re-orthonormalisation (Benettin et al. 1980; as used for RNNs by Vogt et al. 2022), after a warm-up
    and averaged over several random initial frames.

    A frame Q_0 is a random n×k orthonormal matrix; each step computes J_t Q_t by k Jacobian-vector products
    and factors it as Q_{t+1} R_t. Each step's growth is kept as a log, so no product ever under- or
    overflows. Started from a random Q_0, Σ_t ln|diag R_t| differs from the logs of the k leading singular
    values of J_{T-1} ⋯ J_0 by an O(1) term set by how Q_0 meets the leading directions (zero when every
    direction grows alike, e.g. W = g·Q), so the mean per step converges only as O(1/T) and another Q_0
    gives other exponents. Hence:

    - warm-up: the first `warmup` steps only rotate Q towards the leading directions (and let the state
      leave its initial carry); their growth is discarded and the exponents are the mean per step over the
      remaining T − warmup steps;
    - frames: `num_frames` independent Q_0 are run side by side; the exponents are their mean, and their
      `spread` (max − min) says how much the result still depends on Q_0. A spread as large as the gaps
      between exponents means the warm-up was too short for the trajectory.

    `warmup=0, num_frames=1` is the plain estimate from `key`'s frame alone. For the exact spectral norm of
    the product at every lag use `jacobian_norms`.

    Args:
      xs: <float>[T, I], one unbatched trajectory; carry: initial carry (default zeros).
      k: number of leading directions (≤ n; n = H, or 2H for the LSTM's [h, c]).
      key: PRNG key of the frames (default `jax.random.key(0)`): frame 0 is drawn with `key` itself, frame
        f ≥ 1 with `jax.random.fold_in(key, f)`, so more frames only add frames.
      warmup: steps of xs whose growth is discarded; None (default) is `int(WARMUP_FRACTION · T)`
        (20 % of the steps). An int in [0, T − 1].
      num_frames: number of random initial frames averaged (default `NUM_FRAMES` = 4), an int ≥ 1.
    Returns:
      `LyapunovResult`: exponents <[k]>, log10_growth <[k]>, log_growth <[T − warmup, k]> (means over
      frames), frame_exponents <[num_frames, k]> and spread <[k]>.
    """
    params, xs, c_prev = _trajectory(cell, params, xs, carry, dtype)
    n, steps = c_prev.shape[-1], xs.shape[0]
    if isinstance(k, bool) or not (isinstance(k, int) and 1 <= k <= n):
        raise ValueError(f"k: expected an int in [1, {n}] (the state size), got {k!r}")
    warmup = _check_warmup(warmup, steps)
    num_frames = _checks.check_int("num_frames", num_frames)
    f = _flat_step(cell, params)
    if key is not None:
        _checks.check_key("key", key)
    key = jax.random.key(0) if key is None else key
    keys = [key] + [jax.random.fold_in(key, i) for i in range(1, num_frames)]
    q0, _ = jnp.linalg.qr(jnp.stack([jax.random.normal(kf, (n, k), xs.dtype) for kf in keys]))  # [F, n, k]

    def body(q, inputs):
        c, x = inputs
        flat = q.transpose(1, 0, 2).reshape(n, num_frames * k)  # every frame's k tangents side by side
        jq = jax.vmap(lambda v: jax.jvp(lambda c_: f(c_, x), (c,), (v,))[1], in_axes=1, out_axes=1)(flat)
        q, r = jnp.linalg.qr(jq.reshape(n, num_frames, k).transpose(1, 0, 2))  # batched over frames
        return q, jnp.log(jnp.abs(jnp.diagonal(r, axis1=-2, axis2=-1)))  # [F, k]

    # One scan over every step (one loop body to compile); the warm-up steps' growth is dropped after it.
    _, log_growth = jax.lax.scan(body, q0, (c_prev, xs))
    log_growth = log_growth[warmup:]  # [T − warmup, F, k]
    total = jnp.sum(log_growth, axis=0)  # [F, k]
    order = jnp.argsort(-total, axis=-1)
    total = jnp.take_along_axis(total, order, axis=-1)
    log_growth = jnp.take_along_axis(log_growth, order[None], axis=-1)
    per_frame = total / (steps - warmup)
    spread = jnp.max(per_frame, 0) - jnp.min(per_frame, 0)
    return LyapunovResult(
        exponents=jnp.mean(per_frame, 0),
        log10_growth=jnp.mean(total, 0) / math.log(10),
        log_growth=jnp.mean(log_growth, 1),
        frame_exponents=per_frame,
        spread=spread if num_frames > 1 else jnp.full_like(spread, jnp.nan),
    )


# ---------------------------------------------------------------------------------------------
# Recurrent matrix and gates


def recurrent_spectrum(cell: Cell, params) -> dict[str, dict[str, float]]:
    """σ_max and spectral radius of each recurrent matrix the cell's kind names (host NumPy, float64):
    W_hh for the simple cell, each gate block of W_hh for the LSTM and GRU, expm(A − Aᵀ) for the
    orthogonal cell, diag(λ) for the LRU (see `Cell.recurrent_matrices`).

    Returns:
      `{name: {"sigma_max": σ_max, "spectral_radius": ρ}}`, e.g. names "h" (simple, orthogonal, LRU),
      "i","f","g","o" (LSTM) or "r","z","n" (GRU).
    Raises:
      ValueError for a kind without a fixed recurrent matrix (minGRU, minLSTM: their recurrence is the
      input-dependent diagonal 1 − z_t), or non-finite matrices.
    """
    check_params(cell, params)
    if not cell.recurrent_matrices or not cell.recurrent_matrices(params):
        raise ValueError(
            f"cell: a {cell.kind} cell has no fixed recurrent matrix to analyse (its recurrence depends on "
            "the input at every step); use jacobian_norms or lyapunov instead"
        )
    out = {}
    for name, block in cell.recurrent_matrices(params).items():
        block = np.asarray(block)
        block = block.astype(np.complex128 if np.iscomplexobj(block) else np.float64)
        if not np.isfinite(block).all():
            raise ValueError(
                f"params: the {cell.kind} cell's recurrent matrix {name!r} has "
                f"{int(np.sum(~np.isfinite(block)))} NaN or inf entries of {block.size}; "
                "expected finite values"
            )
        out[name] = dict(
            sigma_max=float(np.linalg.norm(block, 2)),
            spectral_radius=float(np.max(np.abs(np.linalg.eigvals(block)))),
        )
    return out


@_measured
def gate_statistics(
    cell: Cell, params, xs, carry=None, lengths=None, *, saturation: float = 0.05, dtype=None
) -> dict[str, Any]:
    """Gate statistics along trajectories: how much each gated cell remembers per step.

    The memory gate is the LSTM's forget gate f (c_t = f ⊙ c_{t-1} + …) or the GRU's update gate z
    (h_t = z ⊙ h_{t-1} + …). A constant gate value m keeps a fraction m per step, i.e. decays as
    e^{-t/τ} with effective memory time τ = −1/ln m steps.

    Args:
      cell: an LSTM or GRU cell. xs, carry, lengths: as for `rnnjax.unroll` (padded steps are excluded).
      saturation: a gate is saturated where its value is below `saturation` or above 1 − `saturation`.
    Returns:
      dict with "memory_gate" ("f" or "z"), "mean_memory_gate", "memory_time" (τ of the mean gate, in
      steps; inf if the mean is 1), "mean_memory_time_per_unit" (mean over units of τ of each unit's
      mean gate), and for every gate g: "mean_<g>" and "saturated_<g>" (fraction of unit-steps).
    """
    check_cell(cell)
    if cell.gate_values is None:
        raise ValueError(f"cell: gate statistics need an LSTM or GRU cell, got kind {cell.kind!r}")
    if not 0 < _checks.check_number("saturation", saturation) < 0.5:
        raise ValueError(f"saturation: expected a number in (0, 0.5), got {saturation!r}")
    check_params(cell, params)
    xs = _checks.check_float_array("xs", xs, "array [*batch, T, I]")
    params, xs, carry = _cast((params, xs, carry), dtype)
    carries, _ = unroll(cell, params, xs, carry, lengths=lengths, return_carries=True)
    if carry is None:
        carry = cell.initial_carry(xs.shape[:-2], xs.dtype)
    prev = jax.tree_util.tree_map(
        lambda c0, cs: jnp.concatenate([c0[..., None, :], cs[..., :-1, :]], -2), carry, carries
    )
    gates = cell.gate_values(params, prev, xs)  # each <[*batch, T, H]>
    T = xs.shape[-2]
    valid = np.ones(xs.shape[:-1], bool) if lengths is None else np.arange(T) < np.asarray(lengths)[..., None]
    out: dict[str, Any] = {}
    for name, g in gates.items():
        g = np.asarray(g, np.float64)[valid]  # (n_valid_steps, H)
        out[f"mean_{name}"] = float(g.mean())
        out[f"saturated_{name}"] = float(np.mean((g < saturation) | (g > 1 - saturation)))
    memory = cell.memory_gate
    m = np.asarray(gates[memory], np.float64)[valid]
    per_unit = m.mean(axis=0)
    with np.errstate(divide="ignore"):
        out.update(
            memory_gate=memory,
            mean_memory_gate=float(m.mean()),
            memory_time=float(-1 / np.log(m.mean())),
            mean_memory_time_per_unit=float(np.mean(-1 / np.log(per_unit))),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Underflow-safe reporting


def _check_axis(name: str, axis, array: np.ndarray) -> int:
    """`axis` as a non-negative index into `array`'s dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {axis!r}")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"{name}: expected an axis of an array of shape {array.shape}, got {axis}")
    return int(axis) % array.ndim


def log10_norm(g, axis=-1) -> np.ndarray:
    """log10 of the Euclidean norm along `axis`, computed in float64 on the host; an exact zero (an
    underflowed gradient) gives -inf and an infinite entry (overflow) +inf, never a finite value; NaN stays
    NaN."""
    g = np.asarray(g, np.float64)
    axis = _check_axis("axis", axis, g)
    if g.shape[axis] == 0:
        raise ValueError(
            f"g: expected at least one entry along axis {axis} to take a norm of, got shape {g.shape}"
        )
    scale = np.max(np.abs(g), axis=axis, keepdims=True)
    safe = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
    norm = np.squeeze(safe, axis) * np.linalg.norm(g / safe, axis=axis)  # no overflow for huge entries
    norm = np.where(np.isposinf(np.squeeze(scale, axis)), np.inf, norm)  # an overflowed entry: +inf
    with np.errstate(divide="ignore"):
        return np.log10(norm)


def log_norm_quartiles(log10_norms, axis: int = 0) -> dict[str, np.ndarray]:
    """Median and quartiles of log10 norms across `axis` (e.g. seeds), as order statistics: no
    interpolation between -inf (underflow) and finite values, which would give NaN or a made-up number.

    Returns:
      dict of arrays: "median", "q25", "q75", "underflow_fraction" (share of -inf), "nonfinite_fraction"
      (share of +inf or NaN: overflow).
    """
    a = np.asarray(log10_norms, np.float64)
    axis = _check_axis("axis", axis, a)
    if a.shape[axis] == 0:
        raise ValueError(f"log10_norms: expected at least one value along axis {axis}, got shape {a.shape}")
    with np.errstate(invalid="ignore"):
        return dict(
            median=np.quantile(a, 0.5, axis, method="nearest"),
            q25=np.quantile(a, 0.25, axis, method="lower"),
            q75=np.quantile(a, 0.75, axis, method="higher"),
            underflow_fraction=np.mean(np.isneginf(a), axis),
            nonfinite_fraction=np.mean(~np.isfinite(a) & ~np.isneginf(a), axis),
        )


# A slope is fitted only on norms this many decades clear of the dtype's smallest normal number and of its
# largest finite one. Closer to the limits, single gradient entries underflow (or overflow) before the norm
# does, and the norms fall off the straight line. Measured for the linear cell, float32, H = 64, T = 1000,
# 4 seeds, XLA:CPU (which flushes subnormals): slope − log10 g up to −4.9e-4 at g = 0.5 with no margin,
# −8e-6 with 2 decades, |·| <= 1.2e-8 with 4 or 6 (`tests/test_diagnostics.py` checks 1e-6 at 6).
FIT_MARGIN_DECADES = 6.0


def fit_bounds(dtype, margin: float = FIT_MARGIN_DECADES) -> tuple[float, float]:
    """The log10-norm interval a decay fit may use for gradients computed in `dtype`: `margin` decades above
    log10 of the smallest normal number and below log10 of the largest finite one. It depends on the dtype
    only, so the fit window is the same on every backend (whether or not it keeps subnormal numbers).

    Returns:
      (low, high), e.g. (-31.93, 32.53) for float32 and (-301.65, 302.25) for float64 at the default margin.
    """
    try:
        info = jnp.finfo(dtype)  # also bfloat16 and the other ml_dtypes
    except (TypeError, ValueError):
        raise TypeError(f"dtype: expected a floating-point dtype, got {dtype!r}") from None
    try:
        margin = float(margin)
    except (TypeError, ValueError):
        raise TypeError(f"margin: expected a number of decades, got {margin!r}") from None
    low, high = float(np.log10(float(info.tiny))), float(np.log10(float(info.max)))
    if not np.isfinite(margin) or margin < 0 or low + margin >= high - margin:
        raise ValueError(
            f"margin: expected a finite number of decades >= 0 and below {(high - low) / 2:.4g} (half the "
            f"range of {np.dtype(info.dtype).name}), got {margin!r}"
        )
    return low + margin, high - margin


class DecayFit(NamedTuple):
    slope: float  # d log10‖·‖ / d lag: < 0 vanishing, > 0 exploding; NaN if < 2 usable points
    factor: float  # 10**slope, the mean multiplicative change per step
    points: int  # points used in the fit
    first_underflow_lag: int | None  # smallest lag whose norm is exactly zero, if any
    last_fitted_lag: int | None = None  # the largest lag in the fit (the window is lags 0..this), if any


def decay_rate(lags, log10_norms, *, bounds: tuple[float, float] | None = None) -> DecayFit:
    """Least-squares slope of log10 norm against lag.

    Without `bounds`, every finite value is fitted (underflowed -inf points are excluded and reported,
    never fitted as if they were finite). With `bounds` = (low, high) (see `fit_bounds`), the fit uses the
    lags from the smallest one up to the last before the first value outside [low, high] (or non-finite):
    backpropagation computes lag k + 1 from lag k, so once one lag has met the float limits every later
    lag inherits the damage, even where it is still finite.

    Args:
      lags: <[L]> lags T − t (any order); log10_norms: <[L]> matching log10 norms (may contain -inf).
      bounds: optional (low, high) log10-norm window.
    """
    lags = np.asarray(lags, np.float64)
    y = np.asarray(log10_norms, np.float64)
    if lags.shape != y.shape:
        raise ValueError(f"log10_norms: expected shape {lags.shape} (like lags), got {y.shape}")
    under = np.isneginf(y)
    first = int(lags[under].min()) if under.any() else None
    if bounds is None:
        ok = np.isfinite(y)
    else:
        low, high = (float(b) for b in bounds)
        if not low < high:
            raise ValueError(f"bounds: expected (low, high) with low < high, got {bounds!r}")
        order = np.argsort(lags, kind="stable")
        inside = np.isfinite(y[order]) & (y[order] >= low) & (y[order] <= high)
        stop = len(y) if inside.all() else int(np.argmin(inside))  # the first lag outside the window
        ok = np.zeros(len(y), bool)
        ok[order[:stop]] = True
    last = int(lags[ok].max()) if ok.any() else None
    if ok.sum() < 2:
        return DecayFit(float("nan"), float("nan"), int(ok.sum()), first, last)
    slope = float(np.polyfit(lags[ok], y[ok], 1)[0])
    return DecayFit(slope, 10.0**slope, int(ok.sum()), first, last)


def decay_stats(log10_norms, *, bounds: tuple[float, float] | None = None) -> dict:
    """`decay_rate` fits of many profiles at once, e.g. one per seed or per example.

    Args:
      log10_norms: <float>[n, T] log10 norms indexed by lag (lag 0 first), -inf where they underflowed.
      bounds: the log10-norm window of every fit (`decay_rate`), e.g. `fit_bounds(dtype)`; None fits every
        finite value.
    Returns:
      dict with "slope_mean" and "slope_std" of the finite slopes (None if none is finite), "slopes"
      <float64>[n], "seeds_with_underflow" (profiles that reached exactly zero), "first_underflow_lag"
      (the smallest such lag, or None), "seeds_nonfinite" (profiles holding +inf or NaN: overflow) and
      "fit_lags" (the largest lag used by every profile's fit, and by any: [min, max] over profiles, None
      where no profile had a point to fit). Non-finite values are counted, never averaged in.
    """
    curves = np.asarray(log10_norms, np.float64)
    if curves.ndim != 2:
        raise ValueError(f"log10_norms: expected shape [n, T], got {curves.shape}")
    fits = [decay_rate(np.arange(curves.shape[-1]), c, bounds=bounds) for c in curves]
    slopes = np.array([f.slope for f in fits])
    under = [f.first_underflow_lag for f in fits if f.first_underflow_lag is not None]
    lasts = [f.last_fitted_lag for f in fits if f.last_fitted_lag is not None]
    finite = bool(np.isfinite(slopes).any())
    return dict(
        slope_mean=float(np.nanmean(slopes)) if finite else None,
        slope_std=float(np.nanstd(slopes)) if finite else None,
        slopes=slopes,
        seeds_with_underflow=len(under),
        first_underflow_lag=min(under) if under else None,
        seeds_nonfinite=int(np.sum(~np.all(np.isfinite(curves) | np.isneginf(curves), -1))),
        fit_lags=[min(lasts), max(lasts)] if lasts else None,
    )
