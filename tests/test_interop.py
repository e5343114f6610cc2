"""rnnjax.interop checked against the real layers: PyTorch nn.RNN/LSTM/GRU, Keras 3 SimpleRNN/LSTM/GRU/Dense
and Flax linen cells, run on random weights (non-zero biases), random inputs and non-zero initial states;
round trips must be bit-exact. torch and keras are optional (those tests skip without them).

`python tests/test_interop.py` runs every comparison once and prints the largest |Δ| per layer kind.
"""

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnnjax import cells, interop, unroll  # noqa: E402
from rnnjax.cells import GRUParams, LSTMCarry, LSTMParams, RNNCarry, SimpleParams  # noqa: E402
from rnnjax.readout import DenseParams, dense  # noqa: E402
from rnnjax.unrolling import BidirectionalParams  # noqa: E402

FLOAT32_TOL = 1e-5  # float32 outputs of two implementations of the same function
B, T, I, H = 3, 5, 4, 3  # I != H and I != G·H, so a missing transpose cannot go unnoticed
_INSTALL = "install the compare extra: pip install -e '.[compare]'"

# Largest |Δ| seen per layer kind, filled by `_close` (printed by `python tests/test_interop.py`).
MAX_ABS_DIFF: dict[str, float] = {}


def _close(label: str, got, want) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    diff = float(np.max(np.abs(got - want)))
    MAX_ABS_DIFF[label] = max(MAX_ABS_DIFF.get(label, 0.0), diff)
    assert diff <= FLOAT32_TOL, f"{label}: max |Δ| = {diff:.2e} > {FLOAT32_TOL}"


