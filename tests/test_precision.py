"""The precision policy: every matmul of the diagnostics runs at HIGHEST whatever the global default,
`unroll(precision=)` / `cells.with_precision` / the model constructors reach every dot of the forward
and the backward pass (the hand-written kernels' included), and None follows JAX's default. Checked on
the jaxpr, where each dot records its precision, so the check means the same on every backend."""

import re

import jax
import jax.numpy as jnp
import pytest

import rnnjax
from rnnjax import cells, diagnostics, models, readout

B, T, I, H = 2, 5, 3, 4


def dot_precisions(fn, *args) -> list[str]:
    """The precision of every dot_general in the jaxpr of `fn(*args)` (nested jaxprs included)."""
    text = str(jax.make_jaxpr(fn)(*args))
    dots = text.split("dot_general[")[1:]
    found = [re.search(r"precision=(\([^)]*\)|None)", dot[:400]).group(1) for dot in dots]
    return found


def all_at(found: list[str], level: str) -> bool:
    return bool(found) and all(p == f"(Precision.{level}, Precision.{level})" for p in found)


@pytest.fixture
def bfloat16_default():
    """The loosest global default a user can set; everything below must not follow it."""
    with jax.default_matmul_precision("bfloat16"):
        yield


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_every_diagnostic_dot_is_highest_under_a_bfloat16_default(kind, bfloat16_default):
    cell = cells.make(kind, H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    head = readout.dense_init(jax.random.key(2), H, 3)

    def loss_fn(ys):
        return jnp.sum(readout.dense(head, ys[..., -1, :]) ** 2)

    cases = [
        lambda p: diagnostics.hidden_state_grads(cell, p, xs, loss_fn),
        lambda p: diagnostics.loss_and_hidden_state_grads(cell, p, xs, loss_fn),
        lambda p: diagnostics.step_jacobians(cell, p, xs[0]),
        lambda p: diagnostics.jacobian_norms(cell, p, xs[0]),
        lambda p: diagnostics.lyapunov(cell, p, xs[0], k=2, key=jax.random.key(3)),
    ]
    for case in cases:  # (gate_statistics reads values on the host: not traceable, same decorator)
        assert all_at(dot_precisions(case, params), "HIGHEST")


def test_model_diagnostics_are_highest_even_for_a_cell_built_at_default(bfloat16_default):
    model = models.language_model(7, cells.lstm(H, precision="default"), num_layers=2, embed_size=3)
    tokens = jnp.zeros((B, T), jnp.int32)
    params = model.init(jax.random.key(0), tokens)["params"]
    found = dot_precisions(
        lambda p: diagnostics.model_hidden_state_grads(model, p, tokens, lambda out: jnp.sum(out**2)), params
    )
    assert all_at(found, "HIGHEST")


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("fast", [None, False])
def test_unroll_precision_reaches_every_dot_of_forward_and_backward(kind, fast, bfloat16_default):
    """With the kernels (fast=None: simple and LSTM have one) the backward pass is hand-written and traced
    after unroll returns; its dots must carry the precision too."""
    cell = cells.make(kind, H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))

    def loss(p, precision):
        return jnp.sum(rnnjax.unroll(cell, p, xs, precision=precision, fast=fast)[1] ** 2)

    assert all_at(dot_precisions(jax.grad(lambda p: loss(p, "highest")), params), "HIGHEST")
    assert all_at(dot_precisions(jax.grad(lambda p: loss(p, "high")), params), "HIGH")
    assert all_at(dot_precisions(jax.grad(lambda p: loss(p, None)), params), "DEFAULT")  # JAX's default


def test_cell_and_model_precision_and_the_override_order(bfloat16_default):
    cell = cells.lstm(H, precision="highest")
    assert cell.precision == "highest" and cells.with_precision(cell, None) is cells.lstm(H)
    assert cells.with_precision(cells.with_precision(cell, "high"), "highest") is cell  # one wrapper at most
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    assert all_at(dot_precisions(jax.grad(lambda p: rnnjax.unroll(cell, p, xs)[1].sum()), params), "HIGHEST")
    found = dot_precisions(jax.grad(lambda p: rnnjax.unroll(cell, p, xs, precision="high")[1].sum()), params)
    assert all_at(found, "HIGH")  # the call's precision overrides the cell's
    model = models.sequence_model(cells.gru(H), 2, precision="highest")
    variables = model.init(jax.random.key(1), xs)
    assert all_at(dot_precisions(lambda v: model.apply(v, xs)[0], variables), "HIGHEST")


def test_precision_does_not_change_float64_values():
    """Precision is about float32 matmuls: in float64 every setting gives the same numbers (a second check
    that the precise wrappers compute the same function)."""
    cell = cells.make("lstm", H, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I), jnp.float64)
    want = rnnjax.unroll(cell, params, xs)[1]
    for precision in ("highest", "high", "default"):
        got = rnnjax.unroll(cell, params, xs, precision=precision)[1]
        assert float(jnp.max(jnp.abs(got - want))) == 0.0


def test_bad_precision_is_refused():
    cell = cells.lstm(H)
    with pytest.raises(ValueError, match=r"precision: expected None or one of \('default', 'high'"):
        rnnjax.unroll(cell, cell.init(jax.random.key(0), I), jnp.ones((1, 2, I)), precision="fastest")
    with pytest.raises(ValueError, match=r"precision: expected None or one of"):
        cells.gru(H, precision="max")
    with pytest.raises(ValueError, match=r"precision: expected None or one of"):
        diagnostics.jacobian_norms(cell, cell.init(jax.random.key(0), I), jnp.ones((2, I)), precision=1)
