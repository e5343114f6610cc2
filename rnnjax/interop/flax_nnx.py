"""Weight conversion between rnnjax cells and Flax NNX `nnx.SimpleCell`, `nnx.LSTMCell`,
`nnx.OptimizedLSTMCell` and `nnx.GRUCell`, alone or inside `nnx.RNN`. Every conversion is one to one
(kernels are concatenated or split by gate block, never recomputed), so both directions are bit-exact.

    cell, params = interop.from_nnx(nnx_module)                 # an NNX cell, or nnx.RNN(cell)
    grads = interop.from_nnx(nnx_module, nnx.grad(loss)(nnx_module))[1]   # NNX gradients, rnnjax layout
    module = interop.to_nnx(cell, params)                       # nnx.LSTMCell holding the same weights
    rnn = interop.to_nnx(cell, params, cell_type="OptimizedLSTMCell", rnn=True)   # nnx.RNN(...)

How NNX's parameters map onto rnnjax's (flax 0.12). The LSTMCell has one `nnx.Linear` per gate block, named
with rnnjax's gate letters (ii, if_, ig, io input side, no bias; hi, hf, hg, ho recurrent side, biased;
`if` is a Python keyword, hence `if_`); its i*.kernel are concatenated in gate order, h* likewise. The other
cells fuse the blocks: dense_i (input side) and dense_h (recurrent side). "–" means the field does not exist.

| NNX cell           | Gates   | w_ih [I,G·H]   | w_hh [H,G·H]   | b [G·H]       | b_hn [H] |
|--------------------|---------|----------------|----------------|---------------|----------|
| SimpleCell         |         | dense_i.kernel | dense_h.kernel | dense_i.bias  | –        |
| LSTMCell           | i,f,g,o | i*.kernel      | h*.kernel      | h*.bias       | –        |
| OptimizedLSTMCell  | i,f,g,o | dense_i.kernel | dense_h.kernel | dense_h.bias  | –        |
| GRUCell            | r,z,n   | dense_i.kernel | dense_h.kernel | dense_i.bias  | 0        |

NNX's GRUCell is the reset-after form without a candidate recurrent bias: n = tanh(x W_in + b_in +
r ⊙ (h W_hn)), which is rnnjax's reset-after GRU with b_hn = 0 exactly. So `from_nnx` gives b_hn = 0 (for
gradients too: NNX has no b_hn to differentiate), and `to_nnx` converts only a GRU whose b_hn is all zeros.

Carries follow Flax's convention (the LSTM's is (c, h)): convert them with `rnnjax.interop.carry_from_flax`
and `carry_to_flax`. `nnx.RNN(cell)(xs)` equals `rnnjax.unroll(*from_nnx(cell), xs)[1]`, with
`time_major` alike and `reverse=True, keep_order=True` as `reverse=True` (NNX's reverse without keep_order
returns the outputs in reversed time order). flax is imported only inside the functions that need it.

`SUPPORTED` lists the kinds converted here (the rows above); any other kind is refused by name. What
cannot be reproduced exactly is refused with a ValueError that says why: a subclass of an NNX cell,
`SimpleCell(residual=True)`, gate or activation functions other than rnnjax's, a computation dtype other
than the params', a custom `dot_general`, a `preferred_element_type`, a layout whose Linears or biases are
not NNX's, a reset-before GRU or a non-zero b_hn.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks, cells
from rnnjax.cells import Cell
from rnnjax.interop._common import (
    RESET_BEFORE_WHY,
    as_array,
    check_cell_params,
    check_shape,
    either,
    gate_names,
    make_cell,
    make_params,
    to_jnp,
)

__all__ = ["SUPPORTED", "from_nnx", "to_nnx"]


class NNXLayout(NamedTuple):
    """One NNX cell class of a kind: where its `nnx.Linear`s are and which side holds b."""

    name: str  # its class in flax.nnx
    per_gate: bool  # one Linear per gate block, i{gate} / h{gate} (rnnjax's gate letters); else dense_i/h
    biased: str  # the side whose Linears hold b: "i" (input) or "h" (recurrent)


class NNXCell(NamedTuple):
    """How Flax NNX lays out the cells of one rnnjax kind (rows of the module docstring's table)."""

    layouts: tuple[NNXLayout, ...]  # its NNX classes; the first is `to_nnx`'s default
    activations: tuple[str, ...]  # the `activation_fn`s rnnjax's cell reproduces
    gated: bool  # has `gate_fn`, which must be sigmoid like rnnjax's gates
    zero_b_hn: bool  # rnnjax's b_hn has no NNX counterpart: zeros from NNX, must be zeros to NNX


# The kinds this module converts: rnnjax kind -> its NNX layouts.
SUPPORTED: dict[str, NNXCell] = {
    "simple": NNXCell(
        (NNXLayout("SimpleCell", per_gate=False, biased="i"),), ("tanh", "relu", "linear"), gated=False,
        zero_b_hn=False,
    ),
    "lstm": NNXCell(
        (NNXLayout("LSTMCell", per_gate=True, biased="h"), NNXLayout("OptimizedLSTMCell", False, "h")),
        ("tanh",), gated=True, zero_b_hn=False,
    ),
    "gru": NNXCell(
        (NNXLayout("GRUCell", per_gate=False, biased="i"),), ("tanh",), gated=True, zero_b_hn=True
    ),
}  # fmt: skip
_NNX_CLASSES = {layout.name: (kind, layout) for kind, spec in SUPPORTED.items() for layout in spec.layouts}


def _identity(a):
    """The "linear" activation given to an NNX SimpleCell (NNX has no identity function of its own)."""
    return a


# The functions rnnjax's activations are, recognised by identity (an unknown one must be named).
_FUNCTIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "linear": _identity, "sigmoid": jax.nn.sigmoid}
_NAMES = {id(fn): name for name, fn in _FUNCTIONS.items()}


