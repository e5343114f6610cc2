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

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, cell_types, fused, initializers
from rnnjax.cell_types import GRUParams, LSTMCarry, LSTMParams, RNNCarry, SimpleParams, lstm_gate_scale

__all__ = [
    "KINDS",
    "Cell",
    "GRUParams",
    "LSTMCarry",
    "LSTMParams",
    "RNNCarry",
    "SimpleParams",
    "check_cell",
    "check_params",
    "gru",
    "lstm",
    "make",
    "perturbed",
    "simple",
    "with_precision",
]


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
      kind: "simple", "lstm" or "gru" (a key of `KINDS`).
      hidden_size: H.
      activation: "tanh", "relu", "linear" or "sigmoid" (the simple cell's φ; "tanh" for LSTM and GRU).
      reset_after: GRU form (see `gru`); None for other kinds.
      gates: names of the gate blocks of the fused kernels, in order: ("h",) for the simple cell,
        ("i", "f", "g", "o") for the LSTM, ("r", "z", "n") for the GRU.
      gate_values: `(params, carry, x) -> {name: <[*batch, H]>}`, the sigmoid gates of one step (LSTM i, f,
        o; GRU r, z), computed by the same code as `step`; None for the simple cell.
      memory_gate: the gate that keeps the old state per step (LSTM "f", GRU "z"); None for the simple cell.
      precision: the matmul precision of every matmul of the cell (None: JAX's default, e.g. TF32 on
        recent NVIDIA GPUs). Every constructor takes `precision=`, e.g. `cells.lstm(64, precision="highest")`;
        `rnnjax.unroll(..., precision=)` overrides it for one call.
      kernel: `(step, sequence)`: a whole-sequence kernel bound to the step it computes; read it as
        `cell.sequence`. Set it with `with_kernel`.
      params_type: the NamedTuple type of the cell's params (`SimpleParams`, `LSTMParams`, `GRUParams`);
        `check_params` checks params against it. None for a cell built by hand (nothing is checked).
    """

    init: Callable[[jax.Array, int], Params]
    initial_carry: Callable[..., Carry]
    step: Callable[[Params, Carry, jax.Array], tuple[Carry, jax.Array]]
    kind: str
    hidden_size: int
    activation: str = "tanh"
    reset_after: bool | None = None
    gates: tuple[str, ...] = ("h",)
    gate_values: Callable[[Params, Carry, jax.Array], dict[str, jax.Array]] | None = None
    memory_gate: str | None = None
    kernel: tuple[Callable, Callable] | None = None
    params_type: type | None = None
    precision: str | None = None

    @property
    def sequence(self) -> Callable[..., tuple[Carry, jax.Array]] | None:
        """The whole-sequence kernel with a hand-written backward pass, or None.

        `(params, carry, xs, *, reverse, unroll) -> (final_carry, ys)` with xs <float>[T, *batch, I] and
        ys <float>[T, *batch, H]; `rnnjax.unroll` uses it when it can (see `rnnjax.fused`). It is bound
        to the step it was attached to, so a cell whose `step` was replaced (`cell._replace(step=...)`)
        has no kernel until one is attached again: the kernel can never run stale equations.
        """
        if self.kernel is None or self.kernel[0] is not self.step:
            return None
        return self.kernel[1]

    def with_kernel(self, sequence: Callable[..., tuple[Carry, jax.Array]] | None) -> Cell:
        """This cell with `sequence` as its whole-sequence kernel (None: no kernel). The kernel must
        compute exactly what scanning `self.step` computes (the equivalence tests check rnnjax's own)."""
        _checks.check_callable(
            "sequence", sequence, "a whole-sequence kernel (see rnnjax.fused)", optional=True
        )
        return self._replace(kernel=None if sequence is None else (self.step, sequence))


def _cached(constructor: Callable[..., Cell]) -> Callable[..., Cell]:
    """Memoise a cell constructor: equal (hashable) arguments give the same `Cell` object, so cells built
    twice from one configuration compare equal and hash alike (as attributes of Flax modules or static
    arguments of `jax.jit`). Unhashable arguments build a fresh cell."""
    memo = functools.lru_cache(maxsize=512)(constructor)

    @functools.wraps(constructor)
    def build(*args, precision: str | None = None, **kwargs):
        try:
            cell = memo(*args, **kwargs)
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            cell = constructor(*args, **kwargs)
        return cell if precision is None else with_precision(cell, precision)

    return build


def perturbed(cell: Cell) -> Cell:
    """The same cell whose input carries, after the real features, an additive perturbation of the new
    carry. Differentiating at zero perturbation gives ∂L/∂c_t for every t from one backward pass.

    Its input is wider than its params' w_ih reads, so it has no `params_type`: the wrapped step checks
    the params and the real input x itself."""
    check_cell(cell)
    fields = len(cell.initial_carry()._fields)
    width = fields * cell.hidden_size

    def step(params, carry, x_and_eps):
        x, eps = x_and_eps[..., :-width], x_and_eps[..., -width:]
        new, _ = cell.step(params, carry, x)
        new = type(new)(*(c + e for c, e in zip(new, jnp.split(eps, fields, axis=-1))))
        return new, new.h  # every rnnjax cell outputs y_t = h_t, so y_t sees the perturbation too

    # A new step: the cell's whole-sequence kernel no longer applies.
    return cell._replace(step=step, params_type=None)


# Cells made by `with_precision` -> the cell they wrap, so a later precision replaces an earlier one.
_BASE: dict[Cell, Cell] = {}


def with_precision(cell: Cell, precision: str | None) -> Cell:
    """`cell` with every matmul of its step, gate values and kernel (forward and backward) at `precision`:
    "highest"/"float32" (full float32), "high"/"tensorfloat32", "default"/"bfloat16" (the backend's
    fastest), or None (back to the cell as built without a precision, following JAX's global default)."""
    if not isinstance(cell, Cell):
        raise TypeError(f"cell: expected an rnnjax.cells.Cell, got {type(cell).__name__}")
    base = _BASE.get(cell, cell)
    if _checks.check_precision(precision) is None:
        return base
    return _precise(base, precision)


@functools.lru_cache(maxsize=512)
def _precise(cell: Cell, precision: str) -> Cell:
    step, gate_values, sequence = cell.step, cell.gate_values, cell.sequence

    def precise_step(params, carry, x):
        with _checks.matmul_precision(precision):
            return step(params, carry, x)

    def precise_gates(params, carry, x):
        with _checks.matmul_precision(precision):
            return gate_values(params, carry, x)

    def precise_sequence(params, carry, xs, *, reverse=False, unroll=None, precision=precision):
        return sequence(params, carry, xs, reverse=reverse, unroll=unroll, precision=precision)

    new = cell._replace(
        step=precise_step,
        gate_values=None if gate_values is None else precise_gates,
        precision=precision,
    ).with_kernel(None if sequence is None else precise_sequence)
    _BASE[new] = cell
    return new


def _kernel(fn: Callable, **options) -> Callable[..., tuple[Carry, jax.Array]]:
    """The `rnnjax.fused` kernel `fn` with fixed cell options."""

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        return fn(params, carry, xs, reverse=reverse, unroll=unroll, precision=precision, **options)

    return sequence


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda a: a,
    "sigmoid": jax.nn.sigmoid,
}


# --------------------------------------------------------------------------------------------
# Validation shared by every cell. Shapes are static, so these checks cost nothing after tracing.


def check_cell(cell, name: str = "cell") -> Cell:
    """`cell` if it is a `Cell`; anything else raises a TypeError naming `name`."""
    if not isinstance(cell, Cell):
        raise TypeError(
            f"{name}: expected an rnnjax.cells.Cell, got {type(cell).__name__} "
            "(build one with rnnjax.cells.make(kind, hidden_size))"
        )
    return cell


def check_params(cell: Cell, params, *, name: str = "params", owner: str | None = None) -> int | None:
    """Raise unless `params` fit `cell`: its params type, and fused kernels of its hidden size and gate
    count (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, a reset-after GRU's b_hn <[H]>). Reads static
    shapes only, so it is free under `jit`. Params of another kind or size are refused with a TypeError or
    ValueError naming `name`, what the cell expects and what was given.

    Returns:
      The input size I that the params read, or None for a hand-built cell without `params_type`.
    """
    check_cell(cell)
    if cell.params_type is None:
        return None
    return cell_types.check_params(
        params, cell.params_type, kind=cell.kind, hidden_size=cell.hidden_size, num_blocks=len(cell.gates),
        reset_after=cell.reset_after, name=name, owner=owner or f"the {cell.kind} cell",
    )  # fmt: skip


def _check_hidden_size(hidden_size) -> None:
    if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size: expected a positive int, got {hidden_size!r}")


def _check_input_size(input_size) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size: expected a positive int, got {input_size!r}")


def _checked_step(kind: str, hidden_size: int, num_blocks: int, params_type, carry_type, reset_after=None):
    """`check(params, carry, x) -> x`: the argument checks every cell's step runs first (at trace time)."""

    def check(params, carry, x):
        input_size = cell_types.check_params(
            params, params_type, kind=kind, hidden_size=hidden_size, num_blocks=num_blocks,
            reset_after=reset_after, owner=f"the {kind} cell",
        )  # fmt: skip
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                f"x: {kind} cell expected a floating-point input, got dtype {x.dtype}; "
                "embed or one-hot integer tokens first"
            )
        if x.ndim < 1 or x.shape[-1] != input_size:
            raise ValueError(
                f"x: {kind} cell expected shape [*batch, {input_size}] (input_size={input_size}), "
                f"got {x.shape}"
            )
        want = (*x.shape[:-1], hidden_size)
        cell_types.check_carry(carry, carry_type, want, kind=kind, why=f" for x of shape {x.shape}")
        return x

    return check


