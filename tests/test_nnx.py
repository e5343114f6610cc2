"""rnnjax.nnx: every registry kind as an NNX module whose Params are exactly the cell's params, computing
what `rnnjax.unroll` computes on params read back from `nnx.state`; the model faces mirror the Linen
model, and NNX training steps (`nnx.Optimizer` under `nnx.jit`) equal the same steps through the Linen path
(`rnnjax.train.classify.make_train_step`) from the same params on the same batches; the diagnostics read
the modules without a copy; bad arguments are refused by name.

Params are drawn with NumPy into the shapes `jax.eval_shape` gives (no initialiser is compiled) and every
computation runs under one `jit` per test, to keep the file fast.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import rnnjax.nnx as rnnx
from rnnjax import cells, diagnostics, models, unroll
from rnnjax.train import classify

FLOAT32_TOL = 1e-6  # float32: one function traced along two paths (rounding only)
B, T, I, H = 2, 5, 3, 4


def _xs(rng, *shape):
    return jnp.asarray(rng.uniform(-1, 1, shape), jnp.float32)


def _random_like(tree, rng, scale=0.5):
    """Arrays of U(±scale) (float) in the shapes and dtypes of `tree` (e.g. from `jax.eval_shape`)."""
    return jax.tree.map(lambda a: jnp.asarray(rng.uniform(-scale, scale, a.shape), a.dtype), tree)


def _params(cell, rng):
    return _random_like(jax.eval_shape(lambda key: cell.init(key, I), jax.random.key(0)), rng)


def _from_state(rnn: rnnx.RNN):
    """The params read through NNX's own state API (not through `rnn.params`)."""
    pure = nnx.to_pure_dict(nnx.state(rnn, nnx.Param))
    return rnn.cell.params_type(**{field: pure.get(field) for field in rnn.cell.params_type._fields})