def _linear_names(kind: str, layout: NNXLayout, side: str) -> tuple[str, ...]:
    """The attribute names of the Linears of one side ("i" or "h"), in gate order."""
    if not layout.per_gate:
        return (f"dense_{side}",)
    return tuple(
        name + "_" if keyword.iskeyword(name) else name for name in (side + g for g in gate_names(kind))
    )


def _function_name(fn) -> str:
    return _NAMES.get(id(fn), getattr(fn, "__name__", repr(fn)))


def _activation(module, kind: str, spec: NNXCell, activation: str | None) -> str:
    """The rnnjax activation of `module.activation_fn`: recognised by identity, or named by `activation`
    (checked on a probe, so a wrong name is refused)."""
    fn = module.activation_fn
    found = _NAMES.get(id(fn))
    if activation is not None:
        if not isinstance(activation, str) or activation not in _FUNCTIONS:
            raise ValueError(f"activation: expected one of {tuple(_FUNCTIONS)}, got {activation!r}")
        probe = np.linspace(-3.0, 3.0, 13)
        same = np.array_equal(np.asarray(fn(probe)), np.asarray(_FUNCTIONS[activation](probe)))
        if (found is not None and found != activation) or not same:
            raise ValueError(
                f"activation: {activation!r} does not match the module's activation_fn "
                f"({_function_name(fn)}) on a probe"
            )
        found = activation
    if found is None:
        raise ValueError(
            f"module.activation_fn: {_function_name(fn)} is not recognised; name it with activation= "
            f"(one of {spec.activations}) if it computes one of them"
        )
    if found not in spec.activations:
        raise ValueError(
            f"module.activation_fn: rnnjax's {kind} cell supports {spec.activations}, got {found!r}"
        )
    return found


def _nnx_cell(module):
    """(the NNX cell, its path in the module's state) of an NNX cell or of `nnx.RNN` wrapping one."""
    from flax import nnx

    inner, path = (module.cell, ("cell",)) if type(module) is nnx.RNN else (module, ())
    name = type(inner).__name__
    if name not in _NNX_CLASSES or type(inner) is not getattr(nnx, name):
        expected = either([f"nnx.{n}" for n in _NNX_CLASSES])
        what = "an nnx.RNN wrapping " if path else ""
        raise TypeError(
            f"module: expected {expected}, or nnx.RNN wrapping one, got {what}{type(inner).__module__}."
            f"{type(inner).__qualname__} (subclasses are refused: they may compute another function)"
        )
    return inner, path


def _linears(module, kind: str, layout: NNXLayout):
    """{name: nnx.Linear} of both sides, checked to be plain `x W (+ b)` Linears."""
    from flax import nnx

    linears = {}
    for side in ("i", "h"):
        for name in _linear_names(kind, layout, side):
            linear = getattr(module, name, None)
            if type(linear) is not nnx.Linear:
                raise ValueError(
                    f"module.{name}: expected an nnx.Linear (the layout of nnx.{layout.name}), got "
                    f"{type(linear).__name__}"
                )
            if linear.dot_general is not jax.lax.dot_general:
                raise ValueError(
                    f"module.{name}.dot_general: a custom dot_general cannot be converted exactly"
                )
            if linear.preferred_element_type is not None:
                raise ValueError(
                    f"module.{name}.preferred_element_type: expected None, got "
                    f"{linear.preferred_element_type}"
                )
            linears[name] = linear
    return linears