def _initial_carry(carry_type: type, hidden_size: int) -> Callable[..., Carry]:
    def initial_carry(batch_shape=(), dtype=jnp.float32):
        shape = (batch_shape,) if isinstance(batch_shape, int) else batch_shape
        try:
            shape = tuple(shape)
        except TypeError:
            shape = None
        expected = f"batch_shape: expected an int >= 0 or a tuple of them, got {batch_shape!r}"
        if shape is None or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in shape):
            raise TypeError(expected)
        if any(n < 0 for n in shape):
            raise ValueError(expected)
        dtype = _checks.check_float_dtype("dtype", dtype)
        return carry_type(*(jnp.zeros((*shape, hidden_size), dtype) for _ in carry_type._fields))

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
    for name, value in zip(
        ("kernel_init", "recurrent_init", "bias_init"), (kernel_init, recurrent_init, bias_init)
    ):
        _checks.check_callable(name, value, "an initialiser (key, shape, dtype) -> array", optional=True)
    kernel = kernel_init or p.kernel(hidden_size, num_blocks)
    recurrent = recurrent_init or p.recurrent(hidden_size, num_blocks)
    bias = bias_init or p.bias(hidden_size, num_blocks)
    _checks.check_number("gain", gain, minimum=0)
    _checks.check_number("spectral_radius", spectral_radius, minimum=0, optional=True)

    def scale(w_hh):
        return initializers.rescale_recurrent(w_hh, num_blocks, gain=gain, radius=spectral_radius)

    return kernel, recurrent, bias, scale