def _as_dicts(tree):
    """A Linen params tree with every NamedTuple as a dict of its non-None fields (NNX's pure dict form)."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return {f: _as_dicts(v) for f, v in tree._asdict().items() if v is not None}
    if isinstance(tree, dict):
        return {k: _as_dicts(v) for k, v in tree.items()}
    return tree


@pytest.mark.parametrize("kind", list(cells.KINDS))
def test_every_kind_has_an_nnx_face_computing_unroll(kind):
    rng = np.random.default_rng(0)
    rnn = rnnx.RNN(kind, params=_params(cells.make(kind, H), rng), hidden_size=H)
    params = _from_state(rnn)
    fields = {f for f, v in zip(params._fields, params) if v is not None}
    assert set(nnx.to_pure_dict(nnx.state(rnn, nnx.Param))) == fields
    assert all(a is b for a, b in zip(jax.tree.leaves(rnn.params), jax.tree.leaves(params)))  # no copy
    xs, weights = _xs(rng, B, T, I), _xs(rng, B, T, H)

    @nnx.jit
    def both(rnn, params):
        def nnx_loss(rnn):
            ys = rnn(xs)[1]
            return jnp.sum(weights * ys), ys

        def loss(params):
            ys = unroll(rnn.cell, params, xs)[1]
            return jnp.sum(weights * ys), ys

        g_nnx, ys_nnx = nnx.grad(nnx_loss, has_aux=True)(rnn)
        g, ys = jax.grad(loss, has_aux=True)(params)
        return (ys_nnx, nnx.to_pure_dict(g_nnx)), (ys, g._asdict())

    (ys_nnx, g_nnx), (ys, g) = both(rnn, params)
    np.testing.assert_allclose(ys_nnx, ys, rtol=0, atol=FLOAT32_TOL)
    for field in fields:
        np.testing.assert_allclose(g_nnx[field], g[field], rtol=0, atol=FLOAT32_TOL)


def test_initialised_by_the_cell_with_options_and_none_fields():
    """`RNN(kind, I, H, rngs=..., **options)` holds `cells.make(kind, H, **options).init(rngs.params(), I)`;
    a reset-before GRU's b_hn is a None attribute; the call passes lengths, reverse, remat and a precision
    on to unroll."""
    rnn = rnnx.RNN("mingru", I, H, rngs=nnx.Rngs(params=7), dtype=jnp.float64)
    want = cells.mingru(H, dtype=jnp.float64).init(nnx.Rngs(params=7).params(), I)
    for got, expected in zip(rnn.params, want, strict=True):
        assert got.dtype == jnp.float64 and np.array_equal(got, expected)

    rng = np.random.default_rng(1)
    cell = cells.gru(H, reset_after=False)
    rnn = rnnx.RNN(cell, params=_params(cell, rng))
    assert rnn.b_hn is None and rnn.params.b_hn is None
    assert set(nnx.to_pure_dict(nnx.state(rnn, nnx.Param))) == {"w_ih", "w_hh", "b"}
    xs, lengths = _xs(rng, B, T, I), jnp.array([T, 2])
    options = dict(lengths=lengths, reverse=True, remat=True, precision="highest")
    run = nnx.jit(lambda rnn, xs: (rnn(xs, **options), unroll(rnn.cell, _from_state(rnn), xs, **options)))
    (final, ys), (want_final, want_ys) = run(rnn, xs)
    np.testing.assert_array_equal(ys, want_ys)
    np.testing.assert_array_equal(final.h, want_final.h)
    again = rnnx.RNN(rnn.cell, params=rnn.params)  # holding given params: the same arrays
    assert again.w_hh[...] is rnn.w_hh[...]


def test_a_kind_added_to_the_registry_gets_its_face(monkeypatch):
    twin = lambda h, **options: cells.simple(h, **options)._replace(kind="twin")  # noqa: E731
    monkeypatch.setitem(cells.KINDS, "twin", twin)
    rng = np.random.default_rng(2)
    rnn = rnnx.RNN("twin", hidden_size=H, params=_params(cells.simple(H), rng), activation="relu")
    assert rnn.cell.kind == "twin" and rnn.cell.activation == "relu"
    xs = _xs(rng, B, T, I)
    run = nnx.jit(lambda rnn: (rnn(xs)[1], unroll(cells.simple(H, "relu"), _from_state(rnn), xs)[1]))
    np.testing.assert_allclose(*run(rnn), rtol=0, atol=FLOAT32_TOL)


def test_diagnostics_read_the_module():
    """Per-step gradients from the module's (cell, params) come with parameter gradients equal to NNX's
    own; the Jacobian and Lyapunov diagnostics and the spectrum take the module's params as they are."""
    rng = np.random.default_rng(3)
    rnn = rnnx.RNN(cells.lstm(H), params=_params(cells.lstm(H), rng))
    xs = _xs(rng, B, T, I)
    loss_fn = lambda ys: jnp.mean(ys[:, -1] ** 2)  # noqa: E731

    @nnx.jit
    def measure(rnn):
        cell, params = rnn.cell, rnn.params
        _, g_params, g_carry = diagnostics.loss_and_hidden_state_grads(cell, params, xs, loss_fn)
        g_nnx = nnx.to_pure_dict(nnx.grad(lambda r: loss_fn(r(xs)[1]))(rnn))
        norms = diagnostics.jacobian_norms(cell, params, xs[0])
        exponents = diagnostics.lyapunov(
            cell, params, xs[0], k=1, num_frames=2, key=jax.random.key(0)
        ).exponents
        return g_params._asdict(), g_nnx, g_carry, norms, exponents

    g_params, g_nnx, g_carry, norms, exponents = measure(rnn)
    for field, g in g_params.items():
        np.testing.assert_allclose(g, g_nnx[field], rtol=0, atol=FLOAT32_TOL)
    assert g_carry.h.shape == g_carry.c.shape == (B, T, H)
    assert norms.shape == (T,) and np.isfinite(exponents).all()
    assert set(diagnostics.recurrent_spectrum(rnn.cell, rnn.params)) == {"i", "f", "g", "o"}


def test_model_presets_mirror_the_linen_model():
    rng = np.random.default_rng(4)
    linen = models.sequence_model(cells.gru(H), 2, num_layers=2)
    params = _random_like(jax.eval_shape(linen.init, jax.random.key(0), jnp.zeros((1, 1, I)))["params"], rng)
    model = rnnx.Model(linen, params=params)
    assert model.cell is linen.cell and model.params["rnn"]["layer_1"].w_hh is model.rnn.layer_1.w_hh[...]
    state = jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    assert state == jax.tree.map(jnp.shape, _as_dicts(params))  # rnn/layer_k/<field>, readout/w, readout/b
    lm = rnnx.language_model(7, cells.mingru(H), rngs=nnx.Rngs(5), num_layers=1, embed_size=3, dropout=0.5)
    xs, tokens = _xs(rng, B, T, I), jnp.asarray(rng.integers(0, 7, (B, T)))

    @nnx.jit
    def run(model, lm):
        outputs = model(xs)[0], linen.apply({"params": model.params}, xs)[0]
        lm_outputs = lm(tokens)[0], lm.model.apply({"params": lm.params}, tokens)[0]
        grads = diagnostics.model_hidden_state_grads(linen, model.params, xs, lambda y: jnp.mean(y**2))
        lm.train()  # dropout on: a fresh mask per call, from the stream forked at construction
        dropped = lm(tokens)[0], lm(tokens)[0]
        lm.eval()
        return outputs, lm_outputs, grads, dropped

    outputs, lm_outputs, grads, dropped = run(model, lm)
    np.testing.assert_array_equal(*outputs)
    np.testing.assert_array_equal(*lm_outputs)
    assert lm_outputs[0].shape == (B, T, 7) and [g.h.shape for g in grads] == [(B, T, H)] * 2
    assert not np.array_equal(*dropped) and not np.array_equal(dropped[0], lm_outputs[0])


