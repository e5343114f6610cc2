"""Weight and carry conversion between rnnjax cells and Flax linen `SimpleCell`, `LSTMCell`,
`OptimizedLSTMCell` and `GRUCell`. Every conversion is one to one: Flax's LSTM puts the bias on the
recurrent Denses and its GRU is the reset-after form with b_hn on `hn`, exactly rnnjax's layout, so
nothing is summed and both directions are bit-exact.

    cell, params = interop.from_flax(nn.LSTMCell(features=8), variables)
    variables = interop.to_flax(cell, params)                # for nn.LSTMCell(8).apply
    carry = interop.carry_from_flax(flax_carry)              # Flax (c, h) -> LSTMCarry(h, c)

How Flax's parameters map onto rnnjax's. Flax names its per-gate Denses i{gate} (input side) and h{gate}
(recurrent side) with rnnjax's gate letters (ii, if, ig, io for the LSTM; ir, iz, in for the GRU); i*.kernel
are the input Dense kernels concatenated in gate order (ii‖if‖ig‖io, ir‖iz‖in), h* likewise; "–" means the
field does not exist.

| Flax cell                    | Gates   | w_ih [I,G·H] | w_hh [H,G·H] | b [G·H]                 | b_hn [H] |
|------------------------------|---------|--------------|--------------|-------------------------|----------|
| SimpleCell                   |         | i.kernel     | h.kernel     | i.bias                  | –        |
| (Optimized)LSTMCell          | i,f,g,o | i*.kernel    | h*.kernel    | h*.bias                 | –        |
| GRUCell                      | r,z,n   | i*.kernel    | h*.kernel    | i*.bias                 | hn.bias  |

Carries: Flax's LSTM carry is (c, h), converted by `carry_from_flax` / `carry_to_flax`. flax is imported
only inside the functions that need it; this module's name does not shadow it, since imports are absolute.

`SUPPORTED` lists the kinds converted here (the rows above); any other kind is refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks
from rnnjax.cells import Cell, LSTMCarry, RNNCarry
from rnnjax.interop._common import (
    RESET_BEFORE_WHY,
    as_array,
    check_cell_params,
    check_shape,
    gate_names,
    make_cell,
    make_params,
)

__all__ = ["carry_from_flax", "carry_to_flax", "from_flax", "to_flax"]


class FlaxCell(NamedTuple):
    """How Flax linen lays out the cells of one rnnjax kind (a row of the module docstring's table)."""

    modules: tuple[str, ...]  # its cell classes in flax.linen
    activations: tuple[str, ...]  # the `activation_fn`s rnnjax's cell reproduces
    gated: bool  # has `gate_fn`, which must be sigmoid like rnnjax's gates
    per_gate: bool  # one Dense per gate block, i{gate} / h{gate} with rnnjax's gate letters; else i, h
    biased: str  # the side whose Denses hold b: "i" (input) or "h" (recurrent)
    b_hn: str | None  # the Dense whose bias is the GRU's b_hn (None: no b_hn)


# The kinds this module converts: rnnjax kind -> its Flax layout.
SUPPORTED: dict[str, FlaxCell] = {
    "simple": FlaxCell(
        ("SimpleCell",), ("tanh", "relu", "linear"), gated=False, per_gate=False, biased="i", b_hn=None
    ),
    "lstm": FlaxCell(
        ("LSTMCell", "OptimizedLSTMCell"), ("tanh",), gated=True, per_gate=True, biased="h", b_hn=None
    ),
    "gru": FlaxCell(("GRUCell",), ("tanh",), gated=True, per_gate=True, biased="i", b_hn="hn"),
}
_FLAX_KINDS = {name: kind for kind, spec in SUPPORTED.items() for name in spec.modules}  # class: kind


def _blocks(kind: str, spec: FlaxCell) -> tuple[str, ...]:
    """What follows "i" / "h" in the names of Flax's Denses, one per gate block: rnnjax's gate letters
    ("ii", "hf", ...), or "" for a cell with one Dense per side ("i", "h")."""
    return gate_names(kind) if spec.per_gate else ("",)


def _flax_function_name(fn) -> str:
    names = {id(jnp.tanh): "tanh", id(jax.nn.relu): "relu", id(jax.nn.sigmoid): "sigmoid"}
    return names.get(id(fn), getattr(fn, "__name__", repr(fn)))


def _flax_settings(cell_type, activation, residual) -> tuple[str, str, int | None]:
    """(kind, activation, features or None) from a Flax cell instance, class or name."""
    import flax.linen as nn

    if isinstance(cell_type, str):
        name, module = cell_type, None
    elif isinstance(cell_type, type) and issubclass(cell_type, nn.Module):
        name, module = cell_type.__name__, None
    elif isinstance(cell_type, nn.Module):
        name, module = type(cell_type).__name__, cell_type
    else:
        raise TypeError(
            f"cell_type: expected a Flax cell, its class or its name, got {type(cell_type).__name__}"
        )
    kind = _FLAX_KINDS.get(name)
    if kind is None:
        raise ValueError(f"cell_type: expected one of {sorted(_FLAX_KINDS)}, got {name!r}")
    spec = SUPPORTED[kind]
    if module is None:
        act = "tanh" if activation is None else activation
        features = None
    else:
        if activation is not None or residual is not None:
            raise TypeError(
                "activation/residual: read from the Flax module; pass them only with a class or name"
            )
        act = _flax_function_name(module.activation_fn)
        residual = getattr(module, "residual", False)
        features = module.features
        if spec.gated and _flax_function_name(module.gate_fn) != "sigmoid":
            raise ValueError(
                f"cell_type.gate_fn: rnnjax's {kind} gates use sigmoid, "
                f"got {_flax_function_name(module.gate_fn)}"
            )
    if residual:
        raise ValueError(
            "cell_type: SimpleCell(residual=True) computes φ(x W_i + b + h W_h + h); rnnjax's simple cell "
            "has "
            "no residual term, and folding it into W_h + I would change the rounding, so it is not exact"
        )
    if act not in spec.activations:
        raise ValueError(
            f"activation: rnnjax's {kind} cell supports {spec.activations}, got {act!r} (for an identity "
            "activation_fn "
            "pass cell_type='SimpleCell', activation='linear')"
        )
    return kind, act, features


def _flax_dense(variables: Mapping, name: str, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    sub = variables.get(name)
    if not isinstance(sub, Mapping):
        raise ValueError(
            f"variables: expected a sub-dict {name!r} (a Dense's params), got keys {sorted(variables)}"
        )
    want = {"kernel", "bias"} if bias else {"kernel"}
    if set(sub) != want:
        raise ValueError(f"variables[{name!r}]: expected keys {sorted(want)}, got {sorted(sub)}")
    kernel = as_array(f"variables[{name!r}]['kernel']", sub["kernel"])
    if kernel.ndim != 2:
        raise ValueError(f"variables[{name!r}]['kernel']: expected shape [in, H], got {kernel.shape}")
    b = as_array(f"variables[{name!r}]['bias']", sub["bias"]) if bias else None
    return kernel, b


def from_flax(
    cell_type,
    variables,
    *,
    activation: str | None = None,
    residual: bool | None = None,
    reset_after: bool = True,
) -> tuple[Cell, Any]:
    """Convert Flax linen `SimpleCell`, `LSTMCell`, `OptimizedLSTMCell` or `GRUCell` params into rnnjax.

    All four are exact: Flax's LSTM puts the bias on the recurrent Dense (hi, hf, hg, ho) and its GRU is
    the reset-after form with the r, z, n biases on the input Denses and b_hn on `hn`: exactly rnnjax's
    GRUParams, with no sums.

    Args:
      cell_type: a Flax cell instance (its `activation_fn`, `gate_fn`, `residual` and `features` are
        checked), its class, or its name ("SimpleCell", "LSTMCell", "OptimizedLSTMCell", "GRUCell");
        classes and names assume Flax's default functions.
      variables: `{"params": {...}}` from `module.init`, or the inner params dict, with per-gate Dense
        kernels <[I, H]> (input side) and <[H, H]> (recurrent side) and biases <[H]> (see the table).
      activation: only with a class or name: the SimpleCell's activation, "tanh" (default), "relu" or
        "linear".
      residual: only with a class or name: must be falsy (SimpleCell(residual=True) is not representable).
      reset_after: must be True (Flax's GRUCell is reset-after; False raises ValueError).
    Returns:
      `(cell, params)`: an rnnjax `Cell` of hidden size H and its params in the variables' dtype.
    """
    _checks.check_bool("reset_after", reset_after)
    if reset_after is not True:
        raise ValueError(
            f"reset_after: {RESET_BEFORE_WHY.format(lib='flax.linen.GRUCell')}; got {reset_after!r}"
        )
    if residual is not None:
        _checks.check_bool("residual", residual)
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation: expected None or an activation name such as 'relu', got {activation!r}")
    kind, act, features = _flax_settings(cell_type, activation, residual)
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a params dict, got {type(variables).__name__}")
    if "params" in variables:  # full variables; a cell's own params never has a sub-module "params"
        variables = variables["params"]
        if not isinstance(variables, Mapping):
            raise TypeError(f"variables['params']: expected a dict, got {type(variables).__name__}")
    spec = SUPPORTED[kind]
    blocks = _blocks(kind, spec)
    dense = {  # name: (kernel, bias or None), inputs side first, in gate order
        side + g: _flax_dense(variables, side + g, side == spec.biased or side + g == spec.b_hn)
        for side in ("i", "h")
        for g in blocks
    }
    expected = set(dense)
    for side in ("i", "h"):
        shapes = [dense[side + g][0].shape for g in blocks]
        if len(set(shapes)) != 1:
            raise ValueError(f"variables: the {side}* kernels differ in shape: {shapes}")
    w_ih, w_hh = (np.concatenate([dense[side + g][0] for g in blocks], axis=-1) for side in ("i", "h"))
    b = np.concatenate([dense[spec.biased + g][1] for g in blocks])
    b_hn = None if spec.b_hn is None else dense[spec.b_hn][1]
    extra = sorted(set(variables) - expected)
    if extra:
        raise ValueError(
            f"variables: unexpected entries {extra} for a Flax {kind} cell (expected {sorted(expected)})"
        )
    G = len(gate_names(kind))
    H = w_hh.shape[0]
    check_shape("variables (recurrent kernels)", w_hh, (H, G * H), " (H×H per gate)")
    if features is not None and features != H:
        raise ValueError(f"cell_type: features={features} but the variables hold hidden size {H}")
    check_shape("variables (input kernels)", w_ih, (w_ih.shape[0], G * H), f" (I×{H} per gate)")
    check_shape("variables (biases)", b, (G * H,), f" ({H} per gate)")
    if b_hn is not None:
        check_shape(f"variables[{spec.b_hn!r}]['bias']", b_hn, (H,))
    dtype = w_hh.dtype
    for name, a in (("input kernels", w_ih), ("biases", b), ("hn bias", b_hn)):
        if a is not None and a.dtype != dtype:
            raise TypeError(
                f"variables ({name}): expected dtype {dtype} like the recurrent kernels, got {a.dtype}"
            )
    return make_cell(kind, H, dtype, activation=act), make_params(kind, w_ih, w_hh, b, b_hn)


def to_flax(cell: Cell, params) -> dict:
    """rnnjax params as Flax linen variables for `SimpleCell`, `LSTMCell`/`OptimizedLSTMCell` or `GRUCell`.

    Build the Flax cell with `features=cell.hidden_size` (and, for a simple cell, an `activation_fn` of
    the same function: `nn.tanh`, `nn.relu` or `lambda a: a` for "linear"); both Flax LSTM cells take the
    same variables.

    Args:
      cell: an rnnjax `Cell` of a kind in `SUPPORTED` ("simple", "lstm", "gru"; GRUs need
        reset_after=True: Flax's GRUCell is the reset-after form).
      params: its params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, GRU b_hn <[H]>).
    Returns:
      `{"params": {...}}` for `module.apply`, with per-gate kernels <[I, H]> / <[H, H]> and biases <[H]>.
    """
    spec = check_cell_params("cell", "params", cell, params, SUPPORTED, __name__)[2]
    if cell.reset_after is False:  # None for kinds without the option
        lib = f"flax.linen.{spec.modules[0]}"
        raise ValueError(f"cell: cannot convert to {lib}: {RESET_BEFORE_WHY.format(lib='Flax')}")
    w_ih, w_hh, b = (jnp.asarray(a) for a in params[:3])
    blocks = _blocks(cell.kind, spec)
    G = len(blocks)
    ins, hs, bs = jnp.split(w_ih, G, axis=-1), jnp.split(w_hh, G, axis=-1), jnp.split(b, G)
    out = {}
    for g, k_i, k_h, bias in zip(blocks, ins, hs, bs):
        out["i" + g] = {"kernel": k_i}
        out["h" + g] = {"kernel": k_h}
        out[spec.biased + g]["bias"] = bias
    if spec.b_hn is not None:
        out[spec.b_hn]["bias"] = jnp.asarray(params.b_hn)
    return {"params": out}


def carry_from_flax(carry):
    """A Flax cell carry as an rnnjax carry.

    Args:
      carry: Flax LSTM carry `(c, h)` (each <float>[*batch, H]), or a SimpleCell/GRUCell carry h
        <float>[*batch, H].
    Returns:
      `LSTMCarry(h, c)` or `RNNCarry(h)`.
    """
    if isinstance(carry, (LSTMCarry, RNNCarry)):
        raise TypeError(
            f"carry: already an rnnjax {type(carry).__name__}; carry_from_flax takes Flax's (c, h) or h"
        )
    if isinstance(carry, (tuple, list)):
        if len(carry) != 2:
            raise ValueError(f"carry: expected Flax's LSTM carry (c, h), got a sequence of {len(carry)}")
        c, h = (_checks.check_float_array(f"carry[{i}]", a) for i, a in enumerate(carry))
        if c.shape != h.shape:
            raise ValueError(f"carry: c and h must have the same shape, got {c.shape} and {h.shape}")
        return LSTMCarry(h, c)
    return RNNCarry(_checks.check_float_array("carry", carry, "array h or Flax's LSTM carry (c, h)"))


def carry_to_flax(carry):
    """An rnnjax carry as a Flax cell carry.

    Args:
      carry: `LSTMCarry(h, c)` or `RNNCarry(h)`, fields <float>[*batch, H].
    Returns:
      `(c, h)` for Flax's LSTM cells, or the array h for SimpleCell/GRUCell.
    """
    if isinstance(carry, LSTMCarry):
        return (carry.c, carry.h)
    if isinstance(carry, RNNCarry):
        return carry.h
    raise TypeError(f"carry: expected LSTMCarry or RNNCarry, got {type(carry).__name__}")
