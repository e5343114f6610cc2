"""`rnnjax.unroll` and the stacked/bidirectional helpers, each checked against a second computation:
a Python loop over `step`, flipped inputs, vmap, jit, time-major layout, remat, and the NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_FORMS, as_dict, max_rel_err, perturb_params, reference_kwargs

import rnnjax
from rnnjax import readout, reference

# Same float64 computation arranged differently (scan vs loop, jit vs eager, ...): rounding only.
TOL_SAME = 1e-12
# float64 JAX vs float64 NumPy reference.
TOL_REF = 1e-10

B, T, I, H = 3, 7, 4, 5
LENGTHS = jnp.array([7, 2, 5])
FORMS = list(CELL_FORMS)


def setup(form, batch_shape=(B,), seed=0):
    cell = CELL_FORMS[form](H)
    k = jax.random.split(jax.random.key(seed), 4)
    params = perturb_params(cell.init(k[0], I), k[1])
    xs = jax.random.normal(k[2], (*batch_shape, T, I), jnp.float64)
    carry = perturb_params(cell.initial_carry(batch_shape, jnp.float64), k[3], 0.5)
    return cell, params, xs, carry


def python_loop(cell, params, xs, carry):
    """Unbatched-time reference: a plain loop over `step` for xs <[B, T, I]>."""
    ys = []
    for t in range(xs.shape[1]):
        carry, y = cell.step(params, carry, xs[:, t])
        ys.append(y)
    return carry, jnp.stack(ys, axis=1)


def take(tree, b):
    return jax.tree.map(lambda a: a[b], tree)


@pytest.mark.parametrize("form", FORMS)
def test_scan_equals_python_loop(form):
    cell, params, xs, carry = setup(form)
    assert (
        max_rel_err(rnnjax.unroll(cell, params, xs, carry), python_loop(cell, params, xs, carry)) <= TOL_SAME
    )


@pytest.mark.parametrize("form", FORMS)
def test_lengths_equal_running_each_example_on_its_own_prefix(form):
    cell, params, xs, carry = setup(form)
    final, ys = rnnjax.unroll(cell, params, xs, carry, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        f_b, ys_b = python_loop(cell, params, xs[b : b + 1, :n], take(carry, slice(b, b + 1)))
        assert max_rel_err(take(final, b), take(f_b, 0)) <= TOL_SAME
        assert max_rel_err(ys[b, :n], ys_b[0]) <= TOL_SAME
        assert np.all(np.asarray(ys[b, n:]) == 0)


@pytest.mark.parametrize("form", FORMS)
def test_reverse_equals_flipped_forward(form):
    cell, params, xs, carry = setup(form)
    final_r, ys_r = rnnjax.unroll(cell, params, xs, carry, reverse=True)
    final_f, ys_f = rnnjax.unroll(cell, params, jnp.flip(xs, axis=1), carry)
    assert max_rel_err(final_r, final_f) <= TOL_SAME
    assert max_rel_err(ys_r, jnp.flip(ys_f, axis=1)) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_reverse_with_lengths_reverses_each_example_within_its_length(form):
    cell, params, xs, carry = setup(form)
    final, ys = rnnjax.unroll(cell, params, xs, carry, lengths=LENGTHS, reverse=True)
    for b, n in enumerate(LENGTHS.tolist()):
        f_b, ys_b = python_loop(cell, params, jnp.flip(xs[b : b + 1, :n], 1), take(carry, slice(b, b + 1)))
        assert max_rel_err(take(final, b), take(f_b, 0)) <= TOL_SAME
        assert max_rel_err(ys[b, :n], jnp.flip(ys_b[0], 0)) <= TOL_SAME
        assert np.all(np.asarray(ys[b, n:]) == 0)


@pytest.mark.parametrize("form", FORMS)
def test_vmap_over_examples_equals_batched_call(form):
    cell, params, xs, carry = setup(form)
    batched = rnnjax.unroll(cell, params, xs, carry, lengths=LENGTHS)
    one = lambda x, c, n: rnnjax.unroll(cell, params, x, c, lengths=n)  # noqa: E731
    assert max_rel_err(jax.vmap(one)(xs, carry, LENGTHS), batched) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_jit_equals_eager(form):
    cell, params, xs, carry = setup(form)
    run = lambda p, x, c, n: rnnjax.unroll(cell, p, x, c, lengths=n, reverse=True)  # noqa: E731
    assert max_rel_err(jax.jit(run)(params, xs, carry, LENGTHS), run(params, xs, carry, LENGTHS)) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_time_major_equals_batch_major_and_extra_batch_axes(form):
    cell, params, xs, carry = setup(form, batch_shape=(2, 3))
    lengths = jnp.array([[7, 1, 3], [2, 7, 6]])
    final, ys = rnnjax.unroll(cell, params, xs, carry, lengths=lengths)
    final_tm, ys_tm = rnnjax.unroll(
        cell, params, jnp.moveaxis(xs, 2, 0), carry, lengths=lengths, time_major=True
    )
    assert max_rel_err(final_tm, final) <= TOL_SAME
    assert max_rel_err(jnp.moveaxis(ys_tm, 0, 2), ys) <= TOL_SAME
    # two batch axes equal a flattened single batch axis
    flat = rnnjax.unroll(
        cell,
        params,
        xs.reshape(6, T, I),
        jax.tree.map(lambda a: a.reshape(6, H), carry),
        lengths=lengths.reshape(6),
    )
    assert max_rel_err(flat, jax.tree.map(lambda a: a.reshape(6, *a.shape[2:]), (final, ys))) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_unbatched_sequence(form):
    cell, params, xs, carry = setup(form)
    final, ys = rnnjax.unroll(cell, params, xs[1], take(carry, 1))
    assert ys.shape == (T, H)
    assert max_rel_err((final, ys), take(rnnjax.unroll(cell, params, xs, carry), 1)) <= TOL_SAME


@pytest.mark.parametrize("form", FORMS)
def test_padding_garbage_changes_nothing(form):
    cell, params, xs, carry = setup(form)
    valid = (jnp.arange(T) < LENGTHS[:, None])[..., None]
    garbage = jnp.where(valid, xs, 1e6 * jax.random.normal(jax.random.key(3), xs.shape))
    nan_pad = jnp.where(valid, xs, jnp.nan)
    labels = jnp.asarray(np.random.default_rng(0).integers(0, 3, (B, T)))
    head = readout.dense_init(jax.random.key(4), H, 3, dtype=jnp.float64)

    def loss(p, x, lengths):
        _, ys = rnnjax.unroll(cell, p, x, carry, lengths=lengths)
        return readout.sequence_loss(head, ys, labels, lengths=lengths)

    # One compiled program each, run on the clean and the padded inputs alike; the lengths are an argument,
    # so that the compiler sees no constant mask to fold.
    run = jax.jit(lambda p, x, lengths: rnnjax.unroll(cell, p, x, carry, lengths=lengths))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    clean_out = run(params, xs, LENGTHS)
    clean_grad = grad(params, xs, LENGTHS)
    for padded in (garbage, nan_pad):
        assert max_rel_err(run(params, padded, LENGTHS), clean_out) == 0.0
        g_params, g_xs = grad(params, padded, LENGTHS)
        assert max_rel_err(g_params, clean_grad[0]) == 0.0
        assert max_rel_err(g_xs, clean_grad[1]) == 0.0
        assert np.all(np.asarray(jnp.where(valid, 0.0, g_xs)) == 0.0)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_return_carries_is_consistent_with_final_carry_and_outputs(form, reverse):
    cell, params, xs, carry = setup(form)
    final, ys = rnnjax.unroll(cell, params, xs, carry, lengths=LENGTHS, reverse=reverse)
    carries, ys2 = rnnjax.unroll(
        cell, params, xs, carry, lengths=LENGTHS, reverse=reverse, return_carries=True
    )
    assert max_rel_err(ys2, ys) == 0.0
    last = 0 if reverse else T - 1
    assert max_rel_err(jax.tree.map(lambda a: a[:, last], carries), final) == 0.0
    valid = np.asarray(jnp.arange(T) < LENGTHS[:, None])[..., None]
    np.testing.assert_array_equal(np.where(valid, carries.h, 0.0), ys)  # h at valid steps is the output
    # carries along the way equal a loop's carries (forward, no padding)
    if not reverse:
        c = carry
        for t in range(3):
            c, _ = cell.step(params, c, xs[:, t])
            assert max_rel_err(take(jax.tree.map(lambda a, t=t: a[:, t], carries), 0), take(c, 0)) <= TOL_SAME


@pytest.mark.parametrize("form", ["lstm", "gru-reset-before", "simple-tanh"])
def test_remat_and_unroll_factor_leave_values_and_gradients_unchanged(form):
    cell, params, xs, carry = setup(form)

    def loss(p, **kw):
        final, ys = rnnjax.unroll(cell, p, xs, carry, lengths=LENGTHS, **kw)
        return jnp.sum(ys**2) + jnp.sum(final.h)

    base = jax.jit(jax.value_and_grad(loss))(params)  # each variant compiled on its own
    assert max_rel_err(jax.jit(jax.value_and_grad(lambda p: loss(p, remat=True)))(params), base) <= TOL_SAME
    assert max_rel_err(jax.jit(jax.value_and_grad(lambda p: loss(p, unroll=3)))(params), base) <= TOL_SAME
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: loss(p, remat=True)))(params))
    assert "remat" in jaxpr or "checkpoint" in jaxpr


def test_carry_none_means_zeros_and_dtype_promotes_to_params():
    cell, params, xs, _ = setup("lstm")
    zeros = cell.initial_carry((B,), jnp.float64)
    assert max_rel_err(rnnjax.unroll(cell, params, xs), rnnjax.unroll(cell, params, xs, zeros)) == 0.0
    # float32 inputs with float64 params compute in float64
    _, ys = rnnjax.unroll(cell, params, xs.astype(jnp.float32))
    assert ys.dtype == jnp.float64


# ---------------------------------------------------------------------------------------------
# Stacked and bidirectional helpers, against the NumPy reference run layer by layer.


def ref_forward(cell, params, xs, lengths=None):
    return reference.forward(
        params=as_dict(params), xs=np.asarray(xs, np.float64), lengths=lengths, **reference_kwargs(cell)
    )


def ref_reverse(cell, params, xs, lengths):
    """Reverse each example within its length, run the reference forward, and flip outputs back."""
    xs = np.asarray(xs, np.float64)
    flipped = xs.copy()
    for b, n in enumerate(lengths):
        flipped[b, :n] = xs[b, :n][::-1]
    final, ys = ref_forward(cell, params, flipped, lengths)
    out = ys.copy()
    for b, n in enumerate(lengths):
        out[b, :n] = ys[b, :n][::-1]
    return final, out


def test_stack_matches_reference_layer_by_layer():
    forms = ["lstm", "gru-reset-after", "simple-relu"]
    cells_ = [CELL_FORMS[f](H) for f in forms]
    keys = jax.random.split(jax.random.key(0), len(forms) + 1)
    params = [perturb_params(c.init(k, I if i == 0 else H), k) for i, (c, k) in enumerate(zip(cells_, keys))]
    xs = jax.random.normal(keys[-1], (B, T, I), jnp.float64)
    finals, ys = rnnjax.unroll_stack(cells_, params, xs, lengths=LENGTHS)
    h = np.asarray(xs)
    for cell, p, final in zip(cells_, params, finals):
        ref_final, h = ref_forward(cell, p, h, np.asarray(LENGTHS))
        assert max_rel_err(as_dict(final), ref_final) <= TOL_REF
    assert max_rel_err(ys, h) <= TOL_REF


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_matches_reference(merge):
    fwd, bwd = CELL_FORMS["gru-reset-before"](H), CELL_FORMS["lstm"](H)
    k = jax.random.split(jax.random.key(1), 3)
    params = rnnjax.BidirectionalParams(
        perturb_params(fwd.init(k[0], I), k[0]), perturb_params(bwd.init(k[1], I), k[1])
    )
    xs = jax.random.normal(k[2], (B, T, I), jnp.float64)
    carry, ys = rnnjax.unroll_bidirectional(fwd, bwd, params, xs, merge=merge, lengths=LENGTHS)
    lengths = np.asarray(LENGTHS)
    ref_f_final, ref_f = ref_forward(fwd, params.forward, xs, lengths)
    ref_b_final, ref_b = ref_reverse(bwd, params.backward, xs, lengths)
    want = np.concatenate([ref_f, ref_b], -1) if merge == "concat" else ref_f + ref_b
    assert max_rel_err(ys, want) <= TOL_REF
    assert max_rel_err(as_dict(carry.forward), ref_f_final) <= TOL_REF
    assert max_rel_err(as_dict(carry.backward), ref_b_final) <= TOL_REF


def test_last_valid_equals_indexing_loop():
    ys = jax.random.normal(jax.random.key(0), (B, T, H))
    got = readout.last_valid(ys, LENGTHS)
    want = jnp.stack([ys[b, n - 1] for b, n in enumerate(LENGTHS.tolist())])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(readout.last_valid(ys), ys[:, -1])
    np.testing.assert_array_equal(readout.last_valid(jnp.moveaxis(ys, 1, 0), LENGTHS, time_major=True), want)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(xs=np.ones((I,))), ValueError, r"xs: expected shape \[\*batch, T, features\]"),
        (
            dict(xs=np.ones((B, T, I), np.int32)),
            TypeError,
            r"xs: expected a floating-point array, got dtype int32",
        ),
        (dict(xs=np.ones((B, T, I + 1))), ValueError, rf"x: .*\[\*batch, {I}\]"),
        (dict(xs=np.ones((B, 0, I))), ValueError, r"xs: expected at least one time step"),
        (
            dict(lengths=np.array([7, 0, 3])),
            ValueError,
            r"lengths: expected every length in \[1, T=7\], got \[0\]",
        ),
        (dict(lengths=np.array([8, 2, 3])), ValueError, r"lengths: .*got \[8\]"),
        (dict(lengths=np.array([-1, 2, 3])), ValueError, r"lengths: .*got \[-1\]"),
        (
            dict(lengths=np.array([7.0, 2.0, 3.0])),
            TypeError,
            r"lengths: expected an integer array, got dtype float",
        ),
        (dict(lengths=np.array([7, 2])), ValueError, r"lengths: expected shape \(3,\).*got \(2,\)"),
        (
            dict(carry=rnnjax.LSTMCarry(np.zeros((2, H)), np.zeros((2, H)))),
            ValueError,
            r"carry\.h: expected shape \(3, 5\)",
        ),
        (dict(carry=rnnjax.RNNCarry(np.zeros((B, H)))), TypeError, r"carry: lstm cell expected a LSTMCarry"),
        (dict(cell="lstm"), TypeError, r"cell: expected an rnnjax.cells.Cell, got str"),
    ],
    ids=[
        "rank",
        "int-xs",
        "features",
        "T=0",
        "len-0",
        "len>T",
        "len<0",
        "len-float",
        "len-shape",
        "carry-shape",
        "carry-type",
        "cell-type",
    ],
)
def test_bad_unroll_input_raises_naming_the_argument(kwargs, error, match):
    cell, params, xs, _ = setup("lstm")
    args = dict(cell=cell, params=params, xs=xs, carry=None, lengths=None) | kwargs
    with pytest.raises(error, match=match):
        rnnjax.unroll(args["cell"], args["params"], args["xs"], args["carry"], lengths=args["lengths"])


def test_invalid_traced_lengths_poison_outputs_with_nan():
    cell, params, xs, _ = setup("gru-reset-after")
    run = jax.jit(lambda n: rnnjax.unroll(cell, params, xs, lengths=n))
    final, ys = run(jnp.array([7, 9, 3]))
    assert np.all(np.isnan(ys)) and np.all(np.isnan(final.h))
    final, ys = run(LENGTHS)
    assert np.all(np.isfinite(ys))


def test_bad_helper_and_loss_arguments():
    cell, params, xs, _ = setup("simple-tanh")
    small = CELL_FORMS["simple-tanh"](H + 1)
    bp = rnnjax.BidirectionalParams(params, small.init(jax.random.key(0), I))
    with pytest.raises(ValueError, match=r"merge: expected 'concat' or 'sum', got 'mean'"):
        rnnjax.unroll_bidirectional(cell, small, bp, xs, merge="mean")
    with pytest.raises(
        ValueError, match=r"merge: 'sum' needs equal hidden sizes, got forward 5 and backward 6"
    ):
        rnnjax.unroll_bidirectional(cell, small, bp, xs, merge="sum")
    with pytest.raises(ValueError, match=r"params: expected one params value per cell \(2 cells\), got 1"):
        rnnjax.unroll_stack([cell, cell], [params], xs)
    head = readout.dense_init(jax.random.key(0), H, 3, dtype=jnp.float64)
    ys = jnp.zeros((B, T, H))
    with pytest.raises(ValueError, match=r"mode: expected one of .*'one_to_many'"):
        readout.sequence_loss(head, ys, jnp.zeros((B,), int), mode="one_to_many")
    with pytest.raises(ValueError, match=r"labels: many_to_one expected shape \(3,\), got \(3, 7\)"):
        readout.sequence_loss(head, ys, jnp.zeros((B, T), int), mode="many_to_one")
    with pytest.raises(
        ValueError, match=r"labels: expected class indices in \[0, 3\), got values in \[3, 3\]"
    ):
        readout.sequence_loss(head, ys, jnp.full((B, T), 3))
    with pytest.raises(TypeError, match=r"labels: expected integer class indices"):
        readout.sequence_loss(head, ys, jnp.zeros((B, T)))
