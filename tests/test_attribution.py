"""Token attributions and gate traces of classifiers, each checked a second, independent way: integrated
gradients against their completeness (Σ_t IG_t = f(e) − f(e')), the gradient against central finite
differences of the model's own `apply` with one row of its embedding table moved, a model whose logit
depends on one token only, a model affine in its embeddings (IG = gradient × input exactly), and gate
traces against an explicit step-by-step loop over `cell.step` and `cell.gate_values`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import perturb_params

from rnnjax import attribution, cells, initializers, models

# float64: Gauss–Legendre quadrature of an analytic integrand at IG_STEPS points is exact far below this;
# what is left is rounding.
TOL_F64 = 1e-10
# Central finite differences in float64 with step FD_STEP: truncation O(FD_STEP²) plus rounding
# O(1e-16 / FD_STEP), both well below this, relative to the largest gradient entry.
FD_STEP = 1e-5
TOL_FD = 1e-7
# The issue's criterion for a model whose logit depends on one token only.
ONE_TOKEN_SHARE = 0.99

V, C, E, H = 12, 3, 3, 4
TOKENS = jnp.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 0, 0], [11, 3, 0, 0, 0, 0]])  # (B, T), each id once
LENGTHS = jnp.array([6, 4, 2])


@functools.cache  # built once per test session: the tests only read the params
def classifier(kind, seed=0, **options):
    """A small classifier of `kind` with perturbed params (zero biases hide nothing)."""
    # modReLU, sign(z)·relu(|z| + b), jumps by 2b where z crosses 0: no gradient sees a jump, so IG is
    # complete only for continuous models (`attribute` reports the gap); the tanh form is continuous.
    cell_options = dict(activation="tanh") if kind == "orthogonal" else {}
    model = models.classifier(V, C, cells.make(kind, H, **cell_options), embed_size=E, **options)
    k_init, k_noise = jax.random.split(jax.random.key(seed))
    params = model.init(k_init, TOKENS, lengths=LENGTHS)["params"]
    return model, perturb_params(params, k_noise, 0.5)


@pytest.mark.parametrize("kind", list(cells.KINDS))
def test_integrated_gradients_are_complete_for_every_kind(kind):
    model, params = classifier(kind)
    att = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    delta = att.logits[np.arange(3), att.target] - att.baseline_logit  # f(e) − f(0)
    np.testing.assert_allclose(att.completeness_gap, att.integrated_gradients.sum(1) - delta, atol=1e-15)
    assert np.all(att.completeness_error <= TOL_F64), att.completeness_error
    for name in attribution.METHODS:  # nothing at padded steps
        assert np.all(getattr(att, name)[np.arange(6) >= LENGTHS[:, None]] == 0.0), name


def test_the_logits_attributed_are_the_models_own_through_a_bidirectional_stack():
    model, params = classifier("lstm", bidirectional=True, num_layers=2)
    att = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    want = np.asarray(model.apply({"params": params64}, TOKENS, lengths=LENGTHS)[0])  # from the token ids
    np.testing.assert_allclose(att.logits, want, rtol=0, atol=TOL_F64 * np.abs(want).max())
    assert np.array_equal(att.target, np.argmax(want, axis=1))  # target None: each text's prediction
    assert np.all(att.completeness_error <= TOL_F64), att.completeness_error


def test_float32_integrated_gradients_meet_the_issue_tolerance_at_the_default_steps():
    model, params = classifier("lstm", pooling="mean")
    att = attribution.attribute(model, params, TOKENS, LENGTHS, target=1, baseline=0)
    assert att.integrated_gradients.dtype == np.float32 and np.all(att.points >= attribution.IG_STEPS)
    assert np.all(att.completeness_error <= attribution.COMPLETENESS_TOLERANCE), att.completeness_error
    assert att.baseline == "token 0" and np.array_equal(att.target, [1, 1, 1])
    # token 0 is the baseline itself: it gets nothing (e_t − e'_t = 0)
    assert att.integrated_gradients[1, 4] == 0.0


def test_a_steep_path_needs_the_adaptive_refinement_and_gets_complete_with_it():
    # Embeddings x100 make tanh switch within a small stretch of α: one 32-point panel misses it.
    model = models.classifier(V, C, cells.simple(H, "tanh"), embed_size=E)
    params = perturb_params(
        model.init(jax.random.key(0), TOKENS, lengths=LENGTHS)["params"], jax.random.key(1)
    )
    params["embed"] = {"embedding": 100.0 * params["embed"]["embedding"]}
    one_panel = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64, max_steps=32)
    assert np.nanmax(one_panel.completeness_error) > attribution.COMPLETENESS_TOLERANCE
    refined = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    assert np.all(refined.completeness_error <= attribution.COMPLETENESS_TOLERANCE), (
        refined.completeness_error
    )
    assert np.all(refined.points[one_panel.completeness_error > attribution.REFINE_TRIGGER] > 32)


def test_gradient_matches_central_differences_of_the_embedding_table():
    model, params = classifier("gru", bidirectional=True)
    att = attribution.attribute(model, params, TOKENS, LENGTHS, target=2, dtype=jnp.float64)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    table = params["embed"]["embedding"]

    @jax.jit
    def logits(moved_table):
        return model.apply(
            {"params": dict(params, embed={"embedding": moved_table})}, TOKENS, lengths=LENGTHS
        )[0]

    def logit(b, token, delta):  # f_b with the token's row of the table moved by delta (each id is used once)
        return float(logits(table.at[token].add(delta))[b, 2])

    for b, t in ((0, 0), (1, 3), (2, 1)):
        token = int(TOKENS[b, t])
        grad = np.array(
            [
                (logit(b, token, FD_STEP * u) - logit(b, token, -FD_STEP * u)) / (2 * FD_STEP)
                for u in np.eye(E)
            ]
        )
        scale = np.abs(grad).max()
        assert abs(att.gradient_norm[b, t] - np.linalg.norm(grad)) <= TOL_FD * scale
        assert abs(att.gradient_x_input[b, t] - grad @ np.asarray(table[token])) <= TOL_FD * scale


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_logit_that_reads_one_token_gets_all_the_attribution_there(bidirectional):
    # No recurrence (W_hh = 0) and the last valid step's output: the logits depend on the last token only.
    cell = cells.simple(H, "tanh", recurrent_init=initializers.zeros())
    model = models.classifier(V, C, cell, embed_size=E, bidirectional=bidirectional)
    params = perturb_params(
        model.init(jax.random.key(1), TOKENS, lengths=LENGTHS)["params"], jax.random.key(2)
    )
    no_recurrence = lambda p: p._replace(w_hh=jnp.zeros_like(p.w_hh))  # noqa: E731  (noise undone)
    layer = params["rnn"]["layer_0"]
    layer = type(layer)(*map(no_recurrence, layer)) if bidirectional else no_recurrence(layer)
    params["rnn"] = {"layer_0": layer}
    att = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    last = np.arange(6) == (LENGTHS[:, None] - 1)
    for name in attribution.METHODS:
        share = attribution.mass_share(getattr(att, name), last)
        assert np.all(share >= ONE_TOKEN_SHARE), (name, share)
    assert np.all(att.completeness_error <= TOL_F64)


def test_for_a_model_affine_in_its_embeddings_ig_equals_gradient_times_input():
    model = models.classifier(V, C, cells.simple(H, "linear"), embed_size=E, pooling="mean")
    params = perturb_params(
        model.init(jax.random.key(3), TOKENS, lengths=LENGTHS)["params"], jax.random.key(4)
    )
    att = attribution.attribute(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    np.testing.assert_allclose(att.integrated_gradients, att.gradient_x_input, rtol=0, atol=TOL_F64)


def loop_gates(cell, params, xs, lengths, reverse):
    """Mean gate values <[B, T]> per gate, by an explicit loop over the steps (in reverse from each text's
    last valid step if `reverse`; padded steps leave the carry as it is), and the outputs <[B, T, H]>."""
    B, T, _ = xs.shape
    carry, gates, ys = cell.initial_carry((B,), xs.dtype), {}, np.zeros((B, T, cell.hidden_size))
    for t in reversed(range(T)) if reverse else range(T):
        valid = np.asarray(t < lengths)
        for name, value in cell.gate_values(params, carry, xs[:, t]).items():
            gates.setdefault(name, np.full((B, T), np.nan))[valid, t] = np.asarray(value).mean(-1)[valid]
        new, y = cell.step(params, carry, xs[:, t])
        carry = jax.tree.map(lambda n, o, v=valid[:, None]: jnp.where(v, n, o), new, carry)
        ys[valid, t] = np.asarray(y)[valid]
    return gates, ys


def test_gate_traces_match_an_explicit_loop_over_every_layer_and_direction():
    model, params = classifier("lstm", bidirectional=True, num_layers=2)
    traces = attribution.gate_traces(model, params, TOKENS, LENGTHS, dtype=jnp.float64)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    assert len(traces) == 2 and all(set(layer) == {"forward", "backward"} for layer in traces)
    xs = params["embed"]["embedding"][TOKENS]  # (B, T, E)
    for k in range(2):
        layer, outputs = params["rnn"][f"layer_{k}"], []
        for direction, p in (("forward", layer.forward), ("backward", layer.backward)):
            gates, ys = loop_gates(model.cell, p, xs, LENGTHS, reverse=direction == "backward")
            outputs.append(ys)
            assert set(traces[k][direction]) == set(gates) == {"i", "f", "o"}
            for name, want in gates.items():
                np.testing.assert_allclose(traces[k][direction][name], want, rtol=0, atol=TOL_F64)
        xs = jnp.asarray(np.concatenate(outputs, axis=-1))
    assert attribution.gate_traces(*classifier("simple"), TOKENS, LENGTHS) == [{"forward": {}}]


def test_mass_share_by_hand():
    values = np.array([[1.0, -3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    mask = np.array([[False, True, False, False], [True, False, False, False]])
    share = attribution.mass_share(values, mask)
    assert share[0] == 3.0 / 8.0 and np.isnan(share[1])
    assert attribution.mass_share(values, mask, lengths=np.array([2, 4]))[0] == 3.0 / 4.0


def test_bad_input_is_refused_by_name():
    model, params = classifier("gru")
    lm = models.language_model(V, cells.gru(H), num_layers=1)
    with pytest.raises(ValueError, match="^model: expected a classifier of token ids"):
        attribution.attribute(lm, params, TOKENS)  # refused before its params are read
    with pytest.raises(TypeError, match="^model: expected an rnnjax.models.RNNModel"):
        attribution.gate_traces("lstm", params, TOKENS)
    with pytest.raises(ValueError, match=r"^tokens: expected token ids in \[0, 12\)"):
        attribution.attribute(model, params, TOKENS + 20)
    with pytest.raises(ValueError, match="^lengths: expected every length in"):
        attribution.attribute(model, params, TOKENS, jnp.array([7, 1, 1]))
    with pytest.raises(ValueError, match="^baseline: expected 'zero' or a token id"):
        attribution.attribute(model, params, TOKENS, LENGTHS, baseline="pad")
    with pytest.raises(ValueError, match=r"^target: expected class ids in \[0, 3\)"):
        attribution.attribute(model, params, TOKENS, LENGTHS, target=3)
    with pytest.raises(ValueError, match="^mask: expected the shape of values"):
        attribution.mass_share(np.ones((2, 3)), np.ones((2, 4), bool))