def _init_kernels(key, input_size, hidden_size, num_blocks, dtype, kernel, recurrent, bias, scale):
    _checks.check_key("key", key)
    _check_input_size(input_size)
    k_ih, k_hh, k_b = jax.random.split(key, 3)
    g = num_blocks * hidden_size
    w_ih = kernel(k_ih, (input_size, g), dtype)
    w_hh = scale(recurrent(k_hh, (hidden_size, g), dtype))
    b = bias(k_b, (g,), dtype)
    return w_ih, w_hh, b


# --------------------------------------------------------------------------------------------
# Elman / simple RNN


@_cached
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
        h_t = φ(a_t),      y_t = h_t,      φ ∈ {tanh, relu, linear, sigmoid}

    Args:
      hidden_size: H.
      activation: "tanh", "relu", "linear" or "sigmoid". `relu` with
        `recurrent_init=initializers.identity()` is the IRNN of Le, Jaitly & Hinton (2015). `sigmoid` is the
        logistic unit of the early vanishing-gradient analyses (Hochreiter 1991; Bengio et al. 1994):
        its derivative is at most γ = 1/4, so the gradient shrinks at least as fast as (σ_max(W_hh)/4)^lag.
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
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    dtype = _checks.check_float_dtype("dtype", dtype)
    phi = _ACTIVATIONS[activation]
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 1, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )

    def init(key, input_size):
        return SimpleParams(
            *_init_kernels(key, input_size, hidden_size, 1, dtype, kernel, recurrent, bias, scale)
        )

    check = _checked_step("simple", hidden_size, 1, SimpleParams, RNNCarry)

    def step(params: SimpleParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        a = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., H)
        h = phi(a)
        return RNNCarry(h), h

    cell = Cell(
        init, _initial_carry(RNNCarry, hidden_size), step, "simple", hidden_size, activation,
        params_type=SimpleParams,
    )  # fmt: skip
    return cell.with_kernel(_kernel(fused.simple_sequence, activation=activation))


# --------------------------------------------------------------------------------------------
# LSTM


