"""rnnjax.interop.torch checked against PyTorch's nn.RNN (tanh, relu), nn.LSTM and nn.GRU, run on random
weights (non-zero biases), random inputs and non-zero initial states; round trips must be bit-exact; bad
input and conversions that cannot be exact are refused. The comparisons skip without torch.
"""

import numpy as np
import pytest
from interop.comparisons import (
    INSTALL,
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

from rnnjax import cells, interop
from rnnjax.unrolling import BidirectionalParams


def _torch():
    return pytest.importorskip("torch", reason=f"torch is not installed; {INSTALL}")


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
        xs = uniform(rng, (B, T, I) if batch_first else (T, B, I), 1.0)
        state_shape = (num_layers * D, B, H)
    else:
        xs, state_shape = uniform(rng, (T, I), 1.0), (num_layers * D, H)
    h0 = uniform(rng, state_shape, 0.8)
    return xs, ((h0, uniform(rng, state_shape, 0.8)) if lstm else h0)


def _run_torch(torch, net, xs, hx):
    with torch.no_grad():
        thx = tuple(torch.from_numpy(a) for a in hx) if isinstance(hx, tuple) else torch.from_numpy(hx)
        ys, state = net(torch.from_numpy(xs), thx)
    states = state if isinstance(state, tuple) else (state,)
    return ys.numpy(), [s.numpy() for s in states]


def _check_stack_against_torch(torch, label, cells_, params, net, xs, hx, batch_first):
    ys, state = interop.unroll_converted(cells_, params, xs, hx, batch_first=batch_first)
    want_ys, want_states = _run_torch(torch, net, xs, hx)
    close(label, ys, want_ys)
    for got, want in zip(state if isinstance(state, tuple) else (state,), want_states, strict=True):
        close(label, got, want)


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
    assert_trees_equal(from_dict, params)

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
    close(label, _run_torch(torch, back, xs, hx)[0], _run_torch(torch, net, xs, hx)[0])
    assert_trees_equal(interop.from_torch(back)[1], params)


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
        directions = [random_params(kind, size, rng) for _ in range(D)]
        params.append(BidirectionalParams(*directions) if bidirectional else directions[0])
    stack = (cell, cell)
    net = interop.to_torch(stack, params, batch_first=True)
    back_cells, back_params = interop.from_torch(net)
    assert_trees_equal(back_params, tuple(params))
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
    assert_trees_equal(params, interop.from_torch(net)[1])
    xs = uniform(np.random.default_rng(4), (B, T, I), 1.0)
    ys, h_n = interop.unroll_converted(cells_, params, xs, batch_first=True)
    with torch.no_grad():
        want_ys, want_h = net(torch.from_numpy(xs))
    close("torch GRU", ys, want_ys.numpy())
    close("torch GRU", h_n, want_h.numpy())


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
    weights = [uniform(rng, (I, 3 * H)), uniform(rng, (H, 3 * H)), uniform(rng, (3 * H,))]
    cell, params = interop.from_keras("GRU", weights, reset_after=False)
    assert cell.reset_after is False and params.b_hn is None
    with pytest.raises(ValueError, match=r"reset_after=False.*torch\.nn\.GRU"):
        interop.to_torch(cell, params)


# --------------------------------------------------------------------------------------------
# Errors: conversions that cannot be exact, and bad input. None of these needs torch.


def _torch_state_dict(kind_blocks, rng, num_layers=1, bias=True):
    """A torch-layout state_dict of NumPy arrays (no torch needed)."""
    state = {}
    for k in range(num_layers):
        size = I if k == 0 else H
        state[f"weight_ih_l{k}"] = uniform(rng, (kind_blocks * H, size))
        state[f"weight_hh_l{k}"] = uniform(rng, (kind_blocks * H, H))
        if bias:
            state[f"bias_ih_l{k}"] = uniform(rng, (kind_blocks * H,))
            state[f"bias_hh_l{k}"] = uniform(rng, (kind_blocks * H,))
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
    return (cells.lstm(H), cells.lstm(H)), [random_params("lstm", I, rng), random_params("lstm", H, rng)]


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
        interop.to_torch(cells.gru(H, reset_after=False), random_params("gru", I, rng, reset_after=False))
    with pytest.raises(ValueError, match="cells: torch.nn.RNN supports nonlinearity 'tanh' or 'relu'"):
        interop.to_torch(cells.simple(H, "linear"), random_params("simple", I, rng))
    with pytest.raises(ValueError, match=r"cells\[1\]: every layer.*hidden_size"):
        interop.to_torch((cells.lstm(H), cells.lstm(H + 1)), params)
    with pytest.raises(ValueError, match=r"cells\[1\]: every layer.*kind"):
        interop.to_torch((cells.lstm(H), cells.gru(H)), params)
    with pytest.raises(ValueError, match=r"params\[1\]: layer 1 must read layer 0's output of size 1·H = 3"):
        interop.to_torch(stack, [params[0], params[0]])
    with pytest.raises(ValueError, match=r"params: expected one params value per cell \(2 cells\), got 1"):
        interop.to_torch(stack, params[:1])
    with pytest.raises(TypeError, match=r"params\[0\]: a lstm cell expected LSTMParams, got GRUParams"):
        interop.to_torch(stack, [random_params("gru", I, rng), params[1]])
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


if __name__ == "__main__":  # largest |Δ| per layer kind over every comparison above
    for case in TORCH_CASES:
        compare_torch(*case)
    for form in ROUND_TRIP_FORMS:
        for bidirectional in (False, True):
            compare_rnnjax_to_torch(*form, bidirectional)
    print_max_abs_diff()
