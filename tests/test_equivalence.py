"""JAX cells + unroll + readout against the independent NumPy reference with hand-written BPTT:
forward values and every gradient, for every cell form x {many-to-many, many-to-one} x {with and
without lengths} x {float64, float32}."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_FORMS, as_dict, max_rel_err, perturb_params, reference_kwargs

import rnnjax
from rnnjax import reference

# float64 JAX vs float64 NumPy: both exact up to rounding, so anything above this is a real bug.
TOL_F64 = 1e-10
# float32 JAX vs float64 NumPy on the same (float32-representable) numbers.
TOL_F32 = 1e-5

B, T, I, H, V = 3, 6, 4, 5, 7
LENGTHS = np.array([T, 1, 4])


def make_problem(form, dtype, mode, seed=0):
    cell = CELL_FORMS[form](H, dtype)
    keys = jax.random.split(jax.random.key(seed), 6)
    params = perturb_params(cell.init(keys[0], I), keys[1])
    readout = rnnjax.readout.dense_init(keys[2], H, V, dtype=dtype)
    readout = perturb_params(readout, keys[3], 0.1)
    xs = jax.random.normal(keys[4], (B, T, I), dtype)
    carry0 = perturb_params(cell.initial_carry((B,), dtype), keys[5], 0.5)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, V, size=(B, T) if mode == "many_to_many" else (B,))
    return cell, params, readout, xs, carry0, jnp.asarray(labels)


def jax_loss(cell, params, readout, xs, carry0, labels, lengths, mode):
    _, ys = rnnjax.unroll(cell, params, xs, carry0, lengths=lengths)
    return rnnjax.readout.sequence_loss(readout, ys, labels, lengths=lengths, mode=mode)


def reference_grads(cell, params, readout, xs, carry0, labels, lengths, mode):
    return reference.loss_and_grads(
        params=as_dict(params),
        readout=as_dict(readout),
        xs=np.asarray(xs, np.float64),
        labels=np.asarray(labels),
        carry0=as_dict(carry0),
        lengths=lengths,
        mode=mode,
        **reference_kwargs(cell),
    )


@pytest.mark.parametrize("dtype, tol", [(jnp.float64, TOL_F64), (jnp.float32, TOL_F32)], ids=["f64", "f32"])
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("mode", ["many_to_many", "many_to_one"])
@pytest.mark.parametrize("form", list(CELL_FORMS))
def test_forward_and_grads_match_numpy_reference(form, mode, use_lengths, dtype, tol):
    cell, params, readout, xs, carry0, labels = make_problem(form, dtype, mode)
    lengths = LENGTHS if use_lengths else None
    jl = None if lengths is None else jnp.asarray(lengths)

    # Forward: outputs and final carry.
    final, ys = rnnjax.unroll(cell, params, xs, carry0, lengths=jl)
    ref_final, ref_ys = reference.forward(
        params=as_dict(params),
        xs=np.asarray(xs, np.float64),
        carry0=as_dict(carry0),
        lengths=lengths,
        **reference_kwargs(cell),
    )
    assert ys.dtype == dtype
    assert max_rel_err(ys, ref_ys) <= tol
    assert max_rel_err(as_dict(final), ref_final) <= tol

    # Loss and gradients w.r.t. every cell param, the readout, the inputs and the initial carry.
    loss, grads = jax.value_and_grad(jax_loss, argnums=(1, 2, 3, 4))(
        cell, params, readout, xs, carry0, labels, jl, mode
    )
    ref_loss, ref_grads = reference_grads(cell, params, readout, xs, carry0, labels, lengths, mode)
    assert abs(float(loss) - ref_loss) <= tol * abs(ref_loss)
    g_params, g_readout, g_xs, g_carry = grads
    assert max_rel_err(as_dict(g_params), ref_grads["params"]) <= tol
    assert max_rel_err(as_dict(g_readout), ref_grads["readout"]) <= tol
    assert max_rel_err(g_xs, ref_grads["xs"]) <= tol
    assert max_rel_err(as_dict(g_carry), ref_grads["carry0"]) <= tol
