"""The whole-sequence kernels (`rnnjax.fused`, the default path of `unroll`) against plain autodiff of
the `cell.step` scan (`unroll(fast=False)`) and the NumPy reference: values, first and second
derivatives, every batch shape, reverse, mixed dtypes, and when `unroll` falls back."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_FORMS, as_dict, max_rel_err, perturb_params, reference_kwargs

import rnnjax
from rnnjax import cells, fused, reference

# Both paths compute the same float64 arithmetic up to summation order.
TOL_F64 = 1e-10
# Second derivatives differentiate the hand-written backward pass against autodiff's.
TOL_F64_SECOND = 1e-9
# float32 fast path vs float32 plain path, relative to the largest entry.
TOL_F32 = 2e-5

I, H, T = 3, 4, 6


def _gru_kernel(p, carry, xs, *, reverse=False, unroll=1):
    return fused.gru_sequence(p, carry, xs, reverse=reverse, unroll=unroll)


# The cells whose default path is a kernel, plus the opt-in GRU kernel (not the GRU's default).
KERNEL_FORMS = {
    "simple-tanh": CELL_FORMS["simple-tanh"],
    "simple-relu": CELL_FORMS["simple-relu"],
    "simple-linear": CELL_FORMS["simple-linear"],
    "lstm": CELL_FORMS["lstm"],
    "gru-kernel": lambda h, dtype=jnp.float64: cells.gru(h, dtype=dtype).with_kernel(_gru_kernel),
}
FAST_FORMS = list(KERNEL_FORMS)


def problem(form, batch_shape, dtype=jnp.float64, seed=0):
    cell = KERNEL_FORMS[form](H, dtype) if form in KERNEL_FORMS else CELL_FORMS[form](H, dtype)
    keys = jax.random.split(jax.random.key(seed), 4)
    params = perturb_params(cell.init(keys[0], I), keys[1])
    xs = jax.random.normal(keys[2], (*batch_shape, T, I), dtype)
    carry = perturb_params(cell.initial_carry(batch_shape, dtype), keys[3], 0.5)
    return cell, params, xs, carry


def weighted_loss(cell, fast, reverse=False):
    """A loss that weights every output and every final-carry field differently."""

    def loss(params, xs, carry):
        final, ys = rnnjax.unroll(cell, params, xs, carry, reverse=reverse, fast=fast)
        w = jnp.arange(1, ys.size + 1, dtype=ys.dtype).reshape(ys.shape) / ys.size
        return jnp.sum(w * ys**2) + sum(jnp.sum(jnp.sin(f)) for f in final)

    return loss


def test_simple_and_lstm_cells_have_a_kernel_and_gru_cells_do_not():
    for form in CELL_FORMS:
        has = CELL_FORMS[form](H).sequence is not None
        assert has == (not form.startswith("gru")), form


# Every form both ways at one batch shape, and the other batch shapes on the two gated forms.
VALUE_CASES = [(form, (2,), reverse) for form in FAST_FORMS for reverse in (False, True)] + [
    (form, batch_shape, True) for form in ("lstm", "gru-kernel") for batch_shape in ((), (2, 3))
]


@pytest.mark.parametrize("form, batch_shape, reverse", VALUE_CASES)
def test_values_and_gradients_equal_plain_autodiff(form, batch_shape, reverse):
    cell, params, xs, carry = problem(form, batch_shape)

    # Each path compiled on its own (op by op, each scan and its transpose would compile apart).
    @functools.partial(jax.jit, static_argnames="fast")
    def values_and_grads(params, xs, carry, fast):
        final, ys = rnnjax.unroll(cell, params, xs, carry, reverse=reverse, fast=fast)
        grads = jax.grad(weighted_loss(cell, fast, reverse), argnums=(0, 1, 2))(params, xs, carry)
        return final, ys, grads

    outs = {fast: values_and_grads(params, xs, carry, fast=fast) for fast in (True, False)}
    assert max_rel_err(outs[True], outs[False]) <= TOL_F64


@pytest.mark.parametrize("form", FAST_FORMS)
def test_second_derivatives_equal_plain_autodiff(form):
    """grad of (grad norm²) differentiates the hand-written backward pass itself."""
    cell, params, xs, carry = problem(form, (2,))
    second = {}
    for fast in (True, False):
        loss = weighted_loss(cell, fast)

        def grad_norm(p, loss=loss):
            g = jax.grad(loss, argnums=(0, 1, 2))(p, xs, carry)
            return sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(g))

        second[fast] = jax.jit(jax.grad(grad_norm))(params)  # one compilation of grad of grad
    assert max_rel_err(second[True], second[False]) <= TOL_F64_SECOND


@pytest.mark.parametrize("form", FAST_FORMS)
def test_forward_over_reverse_hvp_equals_reverse_over_reverse(form):
    cell, params, xs, carry = problem(form, (2,))
    loss = weighted_loss(cell, None)
    v = perturb_params(jax.tree_util.tree_map(jnp.zeros_like, params), jax.random.key(9), 1.0)
    grad_p = jax.grad(lambda p: loss(p, xs, carry))
    # each product compiled on its own
    _, hvp_forward = jax.jit(lambda p, v: jax.jvp(grad_p, (p,), (v,)))(params, v)
    hvp_reverse = jax.jit(jax.grad(lambda p: sum(jnp.vdot(a, b) for a, b in zip(grad_p(p), v))))(params)
    assert max_rel_err(hvp_forward, hvp_reverse) <= TOL_F64_SECOND


@pytest.mark.parametrize("form", FAST_FORMS)
def test_fast_path_matches_numpy_reference_bptt(form):
    """Outputs, final carry and the VJP for random dys and d_final against the reference's hand BPTT."""
    cell, params, xs, carry = problem(form, (3,))
    kw = reference_kwargs(cell)
    final, ys = rnnjax.unroll(cell, params, xs, carry, fast=True)
    ref_final, ref_ys = reference.forward(
        kw["kind"], as_dict(params), np.asarray(xs), as_dict(carry), **_ref(kw)
    )
    assert max_rel_err(ys, ref_ys) <= TOL_F64
    assert max_rel_err(as_dict(final), ref_final) <= TOL_F64

    k_y, k_c = jax.random.split(jax.random.key(5))
    dys = jax.random.normal(k_y, ys.shape, ys.dtype)
    d_final = perturb_params(jax.tree_util.tree_map(jnp.zeros_like, final), k_c, 1.0)
    _, vjp = jax.vjp(lambda p, x, c: rnnjax.unroll(cell, p, x, c, fast=True), params, xs, carry)
    d_params, d_xs, d_carry = vjp((d_final, dys))
    ref = reference.backward(
        kw["kind"], as_dict(params), np.asarray(xs), np.asarray(dys), as_dict(carry),
        d_final_carry=as_dict(d_final), **_ref(kw),
    )  # fmt: skip
    assert max_rel_err(as_dict(d_params), ref["params"]) <= TOL_F64
    assert max_rel_err(d_xs, ref["xs"]) <= TOL_F64
    assert max_rel_err(as_dict(d_carry), ref["carry0"]) <= TOL_F64


