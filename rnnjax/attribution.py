"""Which tokens a trained classifier listens to: per-token attributions of one class's logit, and every
gate's mean activation per token.

For an `rnnjax.models.classifier` (token ids in, logits <[B, C]> out) and a batch of right-padded token
sequences, `attribute` computes, for the logit f = logit_c of a chosen class c and the embedding e_t of
every token (its row of the embedding table, or its one-hot vector for a model without one):

- gradient norm ‖∂f/∂e_t‖₂ (how much the logit moves per unit change of the token's embedding);
- gradient × input ∂f/∂e_t · e_t (the first-order share of the logit due to the token; Shrikumar et al.
  2016, "Not just a black box");
- integrated gradients IG_t = (e_t − e'_t) · ∫₀¹ ∂f/∂e_t(e' + α(e − e')) dα (Sundararajan, Taly & Yan
  2017, "Axiomatic attribution for deep networks") from a baseline e' (the zero embedding at every valid
  step, or the embedding of one token id, e.g. the padding id 0). By the fundamental theorem of calculus
  along the straight path, Σ_t IG_t = f(e) − f(e') ("completeness"). The integral is taken by adaptive
  composite Gauss–Legendre quadrature: `steps` points on one panel (exact for integrands polynomial in
  α up to degree 2·steps − 1; the paper's right Riemann sum needs many more points for the same error),
  then, for each text whose completeness error exceeds `REFINE_TRIGGER`, adaptive bisection: a panel
  is split in two while its halves' estimates disagree with its own (locally, where the logit changes
  fast), up to `max_steps` points per text. The achieved completeness gap is returned with the
  attributions. A logit that *jumps* along the path cannot be integrated from gradients: modReLU's sign
  (the orthogonal cell's default activation), or, it seems, a trained tanh RNN (in
  `experiments.which_words` halving the panels down to `MIN_PANEL` leaves the plain RNN's IG incomplete
  on up to 144 of a seed's 300 texts); there the gap reports it.

All three go through the model's own path: the same `RNNModel` (stack, lengths, bidirectional layers,
pooling, head) applied to the embedded features (`features_model`), so nothing is re-implemented.
`gate_traces` re-runs the stack layer by layer with `rnnjax.unroll(..., return_carries=True)` and reads
every gate the cell's kind names (`Cell.gate_values`: LSTM i, f, o; GRU r, z; minGRU z; minLSTM f, i;
none for the ungated kinds) at every step of every layer and direction.

    att = attribute(model, params, tokens, lengths)          # tokens <int>[B, T], lengths <int>[B]
    att.integrated_gradients                                 # <float>[B, T], 0 at padded steps
    att.completeness_error.max() < COMPLETENESS_TOLERANCE    # Σ_t IG_t = f(e) − f(e') within 1 %
    traces = gate_traces(model, params, tokens, lengths)     # [layer][direction][gate] <[B, T]>
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks
from rnnjax.cells import with_precision
from rnnjax.diagnostics import MEASURE_PRECISION
from rnnjax.models import RNNModel
from rnnjax.unrolling import unroll, unroll_bidirectional

__all__ = [
    "COMPLETENESS_TOLERANCE",
    "IG_MAX_STEPS",
    "IG_STEPS",
    "REFINE_TOLERANCE",
    "REFINE_TRIGGER",
    "METHODS",
    "Attributions",
    "attribute",
    "embed",
    "features_model",
    "gate_traces",
    "mass_share",
]

# Gauss–Legendre points per panel of the integrated-gradients path integral, and the most points a text may
# get by halving its panels. A trained classifier's logit can change by a whole unit over a tiny stretch of
# α (a gate switching over): one panel misses it, panels halved around it resolve it (tests/test_attribution
# .py builds such a model; how many texts of the trained models of `experiments.which_words` needed it:
# docs/which_words.md).
IG_STEPS = 32
IG_MAX_STEPS = 2048
# A text is refined when its single-panel completeness error exceeds REFINE_TRIGGER (a tenth of the
# tolerance); a panel is then split while its two halves' IG differs from its own by more than
# REFINE_TOLERANCE · Σ_t |IG_t| · (its width) (a stopping rule that does not read completeness, which
# stays a check of the result).
REFINE_TRIGGER = 1e-3
REFINE_TOLERANCE = 1e-3
# The narrowest panel refinement makes (float32 resolves α to about 1e-7), and the rows (text, panel) of
# one refinement call (padded to it, so that one compiled shape serves every round).
MIN_PANEL = 2.0**-20
REFINE_CHUNK = 64
# Integrated gradients must sum to f(e) − f(e') within this share of |f(e) − f(e')| (the 1 %).
COMPLETENESS_TOLERANCE = 0.01
# The attributions `attribute` returns, in the order they are shown.
METHODS = ("gradient_norm", "gradient_x_input", "integrated_gradients")


class Attributions(NamedTuple):
    """What `attribute` returns; every per-token array is 0 at padded steps (t >= lengths[b])."""

    logits: np.ndarray  # <float>[B, C] the model's logits
    target: np.ndarray  # <int32>[B] the class c whose logit f = logit_c is attributed
    gradient_norm: np.ndarray  # <float>[B, T] ‖∂f/∂e_t‖₂
    gradient_x_input: np.ndarray  # <float>[B, T] ∂f/∂e_t · e_t
    integrated_gradients: np.ndarray  # <float>[B, T] IG_t from the baseline e'
    baseline_logit: np.ndarray  # <float>[B] f(e'), the target logit at the baseline
    completeness_gap: np.ndarray  # <float>[B] Σ_t IG_t − (f(e) − f(e'))
    completeness_error: np.ndarray  # <float>[B] |gap| / |f(e) − f(e')| (NaN where f(e) = f(e'))
    points: np.ndarray  # <int64>[B] Gauss–Legendre points of each text's path integral (adaptive)
    baseline: str  # "zero" or "token <id>"


def _check_classifier(model, params) -> dict:
    """The params tree (under "params") of `model`, refused unless `model` is a token classifier."""
    if not isinstance(model, RNNModel):
        raise TypeError(f"model: expected an rnnjax.models.RNNModel classifier, got {type(model).__name__}")
    if model.vocab_size is None or model.pooling is None:
        raise ValueError(
            "model: expected a classifier of token ids (rnnjax.models.classifier: vocab_size set, pooling "
            f"'last' or 'mean'), got an RNNModel with vocab_size={model.vocab_size}, "
            f"pooling={model.pooling!r} (a language or sequence model has no per-text class logit to "
            "attribute)"
        )
    if isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]
    if not isinstance(params, Mapping) or "rnn" not in params or "readout" not in params:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"params: expected the classifier's params tree (rnn, readout, ...), got {got}")
    return dict(params)


def _check_tokens(model, tokens, lengths) -> tuple[jax.Array, jax.Array]:
    tokens = _checks.check_indices("tokens", tokens, model.vocab_size, "token ids")
    if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1:
        raise ValueError(f"tokens: expected shape [batch, time] with both >= 1, got {tokens.shape}")
    B, T = tokens.shape
    lengths = (
        jnp.full((B,), T, jnp.int32) if lengths is None else _checks.check_lengths(lengths, (B,), T, "tokens")
    )
    return tokens, lengths


def _cast(tree, dtype):
    """`tree`'s float leaves in `dtype` (None: unchanged); float64 needs 64-bit JAX."""
    if dtype is None:
        return tree
    dtype = _checks.check_float_dtype("dtype", dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype: float64 needs 64-bit JAX; call jax.config.update('jax_enable_x64', True) first"
        )
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)


