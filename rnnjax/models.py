"""Flax linen models assembled from rnnjax cells: a token language model (embedding or one-hot → stacked
recurrent layers with dropout between them → dense → logits) and a many-to-one sequence classifier.

The recurrent layers are the library's pure cells unrolled with `rnnjax.unroll`; Flax only holds the
parameters (each layer's params are the cell's own NamedTuple, e.g. `LSTMParams`) and the dropout RNG.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnjax import cells as cell_lib
from rnnjax import readout
from rnnjax._checks import check_indices
from rnnjax.unrolling import unroll

__all__ = ["CELL_KINDS", "LanguageModel", "SequenceClassifier", "make_cell"]

CELL_KINDS = ("simple", "lstm", "gru")


def make_cell(kind: str, hidden_size: int, options: tuple[tuple[str, Any], ...] = ()) -> cell_lib.Cell:
    """The rnnjax cell of `kind` ("simple", "lstm" or "gru") with constructor keyword `options`, given
    as a tuple of (name, value) pairs so that modules stay hashable (e.g. `(("activation", "relu"),)`)."""
    if kind not in CELL_KINDS:
        raise ValueError(f"cell: expected one of {CELL_KINDS}, got {kind!r}")
    return getattr(cell_lib, kind)(hidden_size, **dict(options))


def _check_tokens(tokens, vocab_size: int) -> jax.Array:
    tokens = check_indices("tokens", tokens, vocab_size, "token ids")
    if tokens.ndim != 2:
        raise ValueError(f"tokens: expected shape [batch, time], got {tokens.shape}")
    return tokens


def _stack(m) -> _RecurrentStack:
    """The recurrent stack of a model `m` (a submodule named "rnn"), configured from its attributes."""
    return _RecurrentStack(
        m.vocab_size, m.cell, m.hidden_size, m.num_layers, m.embed_size, m.dropout, m.cell_options, name="rnn"
    )


class _RecurrentStack(nn.Module):
    """Embedding (or one-hot) followed by `num_layers` rnnjax cells, dropout between layers."""

    vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    embed_size: int | None = 64  # None: one-hot inputs of size vocab_size
    dropout: float = 0.0
    cell_options: tuple[tuple[str, Any], ...] = ()

    @nn.compact
    def __call__(self, tokens, carries=None, *, lengths=None, train: bool = False):
        if self.num_layers < 1:
            raise ValueError(f"num_layers: expected >= 1, got {self.num_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a rate in [0, 1), got {self.dropout}")
        tokens = _check_tokens(tokens, self.vocab_size)
        if self.embed_size is None:
            h = jax.nn.one_hot(tokens, self.vocab_size)  # (B, T, V)
        else:
            h = nn.Embed(self.vocab_size, self.embed_size, name="embed")(tokens)  # (B, T, E)
        if carries is None:
            carries = (None,) * self.num_layers
        elif len(carries) != self.num_layers:
            raise ValueError(f"carries: expected {self.num_layers} (one per layer), got {len(carries)}")
        finals = []
        for layer in range(self.num_layers):
            cell = make_cell(self.cell, self.hidden_size, self.cell_options)
            in_size = h.shape[-1]
            params = self.param(f"layer_{layer}", lambda key, c=cell, n=in_size: c.init(key, n))
            if layer > 0 and self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
            final, h = unroll(cell, params, h, carries[layer], lengths=lengths)  # (B, T, H)
            finals.append(final)
        if self.dropout > 0:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return h, tuple(finals)


class LanguageModel(nn.Module):
    """Next-token language model: tokens <int>[B, T] → logits <float>[B, T, vocab_size].

    Attributes:
      vocab_size: V.
      cell: "simple", "lstm" or "gru"; cell_options: its constructor keywords as (name, value) pairs.
      hidden_size, num_layers: size of the recurrent stack.
      embed_size: embedding width, or None for one-hot inputs (classic char-rnn).
      dropout: rate between layers and before the readout (active only with `train=True`, which needs a
        "dropout" RNG).

    `__call__(tokens, carries=None, *, lengths=None, train=False) -> (logits, carries)`: `carries` is one
    carry per layer (None = zeros); pass the returned carries to the next call to continue the same
    streams (truncated BPTT, or sampling one token at a time).
    """

    vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    embed_size: int | None = 64
    dropout: float = 0.0
    cell_options: tuple[tuple[str, Any], ...] = ()

    @nn.compact
    def __call__(self, tokens, carries=None, *, lengths=None, train: bool = False):
        h, finals = _stack(self)(tokens, carries, lengths=lengths, train=train)
        head = self.param("readout", lambda key: readout.dense_init(key, self.hidden_size, self.vocab_size))
        return readout.dense(head, h), finals


class SequenceClassifier(nn.Module):
    """Many-to-one classifier: tokens <int>[B, T] (right-padded, `lengths` <int>[B]) → logits <[B, C]>.

    Attributes: as `LanguageModel`, plus `num_classes` and `pooling`: "last" (the output at each
    example's last valid step) or "mean" (the mean of the outputs over its valid steps).
    """

    vocab_size: int
    num_classes: int
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    embed_size: int | None = 64
    dropout: float = 0.0
    pooling: str = "last"
    cell_options: tuple[tuple[str, Any], ...] = ()

    @nn.compact
    def __call__(self, tokens, *, lengths=None, train: bool = False):
        if self.pooling not in ("last", "mean"):
            raise ValueError(f"pooling: expected 'last' or 'mean', got {self.pooling!r}")
        h, _ = _stack(self)(tokens, lengths=lengths, train=train)
        if self.pooling == "last":
            pooled = readout.last_valid(h, lengths)  # (B, H)
        else:  # padded outputs are zeros, so a sum over all steps is the sum over valid steps
            n = h.shape[-2] if lengths is None else jnp.asarray(lengths)[..., None]
            pooled = jnp.sum(h, axis=-2) / n
        head = self.param("readout", lambda key: readout.dense_init(key, self.hidden_size, self.num_classes))
        return readout.dense(head, pooled)
