"""Recurrent cells as pure functions: Elman (simple), LSTM and GRU.

A cell is a `Cell` value of three pure functions, in the style of optax's `GradientTransformation`:

    params = cell.init(key, input_size)
    carry = cell.initial_carry(batch_shape)           # zeros
    carry, y = cell.step(params, carry, x)            # x: <float>[*batch, input_size]

`step` works for any leading batch shape, including none, and under `jit`, `vmap`, `grad`, `jvp` and
grad-of-grad. Kernels are in `(in, out)` layout and fused across gates (LSTM order i, f, g, o; GRU
order r, z, n), so one matmul against the input and one against the hidden state give every gate.
Unroll over time with `rnnjax.unroll`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as initializers

__all__ = [
    "Cell",
    "GRUParams",
    "LSTMCarry",
    "LSTMParams",
    "RNNCarry",
    "SimpleParams",
    "gru",
    "lstm",
    "simple",
]


class SimpleParams(NamedTuple):
    w_ih: jax.Array  # [I, H]
    w_hh: jax.Array  # [H, H]
    b: jax.Array  # [H]


class LSTMParams(NamedTuple):
    w_ih: jax.Array  # [I, 4H], gate blocks i, f, g, o
    w_hh: jax.Array  # [H, 4H], gate blocks i, f, g, o
    b: jax.Array  # [4H]


class GRUParams(NamedTuple):
    w_ih: jax.Array  # [I, 3H], gate blocks r, z, n
    w_hh: jax.Array  # [H, 3H], gate blocks r, z, n
    b: jax.Array  # [3H], input-side bias (holds b_ir + b_hr, b_iz + b_hz, b_in)
    b_hn: jax.Array | None  # [H] candidate's recurrent bias inside r ⊙ (·); None when reset_after=False


class RNNCarry(NamedTuple):
    h: jax.Array  # [*batch, H]


class LSTMCarry(NamedTuple):
    h: jax.Array  # [*batch, H] hidden state (the output)
    c: jax.Array  # [*batch, H] cell state


Params = Any
Carry = Any


class Cell(NamedTuple):
    """A recurrent cell: pure functions plus the settings that define its equations.

    Attributes:
      init: `(key, input_size) -> params`.
      initial_carry: `(batch_shape=(), dtype=jnp.float32) -> carry` of zeros, each field
        <dtype>[*batch_shape, hidden_size].
      step: `(params, carry, x) -> (carry, y)` with x <float>[*batch, input_size] and
        y <float>[*batch, hidden_size] (y is the new hidden state h for every cell here).
      kind: "simple", "lstm" or "gru".
      hidden_size: H.
      activation: "tanh", "relu" or "linear" (the simple cell's φ; "tanh" for LSTM and GRU).
      reset_after: GRU form (see `gru`); None for other kinds.
      sequence: optional whole-sequence kernel with a hand-written backward pass,
        `(params, carry, xs, *, reverse, unroll) -> (final_carry, ys)` with xs <float>[T, *batch, I]
        and ys <float>[T, *batch, H]; `rnnjax.unroll` uses it when it can (see `rnnjax.fused`). It
        must compute exactly what scanning `step` computes. `simple` and `lstm` set it; `gru` does not
        (its kernel lost to plain autodiff, see `rnnjax.fused`); a `Cell` built by hand may leave it
        None, and replacing `step` with `_replace` must also reset it.
    """

    init: Callable[[jax.Array, int], Params]
    initial_carry: Callable[..., Carry]
    step: Callable[[Params, Carry, jax.Array], tuple[Carry, jax.Array]]
    kind: str
    hidden_size: int
    activation: str = "tanh"
    reset_after: bool | None = None
    sequence: Callable[..., tuple[Carry, jax.Array]] | None = None


def _fused(name: str, **options) -> Callable[..., tuple[Carry, jax.Array]]:
    """The `rnnjax.fused` kernel `name` with fixed cell options (imported on use: fused imports cells)."""

    def sequence(params, carry, xs, *, reverse=False, unroll=1):
        from rnnjax import fused

        return getattr(fused, name)(params, carry, xs, reverse=reverse, unroll=unroll, **options)

    return sequence


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda a: a,
}


# --------------------------------------------------------------------------------------------
# Validation shared by every cell. Shapes are static, so these checks cost nothing after tracing.


def _is_number(value) -> bool:
    """A real scalar (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_hidden_size(hidden_size) -> None:
    if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size: expected a positive int, got {hidden_size!r}")


def _check_input_size(input_size) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size: expected a positive int, got {input_size!r}")


def _check_step_args(name: str, params, carry, x, carry_type: type) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"x: {name} cell expected a floating-point input, got dtype {x.dtype}; "
            "embed or one-hot integer tokens first"
        )
    input_size, hidden_size = params.w_ih.shape[0], params.w_hh.shape[0]
    if x.ndim < 1 or x.shape[-1] != input_size:
        raise ValueError(
            f"x: {name} cell expected shape [*batch, {input_size}] (input_size={input_size}), got {x.shape}"
        )
    if not isinstance(carry, carry_type):
        raise TypeError(
            f"carry: {name} cell expected a {carry_type.__name__}{carry_type._fields}, "
            f"got {type(carry).__name__}"
        )
    want = (*x.shape[:-1], hidden_size)
    for field, value in zip(carry._fields, carry):
        if jnp.shape(value) != want:
            raise ValueError(
                f"carry.{field}: {name} cell expected shape {want} for x of shape {x.shape}, "
                f"got {jnp.shape(value)}"
            )
    return x


def _initial_carry(carry_type: type, hidden_size: int) -> Callable[..., Carry]:
    def initial_carry(batch_shape=(), dtype=jnp.float32):
        if isinstance(batch_shape, int):
            batch_shape = (batch_shape,)
        shape = (*tuple(batch_shape), hidden_size)
        return carry_type(*(jnp.zeros(shape, dtype) for _ in carry_type._fields))

    return initial_carry


def _recurrent_options(
    preset: str,
    hidden_size: int,
    num_blocks: int,
    kernel_init,
    recurrent_init,
    bias_init,
    gain,
    spectral_radius,
):
    """Resolve a preset plus explicit overrides into (kernel, recurrent, bias, scale)."""
    p = initializers.preset(preset)
    kernel = kernel_init or p.kernel(hidden_size, num_blocks)
    recurrent = recurrent_init or p.recurrent(hidden_size, num_blocks)
    bias = bias_init or p.bias(hidden_size, num_blocks)
    if not (_is_number(gain) and gain >= 0):
        raise ValueError(f"gain: expected a non-negative number, got {gain!r}")
    if spectral_radius is not None and not (_is_number(spectral_radius) and spectral_radius >= 0):
        raise ValueError(f"spectral_radius: expected None or a non-negative number, got {spectral_radius!r}")

    def scale(w_hh):
        return initializers.rescale_recurrent(w_hh, num_blocks, gain=gain, radius=spectral_radius)

    return kernel, recurrent, bias, scale


def _init_kernels(key, input_size, hidden_size, num_blocks, dtype, kernel, recurrent, bias, scale):
    _check_input_size(input_size)
    k_ih, k_hh, k_b = jax.random.split(key, 3)
    g = num_blocks * hidden_size
    w_ih = kernel(k_ih, (input_size, g), dtype)
    w_hh = scale(recurrent(k_hh, (hidden_size, g), dtype))
    b = bias(k_b, (g,), dtype)
    return w_ih, w_hh, b


# --------------------------------------------------------------------------------------------
# Elman / simple RNN


def simple(
    hidden_size: int,
    activation: str = "tanh",
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Elman (simple) recurrent cell (Elman, 1990).

        a_t = x_t W_ih + h_{t-1} W_hh + b
        h_t = φ(a_t),      y_t = h_t,      φ ∈ {tanh, relu, linear}

    Args:
      hidden_size: H.
      activation: "tanh", "relu" or "linear". `relu` with `recurrent_init=init.identity()` is the
        IRNN of Le, Jaitly & Hinton (2015).
      preset: default initialisers: "default" (glorot input, orthogonal recurrent, zero bias),
        "keras", "pytorch" or "flax" (reproducing those libraries' defaults in distribution).
      kernel_init, recurrent_init, bias_init: override the preset's initialisers of W_ih <[I, H]>,
        W_hh <[H, H]> and b <[H]>.
      gain: multiplies W_hh after initialisation.
      spectral_radius: if given, W_hh is rescaled to this spectral radius (overrides `gain`).
      dtype: parameter dtype.
    Returns:
      A `Cell` with `SimpleParams` and `RNNCarry(h)`.
    """
    _check_hidden_size(hidden_size)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    phi = _ACTIVATIONS[activation]
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 1, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )

    def init(key, input_size):
        return SimpleParams(
            *_init_kernels(key, input_size, hidden_size, 1, dtype, kernel, recurrent, bias, scale)
        )

    def step(params: SimpleParams, carry: RNNCarry, x):
        x = _check_step_args("simple", params, carry, x, RNNCarry)
        a = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., H)
        h = phi(a)
        return RNNCarry(h), h

    return Cell(
        init, _initial_carry(RNNCarry, hidden_size), step, "simple", hidden_size, activation,
        sequence=_fused("simple_sequence", activation=activation),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# LSTM


def _lstm_scale(hidden_size: int, dtype) -> jax.Array:
    """<dtype>[4H]: 1/2 on the sigmoid blocks (i, f, o), 1 on the candidate block g."""
    half = jnp.full((hidden_size,), 0.5, dtype)
    return jnp.concatenate([half, half, jnp.ones((hidden_size,), dtype), half])


def lstm(
    hidden_size: int,
    *,
    forget_bias: float | None = None,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Long short-term memory cell (Hochreiter & Schmidhuber, 1997; forget gate: Gers et al., 2000).

        [z_i, z_f, z_g, z_o] = x_t W_ih + h_{t-1} W_hh + b         (gate order i, f, g, o)
        i = σ(z_i),  f = σ(z_f),  g = tanh(z_g),  o = σ(z_o)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t),      y_t = h_t

    Args:
      hidden_size: H.
      forget_bias: initial value added to the forget-gate block of b; None takes the preset's (1.0 for
        "default" and "keras" after Jozefowicz et al. 2015, 0.0 for "pytorch" and "flax").
      preset, kernel_init, recurrent_init, bias_init, gain, spectral_radius, dtype: as in `simple`,
        for the fused W_ih <[I, 4H]>, W_hh <[H, 4H]> and b <[4H]>; `gain` and `spectral_radius`
        act on each gate's <[H, H]> block of W_hh.
    Returns:
      A `Cell` with `LSTMParams` and `LSTMCarry(h, c)`.
    """
    _check_hidden_size(hidden_size)
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 4, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    if forget_bias is None:
        forget_bias = initializers.preset(preset).forget_bias
    if not _is_number(forget_bias):
        raise ValueError(f"forget_bias: expected a number, got {forget_bias!r}")
    H = hidden_size

    def init(key, input_size):
        w_ih, w_hh, b = _init_kernels(key, input_size, H, 4, dtype, kernel, recurrent, bias, scale)
        b = b.at[H : 2 * H].add(forget_bias)
        return LSTMParams(w_ih, w_hh, b)

    def step(params: LSTMParams, carry: LSTMCarry, x):
        x = _check_step_args("lstm", params, carry, x, LSTMCarry)
        z = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., 4H)
        # One tanh over all four blocks, σ(a) = (1 + tanh(a/2)) / 2: a single fused element-wise op on
        # the whole matmul output. Splitting z first lets XLA turn slice(dot) into four narrow dots,
        # which ran 1.6x slower on CPU (benchmarks/throughput.py).
        t = jnp.tanh(z * _lstm_scale(H, z.dtype))
        t_i, t_f, g, t_o = jnp.split(t, 4, axis=-1)
        i, f, o = 0.5 + 0.5 * t_i, 0.5 + 0.5 * t_f, 0.5 + 0.5 * t_o
        c = f * carry.c + i * g
        h = o * jnp.tanh(c)
        return LSTMCarry(h, c), h

    return Cell(init, _initial_carry(LSTMCarry, H), step, "lstm", H, sequence=_fused("lstm_sequence"))


# --------------------------------------------------------------------------------------------
# GRU


def gru(
    hidden_size: int,
    reset_after: bool = True,
    *,
    preset: str = "default",
    kernel_init: initializers.Initializer | None = None,
    recurrent_init: initializers.Initializer | None = None,
    bias_init: initializers.Initializer | None = None,
    gain: float = 1.0,
    spectral_radius: float | None = None,
    dtype=jnp.float32,
) -> Cell:
    """Gated recurrent unit (Cho et al., 2014), in either of its two published forms.

    Gate order r, z, n. With [x_r, x_z, x_n] = x_t W_ih + b and W_hh = [W_hr | W_hz | W_hn]:

        r = σ(x_r + h_{t-1} W_hr),  z = σ(x_z + h_{t-1} W_hz)
        reset_after=True  (PyTorch, cuDNN, Keras default):  n = tanh(x_n + r ⊙ (h_{t-1} W_hn + b_hn))
        reset_after=False (Cho et al. 2014):                n = tanh(x_n + (r ⊙ h_{t-1}) W_hn)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1},      y_t = h_t

    With reset_after=True one matmul `h_{t-1} W_hh` gives all three recurrent terms; with
    reset_after=False the candidate needs a second matmul after the reset gate.

    Args:
      hidden_size: H.
      reset_after: which form (see above). Params carry `b_hn` <[H]> only when True.
      preset, kernel_init, recurrent_init, bias_init, gain, spectral_radius, dtype: as in `simple`,
        for W_ih <[I, 3H]>, W_hh <[H, 3H]>, b <[3H]>; b_hn uses the preset's own initialiser.
    Returns:
      A `Cell` with `GRUParams` and `RNNCarry(h)`.
    """
    _check_hidden_size(hidden_size)
    if not isinstance(reset_after, bool):
        raise ValueError(f"reset_after: expected True or False, got {reset_after!r}")
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 3, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    bias_hn = initializers.preset(preset).bias_hn(hidden_size)
    H = hidden_size

    def init(key, input_size):
        key, k_hn = jax.random.split(key)
        w_ih, w_hh, b = _init_kernels(key, input_size, H, 3, dtype, kernel, recurrent, bias, scale)
        b_hn = bias_hn(k_hn, (H,), dtype) if reset_after else None
        return GRUParams(w_ih, w_hh, b, b_hn)

    def step_reset_after(params: GRUParams, carry: RNNCarry, x):
        x = _check_step_args("gru", params, carry, x, RNNCarry)
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        h_r, h_z, h_n = jnp.split(carry.h @ params.w_hh, 3, axis=-1)  # (..., H) each
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * (h_n + params.b_hn))
        h = (1 - z) * n + z * carry.h
        return RNNCarry(h), h

    def step_reset_before(params: GRUParams, carry: RNNCarry, x):
        x = _check_step_args("gru", params, carry, x, RNNCarry)
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        w_hrz, w_hn = params.w_hh[:, : 2 * H], params.w_hh[:, 2 * H :]
        h_r, h_z = jnp.split(carry.h @ w_hrz, 2, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + (r * carry.h) @ w_hn)
        h = (1 - z) * n + z * carry.h
        return RNNCarry(h), h

    step = step_reset_after if reset_after else step_reset_before
    # No whole-sequence kernel by default: `rnnjax.fused.gru_sequence` measured 0.95x the speed of plain
    # autodiff of `step` on CPU (benchmarks/throughput.py), so the GRU keeps the plain path.
    return Cell(init, _initial_carry(RNNCarry, H), step, "gru", H, "tanh", reset_after)
