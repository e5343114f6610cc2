"""Flax models built from rnnjax cells, against the same computation written out with the library's
functions (and, for bidirectional stacks, with flipped sequences), and carry passing against one long run."""

import jax
import jax.numpy as jnp
import pytest

import rnnjax
from rnnjax import models, readout

# Same float32 computation arranged differently (Flax module vs direct calls): rounding only.
TOL_F32 = 1e-6

V, B, T = 11, 3, 9


def tokens(seed=0, shape=(B, T)):
    return jax.random.randint(jax.random.key(seed), shape, 0, V)


def rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize(
    "kind, options", [("lstm", {}), ("gru", {"reset_after": False}), ("simple", {"activation": "relu"})]
)
@pytest.mark.parametrize("embed_size", [5, None])
def test_language_model_equals_library_composition(kind, options, embed_size):
    cell = rnnjax.cells.make(kind, 6, **options)
    model = models.language_model(V, cell, num_layers=2, embed_size=embed_size)
    toks = tokens()
    variables = model.init(jax.random.key(1), toks)
    logits, finals = model.apply(variables, toks)
    p = variables["params"]
    x = p["embed"]["embedding"][toks] if embed_size else jax.nn.one_hot(toks, V)
    want_finals, ys = rnnjax.unroll_stack([cell] * 2, [p["rnn"]["layer_0"], p["rnn"]["layer_1"]], x)
    assert logits.shape == (B, T, V)
    assert rel(logits, readout.dense(p["readout"], ys)) <= TOL_F32
    assert all(rel(f.h, w.h) <= TOL_F32 for f, w in zip(finals, want_finals))


def test_passing_carries_continues_the_stream_exactly():
    model = models.language_model(V, rnnjax.cells.lstm(8), num_layers=2)
    toks = tokens(2, (B, 12))
    variables = model.init(jax.random.key(3), toks)
    full, _ = model.apply(variables, toks)
    first, carries = model.apply(variables, toks[:, :5])
    second, _ = model.apply(variables, toks[:, 5:], carries)
    assert rel(jnp.concatenate([first, second], axis=1), full) <= TOL_F32
    # one token at a time, as when sampling
    carries, steps = None, []
    for t in range(12):
        out, carries = model.apply(variables, toks[:, t : t + 1], carries)
        steps.append(out)
    assert rel(jnp.concatenate(steps, axis=1), full) <= TOL_F32


def test_dropout_only_in_training():
    model = models.language_model(V, rnnjax.cells.lstm(8), num_layers=2, dropout=0.5)
    plain = models.language_model(V, rnnjax.cells.lstm(8), num_layers=2, dropout=0.0)
    toks = tokens(4)
    variables = model.init(jax.random.key(5), toks)
    evaluated, _ = model.apply(variables, toks)
    assert rel(evaluated, plain.apply(variables, toks)[0]) == 0.0
    trained, _ = model.apply(variables, toks, train=True, rngs={"dropout": jax.random.key(6)})
    assert rel(trained, evaluated) > 1e-3


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_pooling_over_valid_steps(pooling):
    cell = rnnjax.cells.make("lstm", 6)
    model = models.classifier(V, 4, cell, pooling=pooling)
    toks = tokens(7)
    lengths = jnp.array([9, 2, 5])
    variables = model.init(jax.random.key(8), toks, lengths=lengths)
    logits, _ = model.apply(variables, toks, lengths=lengths)
    p = variables["params"]
    x = p["embed"]["embedding"][toks]
    for b, n in enumerate(lengths.tolist()):  # each example alone, truncated to its length
        _, ys = rnnjax.unroll(cell, p["rnn"]["layer_0"], x[b, :n])
        pooled = ys[-1] if pooling == "last" else ys.mean(axis=0)
        assert rel(logits[b], readout.dense(p["readout"], pooled)) <= TOL_F32


def test_bidirectional_classifier_equals_flipped_runs():
    """A bidirectional layer = a forward run and a run over the flipped sequence, flipped back
    (each example alone, truncated to its length)."""
    cell = rnnjax.cells.make("gru", 5)
    model = models.classifier(V, 3, cell, num_layers=2, bidirectional=True, pooling="mean")
    toks, lengths = tokens(9), jnp.array([9, 4, 6])
    variables = model.init(jax.random.key(2), toks, lengths=lengths)
    logits, _ = model.apply(variables, toks, lengths=lengths)
    p = variables["params"]
    for b, n in enumerate(lengths.tolist()):
        h = p["embed"]["embedding"][toks[b, :n]]
        for k in range(2):
            layer = p["rnn"][f"layer_{k}"]
            _, forward = rnnjax.unroll(cell, layer.forward, h)
            _, backward = rnnjax.unroll(cell, layer.backward, h[::-1])
            h = jnp.concatenate([forward, backward[::-1]], axis=-1)
        assert rel(logits[b], readout.dense(p["readout"], h.mean(axis=0))) <= TOL_F32


def test_sequence_model_on_float_features():
    cell = rnnjax.cells.make("simple", 4, activation="tanh")
    model = models.sequence_model(cell, 2)
    xs = jax.random.normal(jax.random.key(3), (B, T, 3))
    variables = model.init(jax.random.key(4), xs)
    out, (final,) = model.apply(variables, xs)
    p = variables["params"]
    want_final, ys = rnnjax.unroll(cell, p["rnn"]["layer_0"], xs)
    assert out.shape == (B, T, 2) and rel(out, readout.dense(p["readout"], ys)) <= TOL_F32
    assert rel(final.h, want_final.h) <= TOL_F32


def test_bad_model_input():
    model = models.language_model(V, rnnjax.cells.lstm(4), num_layers=1)
    with pytest.raises(ValueError, match=r"tokens: expected token ids in \[0, 11\)"):
        model.init(jax.random.key(0), jnp.full((1, 3), V))
    with pytest.raises(TypeError, match=r"tokens: expected integer token ids"):
        model.init(jax.random.key(0), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"tokens: expected shape \[batch, time\]"):
        model.init(jax.random.key(0), jnp.zeros((3,), int))
    with pytest.raises(TypeError, match=r"cell: expected an rnnjax.cells.Cell"):
        models.language_model(V, "transformer")
    with pytest.raises(ValueError, match=r"kind: expected one of \('simple', 'lstm', 'gru', 'orthogonal'"):
        rnnjax.cells.make("transformer", 4)
    with pytest.raises(ValueError, match=r"pooling: expected 'last' or 'mean'"):
        models.classifier(V, 2, rnnjax.cells.lstm(4), pooling="max")
    with pytest.raises(ValueError, match=r"inputs: expected float features of shape \[batch, time"):
        models.sequence_model(rnnjax.cells.lstm(4), 1).init(jax.random.key(0), jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"carries: expected 1"):
        variables = model.init(jax.random.key(0), tokens())
        model.apply(variables, tokens(), (None, None))
