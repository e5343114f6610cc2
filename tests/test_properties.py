"""Property-based tests (hypothesis) over batch, time, input and hidden sizes, T=1 and H=1 included:
JAX against the NumPy reference (forward and gradients), and scan against reverse-of-flip."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import CELL_FORMS, as_dict, max_rel_err, reference_kwargs
from hypothesis import given
from hypothesis import strategies as st

import rnnjax
from rnnjax import reference

# float64 JAX vs float64 NumPy reference.
TOL_F64 = 1e-10


@st.composite
def problems(draw):
    form = draw(st.sampled_from(sorted(CELL_FORMS)))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    I, H, V = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 4))
    use_lengths = draw(st.booleans())
    lengths = np.array([draw(st.integers(1, T)) for _ in range(B)]) if use_lengths else None
    mode = draw(st.sampled_from(["many_to_many", "many_to_one"]))
    seed = draw(st.integers(0, 2**16))
    return form, B, T, I, H, V, lengths, mode, seed


def _drawn(rng, scale, make):
    """float64 arrays of N(0, scale²) in the shapes of what `make(key)` returns (`jax.eval_shape`: nothing
    is computed or compiled)."""
    shapes = jax.eval_shape(make, jax.random.key(0))
    return jax.tree.map(lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), jnp.float64), shapes)


@given(problems())
def test_jax_matches_reference_for_any_sizes(problem):
    form, B, T, I, H, V, lengths, mode, seed = problem
    cell = CELL_FORMS[form](H)
    # Every number drawn with NumPy into the shapes `jax.eval_shape` gives: each example has new sizes, and
    # JAX's initialisers and samplers would compile anew for each of them (most of the test's time).
    rng = np.random.default_rng(seed)
    params = _drawn(rng, 0.5, lambda key: cell.init(key, I))
    head = _drawn(rng, 0.5, lambda key: rnnjax.readout.dense_init(key, H, V))
    xs = jnp.asarray(rng.standard_normal((B, T, I)))
    carry = _drawn(rng, 0.5, lambda key: cell.initial_carry((B,), jnp.float64))
    labels = rng.integers(0, V, (B, T) if mode == "many_to_many" else (B,))
    jl = None if lengths is None else jnp.asarray(lengths)

    def loss(p, r, x, c):
        _, ys = rnnjax.unroll(cell, p, x, c, lengths=jl)
        return rnnjax.readout.sequence_loss(r, ys, jnp.asarray(labels), lengths=jl, mode=mode)

    # one compilation per example (op by op, each new size would compile every operation anew)
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(params, head, xs, carry)
    ref_value, ref = reference.loss_and_grads(
        params=as_dict(params),
        readout=as_dict(head),
        xs=np.asarray(xs),
        labels=labels,
        carry0=as_dict(carry),
        lengths=lengths,
        mode=mode,
        **reference_kwargs(cell),
    )
    assert abs(float(value) - ref_value) <= TOL_F64 * abs(ref_value)
    assert max_rel_err(as_dict(grads[0]), ref["params"]) <= TOL_F64
    assert max_rel_err(as_dict(grads[1]), ref["readout"]) <= TOL_F64
    assert max_rel_err(grads[2], ref["xs"]) <= TOL_F64
    assert max_rel_err(as_dict(grads[3]), ref["carry0"]) <= TOL_F64
