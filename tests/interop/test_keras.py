"""rnnjax.interop.keras checked against Keras 3's SimpleRNN, LSTM, GRU (reset_after True and False) and
Dense layers on JAX, run on random weights (non-zero biases), random inputs and non-zero initial states;
round trips must be bit-exact; bad input and conversions that cannot be exact are refused. The comparisons
skip without keras.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from interop import comparisons  # noqa: E402
from interop.comparisons import assert_trees_equal, close, print_max_abs_diff, random_params, uniform  # noqa: E402

INSTALL, B, H, I, T = comparisons.INSTALL, comparisons.B, comparisons.H, comparisons.I, comparisons.T

from rnnjax import cells, interop, unroll  # noqa: E402
from rnnjax.cells import GRUParams, LSTMCarry, RNNCarry  # noqa: E402
from rnnjax.readout import DenseParams, dense  # noqa: E402


def _keras():
    keras = pytest.importorskip("keras", reason=f"keras is not installed; {INSTALL}")
    if keras.backend.backend() != "jax":
        pytest.skip(
            f"keras was imported with backend {keras.backend.backend()!r}; "
            "these checks need KERAS_BACKEND=jax"
        )
    return keras


KERAS_CASES = [
    ("SimpleRNN", {"activation": "tanh"}),
    ("SimpleRNN", {"activation": "relu"}),
    ("SimpleRNN", {"activation": "linear", "use_bias": False}),
    ("LSTM", {}),
    ("LSTM", {"use_bias": False}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"reset_after": True, "use_bias": False}),
    ("GRU", {"reset_after": False, "use_bias": False}),
]


def _keras_label(name, config):
    if name == "SimpleRNN":
        return f"keras SimpleRNN {config['activation']}"
    if name == "GRU":
        return f"keras GRU reset_after={config['reset_after']}"
    return "keras LSTM"


def _run_keras(layer, xs, carry):
    # conftest enables float64 for JAX; Keras' fused JAX GRU then builds float64 zero biases when
    # use_bias=False and its scan fails, so run Keras in the float32 world it is written for.
    with jax.enable_x64(False):
        out = layer(xs, initial_state=[np.asarray(c) for c in carry])
    return np.asarray(out[0]), [np.asarray(s) for s in out[1:]]


def compare_keras(name, config):
    """Keras layer → rnnjax (from the layer and from its weights + config) → Keras, checked against it."""
    keras = _keras()
    rng = np.random.default_rng(6)
    layer = getattr(keras.layers, name)(H, return_sequences=True, return_state=True, **config)
    layer.build((B, T, I))
    weights = [uniform(rng, w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    use_bias = config.get("use_bias", True)

    cell, params = interop.from_keras(layer)
    assert_trees_equal(interop.from_keras(name, weights, **layer.get_config())[1], params)
    xs = uniform(rng, (B, T, I), 1.0)
    carry = (
        LSTMCarry(*(uniform(rng, (B, H), 0.8) for _ in range(2)))
        if name == "LSTM"
        else RNNCarry(uniform(rng, (B, H), 0.8))
    )
    final, ys = unroll(cell, params, jnp.asarray(xs), jax.tree_util.tree_map(jnp.asarray, carry))
    want_ys, want_states = _run_keras(layer, xs, carry)  # Keras LSTM states are [h, c], like LSTMCarry
    label = _keras_label(name, config)
    close(label, ys, want_ys)
    for got, want in zip(final, want_states, strict=True):
        close(label, got, want)

    # Keras → rnnjax → Keras: exact except the reset_after=True GRU's summed r, z biases.
    back = interop.to_keras(cell, params, use_bias=use_bias)
    assert len(back) == len(weights)
    for i, (got, want) in enumerate(zip(back, weights)):
        if i == 2 and name == "GRU" and config["reset_after"]:
            want = np.stack(
                [
                    np.concatenate([want[0, : 2 * H] + want[1, : 2 * H], want[0, 2 * H :]]),
                    np.concatenate([np.zeros(2 * H, np.float32), want[1, 2 * H :]]),
                ]
            )
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    other = getattr(keras.layers, name)(H, return_sequences=True, return_state=True, **config)
    other.build((B, T, I))
    other.set_weights(back)
    close(label, _run_keras(other, xs, carry)[0], want_ys)

    # rnnjax → Keras → rnnjax is bit-exact.
    fresh = random_params(cell.kind, I, rng, reset_after=bool(cell.reset_after))
    if not use_bias:
        fresh = fresh._replace(b=jnp.zeros_like(fresh.b))
        if isinstance(fresh, GRUParams) and fresh.b_hn is not None:
            fresh = fresh._replace(b_hn=jnp.zeros_like(fresh.b_hn))
    _, again = interop.from_keras(name, interop.to_keras(cell, fresh, use_bias=use_bias), **config)
    assert_trees_equal(again, fresh)


# Keras' own get_weights() trips a NumPy 2 deprecation (`__array__` without `copy`); not ours to fix.
_KERAS_NUMPY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.mark.filterwarnings(_KERAS_NUMPY_WARNING)
@pytest.mark.parametrize(
    "case", KERAS_CASES, ids=lambda c: c[0] + "-" + "-".join(f"{k}={v}" for k, v in c[1].items())
)
def test_keras_matches_layer_and_round_trips(case):
    compare_keras(*case)


def compare_keras_dense(use_bias):
    keras = _keras()
    rng = np.random.default_rng(7)
    layer = keras.layers.Dense(5, use_bias=use_bias)
    layer.build((B, H))
    weights = [uniform(rng, w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    params = interop.from_keras_dense(weights, **layer.get_config())
    h = uniform(rng, (B, T, H), 1.0)
    close("keras Dense", dense(params, jnp.asarray(h)), np.asarray(layer(h)))
    for got, want in zip(interop.to_keras_dense(params, use_bias=use_bias), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    fresh = DenseParams(jnp.asarray(uniform(rng, (H, 5))), jnp.asarray(uniform(rng, (5,))))
    assert_trees_equal(interop.from_keras_dense(interop.to_keras_dense(fresh)), fresh)


@pytest.mark.filterwarnings(_KERAS_NUMPY_WARNING)
@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_dense(use_bias):
    compare_keras_dense(use_bias)


# --------------------------------------------------------------------------------------------
# Errors: conversions that cannot be exact, and bad input. None of these needs keras.


def _keras_weights(rng, blocks, bias_shape):
    out = [uniform(rng, (I, blocks * H)), uniform(rng, (H, blocks * H))]
    return out + ([uniform(rng, bias_shape)] if bias_shape else [])


KERAS_ERRORS = [
    ("unknown layer", lambda w: interop.from_keras("Conv1D", w(4, (12,))), ValueError, "layer_kind"),
    (
        "too few arrays",
        lambda w: interop.from_keras("LSTM", w(4, None)),
        ValueError,
        r"weights: Keras LSTM with use_bias=True has 3 arrays",
    ),
    (
        "extra bias",
        lambda w: interop.from_keras("LSTM", w(4, (12,)), use_bias=False),
        ValueError,
        r"weights: Keras LSTM with use_bias=False has 2 arrays",
    ),
    (
        "wrong gate count",
        lambda w: interop.from_keras("GRU", w(4, (12,))),
        ValueError,
        r"weights\[1\] \(recurrent_kernel\): expected shape \[H, 3·H\]",
    ),
    (
        "1-D reset_after bias",
        lambda w: interop.from_keras("GRU", w(3, (9,))),
        ValueError,
        r"weights\[2\] \(bias\): expected shape \(2, 9\)",
    ),
    (
        "2-D reset_before bias",
        lambda w: interop.from_keras("GRU", w(3, (2, 9)), reset_after=False),
        ValueError,
        r"weights\[2\] \(bias\): expected shape \(9,\)",
    ),
    (
        "units mismatch",
        lambda w: interop.from_keras("SimpleRNN", w(1, (3,)), units=4),
        ValueError,
        r"units: given 4 but .* has H=3",
    ),
    (
        "hard_sigmoid gates",
        lambda w: interop.from_keras("LSTM", w(4, (12,)), recurrent_activation="hard_sigmoid"),
        ValueError,
        "recurrent_activation: rnnjax's lstm gates use sigmoid, got 'hard_sigmoid'",
    ),
    (
        "relu LSTM",
        lambda w: interop.from_keras("LSTM", w(4, (12,)), activation="relu"),
        ValueError,
        "activation: rnnjax's lstm cell uses tanh",
    ),
    (
        "selu SimpleRNN",
        lambda w: interop.from_keras("SimpleRNN", w(1, (3,)), activation="selu"),
        ValueError,
        "activation: rnnjax's simple cell supports tanh, relu or linear",
    ),
    (
        "unknown option",
        lambda w: interop.from_keras("GRU", w(3, (2, 9)), time_major=True),
        ValueError,
        r"layer_config: unknown option\(s\) \['time_major'\]",
    ),
    (
        "bad kernel shape",
        lambda w: interop.from_keras("SimpleRNN", [np.zeros((I, 4), np.float32)] + w(1, (3,))[1:]),
        ValueError,
        r"weights\[0\] \(kernel\): expected shape \(4, 3\)",
    ),
    (
        "dense relu",
        lambda w: interop.from_keras_dense(w(1, (3,))[1:], activation="relu"),
        ValueError,
        "activation: rnnjax.readout.dense is linear",
    ),
    (
        "dense arrays",
        lambda w: interop.from_keras_dense(w(1, (3,))[1:], use_bias=False),
        ValueError,
        r"weights: Keras Dense with use_bias=False has 1 arrays, got 2",
    ),
    (
        "dense units",
        lambda w: interop.from_keras_dense(w(1, (3,))[1:], units=7),
        ValueError,
        "units: given 7",
    ),
]


@pytest.mark.parametrize("case", KERAS_ERRORS, ids=lambda c: c[0])
def test_from_keras_errors(case):
    _, call, exc, pattern = case
    rng = np.random.default_rng(15)
    with pytest.raises(exc, match=pattern):
        call(lambda blocks, bias_shape: _keras_weights(rng, blocks, bias_shape))


def test_to_keras_errors():
    rng = np.random.default_rng(16)
    with pytest.raises(ValueError, match="use_bias: False, but params has non-zero biases"):
        interop.to_keras(cells.gru(H), random_params("gru", I, rng), use_bias=False)
    with pytest.raises(TypeError, match="params: a lstm cell expected LSTMParams, got SimpleParams"):
        interop.to_keras(cells.lstm(H), random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"params\.w_ih: expected shape \(4, 16\) \(cell has hidden_size=4"):
        interop.to_keras(cells.lstm(H + 1), random_params("lstm", I, rng))
    with pytest.raises(ValueError, match="use_bias: False, but params.b is non-zero"):
        interop.to_keras_dense(DenseParams(jnp.ones((H, 2)), jnp.ones(2)), use_bias=False)


if __name__ == "__main__":  # largest |Δ| per layer kind over every comparison above
    for case in KERAS_CASES:
        compare_keras(*case)
    for use_bias in (True, False):
        compare_keras_dense(use_bias)
    print_max_abs_diff()
