"""rnnjax as Flax NNX modules: any cell kind (`RNN`) and the one model (`Model`, with its presets), whose
`nnx.Param`s hold exactly the cell's params and which run `rnnjax.unroll`.

    import flax.nnx as nnx
    import rnnjax.nnx as rnnx

    rnn = rnnx.RNN("lstm", 8, 64, rngs=nnx.Rngs(0))        # in_features 8, hidden_size 64
    final, ys = rnn(xs)                                    # = rnnjax.unroll(rnn.cell, rnn.params, xs)
    nnx.state(rnn, nnx.Param)                              # {'b', 'w_hh', 'w_ih'}: the LSTMParams fields

Each field of the cell's params NamedTuple is one `nnx.Param` attribute of the module, named like the field;
`rnn.params` rebuilds the NamedTuple from the Params' arrays (the same arrays, no copy), so every consumer
of `(cell, params)` reads the module directly: `rnnjax.unroll` (lengths, reverse, remat, the whole-sequence
kernels and the precision policy, as keyword options of the call), `rnnjax.diagnostics` (per-step gradients,
Jacobians, Lyapunov exponents), `rnnjax.interop`. Fields that are None (a reset-before GRU's b_hn) stay
None attributes. The cell is a static attribute, so `nnx.jit`, `nnx.grad` and `nnx.Optimizer` see the
Params only. A kind is built by the registry (`rnnjax.cells.make`): every kind of `rnnjax.cells.KINDS`,
including one added later, has its NNX face with no change here.

`Model` is `rnnjax.models.RNNModel` (embedding → stack of cells, optionally bidirectional, dropout → dense
head) as an NNX module: its Params mirror the Linen params tree (`embed/embedding`, `rnn/layer_k/...`,
`readout/w`, `readout/b`) and its call is that model's `apply`, so both faces compute one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.nnx as nnx
import jax
import jax.numpy as jnp

from rnnjax import _checks, cells, models
from rnnjax.cells import Cell, check_cell, check_params
from rnnjax.unrolling import unroll

__all__ = ["Model", "RNN", "classifier", "language_model", "sequence_model"]


def _is_named_tuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _hold(value):
    """A params tree as NNX nodes: an array becomes an `nnx.Param`, a NamedTuple a `_Fields`, a mapping a
    `_Branch`; None stays None."""
    if value is None:
        return None
    if _is_named_tuple(value):
        return _Fields(value)
    if isinstance(value, Mapping):
        return _Branch(value)
    return nnx.Param(value)


def _read(node):
    """Inverse of `_hold`: the params tree, holding the Params' own arrays."""
    if node is None:
        return None
    if isinstance(node, (_Fields, _Branch)):
        return node.value
    return node[...]


def _set_fields(module: nnx.Module, value, owner: str) -> None:
    """One attribute per field of the NamedTuple `value`, named like the field (see `_hold`)."""
    for field in value._fields:
        if hasattr(module, field) or field == "params_type":
            raise ValueError(
                f"params: the field {field!r} of {type(value).__name__} cannot be held by {owner}, whose "
                f"attribute {field!r} it would hide"
            )
    for field, leaf in zip(value._fields, value):
        setattr(module, field, _hold(leaf))
    module.params_type = type(value)


def _get_fields(module: nnx.Module):
    kind_type = module.params_type
    return kind_type(*(_read(getattr(module, field)) for field in kind_type._fields))


class _Fields(nnx.Module):
    """A NamedTuple of params (e.g. `BidirectionalParams`, `DenseParams`) as one attribute per field."""

    def __init__(self, value):
        _set_fields(self, value, "an NNX params node")

    @property
    def value(self):
        return _get_fields(self)


