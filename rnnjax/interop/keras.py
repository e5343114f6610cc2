"""Weight conversion between rnnjax cells and Keras 3 `SimpleRNN`, `LSTM` and `GRU` layers (GRU with
`reset_after=True` or `False`), and between `rnnjax.readout.DenseParams` and a Keras `Dense` readout.

    cell, params = interop.from_keras(layer)               # a built keras.layers.LSTM, say
    layer.set_weights(interop.to_keras(cell, params))      # and back

How Keras' parameters map onto rnnjax's. K, R, B are Keras' kernel, recurrent_kernel, bias, and B0, B1 the
rows (input; recurrent) of a reset_after=True GRU's bias; P(·) reorders Keras GRU blocks z,r,h into
rnnjax's r,z,n (it swaps the first two H-wide blocks and is its own inverse); [h] selects the candidate
block; G = len(cell.gates) gate blocks (1, 4, 3 for simple, LSTM and GRU cells); "–" means the field does
not exist, "None" that it is None.

| Keras layer                  | Gates   | w_ih [I,G·H] | w_hh [H,G·H] | b [G·H]                 | b_hn [H] |
|------------------------------|---------|--------------|--------------|-------------------------|----------|
| SimpleRNN, LSTM              | i,f,c,o | K            | R            | B                       | –        |
| GRU, reset_after=True        | z,r,h   | P(K)         | P(R)         | r,z: P(B0+B1); n: B0[h] | B1[h]    |
| GRU, reset_after=False       | z,r,h   | P(K)         | P(R)         | P(B)                    | None     |
| Dense → DenseParams          |         | w = K        |              | b = B                   |          |

Writing back (`to_keras`): a bias the function sees only as a sum cannot be split again, so a
reset_after=True GRU gets B0 = P(b), B1 = P(0‖0‖b_hn); the other layers hold no sums and map back one to
one. Carries: Keras LSTM states are [h, c], like `LSTMCarry(h, c)`. keras is never imported here: the
functions take `layer.get_weights()` and `layer.get_config()` (or the layer itself).

`SUPPORTED` lists the kinds converted here (the rows above); any other kind is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from rnnjax import _checks
from rnnjax.cells import Cell
from rnnjax.interop._common import (
    as_array,
    check_cell_params,
    check_shape,
    either,
    gate_names,
    gru_recurrent_bias,
    make_cell,
    make_params,
    sum_gru_biases,
    to_jnp,
)
from rnnjax.readout import DenseParams

__all__ = ["from_keras", "from_keras_dense", "to_keras", "to_keras_dense"]

_PERM_GRU = (1, 0, 2)  # Keras z, r, h <-> rnnjax r, z, n (its own inverse)


def _perm_gru(a: np.ndarray) -> np.ndarray:
    """Swap the first two of three H-wide blocks on the last axis (Keras z,r,h <-> rnnjax r,z,n)."""
    blocks = np.split(a, 3, axis=-1)
    return np.concatenate([blocks[i] for i in _PERM_GRU], axis=-1)


def _same_order(a: np.ndarray) -> np.ndarray:
    return a


class KerasLayer(NamedTuple):
    """How Keras lays out the cells of one rnnjax kind (a row of the module docstring's table)."""

    layer: str  # its class in keras.layers
    activations: tuple[str, ...]  # the `activation`s rnnjax's cell reproduces
    gated: bool  # has `recurrent_activation`, which must be sigmoid like rnnjax's gates
    reset_after: bool  # has GRU's `reset_after` option; True keeps the bias as rows [input; recurrent]
    order: Callable[[np.ndarray], np.ndarray]  # Keras gate blocks <-> rnnjax's, last axis (self-inverse)


# The kinds this module converts: rnnjax kind -> its Keras layout.
SUPPORTED: dict[str, KerasLayer] = {
    "simple": KerasLayer(
        "SimpleRNN", ("tanh", "relu", "linear"), gated=False, reset_after=False, order=_same_order
    ),
    "lstm": KerasLayer("LSTM", ("tanh",), gated=True, reset_after=False, order=_same_order),
    "gru": KerasLayer("GRU", ("tanh",), gated=True, reset_after=True, order=_perm_gru),
}
_KERAS_LAYERS = {spec.layer: kind for kind, spec in SUPPORTED.items()}  # Keras layer: rnnjax cell kind
_LAYER_NAMES = either([repr(layer) for layer in _KERAS_LAYERS])  # "'SimpleRNN', 'LSTM' or 'GRU'"
# Layer options that do not change the cell's equations or weights (training-time dropout, initialisers,
# regularisers, and how the layer iterates: go_backwards matches rnnjax's unroll(reverse=True) with the
# outputs flipped back).
_KERAS_RNN_IGNORED = frozenset(
    """name trainable dtype return_sequences return_state go_backwards stateful unroll dropout
    recurrent_dropout seed zero_output_for_mask kernel_initializer recurrent_initializer bias_initializer
    kernel_regularizer recurrent_regularizer bias_regularizer activity_regularizer kernel_constraint
    recurrent_constraint bias_constraint unit_forget_bias use_cudnn""".split()
)
_KERAS_DENSE_IGNORED = frozenset(
    """name trainable dtype kernel_initializer bias_initializer kernel_regularizer bias_regularizer
    activity_regularizer kernel_constraint bias_constraint lora_alpha""".split()
)


def _keras_activation(name: str, value) -> str:
    if value is None:
        return "linear"
    if isinstance(value, Mapping):  # a serialised custom function
        value = value.get("config", value)
    if callable(value):
        value = getattr(value, "__name__", repr(value))
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected an activation name or function, got {type(value).__name__}")
    return value.lower()


def _keras_layer(layer_kind, weights, layer_config):
    """Accept a Keras layer instance in place of (layer_kind, weights, config)."""
    if isinstance(layer_kind, str):
        return layer_kind, weights, layer_config
    if hasattr(layer_kind, "get_weights") and hasattr(layer_kind, "get_config"):
        if weights is not None or layer_config:
            raise TypeError(
                "weights: pass either a Keras layer alone or (layer_kind name, weights, **config), not both"
            )
        return type(layer_kind).__name__, layer_kind.get_weights(), layer_kind.get_config()
    raise TypeError(f"layer_kind: expected {_LAYER_NAMES} or a Keras layer, got {layer_kind!r}")


def _check_config(config: Mapping, allowed: set, ignored: frozenset, layer: str) -> None:
    unknown = sorted(set(config) - allowed - ignored)
    if unknown:
        raise ValueError(
            f"layer_config: unknown option(s) {unknown} for Keras {layer}; rnnjax checks {sorted(allowed)} "
            "and ignores options that do not change the equations (initialisers, regularisers, dropout, ...)"
        )


def from_keras(layer_kind, weights=None, **layer_config) -> tuple[Cell, Any]:
    """Convert a Keras 3 `SimpleRNN`, `LSTM` or `GRU` layer's weights into an rnnjax cell and params.

    Keras GRU gate blocks are z, r, h (update gate first); they are reordered to rnnjax's r, z, n.
    Options that change the equations are checked: SimpleRNN `activation` in tanh / relu / linear (None);
    LSTM and GRU need `activation="tanh"` and `recurrent_activation="sigmoid"`; `use_bias` (False gives
    zero biases) and GRU `reset_after` (both forms are exact). `go_backwards=True` is accepted: run the
    cell with `unroll(..., reverse=True)` (rnnjax keeps outputs aligned with inputs; Keras returns them in
    reversed order).

    Args:
      layer_kind: "SimpleRNN", "LSTM" or "GRU" (case-insensitive; the layers of `SUPPORTED`), or a
        built Keras layer (then leave `weights` and `layer_config` out: they are read from it).
      weights: `layer.get_weights()`: [kernel <[I, G·H]>, recurrent_kernel <[H, G·H]>, bias] with bias
        <[G·H]>, or <[2, 3H]> (input bias; recurrent bias) for GRU reset_after=True; no bias when
        `use_bias=False`.
      **layer_config: the layer's options, e.g. `**layer.get_config()` (`units` is checked against the
        weights).
    Returns:
      `(cell, params)`: a `Cell` of hidden size H and its `SimpleParams`/`LSTMParams`/`GRUParams` in the
      weights' dtype (GRU reset_after=False gives a reset_after=False cell with b_hn None).
    """
    layer_kind, weights, layer_config = _keras_layer(layer_kind, weights, layer_config)
    by_lower = {name.lower(): name for name in _KERAS_LAYERS}
    layer = by_lower.get(layer_kind.lower()) if isinstance(layer_kind, str) else None
    if layer is None:
        raise ValueError(f"layer_kind: expected {_LAYER_NAMES}, got {layer_kind!r}")
    kind = _KERAS_LAYERS[layer]
    spec = SUPPORTED[kind]
    allowed = {"units", "activation", "use_bias"} | ({"recurrent_activation"} if spec.gated else set())
    allowed |= {"reset_after"} if spec.reset_after else set()
    _check_config(layer_config, allowed, _KERAS_RNN_IGNORED, layer)

    activation = _keras_activation("activation", layer_config.get("activation", "tanh"))
    if activation not in spec.activations:
        verb = "uses" if len(spec.activations) == 1 else "supports"
        raise ValueError(
            f"activation: rnnjax's {kind} cell {verb} {either(spec.activations)}, got {activation!r}"
        )
    if spec.gated:
        recurrent = _keras_activation(
            "recurrent_activation", layer_config.get("recurrent_activation", "sigmoid")
        )
        if recurrent != "sigmoid":
            raise ValueError(f"recurrent_activation: rnnjax's {kind} gates use sigmoid, got {recurrent!r}")
    use_bias = _checks.check_bool("use_bias", layer_config.get("use_bias", True))
    reset_after = _checks.check_bool("reset_after", layer_config.get("reset_after", True))

    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected the list from layer.get_weights(), got {type(weights).__name__}")
    names = ["kernel", "recurrent_kernel"] + (["bias"] if use_bias else [])
    if len(weights) != len(names):
        hint = " (an unbuilt layer has none: build or call it first)" if not weights else ""
        raise ValueError(
            f"weights: Keras {layer} with use_bias={use_bias} has {len(names)} arrays {names}, "
            f"got {len(weights)}{hint}"
        )
    arrays = [as_array(f"weights[{i}] ({n})", w) for i, (n, w) in enumerate(zip(names, weights))]
    kernel, recurrent_kernel = arrays[:2]
    G = len(gate_names(kind))
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != G * recurrent_kernel.shape[0]:
        raise ValueError(
            f"weights[1] (recurrent_kernel): expected shape [H, {G}·H] for Keras {layer}, "
            f"got {recurrent_kernel.shape}"
        )
    H = recurrent_kernel.shape[0]
    units = layer_config.get("units", H)
    if units != H:
        raise ValueError(
            f"units: given {units!r} but weights[1] (recurrent_kernel) of shape "
            f"{recurrent_kernel.shape} has H={H}"
        )
    if kernel.ndim != 2:
        raise ValueError(f"weights[0] (kernel): expected shape [input_size, {G * H}], got {kernel.shape}")
    check_shape("weights[0] (kernel)", kernel, (kernel.shape[0], G * H), f" (units={H}, {G} gate blocks)")
    dtype = kernel.dtype
    for i, a in enumerate(arrays):
        if a.dtype != dtype:
            raise TypeError(
                f"weights[{i}] ({names[i]}): expected dtype {dtype} like the kernel, got {a.dtype}"
            )
    two_biases = spec.reset_after and reset_after
    if use_bias:
        bias = arrays[2]
        check_shape(
            "weights[2] (bias)",
            bias,
            (2, G * H) if two_biases else (G * H,),
            f" (units={H}{', reset_after=True: [input; recurrent]' if two_biases else ''})",
        )
    else:
        bias = np.zeros((2, G * H) if two_biases else (G * H,), dtype)

    cell = make_cell(kind, H, dtype, activation=activation, reset_after=reset_after)
    w_ih, w_hh = spec.order(kernel), spec.order(recurrent_kernel)
    if two_biases:  # the r, z biases are seen only as sums; the candidate's recurrent bias is b_hn
        b, b_hn = sum_gru_biases(spec.order(bias[0]), spec.order(bias[1]))
    else:
        b, b_hn = spec.order(bias), None
    return cell, make_params(kind, w_ih, w_hh, b, b_hn)


def to_keras(cell: Cell, params, *, use_bias: bool = True) -> list[np.ndarray]:
    """rnnjax weights as the list `layer.set_weights` takes for Keras 3 `SimpleRNN`, `LSTM` or `GRU`.

    Build the layer with `units=cell.hidden_size`, the cell's activation (SimpleRNN) and, for a GRU,
    `reset_after=cell.reset_after`. A reset_after=True GRU's recurrent bias row is [0, 0, b_hn] (in Keras
    order z, r, h): the original input/recurrent split of the r and z biases is not recoverable.

    Args:
      cell: an rnnjax `Cell` of a kind in `SUPPORTED` ("simple", "lstm", "gru").
      params: its params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, GRU b_hn <[H]>).
      use_bias: the layer's `use_bias`; with False every rnnjax bias must be exactly zero.
    Returns:
      [kernel <[I, G·H]>, recurrent_kernel <[H, G·H]>, bias] as NumPy arrays, with bias <[G·H]> or
      <[2, 3H]> for GRU reset_after=True, and no bias when `use_bias=False`.
    """
    spec = check_cell_params("cell", "params", cell, params, SUPPORTED, __name__)[2]
    _checks.check_bool("use_bias", use_bias)
    w_ih, w_hh, b = (spec.order(np.array(a)) for a in params[:3])
    if spec.reset_after and cell.reset_after:  # rows [input; recurrent]; the recurrent row is
        # P(0‖0‖b_hn) = 0‖0‖b_hn, as the candidate block is last in both orders
        b = np.stack([b, gru_recurrent_bias(params.b_hn, b.dtype)])
    if use_bias:
        return [w_ih, w_hh, b]
    if np.any(b):
        raise ValueError("use_bias: False, but params has non-zero biases (b or b_hn); pass use_bias=True")
    return [w_ih, w_hh]


def from_keras_dense(weights, **layer_config) -> DenseParams:
    """Convert a Keras `Dense` readout's weights into `rnnjax.readout.DenseParams`.

    Args:
      weights: `layer.get_weights()`: [kernel <[in, out]>, bias <[out]>], or [kernel] with use_bias=False.
      **layer_config: the layer's options (e.g. `**layer.get_config()`); `activation` must be linear
        (None), since `rnnjax.readout.dense` is h W + b; `units` is checked against the kernel.
    Returns:
      `DenseParams(w <[in, out]>, b <[out]>)` (b zeros without a bias).
    """
    _check_config(
        layer_config,
        {"units", "activation", "use_bias", "quantization_config", "lora_rank"},
        _KERAS_DENSE_IGNORED,
        "Dense",
    )
    activation = _keras_activation("activation", layer_config.get("activation"))
    if activation != "linear":
        raise ValueError(f"activation: rnnjax.readout.dense is linear (h W + b), got {activation!r}")
    for name in ("quantization_config", "lora_rank"):
        if layer_config.get(name):
            raise ValueError(
                f"{name}: quantised or LoRA Dense layers are not supported, got {layer_config[name]!r}"
            )
    use_bias = _checks.check_bool("use_bias", layer_config.get("use_bias", True))
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected the list from layer.get_weights(), got {type(weights).__name__}")
    n = 2 if use_bias else 1
    if len(weights) != n:
        raise ValueError(f"weights: Keras Dense with use_bias={use_bias} has {n} arrays, got {len(weights)}")
    kernel = as_array("weights[0] (kernel)", weights[0])
    if kernel.ndim != 2:
        raise ValueError(f"weights[0] (kernel): expected shape [in, out], got {kernel.shape}")
    units = layer_config.get("units", kernel.shape[1])
    if units != kernel.shape[1]:
        raise ValueError(
            f"units: given {units!r} but weights[0] (kernel) of shape {kernel.shape} has {kernel.shape[1]}"
        )
    if use_bias:
        bias = as_array("weights[1] (bias)", weights[1])
        check_shape("weights[1] (bias)", bias, (kernel.shape[1],))
        if bias.dtype != kernel.dtype:
            raise TypeError(
                f"weights[1] (bias): expected dtype {kernel.dtype} like the kernel, got {bias.dtype}"
            )
    else:
        bias = np.zeros(kernel.shape[1], kernel.dtype)
    return DenseParams(to_jnp(kernel), to_jnp(bias))


def to_keras_dense(params: DenseParams, *, use_bias: bool = True) -> list[np.ndarray]:
    """`rnnjax.readout.DenseParams` as the list Keras `Dense.set_weights` takes.

    Args:
      params: `DenseParams(w <[in, out]>, b <[out]>)`.
      use_bias: the layer's `use_bias`; with False, b must be exactly zero.
    Returns:
      [kernel <[in, out]>, bias <[out]>] ([kernel] with use_bias=False) as NumPy arrays.
    """
    if not isinstance(params, DenseParams):
        raise TypeError(f"params: expected rnnjax.readout.DenseParams, got {type(params).__name__}")
    _checks.check_bool("use_bias", use_bias)
    w, b = np.array(params.w), np.array(params.b)
    if w.ndim != 2:
        raise ValueError(f"params.w: expected shape [in, out], got {w.shape}")
    check_shape("params.b", b, (w.shape[1],))
    if use_bias:
        return [w, b]
    if np.any(b):
        raise ValueError("use_bias: False, but params.b is non-zero; pass use_bias=True")
    return [w]