def embed(model, params, tokens) -> jax.Array:
    """The stack's input <float>[B, T, E] for token ids <int>[B, T]: each token's row of the embedding
    table (`params["embed"]`, the same `nn.Embed` the model applies), or its one-hot vector <[B, T, V]>
    for a model without an embedding (`embed_size=None`)."""
    params = _check_classifier(model, params)
    tokens = _checks.check_indices("tokens", tokens, model.vocab_size, "token ids")
    if model.embed_size is None:
        dtype = jax.tree_util.tree_leaves(params["readout"])[0].dtype
        return jax.nn.one_hot(tokens, model.vocab_size, dtype=dtype)
    return nn.Embed(model.vocab_size, model.embed_size).apply({"params": params["embed"]}, tokens)


def features_model(model):
    """`(body, split)`: the same model on embedded features (`vocab_size=None`), so that
    `body.apply({"params": rest}, embed(model, params, tokens), lengths=...)` equals
    `model.apply({"params": params}, tokens, lengths=...)`, and `split(params) -> rest` (the params
    without the embedding table)."""
    body = model.clone(vocab_size=None, embed_size=None)

    def split(params):
        return {k: v for k, v in params.items() if k != "embed"}

    return body, split


@functools.partial(jax.jit, static_argnames=("body", "steps", "precision"))
def _attribute(body, rest, xs, base, lengths, target, *, steps: int, precision):
    """Logits <[B, C]>, the targets (-1 replaced by the prediction), ∂f/∂x and ∫₀¹ ∂f/∂x dα <[B, T, E]>,
    and f(e') <[B]>, for features xs <[B, T, E]> and baseline features base <[B, T, E]>."""
    with _checks.matmul_precision(precision):

        def logits_of(x):
            return body.apply({"params": rest}, x, lengths=lengths)[0]  # (B, C)

        target = jnp.where(target < 0, jnp.argmax(logits_of(xs), axis=-1), target)  # -1: the prediction

        def f(x):  # the examples are independent: ∂(Σ_b f_b)/∂x_b = ∂f_b/∂x_b
            logits = logits_of(x)
            return jnp.sum(jnp.take_along_axis(logits, target[:, None], axis=1)), logits

        # One scan over the points α = 1 (the input), α = 0 (the baseline) and the quadrature nodes, so the
        # model is traced (and compiled) once: the gradient at the input, Σ_i w_i ∂f/∂x(α_i) = ∫₀¹ ∂f/∂x dα.
        nodes, weights = _gauss_legendre(steps, 0.0, 1.0)
        alphas = jnp.asarray(np.concatenate([[1.0, 0.0], nodes[:, 0]]), xs.dtype)
        weights = jnp.asarray(np.concatenate([[0.0, 0.0], weights[:, 0]]), xs.dtype)
        at_input = jnp.asarray(np.arange(steps + 2) == 0, xs.dtype)

        def point(totals, inputs):
            alpha, w, first = inputs
            (_, logits), g = jax.value_and_grad(f, has_aux=True)(base + alpha * (xs - base))
            return (totals[0] + first * g, totals[1] + w * g), logits

        (grad, path), logits = jax.lax.scan(
            point, (jnp.zeros_like(xs), jnp.zeros_like(xs)), (alphas, weights, at_input)
        )
        base_logit = jnp.take_along_axis(logits[1], target[:, None], axis=1)[:, 0]
        return logits[0], target, grad, path, base_logit