def _set_entries(module: nnx.Module, value: Mapping, owner: str) -> None:
    """One attribute per entry of the mapping `value` (a level of a Linen params tree; see `_hold`)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"params: expected a Linen params tree (a dict), got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key.isidentifier() or hasattr(module, key) or key == "entries":
            raise ValueError(f"params: {owner} cannot hold the entry {key!r} as an attribute")
    for key, sub in value.items():
        setattr(module, key, _hold(sub))
    module.entries = tuple(value)


def _get_entries(module: nnx.Module) -> dict:
    return {key: _read(getattr(module, key)) for key in module.entries}


class _Branch(nnx.Module):
    """A mapping of params (a level of a Linen params tree) as one attribute per key."""

    def __init__(self, value: Mapping):
        _set_entries(self, value, "an NNX params node")

    @property
    def value(self) -> dict:
        return _get_entries(self)


def _as_cell(cell, hidden_size, options) -> Cell:
    """The `Cell` of `RNN(cell, ...)`: a kind name built by the registry, or a `Cell` as it is."""
    if isinstance(cell, str):
        if hidden_size is None:
            raise ValueError(f"hidden_size: a kind name ({cell!r}) needs a hidden_size, got None")
        return cells.make(cell, hidden_size, **options)
    check_cell(cell, "cell")
    if options:
        raise TypeError(
            f"options: constructor options {sorted(options)} go with a kind name, e.g. "
            f"RNN({cell.kind!r}, in_features, {cell.hidden_size}, rngs=..., ...), not with a built Cell"
        )
    if hidden_size is not None and hidden_size != cell.hidden_size:
        raise ValueError(
            f"hidden_size: the cell has hidden_size={cell.hidden_size}, got hidden_size={hidden_size!r}"
        )
    return cell


class RNN(nnx.Module):
    """An rnnjax cell of any kind as an NNX module: one `nnx.Param` per field of its params.

    `RNN(cell, in_features, hidden_size=None, *, rngs, **options)` initialises the params with
    `cell.init(rngs.params(), in_features)`; `RNN(cell, params=params)` holds given params (e.g. converted
    ones: `RNN(*rnnjax.interop.from_nnx(nnx_cell))`). `cell` is a `rnnjax.cells.Cell` or a kind name of
    `rnnjax.cells.KINDS`, built as `cells.make(cell, hidden_size, **options)` (options such as
    `activation="relu"`, `dtype=jnp.float64`, `precision="highest"`).

    `__call__(xs, carry=None, **options) -> (final_carry, ys)` is `rnnjax.unroll(self.cell, self.params, xs,
    carry, **options)`: xs <float>[*batch, T, in_features] → ys <float>[*batch, T, H], with every option of
    `unroll` (`lengths`, `reverse`, `time_major`, `return_carries`, `remat`, `fast`, `checkpoint_every`,
    `precision`).

    Attributes:
      cell: the `Cell` (static).
      params_type: its params NamedTuple type (static).
      <field>: one `nnx.Param` per field of the params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, ...),
        or None for a None field.
      params: the params NamedTuple rebuilt from the Params (their arrays, not copies): read it to pass
        the module to `rnnjax.diagnostics` or `rnnjax.interop`.
    """

    def __init__(
        self,
        cell: Cell | str,
        in_features: int | None = None,
        hidden_size: int | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        params=None,
        **options,
    ):
        cell = _as_cell(cell, hidden_size, options)
        if params is None:
            if not isinstance(rngs, nnx.Rngs):
                raise TypeError(
                    f"rngs: initialising the params needs an nnx.Rngs, got {type(rngs).__name__} "
                    "(or pass params=)"
                )
            _checks.check_int("in_features", in_features)
            params = cell.init(rngs.params(), in_features)
        else:
            read = check_params(cell, params, name="params", owner=f"the {cell.kind} cell")
            if in_features is not None and read is not None and in_features != read:
                raise ValueError(
                    f"in_features: the params read {read} features, got in_features={in_features}"
                )
            if not _is_named_tuple(params):
                raise TypeError(f"params: expected the cell's params NamedTuple, got {type(params).__name__}")
        self.cell = cell
        _set_fields(self, params, "rnnjax.nnx.RNN")

    @property
    def params(self):
        """The cell's params NamedTuple, holding the Params' arrays."""
        return _get_fields(self)

    def __call__(self, xs, carry=None, **options):
        """`rnnjax.unroll(self.cell, self.params, xs, carry, **options)` -> `(final_carry, ys)`."""
        return unroll(self.cell, self.params, xs, carry, **options)


class Model(nnx.Module):
    """An `rnnjax.models.RNNModel` as an NNX module: Params mirroring its Linen params tree, and its `apply`.

    `Model(model, *, rngs, input_size=None)` initialises the params with `jax.jit(model.init)` (token models
    from ids <int>[1, 1]; float-feature models need `input_size`); `Model(model, params=params)` holds Linen
    params (`model.init(...)["params"]`, or `{"params": ...}`) as they are, e.g. to continue a Linen run
    with an NNX optimiser. The presets `language_model`, `classifier`, `sequence_model` build both.

    `__call__(inputs, carries=None, *, lengths=None, train=None, perturbations=None, rngs=None) ->
    (outputs, carries)` is `model.apply({"params": self.params}, ...)` (see `rnnjax.models.RNNModel`).
    `train=None` follows the NNX mode: `model.train()` turns dropout on, `model.eval()` off (the default);
    dropout masks come from `rngs` (an `nnx.Rngs`, its `dropout` stream) or else from the stream forked from
    the constructor's `rngs`.

    Attributes:
      model: the Linen `RNNModel` (static): pass `(nnx_model.model, nnx_model.params)` to
        `rnnjax.diagnostics.model_hidden_state_grads`, `rnnjax.generate` or any Linen-path consumer.
      params: the Linen params tree rebuilt from the Params (their arrays, not copies).
      cell: the model's cell.
      embed, rnn, readout: the Params, named as in the Linen tree (e.g. `rnn.layer_0.w_ih`,
        `rnn.layer_0.forward.w_ih` for a bidirectional layer, `readout.w`).
    """

    def __init__(
        self,
        model: models.RNNModel,
        *,
        rngs: nnx.Rngs | None = None,
        input_size: int | None = None,
        params: Mapping | None = None,
    ):
        if not isinstance(model, models.RNNModel):
            raise TypeError(f"model: expected an rnnjax.models.RNNModel, got {type(model).__name__}")
        if rngs is not None and not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"rngs: expected an nnx.Rngs, got {type(rngs).__name__}")
        if params is None:
            if rngs is None:
                raise TypeError("rngs: initialising the params needs an nnx.Rngs (or pass params=)")
            params = jax.jit(model.init)(rngs.params(), _example(model, input_size))["params"]
        elif input_size is not None:
            raise ValueError("input_size: only for initialising; given params fix the input size")
        if isinstance(params, Mapping) and set(params) == {"params"}:
            params = params["params"]
        self.model = model
        self.deterministic = True  # set by nnx's .train() / .eval()
        self.dropout_rngs = rngs.dropout.fork() if rngs is not None and model.dropout > 0 else None
        _set_entries(self, params, "rnnjax.nnx.Model")

    @property
    def params(self) -> dict:
        """The Linen params tree, holding the Params' arrays."""
        return _get_entries(self)

    @property
    def cell(self) -> Cell:
        return self.model.cell

    def __call__(self, inputs, carries=None, *, lengths=None, train=None, perturbations=None, rngs=None):
        train = not self.deterministic if train is None else train
        _checks.check_bool("train", train)
        options = {}
        if train and self.model.dropout > 0:
            if rngs is None and self.dropout_rngs is None:
                raise ValueError(
                    "rngs: dropout in training needs random keys: build the model with rngs=nnx.Rngs(...) "
                    "or pass rngs=nnx.Rngs(dropout=...)"
                )
            if rngs is not None and not isinstance(rngs, nnx.Rngs):
                raise TypeError(f"rngs: expected an nnx.Rngs, got {type(rngs).__name__}")
            options["rngs"] = {"dropout": rngs.dropout() if rngs is not None else self.dropout_rngs()}
        return self.model.apply(
            {"params": self.params}, inputs, carries, lengths=lengths, train=train,
            perturbations=perturbations, **options,
        )  # fmt: skip

    def zero_carries(self, batch_size: int, dtype=jnp.float32) -> tuple:
        """One zero carry per layer (see `RNNModel.zero_carries`)."""
        return self.model.zero_carries(batch_size, dtype)


