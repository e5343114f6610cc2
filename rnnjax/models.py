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

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnjax import readout
from rnnjax._checks import check_indices
from rnnjax.cells import Cell
from rnnjax.diagnostics import perturbed
from rnnjax.unrolling import BidirectionalParams, unroll_stack

__all__ = ["POOLINGS", "RNNModel", "RecurrentStack", "classifier", "language_model", "sequence_model"]

POOLINGS = (None, "last", "mean")


def _check_cell(cell) -> Cell:
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell: expected an rnnjax.cells.Cell (e.g. rnnjax.cells.make('lstm', 128)), got {cell!r}"
        )
    return cell


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

    @nn.compact
    def __call__(self, xs, carries=None, *, lengths=None, train: bool = False, perturbations=None):
        cell = _check_cell(self.cell)
        if isinstance(self.num_layers, bool) or not isinstance(self.num_layers, int) or self.num_layers < 1:
            raise ValueError(f"num_layers: expected an int >= 1, got {self.num_layers!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a rate in [0, 1), got {self.dropout!r}")
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
        tokens = check_indices("tokens", inputs, self.vocab_size, "token ids")
        if tokens.ndim != 2:
            raise ValueError(f"tokens: expected shape [batch, time], got {tokens.shape}")
        if self.embed_size is None:
            return jax.nn.one_hot(tokens, self.vocab_size)  # (B, T, V)
        return nn.Embed(self.vocab_size, self.embed_size, name="embed")(tokens)  # (B, T, E)

    @nn.compact
    def __call__(self, inputs, carries=None, *, lengths=None, train: bool = False, perturbations=None):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {self.pooling!r}")
        xs = self.features(inputs)
        stack = RecurrentStack(self.cell, self.num_layers, self.dropout, self.bidirectional, name="rnn")
        ys, finals = stack(xs, carries, lengths=lengths, train=train, perturbations=perturbations)
        if self.pooling == "last":
            ys = readout.last_valid(ys, lengths)  # (B, H)
        elif self.pooling == "mean":  # padded outputs are zeros: the sum over all steps is over valid ones
            n = ys.shape[-2] if lengths is None else jnp.asarray(lengths)[..., None]
            ys = jnp.sum(ys, axis=-2) / n
        width, dtype = ys.shape[-1], ys.dtype  # the head in the stack's compute dtype
        head = self.param("readout", lambda k: readout.dense_init(k, width, self.output_size, dtype=dtype))
        return readout.dense(head, ys), finals

    def zero_carries(self, batch_size: int, dtype=jnp.float32) -> tuple:
        """One zero carry per layer for `batch_size` streams (unidirectional stacks)."""
        return tuple(self.cell.initial_carry((batch_size,), dtype) for _ in range(self.num_layers))


def language_model(
    vocab_size: int, cell: Cell, *, num_layers: int = 2, embed_size: int | None = 64, dropout: float = 0.0
) -> RNNModel:
    """Next-token model: tokens <int>[B, T] → logits <float>[B, T, vocab_size] (embed_size None: one-hot
    inputs, the classic char-rnn)."""
    return RNNModel(
        _check_cell(cell), vocab_size, num_layers, dropout, vocab_size=vocab_size, embed_size=embed_size
    )


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
) -> RNNModel:
    """Many-to-one classifier: tokens <int>[B, T] (right-padded, `lengths` <int>[B]) → logits <[B, C]>."""
    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling: expected 'last' or 'mean', got {pooling!r}")
    return RNNModel(
        _check_cell(cell), num_classes, num_layers, dropout, bidirectional, vocab_size, embed_size, pooling
    )


def sequence_model(
    cell: Cell, output_size: int, *, num_layers: int = 1, pooling: str | None = None
) -> RNNModel:
    """Float features <[B, T, I]> → outputs at every step <[B, T, output_size]> (pooling None), or one per
    sequence (pooling "last" / "mean"): the synthetic long-range tasks and the Keras-style walkthroughs."""
    return RNNModel(_check_cell(cell), output_size, num_layers, pooling=pooling)