def test_nnx_training_steps_equal_the_linen_steps():
    """Two Adam steps of a bidirectional GRU classifier: `nnx.Optimizer` under `nnx.jit` against
    `classify.make_train_step` under `jax.jit`, from the same params on the same batches."""
    rng = np.random.default_rng(5)
    linen = models.classifier(11, 3, cells.gru(H), num_layers=1, embed_size=4, bidirectional=True)
    tokens = jnp.zeros((1, 1), jnp.int32)
    params = _random_like(jax.eval_shape(linen.init, jax.random.key(0), tokens)["params"], rng)
    tx = optax.adam(1e-2)
    state = classify.TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))
    model = rnnx.Model(linen, params=params)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def nnx_step(model, optimizer, tokens, lengths, labels):
        def loss_fn(model):
            logits, _ = model(tokens, lengths=lengths, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    linen_step = jax.jit(classify.make_train_step(linen, tx))
    for _ in range(2):
        batch = (
            jnp.asarray(rng.integers(0, 11, (B, T))),
            jnp.array([T, 3]),
            jnp.asarray(rng.integers(0, 3, B)),
        )
        state, metrics = linen_step(state, batch, jax.random.key(0))
        np.testing.assert_allclose(nnx_step(model, optimizer, *batch), metrics["loss"], rtol=FLOAT32_TOL)
    got, want = jax.tree.leaves(model.params), jax.tree.leaves(state.params)
    assert len(got) == len(want) == 1 + 2 * 4 + 2  # embedding, two directions of GRUParams, the head
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=FLOAT32_TOL)
    assert not np.allclose(want[0], params["embed"]["embedding"])  # the steps moved the params


def test_bad_arguments_are_refused_by_name():
    rngs = nnx.Rngs(0)
    with pytest.raises(ValueError, match="kind: expected one of"):
        rnnx.RNN("elman", I, H, rngs=rngs)
    with pytest.raises(ValueError, match="hidden_size: a kind name .'lstm'. needs a hidden_size"):
        rnnx.RNN("lstm", I, rngs=rngs)
    with pytest.raises(ValueError, match="hidden_size: the cell has hidden_size=4, got hidden_size=5"):
        rnnx.RNN(cells.lstm(H), I, 5, rngs=rngs)
    with pytest.raises(TypeError, match=r"options: constructor options \['activation'\] go with a kind name"):
        rnnx.RNN(cells.simple(H), I, rngs=rngs, activation="relu")
    with pytest.raises(TypeError, match="rngs: initialising the params needs an nnx.Rngs"):
        rnnx.RNN(cells.lstm(H), I)
    with pytest.raises(TypeError, match="cell: expected an rnnjax.cells.Cell"):
        rnnx.RNN(rngs, I, H)
    params = _params(cells.lstm(H), np.random.default_rng(6))
    with pytest.raises(ValueError, match="in_features: the params read 3 features, got in_features=2"):
        rnnx.RNN(cells.lstm(H), 2, params=params)
    with pytest.raises(TypeError, match="params: a gru cell expected GRUParams"):
        rnnx.RNN(cells.gru(H), params=params)
    with pytest.raises(TypeError, match="model: expected an rnnjax.models.RNNModel"):
        rnnx.Model(cells.lstm(H), rngs=rngs)
    with pytest.raises(ValueError, match="input_size: a float-feature model needs the feature size"):
        rnnx.Model(models.sequence_model(cells.lstm(H), 2), rngs=rngs)
    with pytest.raises(ValueError, match="input_size: a token model reads token ids"):
        rnnx.Model(models.language_model(5, cells.lstm(H)), rngs=rngs, input_size=3)
    linen = models.language_model(5, cells.lstm(H), num_layers=1, dropout=0.5)
    shapes = jax.eval_shape(linen.init, jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
    lm = rnnx.Model(linen, params=_random_like(shapes, np.random.default_rng(7)))  # {"params": ...} accepted
    with pytest.raises(ValueError, match="rngs: dropout in training needs random keys"):
        lm(jnp.zeros((1, 2), jnp.int32), train=True)