def _ref(kw):
    return dict(activation=kw["activation"], reset_after=kw["reset_after"])


@pytest.mark.parametrize("form", FAST_FORMS)
def test_float32_fast_path_close_to_plain_path(form):
    cell, params, xs, carry = problem(form, (4,), jnp.float32)
    # each path compiled on its own
    got = jax.jit(jax.grad(weighted_loss(cell, True), argnums=(0, 1, 2)))(params, xs, carry)
    want = jax.jit(jax.grad(weighted_loss(cell, False), argnums=(0, 1, 2)))(params, xs, carry)
    assert max_rel_err(got, want) <= TOL_F32


def test_mixed_dtypes_give_gradients_in_each_inputs_dtype():
    """float32 params with float64 inputs compute in float64; each gradient keeps its input's dtype."""
    cell, params, xs, carry = problem("lstm", (2,), jnp.float32)
    xs64 = xs.astype(jnp.float64)
    carry64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), carry)
    grads = {}
    for fast in (True, False):
        grads[fast] = jax.grad(weighted_loss(cell, fast), argnums=(0, 1, 2))(params, xs64, carry64)
    for got, want in zip(jax.tree_util.tree_leaves(grads[True]), jax.tree_util.tree_leaves(grads[False])):
        assert got.dtype == want.dtype
    assert max_rel_err(grads[True], grads[False]) <= TOL_F32


@pytest.mark.parametrize("form", FAST_FORMS)
def test_jacfwd_falls_back_and_equals_jacrev(form):
    """Forward mode cannot enter a custom_vjp: unroll sees the JVP tracer and scans `step` instead."""
    cell, params, xs, carry = problem(form, (2,))

    def final_h(h0):
        return rnnjax.unroll(cell, params, xs, carry._replace(h=h0))[0].h

    forward = jax.jacfwd(final_h)(carry.h)
    assert max_rel_err(forward, jax.jacrev(final_h)(carry.h)) <= TOL_F64
    assert max_rel_err(jax.jit(jax.jacfwd(final_h))(carry.h), forward) <= TOL_F64


def test_vmap_and_jit_of_fast_path_equal_loop():
    cell, params, xs, carry = problem("gru-kernel", (3,))

    def one(x, c):
        return rnnjax.unroll(cell, params, x, c)[1]

    batched = jax.jit(jax.vmap(one))(xs, carry)
    looped = jnp.stack([one(xs[b], jax.tree_util.tree_map(lambda a, b=b: a[b], carry)) for b in range(3)])
    assert max_rel_err(batched, looped) <= TOL_F64


def test_fast_true_raises_when_the_kernel_cannot_be_used():
    cell, params, xs, carry = problem("lstm", (2,))
    with pytest.raises(ValueError, match="fast.*lengths"):
        rnnjax.unroll(cell, params, xs, lengths=jnp.array([T, 2]), fast=True)
    with pytest.raises(ValueError, match="fast.*return_carries"):
        rnnjax.unroll(cell, params, xs, return_carries=True, fast=True)
    gru_before = CELL_FORMS["gru-reset-before"](H)
    with pytest.raises(ValueError, match="fast.*cell.sequence"):
        rnnjax.unroll(gru_before, gru_before.init(jax.random.key(0), I), xs, fast=True)
    with pytest.raises(ValueError, match="fast: expected None, True or False"):
        rnnjax.unroll(cell, params, xs, fast="yes")


def test_fast_path_keeps_the_step_argument_checks():
    cell, params, xs, _ = problem("lstm", (2,))
    with pytest.raises(ValueError, match="input_size"):
        rnnjax.unroll(cell, params, xs[..., :2])


def test_default_path_is_the_kernel():
    """The jaxpr of a default unroll contains the custom_vjp call; fast=False has none."""
    cell, params, xs, carry = problem("lstm", (2,))
    default = str(jax.make_jaxpr(lambda p: rnnjax.unroll(cell, p, xs, carry))(params))
    plain = str(jax.make_jaxpr(lambda p: rnnjax.unroll(cell, p, xs, carry, fast=False))(params))
    assert "custom_vjp_call" in default
    assert "custom_vjp_call" not in plain
