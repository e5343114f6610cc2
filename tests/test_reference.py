"""Tests for rnnjax.reference: hand-written BPTT against finite differences (NumPy only)."""

import numpy as np
import pytest

from rnnjax import reference as ref

GRAD_RTOL = 1e-6  # max norm-wise relative error, hand-written BPTT vs central differences
B, T, I, H, V = 3, 5, 4, 3, 5
MIXED_LENGTHS = np.array([T, 1, T - 2])

# (kind, activation, reset_after) for every cell form.
CELL_FORMS = {
    "simple-tanh": ("simple", "tanh", True),
    "simple-relu": ("simple", "relu", True),
    "simple-linear": ("simple", "linear", True),
    "simple-sigmoid": ("simple", "sigmoid", True),
    "lstm": ("lstm", "tanh", True),
    "gru-reset_after": ("gru", "tanh", True),
    "gru-reset_before": ("gru", "tanh", False),
}
MODES = ("many_to_many", "many_to_one")
LENGTHS = {"full": None, "mixed": MIXED_LENGTHS}


def _param_shapes(kind, reset_after):
    g = {"simple": 1, "lstm": 4, "gru": 3}[kind]
    shapes = {"w_ih": (I, g * H), "w_hh": (H, g * H), "b": (g * H,)}
    if kind == "gru" and reset_after:
        shapes["b_hn"] = (H,)
    return shapes


def _relu_margin(params, xs, carry0):
    """Smallest |pre-activation| of a simple cell over all (unpadded) steps."""
    _, ys = ref.forward("simple", params, xs, carry0, activation="relu")
    h_prev = np.concatenate([carry0["h"][:, None], ys[:, :-1]], axis=1)
    a = xs @ params["w_ih"] + h_prev @ params["w_hh"] + params["b"]
    return np.abs(a).min()


def make_problem(form, seed=0):
    """Random params, readout, inputs, nonzero carry0 and labels for a cell form.

    For relu, seeds are tried in turn until no pre-activation is within 1e-3 of
    the kink, so finite differences are valid. (Padded steps compute the same
    prefix as the unpadded run, so checking the unpadded run covers them.)
    """
    kind, activation, reset_after = CELL_FORMS[form]
    while True:
        rng = np.random.default_rng(seed)
        params = {k: rng.normal(0.0, 0.6, s) for k, s in _param_shapes(kind, reset_after).items()}
        readout = {"w": rng.normal(0.0, 0.6, (H, V)), "b": rng.normal(0.0, 0.3, (V,))}
        xs = rng.normal(size=(B, T, I))
        carry0 = {k: rng.normal(0.0, 0.5, (B, H)) for k in (("h", "c") if kind == "lstm" else ("h",))}
        labels = {"many_to_many": rng.integers(0, V, (B, T)), "many_to_one": rng.integers(0, V, (B,))}
        if activation != "relu" or _relu_margin(params, xs, carry0) > 1e-3:
            break
        seed += 1
    opts = {"activation": activation, "reset_after": reset_after}
    return kind, opts, params, readout, xs, carry0, labels


