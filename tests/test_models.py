"""Flax models built from rnnjax cells, against the same computation written out with the library's
functions, and carry passing against one long run."""

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
    "cell, options", [("lstm", ()), ("gru", (("reset_after", False),)), ("simple", (("activation", "relu"),))]
)
@pytest.mark.parametrize("embed_size", [5, None])
def test_language_model_equals_library_composition(cell, options, embed_size):
    model = models.LanguageModel(
        V, cell=cell, hidden_size=6, num_layers=2, embed_size=embed_size, cell_options=options
    )
    toks = tokens()
    variables = model.init(jax.random.key(1), toks)
    logits, finals = model.apply(variables, toks)
    p = variables["params"]
    x = p["rnn"]["embed"]["embedding"][toks] if embed_size else jax.nn.one_hot(toks, V)
    cells = [models.make_cell(cell, 6, options)] * 2
    want_finals, ys = rnnjax.unroll_stack(cells, [p["rnn"]["layer_0"], p["rnn"]["layer_1"]], x)
    assert logits.shape == (B, T, V)
    assert rel(logits, readout.dense(p["readout"], ys)) <= TOL_F32
    assert all(rel(f.h, w.h) <= TOL_F32 for f, w in zip(finals, want_finals))


def test_passing_carries_continues_the_stream_exactly():
    model = models.LanguageModel(V, cell="lstm", hidden_size=8, num_layers=2)
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
    model = models.LanguageModel(V, hidden_size=8, num_layers=2, dropout=0.5)
    plain = models.LanguageModel(V, hidden_size=8, num_layers=2, dropout=0.0)
    toks = tokens(4)
    variables = model.init(jax.random.key(5), toks)
    evaluated, _ = model.apply(variables, toks)
    assert rel(evaluated, plain.apply(variables, toks)[0]) == 0.0
    trained, _ = model.apply(variables, toks, train=True, rngs={"dropout": jax.random.key(6)})
    assert rel(trained, evaluated) > 1e-3


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_pooling_over_valid_steps(pooling):
    model = models.SequenceClassifier(V, num_classes=4, hidden_size=6, pooling=pooling)
    toks = tokens(7)
    lengths = jnp.array([9, 2, 5])
    variables = model.init(jax.random.key(8), toks, lengths=lengths)
    logits = model.apply(variables, toks, lengths=lengths)
    p = variables["params"]
    x = p["rnn"]["embed"]["embedding"][toks]
    cell = models.make_cell("lstm", 6)
    for b, n in enumerate(lengths.tolist()):  # each example alone, truncated to its length
        _, ys = rnnjax.unroll(cell, p["rnn"]["layer_0"], x[b, :n])
        pooled = ys[-1] if pooling == "last" else ys.mean(axis=0)
        assert rel(logits[b], readout.dense(p["readout"], pooled)) <= TOL_F32


def test_bad_model_input():
    model = models.LanguageModel(V, hidden_size=4, num_layers=1)
    with pytest.raises(ValueError, match=r"tokens: expected token ids in \[0, 11\)"):
        model.init(jax.random.key(0), jnp.full((1, 3), V))
    with pytest.raises(TypeError, match=r"tokens: expected integer token ids"):
        model.init(jax.random.key(0), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"tokens: expected shape \[batch, time\]"):
        model.init(jax.random.key(0), jnp.zeros((3,), int))
    with pytest.raises(ValueError, match=r"cell: expected one of"):
        models.LanguageModel(V, cell="transformer").init(jax.random.key(0), tokens())
    with pytest.raises(ValueError, match=r"pooling: expected 'last' or 'mean'"):
        models.SequenceClassifier(V, 2, pooling="max").init(jax.random.key(0), tokens())
    with pytest.raises(ValueError, match=r"carries: expected 1"):
        variables = model.init(jax.random.key(0), tokens())
        model.apply(variables, tokens(), (None, None))
