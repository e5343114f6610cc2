"""The cell contract every kind fills in (`Cell`) and the machinery all kinds share.

A cell is a `Cell` value of pure functions, in the style of optax's `GradientTransformation`:

    params = cell.init(key, input_size)
    carry = cell.initial_carry(batch_shape)           # zeros
    carry, y = cell.step(params, carry, x)            # x: <float>[*batch, input_size]

Each kind lives in one module of `rnnjax.kinds` and states there everything generic code needs (params
type and shapes, init, step, gates, the recurrent matrices the diagnostics analyse, its kernel); the
registry `rnnjax.cells.KINDS` lists them. Nothing outside a kind's module reads its field names.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, cell_types, initializers

__all__ = ["Cell", "check_cell", "check_params", "perturbed", "with_precision"]


Params = Any
Carry = Any


class Cell(NamedTuple):
    """A recurrent cell: pure functions plus the facts about its kind that generic code needs.

    Attributes:
      init: `(key, input_size) -> params`.
      initial_carry: `(batch_shape=(), dtype=jnp.float32) -> carry` of zeros, each field
        <dtype>[*batch_shape, hidden_size].
      step: `(params, carry, x) -> (carry, y)` with x <float>[*batch, input_size] and
        y <float>[*batch, hidden_size].
      kind: a key of `rnnjax.cells.KINDS` ("simple", "lstm", "gru", "orthogonal", "lru", "mingru",
        "minlstm").
      hidden_size: H.
      activation: the nonlinearity φ of the kinds that have one to choose ("tanh", "relu", "linear",
        "sigmoid" for the simple cell; "modrelu" or "tanh" for the orthogonal cell); "tanh" for the gated
        kinds, "linear" for the kinds linear in the carry (LRU, minGRU, minLSTM).
      reset_after: GRU form (see `gru`); None for other kinds.
      gates: names of the blocks of the fused kernels, in order: ("h",) for the simple cell,
        ("i", "f", "g", "o") for the LSTM, ("r", "z", "n") for the GRU; each kind's module states its own.
      gate_values: `(params, carry, x) -> {name: <[*batch, H]>}`, the sigmoid gates of one step (LSTM i, f,
        o; GRU r, z; minGRU z; minLSTM f, i), computed by the same code as `step`; None without gates.
      memory_gate: the gate value that is the fraction of the old state kept per step (LSTM "f", GRU "z",
        minGRU and minLSTM "keep": 1 − z and the normalised f'); None for ungated kinds.
      kernel: `(step, sequence)`: a whole-sequence kernel bound to the step it computes; read it as
        `cell.sequence`. Set it with `with_kernel`.
      params_type: the NamedTuple type of the cell's params; `check_params` checks params against it with
        `params_check`. None for a cell built by hand (nothing is checked).
      precision: the matmul precision of every matmul of the cell (None: JAX's default, e.g. TF32 on
        recent NVIDIA GPUs). Every constructor takes `precision=`, e.g. `cells.lstm(64, precision="highest")`;
        `rnnjax.unroll(..., precision=)` overrides it for one call.
      params_check: `(params, params_type, *, name, owner) -> input_size`, the kind's own check of
        params (type, field shapes, dtypes), raising an error that names the field.
      recurrent_matrices: `(params) -> {name: <[H, H]>}`, the recurrent matrices the diagnostics analyse
        (spectral radius, σ_max, the Pascanu bound): W_hh's gate blocks for the classics, expm(A − Aᵀ) for
        the orthogonal cell, diag(λ) (complex) for the LRU; an empty dict for the kinds whose recurrence
        is an input-dependent diagonal (minGRU, minLSTM), None for a cell built by hand.
      gamma: γ of the Pascanu bound ‖∂h_t/∂h_{t−1}‖ ≤ γ σ_max(W) (γ = max |φ'|), or None where no
        such bound holds with a fixed W (LSTM, GRU, the min cells).
      output: `(params, carry, x) -> y`, the step's output from its new carry and input; None when y is
        the carry's h (every kind but the LRU, whose y_t = Re(C h_t) + x_t D).
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
    params_check: Callable[..., int] | None = None
    recurrent_matrices: Callable[[Params], dict[str, jax.Array]] | None = None
    gamma: float | None = None
    output: Callable[[Params, Carry, jax.Array], jax.Array] | None = None

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


def cached(constructor: Callable[..., Cell]) -> Callable[..., Cell]:
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
        # y_t is recomputed from the perturbed carry, so the outputs see the perturbation too.
        return new, new.h if cell.output is None else cell.output(params, new, x)

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
    step, gate_values, sequence, output = cell.step, cell.gate_values, cell.sequence, cell.output

    def precise_step(params, carry, x):
        with _checks.matmul_precision(precision):
            return step(params, carry, x)

    def precise_gates(params, carry, x):
        with _checks.matmul_precision(precision):
            return gate_values(params, carry, x)

    def precise_output(params, carry, x):
        with _checks.matmul_precision(precision):
            return output(params, carry, x)

    def precise_sequence(params, carry, xs, *, reverse=False, unroll=None, precision=precision):
        return sequence(params, carry, xs, reverse=reverse, unroll=unroll, precision=precision)

    new = cell._replace(
        step=precise_step,
        gate_values=None if gate_values is None else precise_gates,
        output=None if output is None else precise_output,
        precision=precision,
    ).with_kernel(None if sequence is None else precise_sequence)
    _BASE[new] = cell
    return new


def kernel_of(fn: Callable, **options) -> Callable[..., tuple[Carry, jax.Array]]:
    """The `rnnjax.fused` kernel `fn` with fixed cell options."""

    def sequence(params, carry, xs, *, reverse=False, unroll=None, precision=None):
        return fn(params, carry, xs, reverse=reverse, unroll=unroll, precision=precision, **options)

    return sequence


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
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
    """Raise unless `params` fit `cell`: its params type and the shapes its kind states (for the classics
    fused kernels w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, a reset-after GRU's b_hn <[H]>). Reads
    static shapes only, so it is free under `jit`. Params of another kind or size are refused with a
    TypeError or ValueError naming `name`, what the cell expects and what was given.

    Returns:
      The input size I that the params read, or None for a hand-built cell without `params_type`.
    """
    check_cell(cell)
    if cell.params_type is None or cell.params_check is None:
        return None
    return cell.params_check(
        params, cell.params_type, kind=cell.kind, hidden_size=cell.hidden_size, name=name,
        owner=owner or f"the {cell.kind} cell",
    )  # fmt: skip


def check_hidden_size(hidden_size) -> None:
    if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size: expected a positive int, got {hidden_size!r}")


def check_input_size(input_size) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size: expected a positive int, got {input_size!r}")


def classic_params_check(num_blocks: int, reset_after: bool | None = None) -> Callable[..., int]:
    """`params_check` of a kind with fused kernels w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]> (G =
    `num_blocks`) and, for a reset-after GRU, b_hn <[H]> (see `cell_types.check_params`)."""

    def check(params, params_type, *, kind, hidden_size, name="params", owner="cell"):
        return cell_types.check_params(
            params, params_type, kind=kind, hidden_size=hidden_size, num_blocks=num_blocks,
            reset_after=reset_after, name=name, owner=owner,
        )  # fmt: skip

    return check


def shapes_check(shapes: Callable[[Any], dict[str, tuple]]) -> Callable[..., int]:
    """`params_check` of a kind that states its field shapes: `shapes(I)` maps every field to its shape,
    with I the input size; the first field whose shape holds I is where I is read."""

    def check(params, params_type, *, kind, hidden_size, name="params", owner="cell"):
        want = shapes("I")
        first = next(field for field, shape in want.items() if "I" in shape)
        if not isinstance(params, params_type):
            listed = ", ".join(f"{f} {list(s)}" for f, s in want.items())
            raise TypeError(
                f"{name}: a {kind} cell expected {params_type.__name__} ({listed}: "
                f"hidden_size={hidden_size}), got {type(params).__name__}"
            )
        shape = cell_types.shape_and_dtype(getattr(params, first))[0]
        at = want[first].index("I")
        input_size = shape[at] if len(shape) == len(want[first]) else "input_size"
        for field, expected in shapes(input_size).items():
            shape, dtype = cell_types.shape_and_dtype(getattr(params, field))
            if shape != tuple(expected):
                expected = str(tuple(expected)).replace("'", "")
                raise ValueError(
                    f"{name}.{field}: expected shape {expected} ({owner} has hidden_size={hidden_size}), "
                    f"got {shape}"
                )
            if not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(f"{name}.{field}: expected a floating-point array, got dtype {dtype}")
        return input_size

    return check


def checked_step(kind: str, hidden_size: int, params_check, params_type, carry_type):
    """`check(params, carry, x) -> x`: the argument checks every cell's step runs first (at trace time)."""

    def check(params, carry, x):
        input_size = params_check(
            params, params_type, kind=kind, hidden_size=hidden_size, owner=f"the {kind} cell"
        )
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


def initial_carry_of(carry_type: type, hidden_size: int) -> Callable[..., Carry]:
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


def recurrent_options(
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


def init_kernels(key, input_size, hidden_size, num_blocks, dtype, kernel, recurrent, bias, scale):
    _checks.check_key("key", key)
    check_input_size(input_size)
    k_ih, k_hh, k_b = jax.random.split(key, 3)
    g = num_blocks * hidden_size
    w_ih = kernel(k_ih, (input_size, g), dtype)
    w_hh = scale(recurrent(k_hh, (hidden_size, g), dtype))
    b = bias(k_b, (g,), dtype)
    return w_ih, w_hh, b
