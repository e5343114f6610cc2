"""The long-memory cells (orthogonal, LRU, minGRU, minLSTM) through `rnnjax.unroll` + readout against the
independent NumPy reference with hand-written BPTT: forward values and every gradient, with the
whole-sequence kernel and with the step scan, with and without lengths, in float64 and float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import as_dict, max_rel_err, perturb_params

import rnnjax
from rnnjax import cells, reference

# float64 JAX vs float64 NumPy: both exact up to rounding, so anything above this is a real bug.
TOL_F64 = 1e-10
# float32 JAX vs float64 NumPy on the same (float32-representable) numbers.
TOL_F32 = 1e-5

B, T, I, H, V = 3, 6, 4, 5, 7
LENGTHS = np.array([T, 1, 4])

# name -> (constructor options, the reference's description of the same equations)
FORMS = {
    "orthogonal-modrelu": ("orthogonal", {}, dict(activation="modrelu")),
    "orthogonal-tanh": ("orthogonal", {"activation": "tanh"}, dict(activation="tanh")),
    "lru": ("lru", {"scan": "associative"}, dict(normalize=True)),
    "lru-unnormalized": ("lru", {"normalize": False, "scan": "sequential"}, dict(normalize=False)),
    "mingru": ("mingru", {"scan": "associative"}, {}),
    "minlstm": ("minlstm", {"scan": "sequential"}, {}),
}


def make_problem(form, dtype, mode, seed=0):
    kind, options, described = FORMS[form]
    cell = cells.make(kind, H, dtype=dtype, **options)
    keys = jax.random.split(jax.random.key(seed), 6)
    params = perturb_params(cell.init(keys[0], I), keys[1])
    if kind == "lru":  # keep |λ| < 1 well inside the unit disc after the perturbation
        params = params._replace(nu=params.nu - 1.0)
    readout = perturb_params(rnnjax.readout.dense_init(keys[2], H, V, dtype=dtype), keys[3], 0.1)
    xs = jax.random.normal(keys[4], (B, T, I), dtype)
    carry0 = perturb_params(cell.initial_carry((B,), dtype), keys[5], 0.5)
    labels = np.random.default_rng(seed).integers(0, V, size=(B, T) if mode == "many_to_many" else (B,))
    return cell, params, readout, xs, carry0, jnp.asarray(labels), dict(kind=kind, **described)


def jax_loss_and_grads(cell, params, readout, xs, carry0, labels, lengths, mode, fast):
    """((loss, (final carry, ys)), grads w.r.t. (params, readout, xs, carry0)) of `rnnjax.unroll` + readout,
    under one `jit` (op by op, the kernels' scans cost several times their one compilation)."""

    def loss(params, readout, xs, carry0):
        final, ys = rnnjax.unroll(cell, params, xs, carry0, lengths=lengths, fast=fast)
        return rnnjax.readout.sequence_loss(readout, ys, labels, lengths=lengths, mode=mode), (final, ys)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True))(params, readout, xs, carry0)


# (path, mode, dtype): the kernel, the step scan and lengths (the step scan with masking), each mode twice,
# float32 once per form (the kernel against the step scan in every direction: test_long_memory_cells.py).
CASES = {
    "kernel-m2m-f64": (True, False, "many_to_many", jnp.float64, TOL_F64),
    "steps-m2o-f64": (False, False, "many_to_one", jnp.float64, TOL_F64),
    "lengths-m2m-f64": (False, True, "many_to_many", jnp.float64, TOL_F64),
    "kernel-m2m-f32": (True, False, "many_to_many", jnp.float32, TOL_F32),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("form", list(FORMS))
def test_forward_and_grads_match_numpy_reference(form, case):
    fast, use_lengths, mode, dtype, tol = CASES[case]
    cell, params, readout, xs, carry0, labels, described = make_problem(form, dtype, mode)
    lengths = LENGTHS if use_lengths else None
    jl = None if lengths is None else jnp.asarray(lengths)

    (loss, (final, ys)), grads = jax_loss_and_grads(cell, params, readout, xs, carry0, labels, jl, mode, fast)
    ref_final, ref_ys = reference.forward(
        params=as_dict(params), xs=np.asarray(xs, np.float64), carry0=as_dict(carry0), lengths=lengths,
        **described,
    )  # fmt: skip
    assert ys.dtype == dtype
    assert max_rel_err(ys, ref_ys) <= tol
    assert max_rel_err(as_dict(final), ref_final) <= tol

    ref_loss, ref_grads = reference.loss_and_grads(
        params=as_dict(params), readout=as_dict(readout), xs=np.asarray(xs, np.float64),
        labels=np.asarray(labels), carry0=as_dict(carry0), lengths=lengths, mode=mode, **described,
    )  # fmt: skip
    assert abs(float(loss) - ref_loss) <= tol * abs(ref_loss)
    g_params, g_readout, g_xs, g_carry = grads
    assert max_rel_err(as_dict(g_params), ref_grads["params"]) <= tol
    assert max_rel_err(as_dict(g_readout), ref_grads["readout"]) <= tol
    assert max_rel_err(g_xs, ref_grads["xs"]) <= tol
    assert max_rel_err(as_dict(g_carry), ref_grads["carry0"]) <= tol
