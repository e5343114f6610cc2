"""The one way to assemble a model: a Flax linen module over `rnnjax.unroll_stack`.

`RNNModel` = inputs (token ids through an embedding or one-hot, or float features as they are) → a stack
of rnnjax cells (dropout between layers, optionally bidirectional) → a dense head, at every step
(`pooling=None`: language models, synthetic sequence tasks) or once per sequence (`pooling="last"` or
`"mean"`: many-to-one classification). Flax only holds the parameters and the dropout RNG; each recurrent
layer's params are the cell's own NamedTuple (e.g. `LSTMParams`), so `(model, params)` plugs into every
consumer: `rnnjax.train`, `rnnjax.generate`, `rnnjax.diagnostics` (per-layer ∂L/∂h_t of a trained model)
and `rnnjax.interop`.

    cell = rnnjax.cells.lstm(256)
    model = models.language_model(vocab_size=65, cell=cell, num_layers=2, embed_size=64)
    params = model.init(jax.random.key(0), tokens)["params"]          # tokens <int>[B, T]
    logits, carries = model.apply({"params": params}, tokens)         # <float>[B, T, 65], one carry per layer

Params tree: `{"embed": {"embedding"}}` (embedded tokens only), `{"rnn": {"layer_0", ..., "layer_{L-1}"}}`
(for bidirectional layers each is `BidirectionalParams(forward, backward)`), `{"readout": DenseParams}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnjax import _checks, readout
from rnnjax.cells import Cell, check_cell, check_params, perturbed, with_precision
from rnnjax.unrolling import BidirectionalParams, unroll_stack

__all__ = ["POOLINGS", "RNNModel", "RecurrentStack", "classifier", "language_model", "sequence_model"]

POOLINGS = (None, "last", "mean")


def _check_stack_options(module: nn.Module) -> None:
    """The stack's attributes (of a `RecurrentStack` or an `RNNModel`), checked when the module is built."""
    check_cell(module.cell)
    if isinstance(module.num_layers, bool) or not isinstance(module.num_layers, int) or module.num_layers < 1:
        raise ValueError(f"num_layers: expected an int >= 1, got {module.num_layers!r}")
    if not 0.0 <= _checks.check_number("dropout", module.dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {module.dropout!r}")
    _checks.check_bool("bidirectional", module.bidirectional)


def _param_path(module: nn.Module, *names: str) -> str:
    """How a parameter is reached from the params tree, e.g. "params['rnn']['layer_0']"."""
    return "params" + "".join(f"[{name!r}]" for name in (*module.path, *names))


def _check_entries(module: nn.Module, expected: set[str]) -> None:
    """At apply time: the params given for `module` hold exactly the `expected` entries (Flax itself would
    ignore extra entries, e.g. a second layer given to a one-layer model, and fail deep inside on missing
    ones)."""
    if module.is_initializing():
        return
    given = module.variables.get("params", {})
    if not isinstance(given, Mapping) or set(given) != expected:
        got = sorted(given) if isinstance(given, Mapping) else type(given).__name__
        raise ValueError(
            f"{_param_path(module)}: expected the entries {sorted(expected)} of this model's params, got "
            f"{got} (params of another model: other num_layers, bidirectional or embedding?)"
        )


def _check_shape(path: str, value, want: tuple[int, ...], from_what: str) -> None:
    """A parameter (reached by `path`) has shape `want`, set by the model's `from_what`."""
    if jnp.shape(value) != want:
        raise ValueError(
            f"{path}: expected shape {want} (from the model's {from_what}), got {jnp.shape(value)}"
        )


def _check_layer(module: nn.Module, cell: Cell, name: str, n_in: int) -> None:
    """At apply time: the params of one recurrent layer fit `cell` and read `n_in` features (each direction
    of a bidirectional layer). Static shapes only."""
    if module.is_initializing():
        return
    value, path = module.get_variable("params", name), _param_path(module, name)
    owner = f"the model's {cell.kind} cell"
    if module.bidirectional:
        if not isinstance(value, BidirectionalParams):
            raise TypeError(
                f"{path}: a bidirectional layer expected BidirectionalParams, got {type(value).__name__}"
            )
        parts = ((f"{path}.forward", value.forward), (f"{path}.backward", value.backward))
    else:
        parts = ((path, value),)
    for where, p in parts:
        input_size = check_params(cell, p, name=where, owner=owner)
        if input_size is not None and input_size != n_in:
            raise ValueError(
                f"{where}: expected params that read {n_in} input features (this layer reads {n_in} "
                f"features), got params of a {cell.kind} cell with input_size={input_size}"
            )


class RecurrentStack(nn.Module):
    """`num_layers` copies of `cell` over `rnnjax.unroll_stack`, dropout on every layer's output.

    `__call__(xs, carries=None, *, lengths=None, train=False, perturbations=None) -> (ys, finals)`:
    xs <float>[B, T, I]; ys <float>[B, T, H] (2H if bidirectional); finals one carry per layer.
    `perturbations` (diagnostics only): one <[B, T, fields·H]> array per layer added to the carry after
    every step (see `rnnjax.diagnostics.perturbed`), so that ∂L/∂perturbation = ∂L/∂c_t.
    """

    cell: Cell
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False

    def __post_init__(self):
        _check_stack_options(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, xs, carries=None, *, lengths=None, train: bool = False, perturbations=None):
        cell = self.cell
        _checks.check_bool("train", train)
        _check_entries(self, {f"layer_{k}" for k in range(self.num_layers)})
        layer_cell = cell
        if perturbations is not None:
            if self.bidirectional:
                raise ValueError("perturbations: per-step carry gradients need a unidirectional stack")
            if len(perturbations) != self.num_layers:
                raise ValueError(
                    f"perturbations: expected {self.num_layers} arrays (one per layer), "
                    f"got {len(perturbations)}"
                )
            layer_cell = perturbed(cell)
        width = 2 * cell.hidden_size if self.bidirectional else cell.hidden_size
        params = []
        for k in range(self.num_layers):
            n_in = xs.shape[-1] if k == 0 else width
            if self.bidirectional:

                def init(key, n=n_in):
                    k_f, k_b = jax.random.split(key)
                    return BidirectionalParams(cell.init(k_f, n), cell.init(k_b, n))

            else:

                def init(key, n=n_in):
                    return cell.init(key, n)

            _check_layer(self, cell, f"layer_{k}", n_in)
            params.append(self.param(f"layer_{k}", init))
        drop = nn.Dropout(self.dropout, deterministic=not train)

        def between(k: int, ys):  # applied to the input of layer k
            if k > 0 and self.dropout > 0:
                ys = drop(ys)
            return ys if perturbations is None else jnp.concatenate([ys, perturbations[k]], axis=-1)

        layers = [(layer_cell, layer_cell) if self.bidirectional else layer_cell] * self.num_layers
        finals, ys = unroll_stack(layers, params, xs, carries, lengths=lengths, between=between)
        if self.dropout > 0:
            ys = drop(ys)
        return ys, finals


class RNNModel(nn.Module):
    """Inputs → `RecurrentStack` → dense head; see the module docstring.

    Attributes:
      cell: the rnnjax `Cell` of every layer (e.g. `rnnjax.cells.make("gru", 128)`).
      output_size: width of the head (vocabulary size, classes, or regression outputs).
      num_layers, dropout, bidirectional: the stack (dropout active only with `train=True`, which needs a
        "dropout" RNG).
      vocab_size: None for float inputs <[B, T, I]>; otherwise inputs are token ids <int>[B, T] in
        [0, vocab_size), embedded to `embed_size` (None: one-hot of size vocab_size).
      embed_size: see vocab_size.
      pooling: None (outputs <[B, T, output_size]> at every step), "last" (the output at each example's
        last valid step) or "mean" (the mean over its valid steps): outputs <[B, output_size]>.

    `__call__(inputs, carries=None, *, lengths=None, train=False, perturbations=None) -> (outputs, carries)`:
    `carries` is one carry per layer (None = zeros); pass the returned carries to the next call to continue
    the same streams (truncated BPTT, or sampling one token at a time). `lengths` <int>[B] marks right
    padding.
    """

    cell: Cell
    output_size: int
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    vocab_size: int | None = None
    embed_size: int | None = None
    pooling: str | None = None

    def __post_init__(self):
        _check_stack_options(self)
        _checks.check_int("output_size", self.output_size)
        _checks.check_int("vocab_size", self.vocab_size, optional=True)
        _checks.check_int("embed_size", self.embed_size, optional=True)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {self.pooling!r}")
        super().__post_init__()

    def features(self, inputs):
        """The stack's input sequence <float>[B, T, I] from `inputs` (embedded or one-hot tokens)."""
        if self.vocab_size is None:
            xs = jnp.asarray(inputs)
            if xs.ndim != 3 or not jnp.issubdtype(xs.dtype, jnp.floating):
                raise ValueError(
                    f"inputs: expected float features of shape [batch, time, features], got "
                    f"{xs.dtype}{list(xs.shape)}"
                )
            return xs
        tokens = _checks.check_indices("tokens", inputs, self.vocab_size, "token ids")
        if tokens.ndim != 2:
            raise ValueError(f"tokens: expected shape [batch, time], got {tokens.shape}")
        if self.embed_size is None:
            return jax.nn.one_hot(tokens, self.vocab_size)  # (B, T, V)
        return nn.Embed(self.vocab_size, self.embed_size, name="embed")(tokens)  # (B, T, E)

    @nn.compact
    def __call__(self, inputs, carries=None, *, lengths=None, train: bool = False, perturbations=None):
        embedded = self.vocab_size is not None and self.embed_size is not None
        _check_entries(self, {"rnn", "readout"} | ({"embed"} if embedded else set()))
        if embedded and not self.is_initializing():
            table = self.variables["params"]["embed"]
            table = table.get("embedding") if isinstance(table, Mapping) else table
            path = _param_path(self, "embed", "embedding")
            _check_shape(path, table, (self.vocab_size, self.embed_size), "vocab_size, embed_size")
        xs = self.features(inputs)
        stack = RecurrentStack(self.cell, self.num_layers, self.dropout, self.bidirectional, name="rnn")
        ys, finals = stack(xs, carries, lengths=lengths, train=train, perturbations=perturbations)
        if self.pooling == "last":
            ys = readout.last_valid(ys, lengths)  # (B, H)
        elif self.pooling == "mean":  # padded outputs are zeros: the sum over all steps is over valid ones
            n = ys.shape[-2] if lengths is None else jnp.asarray(lengths)[..., None]
            ys = jnp.sum(ys, axis=-2) / n
        width, dtype = ys.shape[-1], ys.dtype  # the head in the stack's compute dtype
        if not self.is_initializing():
            head, path = self.get_variable("params", "readout"), _param_path(self, "readout")
            if not isinstance(head, readout.DenseParams):
                raise TypeError(f"{path}: expected rnnjax.readout.DenseParams, got {type(head).__name__}")
            _check_shape(f"{path}.w", head.w, (width, self.output_size), "stack width and output_size")
            _check_shape(f"{path}.b", head.b, (self.output_size,), "output_size")
        head = self.param("readout", lambda k: readout.dense_init(k, width, self.output_size, dtype=dtype))
        return readout.dense(head, ys, precision=self.cell.precision), finals

    @nn.nowrap
    def apply(self, variables, *args, **kwargs):
        """Flax's `apply`, after checking that `variables` is the `{"params": params}` dict that `init`
        returns (a bare params tree is the usual mistake, which Flax reports in its own terms)."""
        if not isinstance(variables, Mapping) or "params" not in variables:
            got = (
                f"the entries {sorted(variables)}"
                if isinstance(variables, Mapping)
                else type(variables).__name__
            )
            raise ValueError(
                f"variables: expected {{'params': params}} (what model.init returns), got {got}; "
                "pass model.apply({'params': params}, ...)"
            )
        return super().apply(variables, *args, **kwargs)

    def zero_carries(self, batch_size: int, dtype=jnp.float32) -> tuple:
        """One zero carry per layer for `batch_size` streams (unidirectional stacks)."""
        _checks.check_int("batch_size", batch_size)
        return tuple(self.cell.initial_carry((batch_size,), dtype) for _ in range(self.num_layers))


def _precise(cell, precision):
    """The model's cell at `precision` (every matmul of the model follows its cell's precision)."""
    return cell if precision is None or not isinstance(cell, Cell) else with_precision(cell, precision)


def language_model(
    vocab_size: int,
    cell: Cell,
    *,
    num_layers: int = 2,
    embed_size: int | None = 64,
    dropout: float = 0.0,
    precision: str | None = None,
) -> RNNModel:
    """Next-token model: tokens <int>[B, T] → logits <float>[B, T, vocab_size] (embed_size None: one-hot
    inputs, the classic char-rnn). `precision`: of every matmul (the cell's and the head's), see
    `rnnjax.unroll`; None keeps the cell's."""
    _checks.check_int("vocab_size", vocab_size)
    cell = _precise(cell, precision)
    return RNNModel(cell, vocab_size, num_layers, dropout, vocab_size=vocab_size, embed_size=embed_size)


def classifier(
    vocab_size: int,
    num_classes: int,
    cell: Cell,
    *,
    num_layers: int = 1,
    embed_size: int | None = 64,
    dropout: float = 0.0,
    pooling: str = "last",
    bidirectional: bool = False,
    precision: str | None = None,
) -> RNNModel:
    """Many-to-one classifier: tokens <int>[B, T] (right-padded, `lengths` <int>[B]) → logits <[B, C]>.
    `precision` as in `language_model`."""
    cell = _precise(cell, precision)
    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling: expected 'last' or 'mean', got {pooling!r}")
    _checks.check_int("vocab_size", vocab_size)
    _checks.check_int("num_classes", num_classes)
    return RNNModel(cell, num_classes, num_layers, dropout, bidirectional, vocab_size, embed_size, pooling)


def sequence_model(
    cell: Cell,
    output_size: int,
    *,
    num_layers: int = 1,
    pooling: str | None = None,
    precision: str | None = None,
) -> RNNModel:
    """Float features <[B, T, I]> → outputs at every step <[B, T, output_size]> (pooling None), or one per
    sequence (pooling "last" / "mean"): the synthetic long-range tasks and the Keras-style walkthroughs.
    `precision` as in `language_model`."""
    cell = _precise(cell, precision)
    return RNNModel(cell, output_size, num_layers, pooling=pooling)