@functools.partial(jax.jit, static_argnames=("body", "precision"))
def _panel(body, rest, xs, base, lengths, target, alphas, weights, *, precision):
    """Σ_i w_ri ∂f_r/∂x(e'_r + α_ri (e_r − e'_r)) <[R, T, E]> for every row r, each with its own points:
    alphas, weights <[n, R]>."""
    with _checks.matmul_precision(precision):

        def f(x):
            logits = body.apply({"params": rest}, x, lengths=lengths)[0]
            return jnp.sum(jnp.take_along_axis(logits, target[:, None], axis=1))

        def point(total, aw):
            alpha, w = aw[0][:, None, None], aw[1][:, None, None]
            return total + w * jax.grad(f)(base + alpha * (xs - base)), None

        return jax.lax.scan(point, jnp.zeros_like(xs), (alphas, weights))[0]


def _gauss_legendre(n: int, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The n Gauss–Legendre points and weights on [lo, hi] (arrays of intervals: <[n, R]> each)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return lo + (hi - lo) * (nodes[:, None] + 1) / 2, (hi - lo) * weights[:, None] / 2


def _refine(body, rest, xs, base, lengths, target, ig, todo, *, steps, max_steps, precision):
    """Adaptive quadrature (Gauss–Legendre panels of `steps` points, halved where needed) of the texts
    `todo` (<int>[k] rows), whose single-panel estimate is in `ig` <[B, T]>: a panel's estimate is
    replaced by the sum of its two halves', and each half is split again while the halves' sum differs
    from the whole's by more than REFINE_TOLERANCE · Σ_t |IG_t| · (the panel's width), until a text has
    used `max_steps` points or its panels reach MIN_PANEL. Updates `ig` in place; returns the points
    used per text <int64>[B]."""
    B = xs.shape[0]
    chunk = min(B, REFINE_CHUNK)  # rows per call, padded: one compiled shape
    diff = np.asarray(xs - base)  # (B, T, E)
    points = np.full(B, steps, np.int64)
    scale = np.abs(ig).sum(axis=1)  # (B,)
    active = [(int(i), 0.0, 1.0, ig[i].copy()) for i in todo]  # (text, lo, hi, estimate <[T]>)
    ig[todo] = 0.0
    while active:
        rows = np.array([i for i, *_ in active for _ in (0, 1)])
        bounds = np.array(
            [edge for _, lo, hi, _ in active for edge in ((lo, (lo + hi) / 2), ((lo + hi) / 2, hi))]
        )
        halves = np.zeros((rows.size, ig.shape[1]), ig.dtype)
        for start in range(0, rows.size, chunk):
            part = np.arange(start, min(start + chunk, rows.size))
            padded = np.concatenate([part, np.full(chunk - part.size, part[0])])
            alphas, weights = _gauss_legendre(steps, bounds[padded, 0], bounds[padded, 1])
            r = rows[padded]
            total = _panel(
                body, rest, xs[r], base[r], lengths[r], target[r], jnp.asarray(alphas, xs.dtype),
                jnp.asarray(weights, xs.dtype), precision=precision,
            )  # fmt: skip
            halves[part] = np.sum(diff[rows[part]] * np.asarray(total)[: part.size], axis=-1)
        next_active = []
        for k, (i, lo, hi, whole) in enumerate(active):
            left, right = halves[2 * k], halves[2 * k + 1]
            points[i] += 2 * steps
            error = np.abs(left + right - whole).sum()
            if (
                error <= REFINE_TOLERANCE * scale[i] * (hi - lo)
                or points[i] >= max_steps
                or hi - lo <= MIN_PANEL
            ):
                ig[i] += left + right
            else:
                mid = (lo + hi) / 2
                next_active += [(i, lo, mid, left), (i, mid, hi, right)]
        active = next_active
    return points


def _baseline(model, params, xs, tokens, lengths, baseline) -> tuple[jax.Array, str]:
    """Baseline features <[B, T, E]>: e' at valid steps (zeros, or the embedding of token `baseline`),
    the input itself at padded steps (which the model never reads)."""
    if isinstance(baseline, str) and baseline == "zero":
        fill, name = jnp.zeros_like(xs), "zero"
    elif isinstance(baseline, int | np.integer) and not isinstance(baseline, bool):
        if not 0 <= baseline < model.vocab_size:
            raise ValueError(f"baseline: expected a token id in [0, {model.vocab_size}), got {baseline}")
        fill = jnp.broadcast_to(embed(model, params, jnp.full(tokens.shape, baseline, jnp.int32)), xs.shape)
        fill, name = fill.astype(xs.dtype), f"token {int(baseline)}"
    else:
        raise ValueError(f"baseline: expected 'zero' or a token id (e.g. the padding id 0), got {baseline!r}")
    valid = (jnp.arange(xs.shape[1]) < lengths[:, None])[..., None]
    return jnp.where(valid, fill, xs), name


def attribute(
    model,
    params,
    tokens,
    lengths=None,
    *,
    target=None,
    baseline: str | int = "zero",
    steps: int = IG_STEPS,
    max_steps: int = IG_MAX_STEPS,
    dtype=None,
    precision: str | None = MEASURE_PRECISION,
) -> Attributions:
    """Gradient norm, gradient × input and integrated gradients of one class's logit for every token.

    Args:
      model: an `rnnjax.models.classifier` (any cell kind of the registry, any number of layers,
        bidirectional or not, pooling "last" or "mean").
      params: its params (the tree under "params"; `{"params": ...}` is accepted too).
      tokens: <int>[B, T] token ids, right-padded; lengths: <int>[B] valid lengths in [1, T] (None: T).
      target: the class whose logit is attributed: None (each text's predicted class), an int (for every
        text) or <int>[B].
      baseline: the integrated-gradients baseline e' at every valid step: "zero" (the zero embedding) or a
        token id (its embedding, e.g. the padding id 0).
      steps: Gauss–Legendre points per panel of the path integral (`IG_STEPS`); max_steps: the most
        points a text's adaptive refinement may use (`IG_MAX_STEPS`; = steps: one panel, no refinement).
      dtype: compute in this dtype (e.g. jnp.float64; needs 64-bit JAX); None keeps the params' dtype.
      precision: of every matmul, forward and backward (default full float32, as `rnnjax.diagnostics`).
    Returns:
      `Attributions` (NumPy arrays; see its fields), with the completeness gap Σ_t IG_t − (f(e) − f(e'))
      of every text: compare `completeness_error` with `COMPLETENESS_TOLERANCE`.
    """
    params = _check_classifier(model, params)
    tokens, lengths = _check_tokens(model, tokens, lengths)
    steps = _checks.check_int("steps", steps)
    if _checks.check_int("max_steps", max_steps) < steps:
        raise ValueError(f"max_steps: expected an int >= steps={steps}, got {max_steps}")
    _checks.check_precision(precision)
    params = _cast(params, dtype)
    if precision is not None:
        model = model.clone(cell=with_precision(model.cell, precision))
    body, split = features_model(model)
    xs = embed(model, params, tokens)
    base, name = _baseline(model, params, xs, tokens, lengths, baseline)
    B, C = tokens.shape[0], model.output_size
    target = -1 if target is None else _checks.check_indices("target", target, C, "class ids")
    if jnp.shape(target) not in ((), (B,)):
        raise ValueError(
            f"target: expected None, one class id or one per text [{B}], got {jnp.shape(target)}"
        )
    target = jnp.broadcast_to(target, (B,)).astype(jnp.int32)
    logits, target, grad, path, base_logit = _attribute(
        body, split(params), xs, base, lengths, target, steps=steps, precision=precision
    )
    valid = np.arange(tokens.shape[1]) < np.asarray(lengths)[:, None]  # (B, T)
    ig = np.where(valid, np.sum(np.asarray(xs - base) * np.asarray(path), axis=-1), 0.0)
    logits, base_logit = np.asarray(logits), np.asarray(base_logit)
    delta = logits[np.arange(B), np.asarray(target)] - base_logit

    def relative_gap(ig):
        gap = ig.sum(axis=1) - delta
        with np.errstate(divide="ignore", invalid="ignore"):
            return gap, np.where(delta != 0, np.abs(gap) / np.abs(delta), np.nan)

    _, error = relative_gap(ig)
    points = _refine(
        body, split(params), xs, base, lengths, target, ig, np.flatnonzero(error > REFINE_TRIGGER),
        steps=steps, max_steps=max_steps, precision=precision,
    )  # fmt: skip
    ig = np.where(valid, ig, 0.0)
    gap, error = relative_gap(ig)
    xs, grad = np.asarray(xs), np.asarray(grad)
    return Attributions(
        logits=logits,
        target=np.asarray(target, np.int32),
        gradient_norm=np.where(valid, np.linalg.norm(grad, axis=-1), 0.0),
        gradient_x_input=np.where(valid, np.sum(grad * xs, axis=-1), 0.0),
        integrated_gradients=ig,
        baseline_logit=base_logit,
        completeness_gap=gap,
        completeness_error=error,
        points=points,
        baseline=name,
    )


def _previous(carries, reverse: bool):
    """The carry each step started from, <[B, T, H]> per field: the carry after the step before it in
    reading order (after t − 1 forward, t + 1 in reverse), zeros for the first step read. With lengths,
    a reverse run's padded steps keep the initial zeros, so the last valid step starts from zeros too."""

    def shift(a):
        zero = jnp.zeros_like(a[:, :1])
        return jnp.concatenate([a[:, 1:], zero], 1) if reverse else jnp.concatenate([zero, a[:, :-1]], 1)

    return jax.tree_util.tree_map(shift, carries)


def gate_traces(
    model, params, tokens, lengths=None, *, dtype=None, precision: str | None = MEASURE_PRECISION
) -> list[dict[str, dict[str, np.ndarray]]]:
    """Every gate's mean activation over the hidden units at every token, for every layer and direction.

    The stack is re-run layer by layer as the model runs it (`rnnjax.unroll` / `unroll_bidirectional`
    with the model's lengths), keeping every carry; each step's gates are `cell.gate_values(params,
    carry before the step, the layer's input at the step)`.

    Args:
      model, params, tokens, lengths, dtype, precision: as for `attribute`.
    Returns:
      One dict per layer, `{direction: {gate: <float64>[B, T]}}`, directions "forward" (and "backward"
      for bidirectional layers), gates as the cell's kind names them (LSTM "i", "f", "o"; GRU "r", "z");
      an empty dict of gates for kinds without gates. NaN at padded steps.
    """
    params = _check_classifier(model, params)
    tokens, lengths = _check_tokens(model, tokens, lengths)
    params = _cast(params, dtype)
    cell = model.cell if precision is None else with_precision(model.cell, precision)
    valid = np.arange(tokens.shape[1]) < np.asarray(lengths)[:, None]  # (B, T)
    out = []
    with _checks.matmul_precision(precision):
        xs = embed(model, params, tokens)  # (B, T, E)
        for k in range(model.num_layers):
            p = params["rnn"][f"layer_{k}"]
            if model.bidirectional:
                carries, ys = unroll_bidirectional(cell, cell, p, xs, lengths=lengths, return_carries=True)
                runs = {
                    "forward": (p.forward, carries.forward, False),
                    "backward": (p.backward, carries.backward, True),
                }
            else:
                carries, ys = unroll(cell, p, xs, lengths=lengths, return_carries=True)
                runs = {"forward": (p, carries, False)}
            layer = {}
            for direction, (pd, cs, reverse) in runs.items():
                gates = {} if cell.gate_values is None else cell.gate_values(pd, _previous(cs, reverse), xs)
                layer[direction] = {
                    g: np.where(valid, np.asarray(v, np.float64).mean(-1), np.nan) for g, v in gates.items()
                }
            out.append(layer)
            xs = ys
    return out


def mass_share(values, mask, lengths=None) -> np.ndarray:
    """Σ_t |values_t| over the tokens where `mask` holds, divided by Σ_t |values_t| over all valid tokens:
    <float64>[B] (NaN for a text whose attributions are all zero).

    Args:
      values: <float>[B, T] attributions (0 at padded steps, as `attribute` returns them).
      mask: <bool>[B, T] the tokens of interest (e.g. the words that decide the label).
      lengths: optional <int>[B]; steps at or past a text's length are left out of both sums.
    """
    a = np.abs(np.asarray(values, np.float64))
    mask = np.asarray(mask, bool)
    if a.ndim != 2 or mask.shape != a.shape:
        raise ValueError(f"mask: expected the shape of values {a.shape} ([B, T]), got {mask.shape}")
    if lengths is not None:
        a = np.where(np.arange(a.shape[1]) < np.asarray(lengths)[:, None], a, 0.0)
    total = a.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (a * mask).sum(axis=1) / total, np.nan)
