"""rnnjax.interop.flax_nnx checked against Flax NNX's own SimpleCell (tanh, relu, identity), LSTMCell,
OptimizedLSTMCell and GRUCell, run by `nnx.RNN`, in float32 and float64: on random weights (every bias
non-zero), random inputs and non-zero carries, the outputs, final carries and parameter gradients of the NNX
modules equal rnnjax's on the converted params; round trips are bit-exact; what cannot be converted exactly
is refused. Flax is always installed.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from interop.comparisons import (
    FLOAT32_TOL,
    MAX_ABS_DIFF,
    B,
    H,
    I,
    T,
    assert_trees_equal,
    close,
    print_max_abs_diff,
    random_params,
)

from rnnjax import cells, interop, unroll
from rnnjax.interop import flax_nnx as nnx_interop

FLOAT64_TOL = 1e-10  # float64 outputs and gradients of two implementations of the same function
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
NNX_CASES = [
    "SimpleCell-tanh",
    "SimpleCell-relu",
    "SimpleCell-linear",
    "LSTMCell",
    "OptimizedLSTMCell",
    "GRUCell",
]
ACTIVATIONS = {"tanh": nnx.tanh, "relu": nnx.relu, "linear": lambda a: a}


def nnx_cell(name: str, param_dtype, rng, **options):
    """An NNX cell of class `name` (built without running its initialisers) with every Param drawn from
    U(±0.6) in `param_dtype` (also its computation dtype unless `options` say otherwise)."""
    options = {"param_dtype": param_dtype, "dtype": param_dtype, **options}
    module = nnx.eval_shape(lambda: getattr(nnx, name)(I, H, rngs=nnx.Rngs(0), **options))
    state = nnx.state(module, nnx.Param)
    draw = lambda a: jnp.asarray(rng.uniform(-0.6, 0.6, a.shape), param_dtype)  # noqa: E731
    nnx.update(module, jax.tree.map(draw, state))
    return module


def nnx_module(case: str, dtype, rng):
    """The NNX cell of `case` ("SimpleCell-relu", "GRUCell", ...) with random Params."""
    name, _, activation = case.partition("-")
    return nnx_cell(name, dtype, rng, **({"activation_fn": ACTIVATIONS[activation]} if activation else {}))


def check(label: str, dtype, got, want) -> None:
    if dtype == jnp.float32:
        close(label, got, want)  # FLOAT32_TOL, recording the largest |Δ|
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.float64, (got.dtype, want.dtype)
    diff = float(np.max(np.abs(got - want)))
    MAX_ABS_DIFF[f"{label} (float64)"] = max(MAX_ABS_DIFF.get(f"{label} (float64)", 0.0), diff)
    assert diff <= FLOAT64_TOL, f"{label}: max |Δ| = {diff:.2e} > {FLOAT64_TOL}"


def compare_nnx(case: str, dtype_name: str) -> None:
    """NNX cell → rnnjax, checked against `nnx.RNN(cell)`: outputs, final carry, gradients; round trips."""
    dtype = DTYPES[dtype_name]
    rng = np.random.default_rng(11)
    module = nnx_module(case, dtype, rng)
    name, _, activation = case.partition("-")
    named = {"activation": "linear"} if activation == "linear" else {}  # an identity lambda is named
    rnn = nnx.RNN(module)
    xs = jnp.asarray(rng.uniform(-1, 1, (B, T, I)), dtype)
    zeros = module.initialize_carry((B, I), rngs=nnx.Rngs(0))
    nnx_carry = jax.tree.map(lambda c: jnp.asarray(rng.uniform(-0.8, 0.8, c.shape), dtype), zeros)
    weights = jnp.asarray(rng.uniform(-1, 1, (B, T, H)), dtype)  # loss = Σ weights ⊙ ys + Σ final carry

    cell, params = interop.from_nnx(rnn, **named)
    assert cell.kind == {"SimpleCell": "simple", "GRUCell": "gru"}.get(name, "lstm")
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))
    carry = interop.carry_from_flax(nnx_carry)

    @nnx.grad(has_aux=True)
    def nnx_grads(rnn):
        final, ys = rnn(xs, initial_carry=nnx_carry, return_carry=True)
        return jnp.sum(weights * ys) + sum(jnp.sum(c) for c in jax.tree.leaves(final)), (final, ys)

    @functools.partial(jax.grad, has_aux=True)
    def rnnjax_grads(params):
        final, ys = unroll(cell, params, xs, carry)
        return jnp.sum(weights * ys) + sum(jnp.sum(c) for c in final), (final, ys)

    both = nnx.jit(lambda rnn, params: (nnx_grads(rnn), rnnjax_grads(params)))  # one compilation
    (want_grads, (want_final, want_ys)), (grads, (final, ys)) = both(rnn, params)
    label = f"nnx {name}" + (f" {activation}" if activation else "")
    check(label, dtype, ys, want_ys)
    for got, want in zip(
        jax.tree.leaves(interop.carry_to_flax(final)), jax.tree.leaves(want_final), strict=True
    ):
        check(label, dtype, got, want)
    want_grads = interop.from_nnx(rnn, want_grads, **named)[1]
    for field in ("w_ih", "w_hh", "b"):  # a GRU's b_hn has no NNX counterpart (zeros from from_nnx)
        check(f"{label} grad", dtype, getattr(grads, field), getattr(want_grads, field))

    # Round trips: NNX → rnnjax → NNX and rnnjax → NNX → rnnjax are bit-exact.
    back = interop.to_nnx(cell, params, cell_type=name)
    assert type(back) is type(module)
    assert_trees_equal(
        nnx.to_pure_dict(nnx.state(back, nnx.Param)), nnx.to_pure_dict(nnx.state(module, nnx.Param))
    )
    fresh = type(params)(
        *(None if p is None else jnp.asarray(rng.uniform(-0.6, 0.6, p.shape), dtype) for p in params)
    )
    if cell.kind == "gru":
        fresh = fresh._replace(b_hn=jnp.asarray(np.zeros(H), dtype))
    again = interop.to_nnx(cell, fresh, cell_type=name, rnn=True)
    assert type(again) is nnx.RNN
    assert_trees_equal(interop.from_nnx(again, **named)[1], fresh)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("case", NNX_CASES)
def test_nnx_matches_cell_and_round_trips(case, dtype_name):
    compare_nnx(case, dtype_name)


def zero_b_hn(params):
    """`params` with a GRU's b_hn set to zeros (NNX's GRUCell has none); others as they are."""
    return (
        params._replace(b_hn=jnp.zeros_like(params.b_hn))
        if getattr(params, "b_hn", None) is not None
        else params
    )


def test_nnx_lstm_cells_share_conversions():
    """LSTMCell and OptimizedLSTMCell compute one function of the same rnnjax params, and from_nnx reads the
    same params from both."""
    rng = np.random.default_rng(12)
    cell, params = cells.lstm(H), random_params("lstm", I, rng)
    per_gate = interop.to_nnx(cell, params, cell_type="LSTMCell", rnn=True)
    fused = interop.to_nnx(cell, params, cell_type=nnx.OptimizedLSTMCell, rnn=True)
    xs = jnp.asarray(rng.uniform(-1, 1, (B, T, I)), jnp.float32)
    run = nnx.jit(lambda rnn, xs: rnn(xs))
    close("nnx LSTMCell", run(per_gate, xs), run(fused, xs))
    assert_trees_equal(interop.from_nnx(per_gate)[1], params)
    assert_trees_equal(interop.from_nnx(fused)[1], params)


def test_nnx_rnn_options_map_to_unroll():
    """nnx.RNN's time_major and reverse with keep_order are unroll's; reverse without keep_order flips ys."""
    rng = np.random.default_rng(13)
    module = nnx_module("GRUCell", jnp.float32, rng)
    cell, params = interop.from_nnx(module)
    xs = jnp.asarray(rng.uniform(-1, 1, (B, T, I)), jnp.float32)

    @nnx.jit
    def both(module, params, xs):
        nnx_ys = (
            nnx.RNN(module, reverse=True, keep_order=True)(xs),
            nnx.RNN(module, reverse=True)(xs)[:, ::-1],
            jnp.swapaxes(nnx.RNN(module, time_major=True)(jnp.swapaxes(xs, 0, 1)), 0, 1),
        )
        ys = unroll(cell, params, xs, reverse=True)[1]
        return nnx_ys, (
            ys,
            ys,
            jnp.swapaxes(unroll(cell, params, jnp.swapaxes(xs, 0, 1), time_major=True)[1], 0, 1),
        )

    for got, want in zip(*both(module, params, xs)):
        close("nnx GRUCell", got, want)


def test_nnx_precision_travels_both_ways():
    cell = cells.lstm(H, precision="highest")
    module = interop.to_nnx(
        cell, random_params("lstm", I, np.random.default_rng(15)), cell_type="OptimizedLSTMCell"
    )
    assert module.dense_i.precision == module.dense_h.precision == "highest"
    assert interop.from_nnx(module)[0].precision == "highest"
    module.dense_h.precision = jax.lax.Precision.HIGH
    with pytest.raises(ValueError, match="different matmul precisions"):
        interop.from_nnx(module)


def test_supported_table_lists_registry_kinds_and_refuses_others():
    assert tuple(nnx_interop.SUPPORTED) == ("simple", "lstm", "gru")
    assert set(nnx_interop.SUPPORTED) <= set(cells.KINDS)
    cell = cells.lstm(H)._replace(kind="lru")
    want = "cell: rnnjax.interop.flax_nnx converts kinds ('simple', 'lstm', 'gru'), got kind 'lru'"
    with pytest.raises(ValueError, match="^" + re.escape(want) + "$"):
        interop.to_nnx(cell, random_params("lstm", I, np.random.default_rng(16)))


def test_nnx_errors():
    rng = np.random.default_rng(14)
    gru, params = cells.gru(H), random_params("gru", I, rng)
    with pytest.raises(ValueError, match=r"params\.b_hn: flax\.nnx\.GRUCell has no candidate recurrent bias"):
        interop.to_nnx(gru, params)
    before = cells.gru(H, reset_after=False)
    with pytest.raises(
        ValueError, match=r"cell: cannot convert to flax\.nnx\.GRUCell: a reset_after=False GRU"
    ):
        interop.to_nnx(before, random_params("gru", I, rng, reset_after=False))
    sigmoid = cells.simple(H, "sigmoid")
    with pytest.raises(ValueError, match="cell: flax.nnx.SimpleCell reproduces rnnjax's activations"):
        interop.to_nnx(sigmoid, random_params("simple", I, rng))
    with pytest.raises(ValueError, match="cell_type: a gru cell converts to GRUCell, got 'LSTMCell'"):
        interop.to_nnx(gru, zero_b_hn(params), cell_type="LSTMCell")

    f32 = jnp.float32
    with pytest.raises(ValueError, match=r"SimpleCell\(residual=True\)"):
        interop.from_nnx(nnx_cell("SimpleCell", f32, rng, residual=True))
    with pytest.raises(ValueError, match="module.gate_fn: rnnjax's gru gates use sigmoid, got hard_sigmoid"):
        interop.from_nnx(nnx_cell("GRUCell", f32, rng, gate_fn=nnx.hard_sigmoid))
    with pytest.raises(ValueError, match="module.activation_fn: rnnjax's lstm cell supports"):
        interop.from_nnx(nnx_cell("LSTMCell", f32, rng, activation_fn=nnx.relu))
    identity = nnx_cell("SimpleCell", f32, rng, activation_fn=lambda a: a)
    with pytest.raises(
        ValueError, match="module.activation_fn: .* is not recognised; name it with activation="
    ):
        interop.from_nnx(identity)
    with pytest.raises(ValueError, match="activation: 'relu' does not match the module's activation_fn"):
        interop.from_nnx(identity, activation="relu")
    with pytest.raises(ValueError, match="module.dtype: computes in bfloat16 while its params are float32"):
        interop.from_nnx(nnx_cell("GRUCell", f32, rng, dtype=jnp.bfloat16))

    class Mine(nnx.LSTMCell):
        pass

    with pytest.raises(
        TypeError, match="module: expected nnx.SimpleCell, .* got .*Mine .subclasses are refused"
    ):
        interop.from_nnx(nnx.eval_shape(lambda: Mine(I, H, rngs=nnx.Rngs(0))))
    with pytest.raises(TypeError, match="got flax.nnx.nn.linear.Linear"):
        interop.from_nnx(nnx.eval_shape(lambda: nnx.Linear(I, H, rngs=nnx.Rngs(0))))

    module = nnx_module("GRUCell", f32, rng)
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    with pytest.raises(ValueError, match=r"state\['dense_i'\]: expected the entries \['bias', 'kernel'\]"):
        interop.from_nnx(module, {**pure, "dense_i": {"kernel": pure["dense_i"]["kernel"]}})
    with pytest.raises(ValueError, match=r"state: unexpected entries \['lora'\] for nnx.GRUCell"):
        interop.from_nnx(module, {**pure, "lora": {"a": pure["dense_i"]["bias"]}})
    with pytest.raises(ValueError, match=r"state\['dense_h'\]\['kernel'\]: expected shape \(3, 9\)"):
        interop.from_nnx(module, {**pure, "dense_h": {"kernel": pure["dense_h"]["kernel"][:, :-1]}})
    with pytest.raises(ValueError, match=r"state: expected the entries \['cell'\] of an nnx.RNN's params"):
        interop.from_nnx(nnx.RNN(module, rngs=False), pure)
    # A recurrent bias NNX's GRUCell would not read (its dense_h has none).
    module.dense_h = nnx.eval_shape(lambda: nnx.Linear(H, 3 * H, rngs=nnx.Rngs(0)))
    with pytest.raises(
        ValueError, match=r"state\['dense_h'\]: expected the entries \['kernel'\] of nnx.GRUCell"
    ):
        interop.from_nnx(module)


if __name__ == "__main__":  # largest |Δ| per layer kind over every comparison above, float32 and float64
    jax.config.update("jax_enable_x64", True)  # as tests/conftest.py sets them
    jax.config.update("jax_default_matmul_precision", "highest")
    for case in NNX_CASES:
        for dtype_name in DTYPES:
            compare_nnx(case, dtype_name)
    print_max_abs_diff()
    print(f"(tolerances: float32 {FLOAT32_TOL}, float64 {FLOAT64_TOL})")