def _assert_trees_equal(got, want) -> None:
    """Same structure (NamedTuple types included) and bit-identical leaves of the same dtype."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w)


def _uniform(rng, shape, scale=0.6):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def _random_params(kind: str, input_size: int, rng, reset_after: bool = True):
    """rnnjax params with every entry (biases included) drawn from U(±0.6), float32."""
    G = {"simple": 1, "lstm": 4, "gru": 3}[kind]
    w_ih, w_hh, b = _uniform(rng, (input_size, G * H)), _uniform(rng, (H, G * H)), _uniform(rng, (G * H,))
    arrays = [jnp.asarray(a) for a in (w_ih, w_hh, b)]
    if kind == "simple":
        return SimpleParams(*arrays)
    if kind == "lstm":
        return LSTMParams(*arrays)
    return GRUParams(*arrays, jnp.asarray(_uniform(rng, (H,))) if reset_after else None)


def _torch():
    return pytest.importorskip("torch", reason=f"torch is not installed; {_INSTALL}")


def _keras():
    keras = pytest.importorskip("keras", reason=f"keras is not installed; {_INSTALL}")
    if keras.backend.backend() != "jax":
        pytest.skip(
            f"keras was imported with backend {keras.backend.backend()!r}; "
            "these checks need KERAS_BACKEND=jax"
        )
    return keras


# --------------------------------------------------------------------------------------------
# PyTorch

# (mode, num_layers, bidirectional, batch_first, bias): every option appears for every kind.
TORCH_CASES = [
    ("RNN_TANH", 1, False, False, True),
    ("RNN_TANH", 2, True, True, False),
    ("RNN_RELU", 1, True, True, True),
    ("RNN_RELU", 2, False, False, False),
    ("LSTM", 1, False, True, True),
    ("LSTM", 2, True, False, True),
    ("LSTM", 2, False, True, False),
    ("GRU", 1, True, False, True),
    ("GRU", 2, False, True, True),
    ("GRU", 2, True, True, False),
]
_TORCH_LABEL = {
    "RNN_TANH": "torch RNN tanh",
    "RNN_RELU": "torch RNN relu",
    "LSTM": "torch LSTM",
    "GRU": "torch GRU",
}


def _torch_module(torch, mode, num_layers, bidirectional, batch_first, bias, seed=0):
    torch.manual_seed(seed)
    cls = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[
        mode
    ]
    options = {"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}
    net = cls(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
        **options,
    )
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.6, 0.6)  # non-zero biases, and both b_ih and b_hh
    return net


def _torch_inputs(num_layers, D, batch_first, lstm, rng, batched=True):
    if batched:
        xs = _uniform(rng, (B, T, I) if batch_first else (T, B, I), 1.0)
        state_shape = (num_layers * D, B, H)
    else:
        xs, state_shape = _uniform(rng, (T, I), 1.0), (num_layers * D, H)
    h0 = _uniform(rng, state_shape, 0.8)
    return xs, ((h0, _uniform(rng, state_shape, 0.8)) if lstm else h0)


def _run_torch(torch, net, xs, hx):
    with torch.no_grad():
        thx = tuple(torch.from_numpy(a) for a in hx) if isinstance(hx, tuple) else torch.from_numpy(hx)
        ys, state = net(torch.from_numpy(xs), thx)
    states = state if isinstance(state, tuple) else (state,)
    return ys.numpy(), [s.numpy() for s in states]


def _check_stack_against_torch(torch, label, cells_, params, net, xs, hx, batch_first):
    ys, state = interop.unroll_converted(cells_, params, xs, hx, batch_first=batch_first)
    want_ys, want_states = _run_torch(torch, net, xs, hx)
    _close(label, ys, want_ys)
    for got, want in zip(state if isinstance(state, tuple) else (state,), want_states, strict=True):
        _close(label, got, want)


def compare_torch(mode, num_layers, bidirectional, batch_first, bias):
    """torch → rnnjax (module and state_dict) → torch, checked against the torch module."""
    torch = _torch()
    label = _TORCH_LABEL[mode]
    net = _torch_module(torch, mode, num_layers, bidirectional, batch_first, bias)
    cells_, params = interop.from_torch(net)
    D = 2 if bidirectional else 1
    assert len(cells_) == len(params) == num_layers
    assert all(isinstance(p, BidirectionalParams) == bidirectional for p in params)
    xs, hx = _torch_inputs(num_layers, D, batch_first, mode == "LSTM", np.random.default_rng(1))
    _check_stack_against_torch(torch, label, cells_, params, net, xs, hx, batch_first)

    # A bare state_dict (kind inferred from the gate count) converts to the same params.
    nonlinearity = mode[4:].lower() if mode.startswith("RNN") else None
    _, from_dict = interop.from_torch(net.state_dict(), nonlinearity=nonlinearity)
    _assert_trees_equal(from_dict, params)

    # torch → rnnjax → torch: weights exact, summed biases exact, same function.
    back = interop.to_torch(cells_, params, batch_first=batch_first, bias=bias)
    assert (type(back), back.mode, back.num_layers, back.bidirectional, back.batch_first, back.bias) == (
        type(net),
        net.mode,
        num_layers,
        bidirectional,
        batch_first,
        bias,
    )
    before, after = net.state_dict(), back.state_dict()
    assert set(before) == set(after)
    for key, value in before.items():
        if key.startswith("weight"):
            np.testing.assert_array_equal(after[key].numpy(), value.numpy())
        elif key.startswith("bias_ih"):
            b_ih, b_hh = value.numpy(), before[key.replace("bias_ih", "bias_hh")].numpy()
            want_ih, want_hh = b_ih + b_hh, np.zeros_like(b_hh)
            if mode == "GRU":  # n block: b_in stays in bias_ih, b_hn in bias_hh
                want_ih[2 * H :], want_hh[2 * H :] = b_ih[2 * H :], b_hh[2 * H :]
            np.testing.assert_array_equal(after[key].numpy(), want_ih)
            np.testing.assert_array_equal(after[key.replace("bias_ih", "bias_hh")].numpy(), want_hh)
    _close(label, _run_torch(torch, back, xs, hx)[0], _run_torch(torch, net, xs, hx)[0])
    _assert_trees_equal(interop.from_torch(back)[1], params)


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: "-".join(map(str, c)))
def test_torch_matches_module_and_round_trips(case):
    compare_torch(*case)


ROUND_TRIP_FORMS = [("simple", "tanh"), ("simple", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


def compare_rnnjax_to_torch(kind, activation, bidirectional):
    """rnnjax → torch → rnnjax is bit-exact, and the torch module computes what rnnjax computes."""
    torch = _torch()
    rng = np.random.default_rng(2)
    D = 2 if bidirectional else 1
    cell = cells.simple(H, activation) if kind == "simple" else getattr(cells, kind)(H)
    params = []
    for k in range(2):
        size = I if k == 0 else D * H
        directions = [_random_params(kind, size, rng) for _ in range(D)]
        params.append(BidirectionalParams(*directions) if bidirectional else directions[0])
    stack = (cell, cell)
    net = interop.to_torch(stack, params, batch_first=True)
    back_cells, back_params = interop.from_torch(net)
    _assert_trees_equal(back_params, tuple(params))
    assert [(c.kind, c.hidden_size, c.activation, c.reset_after) for c in back_cells] == [
        (c.kind, c.hidden_size, c.activation, c.reset_after) for c in stack
    ]
    xs, hx = _torch_inputs(2, D, True, kind == "lstm", rng)
    label = {"simple": f"torch RNN {activation}", "lstm": "torch LSTM", "gru": "torch GRU"}[kind]
    _check_stack_against_torch(torch, label, stack, params, net, xs, hx, batch_first=True)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("form", ROUND_TRIP_FORMS, ids=lambda f: "-".join(f))
def test_rnnjax_to_torch_round_trip_is_exact(form, bidirectional):
    compare_rnnjax_to_torch(*form, bidirectional)


def test_torch_unbatched_input():
    torch = _torch()
    net = _torch_module(torch, "LSTM", 2, True, False, True)
    cells_, params = interop.from_torch(net)
    xs, hx = _torch_inputs(2, 2, False, True, np.random.default_rng(3), batched=False)
    _check_stack_against_torch(torch, "torch LSTM", cells_, params, net, xs, hx, batch_first=False)


def test_torch_zero_initial_state_and_prefixed_state_dict():
    torch = _torch()
    net = _torch_module(torch, "GRU", 2, False, True, True)
    wrapped = {f"encoder.rnn.{k}": v for k, v in net.state_dict().items()} | {
        "head.weight": torch.zeros(2, 2)
    }
    cells_, params = interop.from_torch(wrapped, prefix="encoder.rnn.")
    _assert_trees_equal(params, interop.from_torch(net)[1])
    xs = _uniform(np.random.default_rng(4), (B, T, I), 1.0)
    ys, h_n = interop.unroll_converted(cells_, params, xs, batch_first=True)
    with torch.no_grad():
        want_ys, want_h = net(torch.from_numpy(xs))
    _close("torch GRU", ys, want_ys.numpy())
    _close("torch GRU", h_n, want_h.numpy())


def test_torch_proj_size_is_rejected():
    torch = _torch()
    net = torch.nn.LSTM(I, H, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        interop.from_torch(net)
    with pytest.raises(ValueError, match="proj_size"):
        interop.from_torch(net.state_dict())


def test_keras_reset_before_gru_to_torch_is_rejected():
    """Keras GRU(reset_after=False) converts to rnnjax exactly, but not on to torch (reset-after only)."""
    rng = np.random.default_rng(5)
    weights = [_uniform(rng, (I, 3 * H)), _uniform(rng, (H, 3 * H)), _uniform(rng, (3 * H,))]
    cell, params = interop.from_keras("GRU", weights, reset_after=False)
    assert cell.reset_after is False and params.b_hn is None
    with pytest.raises(ValueError, match=r"reset_after=False.*torch\.nn\.GRU"):
        interop.to_torch(cell, params)


# --------------------------------------------------------------------------------------------
# Keras 3

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
    weights = [_uniform(rng, w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    use_bias = config.get("use_bias", True)

    cell, params = interop.from_keras(layer)
    _assert_trees_equal(interop.from_keras(name, weights, **layer.get_config())[1], params)
    xs = _uniform(rng, (B, T, I), 1.0)
    carry = (
        LSTMCarry(*(_uniform(rng, (B, H), 0.8) for _ in range(2)))
        if name == "LSTM"
        else RNNCarry(_uniform(rng, (B, H), 0.8))
    )
    final, ys = unroll(cell, params, jnp.asarray(xs), jax.tree_util.tree_map(jnp.asarray, carry))
    want_ys, want_states = _run_keras(layer, xs, carry)  # Keras LSTM states are [h, c], like LSTMCarry
    label = _keras_label(name, config)
    _close(label, ys, want_ys)
    for got, want in zip(final, want_states, strict=True):
        _close(label, got, want)

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
    _close(label, _run_keras(other, xs, carry)[0], want_ys)

    # rnnjax → Keras → rnnjax is bit-exact.
    fresh = _random_params(cell.kind, I, rng, reset_after=bool(cell.reset_after))
    if not use_bias:
        fresh = fresh._replace(b=jnp.zeros_like(fresh.b))
        if isinstance(fresh, GRUParams) and fresh.b_hn is not None:
            fresh = fresh._replace(b_hn=jnp.zeros_like(fresh.b_hn))
    _, again = interop.from_keras(name, interop.to_keras(cell, fresh, use_bias=use_bias), **config)
    _assert_trees_equal(again, fresh)


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
    weights = [_uniform(rng, w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    params = interop.from_keras_dense(weights, **layer.get_config())
    h = _uniform(rng, (B, T, H), 1.0)
    _close("keras Dense", dense(params, jnp.asarray(h)), np.asarray(layer(h)))
    for got, want in zip(interop.to_keras_dense(params, use_bias=use_bias), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    fresh = DenseParams(jnp.asarray(_uniform(rng, (H, 5))), jnp.asarray(_uniform(rng, (5,))))
    _assert_trees_equal(interop.from_keras_dense(interop.to_keras_dense(fresh)), fresh)


@pytest.mark.filterwarnings(_KERAS_NUMPY_WARNING)
@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_dense(use_bias):
    compare_keras_dense(use_bias)


# --------------------------------------------------------------------------------------------
# Flax linen (always installed)

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
    xs = _uniform(rng, (B, T, I), 1.0)
    flax_carry = module.initialize_carry(jax.random.key(0), (B, I))
    flax_carry = jax.tree_util.tree_map(lambda c: jnp.asarray(_uniform(rng, c.shape, 0.8)), flax_carry)
    variables = module.init(jax.random.key(1), flax_carry, jnp.asarray(xs[:, 0]))
    variables = jax.tree_util.tree_map(lambda v: jnp.asarray(_uniform(rng, v.shape)), variables)

    if activation == "linear":  # an identity lambda cannot be recognised: name the activation instead
        cell, params = interop.from_flax("SimpleCell", variables, activation="linear")
    else:
        cell, params = interop.from_flax(module, variables)
        _assert_trees_equal(interop.from_flax(cls, variables, activation=activation or None)[1], params)
    carry = interop.carry_from_flax(flax_carry)
    final, ys = unroll(cell, params, jnp.asarray(xs), carry)

    want_ys = []
    for t in range(T):
        flax_carry, y = module.apply(variables, flax_carry, jnp.asarray(xs[:, t]))
        want_ys.append(y)
    label = f"flax {name}" + (f" {activation}" if activation else "")
    _close(label, ys, np.stack(want_ys, axis=1))
    for got, want in zip(
        jax.tree_util.tree_leaves(interop.carry_to_flax(final)),
        jax.tree_util.tree_leaves(flax_carry),
        strict=True,
    ):
        _close(label, got, want)

    _assert_trees_equal(interop.to_flax(cell, params), variables)
    fresh = _random_params(cell.kind, I, rng)
    _assert_trees_equal(
        interop.from_flax(name, interop.to_flax(cell, fresh), activation=activation or None)[1], fresh
    )


@pytest.mark.parametrize("case", FLAX_CASES)
def test_flax_matches_cell_and_round_trips(case):
    compare_flax(case)


def test_flax_lstm_cells_share_variables():
    """LSTMCell and OptimizedLSTMCell take the same variables, so one conversion serves both."""
    import flax.linen as nn

    cell, params = cells.lstm(H), _random_params("lstm", I, np.random.default_rng(9))
    variables = interop.to_flax(cell, params)
    carry = interop.carry_to_flax(LSTMCarry(jnp.ones((B, H), jnp.float32), jnp.zeros((B, H), jnp.float32)))
    x = jnp.asarray(_uniform(np.random.default_rng(10), (B, I), 1.0))
    (c1, h1), _ = nn.LSTMCell(H).apply(variables, carry, x)
    (c2, h2), _ = nn.OptimizedLSTMCell(H).apply(variables, carry, x)
    _close("flax LSTMCell", h1, h2)
    _close("flax LSTMCell", c1, c2)


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


# --------------------------------------------------------------------------------------------
# Errors: conversions that cannot be exact, and bad input. None of these needs torch or keras.


def _torch_state_dict(kind_blocks, rng, num_layers=1, bias=True):
    """A torch-layout state_dict of NumPy arrays (no torch needed)."""
    state = {}
    for k in range(num_layers):
        size = I if k == 0 else H
        state[f"weight_ih_l{k}"] = _uniform(rng, (kind_blocks * H, size))
        state[f"weight_hh_l{k}"] = _uniform(rng, (kind_blocks * H, H))
        if bias:
            state[f"bias_ih_l{k}"] = _uniform(rng, (kind_blocks * H,))
            state[f"bias_hh_l{k}"] = _uniform(rng, (kind_blocks * H,))
    return state


def test_from_torch_accepts_a_numpy_state_dict():
    rng = np.random.default_rng(11)
    state = _torch_state_dict(3, rng, num_layers=2)
    (c0, c1), (p0, p1) = interop.from_torch(state)
    assert c0.kind == c1.kind == "gru" and c0.reset_after
    np.testing.assert_array_equal(p1.w_hh, state["weight_hh_l1"].T)
    np.testing.assert_array_equal(p0.b_hn, state["bias_hh_l0"][2 * H :])
    np.testing.assert_array_equal(p0.b[: 2 * H], state["bias_ih_l0"][: 2 * H] + state["bias_hh_l0"][: 2 * H])


def _bad_stack():
    rng = np.random.default_rng(12)
    return (cells.lstm(H), cells.lstm(H)), [_random_params("lstm", I, rng), _random_params("lstm", H, rng)]


TORCH_ERRORS = [
    # (description, call, exception, pattern naming the argument)
    (
        "gru into reset_before",
        lambda s: interop.from_torch(s(3), reset_after=False),
        ValueError,
        "reset_after",
    ),
    ("rnn without nonlinearity", lambda s: interop.from_torch(s(1)), ValueError, "nonlinearity"),
    (
        "bad nonlinearity",
        lambda s: interop.from_torch(s(1), nonlinearity="sigmoid"),
        ValueError,
        "nonlinearity",
    ),
    ("kind disagrees", lambda s: interop.from_torch(s(3), kind="lstm"), ValueError, r"kind: given 'lstm'"),
    ("unknown kind", lambda s: interop.from_torch(s(3), kind="transformer"), ValueError, "kind"),
    (
        "unknown key",
        lambda s: interop.from_torch(s(4) | {"foo": np.zeros(1, np.float32)}),
        ValueError,
        "module_or_state_dict: unexpected key 'foo'",
    ),
    (
        "proj_size key",
        lambda s: interop.from_torch(s(4) | {"weight_hr_l0": np.zeros((2, H), np.float32)}),
        ValueError,
        "proj_size",
    ),
    (
        "missing bias",
        lambda s: interop.from_torch({k: v for k, v in s(4).items() if k != "bias_hh_l0"}),
        ValueError,
        r"missing \['bias_hh_l0'\]",
    ),
    (
        "bad weight shape",
        lambda s: interop.from_torch(s(4) | {"weight_ih_l0": np.zeros((4 * H, I, 1), np.float32)}),
        ValueError,
        r"weight_ih_l0'\]: expected shape \[12, input_size\]",
    ),
    (
        "5 gate blocks",
        lambda s: interop.from_torch(
            {
                "weight_ih_l0": np.zeros((5 * H, I), np.float32),
                "weight_hh_l0": np.zeros((5 * H, H), np.float32),
            }
        ),
        ValueError,
        "5 gate blocks",
    ),
    (
        "integer weights",
        lambda s: interop.from_torch({k: v.astype(np.int32) for k, v in s(4).items()}),
        TypeError,
        "floating-point",
    ),
    ("not a module", lambda s: interop.from_torch(object()), TypeError, "module_or_state_dict"),
]


@pytest.mark.parametrize("case", TORCH_ERRORS, ids=lambda c: c[0])
def test_from_torch_errors(case):
    _, call, exc, pattern = case
    rng = np.random.default_rng(13)
    with pytest.raises(exc, match=pattern):
        call(lambda blocks: _torch_state_dict(blocks, rng))


def test_to_torch_and_unroll_converted_errors():
    stack, params = _bad_stack()
    rng = np.random.default_rng(14)
    with pytest.raises(ValueError, match=r"cells: cannot convert to torch\.nn\.GRU.*reset_after=False"):
        interop.to_torch(cells.gru(H, reset_after=False), _random_params("gru", I, rng, reset_after=False))
    with pytest.raises(ValueError, match="cells: torch.nn.RNN supports nonlinearity 'tanh' or 'relu'"):
        interop.to_torch(cells.simple(H, "linear"), _random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"cells\[1\]: every layer.*hidden_size"):
        interop.to_torch((cells.lstm(H), cells.lstm(H + 1)), params)
    with pytest.raises(ValueError, match=r"cells\[1\]: every layer.*kind"):
        interop.to_torch((cells.lstm(H), cells.gru(H)), params)
    with pytest.raises(ValueError, match=r"params\[1\]: layer 1 must read layer 0's output of size 1·H = 3"):
        interop.to_torch(stack, [params[0], params[0]])
    with pytest.raises(ValueError, match=r"params: expected one params value per cell \(2 cells\), got 1"):
        interop.to_torch(stack, params[:1])
    with pytest.raises(TypeError, match=r"params\[0\]: a lstm cell expected LSTMParams, got GRUParams"):
        interop.to_torch(stack, [_random_params("gru", I, rng), params[1]])
    with pytest.raises(ValueError, match=r"params\[1\]: layer 0 is unidirectional"):
        interop.to_torch(stack, [params[0], BidirectionalParams(params[1], params[1])])
    with pytest.raises(ValueError, match="bias: False, but params"):
        interop.to_torch(stack, params, bias=False)
    with pytest.raises(ValueError, match=r"hx \(h_0\): expected shape \(2, 3, 3\)"):
        interop.unroll_converted(stack, params, np.zeros((T, B, I), np.float32), (np.zeros((1, B, H)),) * 2)
    with pytest.raises(TypeError, match=r"hx: an LSTM stack expected a pair \(h_0, c_0\)"):
        interop.unroll_converted(stack, params, np.zeros((T, B, I), np.float32), np.zeros((2, B, H)))
    with pytest.raises(ValueError, match=r"xs: expected \[T, B, 4\]"):
        interop.unroll_converted(stack, params, np.zeros((1, T, B, I), np.float32))


def _keras_weights(rng, blocks, bias_shape):
    out = [_uniform(rng, (I, blocks * H)), _uniform(rng, (H, blocks * H))]
    return out + ([_uniform(rng, bias_shape)] if bias_shape else [])


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
        interop.to_keras(cells.gru(H), _random_params("gru", I, rng), use_bias=False)
    with pytest.raises(TypeError, match="params: a lstm cell expected LSTMParams, got SimpleParams"):
        interop.to_keras(cells.lstm(H), _random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"params\.w_ih: expected shape \(4, 16\) \(cell has hidden_size=4"):
        interop.to_keras(cells.lstm(H + 1), _random_params("lstm", I, rng))
    with pytest.raises(ValueError, match="use_bias: False, but params.b is non-zero"):
        interop.to_keras_dense(DenseParams(jnp.ones((H, 2)), jnp.ones(2)), use_bias=False)


def test_flax_errors():
    import flax.linen as nn

    rng = np.random.default_rng(17)
    gru_vars = interop.to_flax(cells.gru(H), _random_params("gru", I, rng))
    simple_vars = interop.to_flax(cells.simple(H), _random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"reset_after: a reset_after=False GRU .*flax\.linen\.GRUCell"):
        interop.from_flax("GRUCell", gru_vars, reset_after=False)
    with pytest.raises(ValueError, match=r"cell: cannot convert to flax\.linen\.GRUCell"):
        interop.to_flax(cells.gru(H, reset_after=False), _random_params("gru", I, rng, reset_after=False))
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


def test_module_imports_without_torch_and_keras():
    """torch and keras are optional: the module imports and the NumPy-only paths run without them."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["keras"] = None
        import numpy as np
        from rnnjax import interop
        state = {"weight_ih_l0": np.ones((6, 2), np.float32), "weight_hh_l0": np.ones((6, 2), np.float32)}
        cells, params = interop.from_torch(state)
        assert cells[0].kind == "gru"
        cell, p = interop.from_keras("SimpleRNN", [np.ones((2, 2), np.float32), np.ones((2, 2), np.float32)],
                                     use_bias=False)
        assert len(interop.to_keras(cell, p)) == 3
        try:
            interop.from_torch(object())
        except TypeError as e:
            assert "torch is not installed" in str(e), e
        else:
            raise AssertionError("expected a TypeError")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


if __name__ == "__main__":  # largest |Δ| per layer kind over every comparison above
    for case in TORCH_CASES:
        compare_torch(*case)
    for form in ROUND_TRIP_FORMS:
        for bidirectional in (False, True):
            compare_rnnjax_to_torch(*form, bidirectional)
    for case in KERAS_CASES:
        compare_keras(*case)
    for use_bias in (True, False):
        compare_keras_dense(use_bias)
    for case in FLAX_CASES:
        compare_flax(case)
    for label, diff in sorted(MAX_ABS_DIFF.items()):
        print(f"{label}: max |Δ| {diff:.1e}")