@pytest.mark.parametrize("lengths_name", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", CELL_FORMS)
def test_loss_grads_match_finite_differences(form, mode, lengths_name):
    kind, opts, params, readout, xs, carry0, labels = make_problem(form)
    lengths = LENGTHS[lengths_name]
    kw = {"lengths": lengths, "mode": mode, **opts}

    value, grads = ref.loss_and_grads(kind, params, readout, xs, labels[mode], carry0, **kw)
    assert value == pytest.approx(ref.loss(kind, params, readout, xs, labels[mode], carry0, **kw), abs=0)

    def f(tree):
        return ref.loss(kind, tree["params"], tree["readout"], tree["xs"], labels[mode], tree["carry0"], **kw)

    tree = {"params": params, "readout": readout, "xs": xs, "carry0": carry0}
    numeric = ref.numerical_grad(f, tree)
    assert set(grads) == set(numeric)
    for part in tree:
        err = ref.max_relative_error(grads[part], numeric[part])
        assert err <= GRAD_RTOL, (part, err)


@pytest.mark.parametrize("with_dys", [False, True])
@pytest.mark.parametrize("form", CELL_FORMS)
def test_backward_final_carry_grad_matches_finite_differences(form, with_dys):
    kind, opts, params, _, xs, carry0, _ = make_problem(form)
    rng = np.random.default_rng(1)
    w_final = {k: rng.normal(size=v.shape) for k, v in carry0.items()}
    dys = rng.normal(size=(B, T, H)) if with_dys else np.zeros((B, T, H))
    kw = {"lengths": MIXED_LENGTHS, **opts}

    def f(tree):
        final, ys = ref.forward(kind, tree["params"], tree["xs"], tree["carry0"], **kw)
        return sum(np.sum(final[k] * w_final[k]) for k in final) + np.sum(ys * dys)

    grads = ref.backward(kind, params, xs, dys, carry0, d_final_carry=w_final, **kw)
    tree = {"params": params, "xs": xs, "carry0": carry0}
    numeric = ref.numerical_grad(f, tree)
    for part in tree:
        err = ref.max_relative_error(grads[part], numeric[part])
        assert err <= GRAD_RTOL, (part, err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", CELL_FORMS)
def test_padding_garbage_changes_nothing(form, mode):
    kind, opts, params, readout, xs, carry0, labels = make_problem(form)
    kw = {"lengths": MIXED_LENGTHS, "mode": mode, **opts}
    padded = np.arange(T)[None, :] >= MIXED_LENGTHS[:, None]  # (B, T)
    garbage = xs.copy()
    garbage[padded] = np.random.default_rng(2).normal(0.0, 100.0, (padded.sum(), I))
    garbage_nan = xs.copy()
    garbage_nan[padded] = np.nan

    bad_labels = labels[mode].copy()
    if mode == "many_to_many":
        bad_labels[padded] = -1  # labels at padded steps are ignored too

    value, grads = ref.loss_and_grads(kind, params, readout, xs, labels[mode], carry0, **kw)
    for bad in (garbage, garbage_nan):
        value2, grads2 = ref.loss_and_grads(kind, params, readout, bad, bad_labels, carry0, **kw)
        assert value2 == value
        for part in ("params", "readout", "carry0"):
            for k in grads[part]:
                np.testing.assert_array_equal(grads2[part][k], grads[part][k])
        np.testing.assert_array_equal(grads2["xs"], grads["xs"])
        assert np.all(grads2["xs"][padded] == 0.0)


@pytest.mark.parametrize("form", CELL_FORMS)
def test_forward_padding_matches_truncated_runs(form):
    kind, opts, params, _, xs, carry0, _ = make_problem(form)
    final, ys = ref.forward(kind, params, xs, carry0, lengths=MIXED_LENGTHS, **opts)
    for b, n in enumerate(MIXED_LENGTHS):
        c0 = {k: v[b : b + 1] for k, v in carry0.items()}
        final_b, ys_b = ref.forward(kind, params, xs[b : b + 1, :n], c0, **opts)
        np.testing.assert_allclose(ys[b, :n], ys_b[0], rtol=1e-14, atol=0)
        assert np.all(ys[b, n:] == 0.0)
        for k in final:
            np.testing.assert_allclose(final[k][b], final_b[k][0], rtol=1e-14, atol=0)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("form", CELL_FORMS)
def test_single_step_matches_spec_equations(form):
    """One step written directly from the documented equations (gate order, fused layout)."""
    kind, opts, p, _, xs, carry0, _ = make_problem(form)
    x, h = xs[:, 0], carry0["h"]
    if kind == "simple":
        act = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "linear": lambda a: a, "sigmoid": _sig}
        want = {"h": act[opts["activation"]](x @ p["w_ih"] + h @ p["w_hh"] + p["b"])}
    elif kind == "lstm":
        z = x @ p["w_ih"] + h @ p["w_hh"] + p["b"]
        i, f, g, o = _sig(z[:, :H]), _sig(z[:, H : 2 * H]), np.tanh(z[:, 2 * H : 3 * H]), _sig(z[:, 3 * H :])
        c = f * carry0["c"] + i * g
        want = {"h": o * np.tanh(c), "c": c}
    else:
        xp = x @ p["w_ih"] + p["b"]
        wr, wz, wn = p["w_hh"][:, :H], p["w_hh"][:, H : 2 * H], p["w_hh"][:, 2 * H :]
        r = _sig(xp[:, :H] + h @ wr)
        z = _sig(xp[:, H : 2 * H] + h @ wz)
        if opts["reset_after"]:
            n = np.tanh(xp[:, 2 * H :] + r * (h @ wn + p["b_hn"]))
        else:
            n = np.tanh(xp[:, 2 * H :] + (r * h) @ wn)
        want = {"h": (1 - z) * n + z * h}
    final, ys = ref.forward(kind, p, xs[:, :1], carry0, **opts)
    for k in want:
        np.testing.assert_allclose(final[k], want[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ys[:, 0], want["h"], rtol=1e-12, atol=1e-14)


def test_relu_derivative_at_zero_is_zero():
    params = {"w_ih": np.zeros((I, H)), "w_hh": np.zeros((H, H)), "b": np.zeros(H)}
    xs = np.zeros((B, T, I))
    grads = ref.backward("simple", params, xs, np.ones((B, T, H)), activation="relu")
    assert np.all(grads["params"]["b"] == 0.0)


def test_loss_value_and_carry0_default():
    # Zero weights: uniform softmax, so the loss is log(V) in both modes.
    kind, opts, params, readout, xs, _, labels = make_problem("lstm")
    readout = {"w": np.zeros((H, V)), "b": np.zeros(V)}
    for mode in MODES:
        value = ref.loss(kind, params, readout, xs, labels[mode], lengths=MIXED_LENGTHS, mode=mode)
        assert value == pytest.approx(np.log(V), rel=1e-14)
    zeros = {"h": np.zeros((B, H)), "c": np.zeros((B, H))}
    a = ref.forward(kind, params, xs)
    b = ref.forward(kind, params, xs, zeros)
    assert ref.max_relative_error(a, b) == 0.0


def test_numerical_grad_does_not_mutate_and_handles_nesting():
    arrays = {"a": np.array([1.0, -2.0]), "inner": {"b": np.array([[3.0]])}}
    before = {"a": arrays["a"].copy(), "b": arrays["inner"]["b"].copy()}
    g = ref.numerical_grad(lambda t: np.sum(t["a"] ** 2) + 3.0 * np.sum(t["inner"]["b"]), arrays)
    np.testing.assert_allclose(g["a"], [2.0, -4.0], rtol=1e-8)
    np.testing.assert_allclose(g["inner"]["b"], [[3.0]], rtol=1e-8)
    np.testing.assert_array_equal(arrays["a"], before["a"])
    np.testing.assert_array_equal(arrays["inner"]["b"], before["b"])


def test_max_relative_error():
    a = {"x": np.array([1.0, 2.0]), "y": {"z": np.array([0.0])}}
    b = {"x": np.array([1.0, 4.0]), "y": {"z": np.array([0.0])}}
    assert ref.max_relative_error(a, b) == pytest.approx(0.5)
    assert ref.max_relative_error(b, b) == 0.0
    with pytest.raises(ValueError, match="structures differ"):
        ref.max_relative_error({"x": a["x"]}, b)


def test_errors_name_the_argument():
    kind, opts, params, readout, xs, carry0, labels = make_problem("simple-tanh")
    with pytest.raises(ValueError, match="kind.*'rnn'"):
        ref.forward("rnn", params, xs)
    with pytest.raises(ValueError, match="activation.*'softsign'"):
        ref.forward("simple", params, xs, activation="softsign")
    with pytest.raises(ValueError, match="mode.*'seq2seq'"):
        ref.loss("simple", params, readout, xs, labels["many_to_many"], mode="seq2seq")
    for bad in ([0, 1, 1], [1, 1, T + 1]):
        with pytest.raises(ValueError, match=r"lengths.*1 <= lengths\[b\] <= T"):
            ref.forward("simple", params, xs, lengths=np.array(bad))
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\)"):
        ref.forward("simple", params, xs, lengths=np.array([1, 2]))
    with pytest.raises(TypeError, match="lengths must be an integer"):
        ref.forward("simple", params, xs, lengths=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"params\['w_ih'\] must have shape \(4, 3\)"):
        ref.forward("simple", {**params, "w_ih": np.zeros((5, H))}, xs)
    with pytest.raises(ValueError, match="params for kind 'gru' with reset_after=True must have keys"):
        ref.forward("gru", params, xs)
    with pytest.raises(ValueError, match="carry0 must have keys"):
        ref.forward("simple", params, xs, {"h": carry0["h"], "c": carry0["h"]})
    with pytest.raises(ValueError, match="dys must have shape"):
        ref.backward("simple", params, xs, np.zeros((B, T, H + 1)))
    with pytest.raises(ValueError, match="labels for mode 'many_to_one'"):
        ref.loss("simple", params, readout, xs, labels["many_to_many"], mode="many_to_one")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, V=5\)"):
        ref.loss("simple", params, readout, xs, np.full((B, T), V))
    with pytest.raises(ValueError, match=r"readout\['w'\] must have shape"):
        ref.loss("simple", params, {"w": np.zeros((H + 1, V)), "b": np.zeros(V)}, xs, labels["many_to_many"])


def test_reference_module_never_imports_jax():
    """Load the reference (a package: its __init__ and submodules) on its own, where importing jax fails."""
    import subprocess
    import sys
    from pathlib import Path

    path = Path(ref.__file__)
    code = (
        "import sys, importlib.util\n"
        "sys.modules['jax'] = None  # any 'import jax' now raises ImportError\n"
        f"spec = importlib.util.spec_from_file_location('ref', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['ref'] = mod  # for relative imports\n"
        "spec.loader.exec_module(mod)\n"
        "assert not any(m == 'jax' or m.startswith('jax.') for m in sys.modules if sys.modules[m])\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
