"""`unroll(checkpoint_every=c)`: chunked checkpointing gives the same values and gradients as one plain
unroll (every cell form, forward and reverse, T a multiple of c or not), keeps less memory in XLA's
compiled analysis, and rejects the options it cannot combine with."""

import functools

import jax
import jax.numpy as jnp
import pytest
from conftest import CELL_FORMS, max_rel_err, perturb_params

import rnnjax

# Chunking changes no arithmetic: the same steps in the same order, recomputed.
TOL_F64 = 1e-12
I, H = 3, 4


def problem(form, T, batch=2, seed=0):
    cell = CELL_FORMS[form](H)
    keys = jax.random.split(jax.random.key(seed), 4)
    params = perturb_params(cell.init(keys[0], I), keys[1])
    xs = jax.random.normal(keys[2], (batch, T, I), jnp.float64)
    carry = perturb_params(cell.initial_carry((batch,), jnp.float64), keys[3], 0.5)
    return cell, params, xs, carry


def loss_fn(cell, **kw):
    def loss(params, xs, carry):
        final, ys = rnnjax.unroll(cell, params, xs, carry, **kw)
        w = jnp.arange(1, ys.size + 1, dtype=ys.dtype).reshape(ys.shape) / ys.size
        return jnp.sum(w * jnp.tanh(ys)) + sum(jnp.sum(f**2) for f in final)

    return loss


@pytest.mark.parametrize("T, every", [(12, 3), (7, 3), (5, 9), (6, 1)], ids=["divides", "rest", "c>T", "c=1"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("form", ["simple-tanh", "lstm", "gru-reset-before"])
def test_chunked_equals_one_unroll(form, reverse, T, every):
    cell, params, xs, carry = problem(form, T)

    # Values and gradients of each way, each compiled on its own (op by op, every chunk compiles anew).
    @functools.partial(jax.jit, static_argnames="every")
    def values_and_grads(params, xs, carry, every):
        kw = {} if every is None else {"checkpoint_every": every}
        values = rnnjax.unroll(cell, params, xs, carry, reverse=reverse, **kw)
        return values, jax.grad(loss_fn(cell, reverse=reverse, **kw), argnums=(0, 1, 2))(params, xs, carry)

    want, g_want = values_and_grads(params, xs, carry, every=None)
    got, g_got = values_and_grads(params, xs, carry, every=every)
    assert max_rel_err(got, want) <= TOL_F64
    assert max_rel_err(g_got, g_want) <= TOL_F64


def test_time_major_and_forward_mode():
    cell, params, xs, carry = problem("lstm", 10)
    x_tm = jnp.swapaxes(xs, 0, 1)
    final, ys = rnnjax.unroll(cell, params, x_tm, carry, time_major=True, checkpoint_every=4)
    want_final, want_ys = rnnjax.unroll(cell, params, xs, carry)
    assert max_rel_err((final, jnp.swapaxes(ys, 0, 1)), (want_final, want_ys)) <= TOL_F64

    def final_h(h0):
        return rnnjax.unroll(cell, params, xs, carry._replace(h=h0), checkpoint_every=4)[0].h

    assert max_rel_err(jax.jacfwd(final_h)(carry.h), jax.jacrev(final_h)(carry.h)) <= TOL_F64


def test_chunked_backward_keeps_less_memory():
    """XLA's compiled temp memory of the gradient (a property of the program, not a timing)."""
    T, every = 2048, 45
    cell = rnnjax.cells.lstm(64)
    params = cell.init(jax.random.key(0), 16)
    xs = jnp.ones((8, T, 16), jnp.float32)

    def temp_bytes(**kw):
        grad = jax.jit(jax.grad(lambda p: jnp.sum(rnnjax.unroll(cell, p, xs, **kw)[1] ** 2)))
        return grad.lower(params).compile().memory_analysis().temp_size_in_bytes

    plain, chunked = temp_bytes(), temp_bytes(checkpoint_every=every)
    # The plain backward keeps 6H floats per step (h, c and four gate activations); the chunked one
    # keeps ys (H per step), the chunk-boundary carries and one chunk.
    assert chunked < 0.5 * plain, (chunked, plain)


def test_bad_checkpoint_every():
    cell, params, xs, _ = problem("lstm", 6)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="checkpoint_every: expected None or a positive int"):
            rnnjax.unroll(cell, params, xs, checkpoint_every=bad)
    with pytest.raises(ValueError, match="checkpoint_every: cannot be combined with lengths"):
        rnnjax.unroll(cell, params, xs, lengths=jnp.array([6, 2]), checkpoint_every=2)
    with pytest.raises(ValueError, match="checkpoint_every: cannot be combined with return_carries"):
        rnnjax.unroll(cell, params, xs, return_carries=True, checkpoint_every=2)
    with pytest.raises(ValueError, match="checkpoint_every: cannot be combined with remat"):
        rnnjax.unroll(cell, params, xs, remat=True, checkpoint_every=2)