def _precision(linears: dict) -> str | None:
    """The one matmul precision of every Linear (None: JAX's default), as rnnjax names it."""
    found = {str(getattr(linear.precision, "name", linear.precision)).lower() for linear in linears.values()}
    if len(found) != 1:
        raise ValueError(f"module: its Linears run at different matmul precisions {sorted(found)}")
    (precision,) = found
    if precision == "none":
        return None
    if precision not in _checks.PRECISIONS:
        raise ValueError(f"module: its Linears' precision {precision!r} is not one of {_checks.PRECISIONS}")
    return precision


def _pure(state, path: tuple[str, ...]) -> Mapping:
    """A module's params as a plain nested dict: an `nnx.State` (e.g. gradients) or a dict of arrays."""
    from flax import nnx

    if isinstance(state, nnx.State):
        state = nnx.to_pure_dict(state)
    if not isinstance(state, Mapping):
        raise TypeError(
            f"state: expected an nnx.State or a dict of the module's params, got {type(state).__name__}"
        )
    for key in path:  # nnx.RNN holds its cell's params under "cell"
        if set(state) != {key} or not isinstance(state[key], Mapping):
            raise ValueError(
                f"state: expected the entries ['{key}'] of an nnx.RNN's params, got {sorted(state)}"
            )
        state = state[key]
    return state


def from_nnx(module, state=None, *, activation: str | None = None) -> tuple[Cell, Any]:
    """Convert a Flax NNX `SimpleCell`, `LSTMCell`, `OptimizedLSTMCell` or `GRUCell` (or `nnx.RNN` wrapping
    one) into an rnnjax cell and its params, exactly (see the module docstring's table).

    Args:
      module: the NNX cell, or `nnx.RNN(cell)`. Its class must be NNX's own (not a subclass), its
        `gate_fn` sigmoid, its `activation_fn` tanh (or, for the SimpleCell, relu or the identity), its
        `dtype` None or the params' dtype; every Linear's precision becomes the cell's.
      state: optional params to read instead of the module's own, in the module's layout: an `nnx.State`
        or its pure dict, e.g. the gradients `nnx.grad(loss)(module)` (for an `nnx.RNN`, under "cell").
        The module then only says the layout; the arrays must be concrete (call this outside `jit`).
      activation: name the SimpleCell's activation ("tanh", "relu", "linear") when its `activation_fn` is
        not one rnnjax recognises by identity (e.g. `lambda a: a`); it is checked on a probe.
    Returns:
      `(cell, params)`: an rnnjax `Cell` of hidden size H and dtype of the params, and its params (for the
      GRU, b_hn is zeros <[H]>: NNX's GRUCell has none).
    """
    from flax import nnx

    inner, path = _nnx_cell(module)
    kind, layout = _NNX_CLASSES[type(inner).__name__]
    spec = SUPPORTED[kind]
    if getattr(inner, "residual", False):
        raise ValueError(
            "module: SimpleCell(residual=True) computes φ(x W_i + b + h W_h + h); rnnjax's simple cell has "
            "no residual term, and folding it into W_h + I would change the rounding, so it is not exact"
        )
    if spec.gated and _function_name(inner.gate_fn) != "sigmoid":
        raise ValueError(
            f"module.gate_fn: rnnjax's {kind} gates use sigmoid, got {_function_name(inner.gate_fn)}"
        )
    act = _activation(inner, kind, spec, activation)
    linears = _linears(inner, kind, layout)
    precision = _precision(linears)
    pure = _pure(nnx.state(module, nnx.Param) if state is None else state, path)

    ins, recs = (_linear_names(kind, layout, side) for side in ("i", "h"))
    biased = ins if layout.biased == "i" else recs
    H = inner.hidden_features
    width = len(gate_names(kind)) * H // len(ins)  # H per gate block, or G·H for a fused Linear
    arrays = {}
    for name in linears:
        want = {"kernel", "bias"} if name in biased else {"kernel"}
        entry = pure.get(name)
        if not isinstance(entry, Mapping) or set(entry) != want:
            got = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise ValueError(
                f"state[{name!r}]: expected the entries {sorted(want)} of nnx.{layout.name}, got {got}"
            )
        arrays[name] = {k: as_array(f"state[{name!r}][{k!r}]", v) for k, v in entry.items()}
        rows = inner.in_features if name in ins else H
        why = f" (nnx.{layout.name} with in_features={inner.in_features}, hidden_features={H})"
        check_shape(f"state[{name!r}]['kernel']", arrays[name]["kernel"], (rows, width), why)
        if "bias" in want:
            check_shape(f"state[{name!r}]['bias']", arrays[name]["bias"], (width,), why)
    extra = sorted(set(pure) - set(linears))
    if extra:
        raise ValueError(
            f"state: unexpected entries {extra} for nnx.{layout.name} (expected {sorted(linears)})"
        )

    w_ih = np.concatenate([arrays[n]["kernel"] for n in ins], axis=-1)
    w_hh = np.concatenate([arrays[n]["kernel"] for n in recs], axis=-1)
    b = np.concatenate([arrays[n]["bias"] for n in biased])
    dtype = w_hh.dtype
    for name, entry in arrays.items():
        for k, a in entry.items():
            if a.dtype != dtype:
                raise TypeError(f"state[{name!r}][{k!r}]: expected dtype {dtype} like w_hh, got {a.dtype}")
    if inner.dtype is not None and jnp.dtype(inner.dtype) != dtype:
        raise ValueError(
            f"module.dtype: computes in {jnp.dtype(inner.dtype)} while its params are {dtype}; rnnjax "
            "computes in the params' dtype (convert a module whose dtype is None or the params' dtype)"
        )
    b_hn = np.zeros(H, dtype) if spec.zero_b_hn else None
    cell = make_cell(kind, H, dtype, activation=act)
    return cells.with_precision(cell, precision), make_params(kind, w_ih, w_hh, b, b_hn)


