"""rnnjax.interop.flax checked against Flax linen's SimpleCell (tanh, relu, identity), LSTMCell,
OptimizedLSTMCell and GRUCell, step by step on random weights (non-zero biases), random inputs and non-zero
carries; round trips must be bit-exact; bad input and conversions that cannot be exact are refused. Flax is
always installed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from interop.comparisons import (
    B,
    H,
    I,
    T,
    assert_trees_equal,
    close,
    print_max_abs_diff,
    random_params,
    uniform,
)

from rnnjax import cells, interop, unroll
from rnnjax.cells import LSTMCarry, RNNCarry

FLAX_CASES = [
    "SimpleCell-tanh",
    "SimpleCell-relu",
    "SimpleCell-linear",
    "LSTMCell",
    "OptimizedLSTMCell",
    "GRUCell",
]


def compare_flax(case):
    """Flax cell → rnnjax → Flax, checked step by step against `module.apply`."""
    import flax.linen as nn

    name, _, activation = case.partition("-")
    functions = {"tanh": nn.tanh, "relu": nn.relu, "linear": lambda a: a}
    cls = getattr(nn, name)
    module = cls(features=H, activation_fn=functions[activation]) if activation else cls(features=H)
    rng = np.random.default_rng(8)
    xs = uniform(rng, (B, T, I), 1.0)
    flax_carry = module.initialize_carry(jax.random.key(0), (B, I))
    flax_carry = jax.tree_util.tree_map(lambda c: jnp.asarray(uniform(rng, c.shape, 0.8)), flax_carry)
    variables = module.init(jax.random.key(1), flax_carry, jnp.asarray(xs[:, 0]))
    variables = jax.tree_util.tree_map(lambda v: jnp.asarray(uniform(rng, v.shape)), variables)

    if activation == "linear":  # an identity lambda cannot be recognised: name the activation instead
        cell, params = interop.from_flax("SimpleCell", variables, activation="linear")
    else:
        cell, params = interop.from_flax(module, variables)
        assert_trees_equal(interop.from_flax(cls, variables, activation=activation or None)[1], params)
    carry = interop.carry_from_flax(flax_carry)
    final, ys = unroll(cell, params, jnp.asarray(xs), carry)

    want_ys = []
    for t in range(T):
        flax_carry, y = module.apply(variables, flax_carry, jnp.asarray(xs[:, t]))
        want_ys.append(y)
    label = f"flax {name}" + (f" {activation}" if activation else "")
    close(label, ys, np.stack(want_ys, axis=1))
    for got, want in zip(
        jax.tree_util.tree_leaves(interop.carry_to_flax(final)),
        jax.tree_util.tree_leaves(flax_carry),
        strict=True,
    ):
        close(label, got, want)

    assert_trees_equal(interop.to_flax(cell, params), variables)
    fresh = random_params(cell.kind, I, rng)
    assert_trees_equal(
        interop.from_flax(name, interop.to_flax(cell, fresh), activation=activation or None)[1], fresh
    )


@pytest.mark.parametrize("case", FLAX_CASES)
def test_flax_matches_cell_and_round_trips(case):
    compare_flax(case)


def test_flax_lstm_cells_share_variables():
    """LSTMCell and OptimizedLSTMCell take the same variables, so one conversion serves both."""
    import flax.linen as nn

    cell, params = cells.lstm(H), random_params("lstm", I, np.random.default_rng(9))
    variables = interop.to_flax(cell, params)
    carry = interop.carry_to_flax(LSTMCarry(jnp.ones((B, H), jnp.float32), jnp.zeros((B, H), jnp.float32)))
    x = jnp.asarray(uniform(np.random.default_rng(10), (B, I), 1.0))
    (c1, h1), _ = nn.LSTMCell(H).apply(variables, carry, x)
    (c2, h2), _ = nn.OptimizedLSTMCell(H).apply(variables, carry, x)
    close("flax LSTMCell", h1, h2)
    close("flax LSTMCell", c1, c2)


def test_flax_carry_converters():
    h, c = jnp.arange(3.0), -jnp.arange(3.0)
    converted = interop.carry_from_flax((c, h))
    assert isinstance(converted, LSTMCarry)
    np.testing.assert_array_equal(converted.h, h)
    np.testing.assert_array_equal(converted.c, c)
    back = interop.carry_to_flax(converted)
    np.testing.assert_array_equal(back[0], c)
    np.testing.assert_array_equal(back[1], h)
    assert isinstance(interop.carry_from_flax(h), RNNCarry)
    np.testing.assert_array_equal(interop.carry_to_flax(RNNCarry(h)), h)


def test_flax_errors():
    import flax.linen as nn

    rng = np.random.default_rng(17)
    gru_vars = interop.to_flax(cells.gru(H), random_params("gru", I, rng))
    simple_vars = interop.to_flax(cells.simple(H), random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"reset_after: a reset_after=False GRU .*flax\.linen\.GRUCell"):
        interop.from_flax("GRUCell", gru_vars, reset_after=False)
    with pytest.raises(ValueError, match=r"cell: cannot convert to flax\.linen\.GRUCell"):
        interop.to_flax(cells.gru(H, reset_after=False), random_params("gru", I, rng, reset_after=False))
    with pytest.raises(ValueError, match="SimpleCell\\(residual=True\\)"):
        interop.from_flax(nn.SimpleCell(H, residual=True), simple_vars)
    with pytest.raises(ValueError, match="SimpleCell\\(residual=True\\)"):
        interop.from_flax("SimpleCell", simple_vars, residual=True)
    with pytest.raises(ValueError, match="cell_type.gate_fn: rnnjax's gru gates use sigmoid"):
        interop.from_flax(nn.GRUCell(H, gate_fn=nn.hard_sigmoid), gru_vars)
    with pytest.raises(ValueError, match="activation: rnnjax's gru cell supports"):
        interop.from_flax(nn.GRUCell(H, activation_fn=nn.relu), gru_vars)
    with pytest.raises(ValueError, match="cell_type: features=4 but the variables hold hidden size 3"):
        interop.from_flax(nn.GRUCell(H + 1), gru_vars)
    with pytest.raises(ValueError, match="cell_type: expected one of"):
        interop.from_flax("MGUCell", gru_vars)
    with pytest.raises(ValueError, match="variables: expected a sub-dict 'ii'"):
        interop.from_flax("LSTMCell", gru_vars)
    with pytest.raises(ValueError, match=r"variables\['hn'\]: expected keys \['bias', 'kernel'\]"):
        bad = {k: dict(v) for k, v in gru_vars["params"].items()}
        del bad["hn"]["bias"]
        interop.from_flax("GRUCell", bad)
    with pytest.raises(TypeError, match="carry: already an rnnjax LSTMCarry"):
        interop.carry_from_flax(LSTMCarry(jnp.zeros(H), jnp.zeros(H)))
    with pytest.raises(TypeError, match="carry: expected LSTMCarry or RNNCarry"):
        interop.carry_to_flax((jnp.zeros(H), jnp.zeros(H)))


if __name__ == "__main__":  # largest |Δ| per layer kind over every comparison above
    for case in FLAX_CASES:
        compare_flax(case)
    print_max_abs_diff()
