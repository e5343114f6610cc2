"""Cell `step` functions under batching, jit, vmap, jvp and second derivatives, and their input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_FORMS, max_rel_err, perturb_params

from rnnjax import cells

# Same float64 computation arranged differently (batched vs vmapped, jit vs eager): rounding only.
TOL_SAME = 1e-12
# Derivatives of the same function by two different modes of autodiff (float64).
TOL_AD = 1e-10

I, H = 3, 4
FORMS = list(CELL_FORMS)


def setup(form, batch_shape=(), seed=0):
    cell = CELL_FORMS[form](H)
    k = jax.random.split(jax.random.key(seed), 4)
    params = perturb_params(cell.init(k[0], I), k[1])
    carry = perturb_params(cell.initial_carry(batch_shape, jnp.float64), k[2], 0.5)
    x = jax.random.normal(k[3], (*batch_shape, I), jnp.float64)
    return cell, params, carry, x


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("batch_shape", [(5,), (2, 3)], ids=["B", "B1xB2"])
def test_batched_step_equals_vmapped_unbatched_step(form, batch_shape):
    cell, params, carry, x = setup(form, batch_shape)
    got = cell.step(params, carry, x)
    step = lambda c, x_: cell.step(params, c, x_)  # noqa: E731
    for _ in batch_shape:
        step = jax.vmap(step)
    assert max_rel_err(got, step(carry, x)) <= TOL_SAME
    # and a plain Python loop over the first batch axis of unbatched calls
    rows = [cell.step(params, jax.tree.map(lambda a, b=b: a[b], carry), x[b]) for b in range(batch_shape[0])]
    assert max_rel_err(got, jax.tree.map(lambda *r: jnp.stack(r), *rows)) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_step_jit_equals_eager(form):
    cell, params, carry, x = setup(form, (2,))
    assert max_rel_err(jax.jit(cell.step)(params, carry, x), cell.step(params, carry, x)) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_step_output_is_new_hidden_state(form):
    cell, params, carry, x = setup(form, (2,))
    new, y = cell.step(params, carry, x)
    np.testing.assert_array_equal(y, new.h)
    assert y.shape == (2, H)


def scalar_of_step(cell, carry, x, weights):
    def f(params):
        new, y = cell.step(params, carry, x)
        return jnp.vdot(weights, y) + sum(jnp.sum(c**3) for c in new)

    return f


@pytest.mark.parametrize("form", FORMS)
def test_jvp_equals_grad_contracted_with_tangent(form):
    # Forward mode (jvp) and reverse mode (grad) give the same directional derivative.
    cell, params, carry, x = setup(form, (2,))
    f = scalar_of_step(cell, carry, x, jax.random.normal(jax.random.key(7), (2, H), jnp.float64))
    tangent = perturb_params(jax.tree.map(jnp.zeros_like, params), jax.random.key(8), 1.0)
    _, forward = jax.jvp(f, (params,), (tangent,))
    g = jax.grad(f)(params)
    reverse = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(tangent)))
    assert abs(float(forward) - float(reverse)) <= TOL_AD * abs(float(reverse))


@pytest.mark.parametrize("form", FORMS)
def test_hessian_vector_product_reverse_over_reverse_equals_forward_over_reverse(form):
    cell, params, carry, x = setup(form, (2,))
    f = scalar_of_step(cell, carry, x, jax.random.normal(jax.random.key(7), (2, H), jnp.float64))
    v = perturb_params(jax.tree.map(jnp.zeros_like, params), jax.random.key(9), 1.0)

    def vdot_tree(a, b):
        return sum(jnp.vdot(p, q) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    hvp_rr = jax.grad(lambda p: vdot_tree(jax.grad(f)(p), v))(params)  # grad of grad
    _, hvp_fr = jax.jvp(jax.grad(f), (params,), (v,))
    assert max_rel_err(hvp_rr, hvp_fr) <= TOL_AD
    assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(hvp_fr)) > 0  # not trivially zero


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("form", FORMS)
def test_integer_input_is_a_type_error(form):
    cell, params, carry, _ = setup(form, (2,))
    with pytest.raises(TypeError, match=r"x: .*floating-point"):
        cell.step(params, carry, jnp.ones((2, I), jnp.int32))


@pytest.mark.parametrize("form", FORMS)
def test_wrong_feature_size_names_expected_shape(form):
    cell, params, carry, _ = setup(form, (2,))
    with pytest.raises(ValueError, match=rf"x: .*\[\*batch, {I}\].*got \(2, {I + 1}\)"):
        cell.step(params, carry, jnp.ones((2, I + 1)))


@pytest.mark.parametrize("form", FORMS)
def test_mismatched_carry_shape_names_the_field(form):
    cell, params, _, x = setup(form, (2,))
    bad = cell.initial_carry((3,), jnp.float64)
    with pytest.raises(ValueError, match=r"carry\.h: .*expected shape \(2, 4\).*got \(3, 4\)"):
        cell.step(params, bad, x)


def test_wrong_carry_type_is_a_type_error():
    cell, params, _, x = setup("lstm", (2,))
    with pytest.raises(TypeError, match=r"carry: lstm cell expected a LSTMCarry\('h', 'c'\)"):
        cell.step(params, cells.RNNCarry(jnp.zeros((2, H))), x)
    with pytest.raises(TypeError, match=r"carry: .*got ArrayImpl"):
        cell.step(params, jnp.zeros((2, H)), x)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: cells.simple(4, "softsign"), r"activation: expected one of .*'softsign'"),
        (lambda: cells.simple(0), r"hidden_size: expected a positive int, got 0"),
        (lambda: cells.lstm(2.5), r"hidden_size: expected a positive int, got 2.5"),
        (lambda: cells.gru(4, reset_after="yes"), r"reset_after: expected True or False"),
        (lambda: cells.lstm(4, preset="torch"), r"preset: expected one of .*'torch'"),
        (lambda: cells.lstm(4, forget_bias="one"), r"forget_bias: expected a number"),
        (lambda: cells.simple(4, gain=-1.0), r"gain: expected a non-negative number"),
        (lambda: cells.simple(4, spectral_radius=-0.5), r"spectral_radius: expected None or"),
        (lambda: cells.simple(4).init(jax.random.key(0), 0), r"input_size: expected a positive int"),
    ],
)
def test_bad_cell_options_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_keyword_option_is_rejected():
    with pytest.raises(TypeError, match="unexpected keyword argument 'forget_bias'"):
        cells.gru(4, forget_bias=1.0)


def test_initial_carry_shapes_and_dtype():
    c = cells.lstm(6).initial_carry((2, 3), jnp.float32)
    assert isinstance(c, cells.LSTMCarry)
    assert c.h.shape == c.c.shape == (2, 3, 6) and c.h.dtype == jnp.float32
    assert cells.gru(6).initial_carry().h.shape == (6,)
    assert cells.simple(6).initial_carry(4).h.shape == (4, 6)