def _example(model: models.RNNModel, input_size) -> jax.Array:
    """The smallest input `model.init` reads (the params depend on the feature size only)."""
    if model.vocab_size is not None:
        if input_size is not None:
            raise ValueError("input_size: a token model reads token ids; its input size is its vocab_size")
        return jnp.zeros((1, 1), jnp.int32)  # (B, T)
    if input_size is None:
        raise ValueError(
            "input_size: a float-feature model needs the feature size I of its inputs <[B, T, I]>"
        )
    _checks.check_int("input_size", input_size)
    return jnp.zeros((1, 1, input_size), jnp.float32)  # (B, T, I)


def language_model(vocab_size: int, cell: Cell, *, rngs: nnx.Rngs, **options: Any) -> Model:
    """`rnnjax.models.language_model(vocab_size, cell, **options)` as an NNX `Model`: tokens <int>[B, T] →
    logits <float>[B, T, vocab_size]."""
    return Model(models.language_model(vocab_size, cell, **options), rngs=rngs)


def classifier(vocab_size: int, num_classes: int, cell: Cell, *, rngs: nnx.Rngs, **options: Any) -> Model:
    """`rnnjax.models.classifier(vocab_size, num_classes, cell, **options)` as an NNX `Model`: tokens
    <int>[B, T] (right-padded, `lengths` <int>[B]) → logits <float>[B, num_classes]."""
    return Model(models.classifier(vocab_size, num_classes, cell, **options), rngs=rngs)


def sequence_model(cell: Cell, input_size: int, output_size: int, *, rngs: nnx.Rngs, **options: Any) -> Model:
    """`rnnjax.models.sequence_model(cell, output_size, **options)` as an NNX `Model` reading features
    <float>[B, T, input_size]."""
    return Model(models.sequence_model(cell, output_size, **options), rngs=rngs, input_size=input_size)