def to_nnx(cell: Cell, params, *, cell_type: str | type | None = None, rnn: bool = False):
    """rnnjax params as a Flax NNX cell holding the same weights (see the module docstring's table).

    Args:
      cell: an rnnjax `Cell` of a kind in `SUPPORTED` ("simple" with activation tanh, relu or linear,
        "lstm", "gru" with reset_after=True); its precision becomes every Linear's.
      params: its params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>; a GRU's b_hn <[H]> must be zeros,
        since NNX's GRUCell has none).
      cell_type: the NNX class or its name: None for the kind's first (SimpleCell, LSTMCell, GRUCell), or
        "OptimizedLSTMCell" for an LSTM.
      rnn: return `nnx.RNN(module)` instead of the cell module.
    Returns:
      A new NNX module (in_features I, hidden_features H, param_dtype and the Linears' arrays those of the
      params, `dtype=None`), built without running NNX's initialisers.
    """
    from flax import nnx

    input_size, H, spec = check_cell_params("cell", "params", cell, params, SUPPORTED, __name__)
    _checks.check_bool("rnn", rnn)
    names = [layout.name for layout in spec.layouts]
    name = getattr(cell_type, "__name__", cell_type) if cell_type is not None else names[0]
    if name not in names or (isinstance(cell_type, type) and cell_type is not getattr(nnx, name)):
        raise ValueError(f"cell_type: a {cell.kind} cell converts to {either(names)}, got {cell_type!r}")
    layout = spec.layouts[names.index(name)]
    if cell.reset_after is False:  # None for kinds without the option
        raise ValueError(f"cell: cannot convert to flax.nnx.GRUCell: {RESET_BEFORE_WHY.format(lib='NNX')}")
    if cell.activation not in spec.activations:
        raise ValueError(
            f"cell: flax.nnx.{name} reproduces rnnjax's activations {spec.activations}, got "
            f"{cell.activation!r}"
        )
    if spec.zero_b_hn:
        b_hn = as_array("params.b_hn", params.b_hn)
        if np.any(b_hn != 0):
            raise ValueError(
                "params.b_hn: flax.nnx.GRUCell has no candidate recurrent bias (it computes n = "
                "tanh(x W_in + b_in + r ⊙ (h W_hn))), so only b_hn = 0 converts exactly; got max |b_hn| = "
                f"{float(np.max(np.abs(b_hn))):.3g}"
            )
    w_ih, w_hh, b = (as_array(f"params.{f}", a) for f, a in zip(params._fields, params[:3]))
    options = {"param_dtype": w_hh.dtype, "dtype": None}
    if not spec.gated:
        options["activation_fn"] = _FUNCTIONS[cell.activation]
    module = nnx.eval_shape(lambda: getattr(nnx, name)(input_size, H, rngs=nnx.Rngs(0), **options))
    ins, recs = (_linear_names(cell.kind, layout, side) for side in ("i", "h"))
    for names_, kernel in ((ins, w_ih), (recs, w_hh)):
        for n, block in zip(names_, np.split(kernel, len(names_), axis=-1)):
            getattr(module, n).kernel.set_value(to_jnp(np.ascontiguousarray(block)))
    for n, block in zip(ins if layout.biased == "i" else recs, np.split(b, len(ins))):
        getattr(module, n).bias.set_value(to_jnp(block))
    for linear in _linears(module, cell.kind, layout).values():
        linear.precision = cell.precision
    left = [a for a in jax.tree.leaves(nnx.state(module)) if isinstance(a, jax.ShapeDtypeStruct)]
    if left:  # a layout this module does not know (another flax version): never return abstract params
        raise RuntimeError(f"to_nnx: nnx.{name} holds parameters this converter does not set: {left}")
    return nnx.RNN(module) if rnn else module