@_cached
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
    dtype = _checks.check_float_dtype("dtype", dtype)
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 4, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    if forget_bias is None:
        forget_bias = initializers.preset(preset).forget_bias
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
        raise ValueError(f"forget_bias: expected a number (finite), got {forget_bias!r}")
    _checks.check_number("forget_bias", forget_bias)
    H = hidden_size

    def init(key, input_size):
        w_ih, w_hh, b = _init_kernels(key, input_size, H, 4, dtype, kernel, recurrent, bias, scale)
        b = b.at[H : 2 * H].add(forget_bias)
        return LSTMParams(w_ih, w_hh, b)

    def gates_of(params: LSTMParams, carry: LSTMCarry, x):
        """(i, f, g, o), each <[..., H]>: the gate activations of one step."""
        z = x @ params.w_ih + carry.h @ params.w_hh + params.b  # (..., 4H)
        # One tanh over all four blocks, σ(a) = (1 + tanh(a/2)) / 2: a single fused element-wise op on
        # the whole matmul output. Splitting z first lets XLA turn slice(dot) into four narrow dots,
        # which ran slower on CPU (see the README's performance section).
        t = jnp.tanh(z * lstm_gate_scale(H, z.dtype))
        t_i, t_f, g, t_o = jnp.split(t, 4, axis=-1)
        return 0.5 + 0.5 * t_i, 0.5 + 0.5 * t_f, g, 0.5 + 0.5 * t_o

    check = _checked_step("lstm", H, 4, LSTMParams, LSTMCarry)

    def step(params: LSTMParams, carry: LSTMCarry, x):
        x = check(params, carry, x)
        i, f, g, o = gates_of(params, carry, x)
        c = f * carry.c + i * g
        h = o * jnp.tanh(c)
        return LSTMCarry(h, c), h

    def gate_values(params: LSTMParams, carry: LSTMCarry, x):
        i, f, _, o = gates_of(params, carry, x)
        return {"i": i, "f": f, "o": o}

    cell = Cell(
        init, _initial_carry(LSTMCarry, H), step, "lstm", H,
        gates=("i", "f", "g", "o"), gate_values=gate_values, memory_gate="f", params_type=LSTMParams,
    )  # fmt: skip
    return cell.with_kernel(_kernel(fused.lstm_sequence))


# --------------------------------------------------------------------------------------------
# GRU


@_cached
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
    dtype = _checks.check_float_dtype("dtype", dtype)
    kernel, recurrent, bias, scale = _recurrent_options(
        preset, hidden_size, 3, kernel_init, recurrent_init, bias_init, gain, spectral_radius
    )
    bias_hn = initializers.preset(preset).bias_hn(hidden_size)
    H = hidden_size

    def init(key, input_size):
        _checks.check_key("key", key)
        key, k_hn = jax.random.split(key)
        w_ih, w_hh, b = _init_kernels(key, input_size, H, 3, dtype, kernel, recurrent, bias, scale)
        b_hn = bias_hn(k_hn, (H,), dtype) if reset_after else None
        return GRUParams(w_ih, w_hh, b, b_hn)

    def gates_reset_after(params: GRUParams, carry: RNNCarry, x):
        """(r, z, n), each <[..., H]>: the gates and candidate of one step."""
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        h_r, h_z, h_n = jnp.split(carry.h @ params.w_hh, 3, axis=-1)  # (..., H) each
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        return r, z, jnp.tanh(x_n + r * (h_n + params.b_hn))

    def gates_reset_before(params: GRUParams, carry: RNNCarry, x):
        x_r, x_z, x_n = jnp.split(x @ params.w_ih + params.b, 3, axis=-1)  # (..., H) each
        w_hrz, w_hn = params.w_hh[:, : 2 * H], params.w_hh[:, 2 * H :]
        h_r, h_z = jnp.split(carry.h @ w_hrz, 2, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        return r, z, jnp.tanh(x_n + (r * carry.h) @ w_hn)

    gates_of = gates_reset_after if reset_after else gates_reset_before

    check = _checked_step("gru", H, 3, GRUParams, RNNCarry, reset_after)

    def step(params: GRUParams, carry: RNNCarry, x):
        x = check(params, carry, x)
        _, z, n = gates_of(params, carry, x)
        h = (1 - z) * n + z * carry.h
        return RNNCarry(h), h

    def gate_values(params: GRUParams, carry: RNNCarry, x):
        r, z, _ = gates_of(params, carry, x)
        return {"r": r, "z": z}

    # No whole-sequence kernel by default: `rnnjax.fused.gru_sequence` measured slower than plain autodiff
    # of `step` on CPU (see the README's performance section), so the GRU keeps the plain path.
    return Cell(
        init, _initial_carry(RNNCarry, H), step, "gru", H, "tanh", reset_after,
        gates=("r", "z", "n"), gate_values=gate_values, memory_gate="z", params_type=GRUParams,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Registry: the one table keyed by cell kind.

KINDS: dict[str, Callable[..., Cell]] = {"simple": simple, "lstm": lstm, "gru": gru}


def make(kind: str, hidden_size: int, **options) -> Cell:
    """The cell of `kind` ("simple", "lstm" or "gru") with `hidden_size` and constructor keyword `options`,
    e.g. `make("simple", 64, activation="relu")`, `make("lstm", 128, forget_bias=0.0)`.

    Like the named constructors, equal arguments give the same `Cell` object.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind: expected one of {tuple(KINDS)}, got {kind!r}")
    return KINDS[kind](hidden_size, **options)
