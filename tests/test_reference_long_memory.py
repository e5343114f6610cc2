"""Tests for the long-memory kinds of rnnjax.reference (orthogonal, lru, mingru, minlstm), NumPy only:
hand-written BPTT against finite differences, one step against the equations written out here, and the
reference's matrix exponential against SciPy (or an eigendecomposition)."""

import numpy as np
import pytest

from rnnjax import reference as ref
from rnnjax.reference.long_memory import expm, expm_frechet_adjoint

GRAD_RTOL = 1e-6  # max norm-wise relative error, hand-written BPTT vs central differences (eps 1e-6)
STEP_RTOL, STEP_ATOL = 1e-12, 1e-14  # one step of forward vs the equations written in the test
ORTHOGONAL_ATOL = 1e-12  # max |W W^T - I| for W = expm(A - A^T)
EXPM_RTOL = 1e-12  # norm-wise, the reference's expm vs SciPy's (or an eigendecomposition)
KINK_MARGIN = 1e-3  # modReLU: min |z| and ||z| + b| over valid steps, far above the finite-difference eps
B, T, I, H, V = 3, 5, 4, 3, 5
MIXED_LENGTHS = np.array([T, 1, T - 2])
ALL_KINDS = ("simple", "lstm", "gru", "orthogonal", "lru", "mingru", "minlstm")

# (kind, keyword options) for every form of the long-memory kinds.
FORMS = {
    "orthogonal-modrelu": ("orthogonal", {"activation": "modrelu"}),
    "orthogonal-tanh": ("orthogonal", {"activation": "tanh"}),
    "lru-normalize": ("lru", {"normalize": True}),
    "lru-plain": ("lru", {"normalize": False}),
    "mingru": ("mingru", {}),
    "minlstm": ("minlstm", {}),
}
MODES = ("many_to_many", "many_to_one")
LENGTHS = {"full": None, "mixed": MIXED_LENGTHS}
CARRY_KEYS = {"orthogonal": ("h",), "lru": ("h", "h_im"), "mingru": ("h",), "minlstm": ("h",)}


def _random_params(kind, rng):
    """Params drawn away from special values (zeros, |lambda| = 0 or 1, symmetric A)."""
    n = rng.normal
    if kind == "orthogonal":
        return {"w_ih": n(0.0, 0.6, (I, H)), "a": n(0.0, 0.5, (H, H)), "b": n(0.0, 0.5, (H,))}
    if kind == "lru":
        return {
            "nu": n(-1.0, 0.4, (H,)),  # |lambda| = exp(-exp(nu)), about 0.5 to 0.85
            "theta": n(0.0, 1.0, (H,)),
            **{k: n(0.0, 0.6, (I, H)) for k in ("b_re", "b_im", "d")},
            **{k: n(0.0, 0.6, (H, H)) for k in ("c_re", "c_im")},
        }
    blocks = {"mingru": 2, "minlstm": 3}[kind]
    return {"w_ih": n(0.0, 0.6, (I, blocks * H)), "b": n(0.0, 0.5, (blocks * H,))}


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _expm_independent(m):
    """exp(m) without the reference: SciPy, else an eigendecomposition (random m is diagonalisable)."""
    try:
        from scipy.linalg import expm as scipy_expm
    except ImportError:
        lam, vecs = np.linalg.eig(m)
        return (vecs @ np.diag(np.exp(lam)) @ np.linalg.inv(vecs)).real
    return scipy_expm(m)


def _modrelu_margin(params, xs, carry0):
    """Smallest distance of any (unpadded) step's z from modReLU's kinks z = 0 and |z| + b = 0."""
    _, ys = ref.forward("orthogonal", params, xs, carry0, activation="modrelu")
    h_prev = np.concatenate([carry0["h"][:, None], ys[:, :-1]], axis=1)
    z = xs @ params["w_ih"] + h_prev @ _expm_independent(params["a"] - params["a"].T)
    return min(np.abs(z).min(), np.abs(np.abs(z) + params["b"]).min())


def make_problem(form, seed=0):
    """Random params, readout, inputs, nonzero carry0 and labels for a form.

    For modReLU, seeds are tried in turn until no z is within KINK_MARGIN of a kink, so finite
    differences are valid (padded runs compute a prefix of the unpadded one, so checking it covers them).
    """
    kind, opts = FORMS[form]
    while True:
        rng = np.random.default_rng(seed)
        params = _random_params(kind, rng)
        readout = {"w": rng.normal(0.0, 0.6, (H, V)), "b": rng.normal(0.0, 0.3, (V,))}
        xs = rng.normal(size=(B, T, I))
        carry0 = {k: rng.normal(0.0, 0.5, (B, H)) for k in CARRY_KEYS[kind]}
        labels = {"many_to_many": rng.integers(0, V, (B, T)), "many_to_one": rng.integers(0, V, (B,))}
        if opts.get("activation") != "modrelu" or _modrelu_margin(params, xs, carry0) > KINK_MARGIN:
            return kind, opts, params, readout, xs, carry0, labels
        seed += 1


@pytest.mark.parametrize("lengths_name", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", FORMS)
def test_loss_grads_match_finite_differences(form, mode, lengths_name):
    kind, opts, params, readout, xs, carry0, labels = make_problem(form)
    kw = {"lengths": LENGTHS[lengths_name], "mode": mode, **opts}

    value, grads = ref.loss_and_grads(kind, params, readout, xs, labels[mode], carry0, **kw)
    assert value == ref.loss(kind, params, readout, xs, labels[mode], carry0, **kw)

    def f(tree):
        return ref.loss(kind, tree["params"], tree["readout"], tree["xs"], labels[mode], tree["carry0"], **kw)

    tree = {"params": params, "readout": readout, "xs": xs, "carry0": carry0}
    numeric = ref.numerical_grad(f, tree)
    assert set(grads) == set(numeric)
    for part in tree:
        err = ref.max_relative_error(grads[part], numeric[part])
        assert err <= GRAD_RTOL, (part, err)


@pytest.mark.parametrize("with_dys", [False, True])
@pytest.mark.parametrize("form", FORMS)
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


def _step_from_equations(kind, opts, p, x, carry):
    """(new carry, output) of one step, written directly from the papers' equations."""
    h = carry["h"]
    if kind == "orthogonal":
        z = x @ p["w_ih"] + h @ _expm_independent(p["a"] - p["a"].T)
        if opts["activation"] == "modrelu":
            new = np.sign(z) * np.maximum(np.abs(z) + p["b"], 0.0)
        else:
            new = np.tanh(z + p["b"])
        return {"h": new}, new
    if kind == "lru":  # in complex arithmetic, where the reference works in real arithmetic
        lam = np.exp(-np.exp(p["nu"]) + 1j * p["theta"])
        gamma = np.sqrt(1.0 - np.abs(lam) ** 2) if opts["normalize"] else 1.0
        s = lam * (h + 1j * carry["h_im"]) + gamma * (x @ (p["b_re"] + 1j * p["b_im"]))
        y = (s @ (p["c_re"] + 1j * p["c_im"])).real + x @ p["d"]
        return {"h": s.real, "h_im": s.imag}, y
    proj = x @ p["w_ih"] + p["b"]
    if kind == "mingru":
        z, cand = _sig(proj[:, :H]), proj[:, H:]
        new = (1.0 - z) * h + z * cand
    else:
        f, i, cand = _sig(proj[:, :H]), _sig(proj[:, H : 2 * H]), proj[:, 2 * H :]
        new = f / (f + i) * h + i / (f + i) * cand
    return {"h": new}, new


@pytest.mark.parametrize("form", FORMS)
def test_single_step_matches_spec_equations(form):
    kind, opts, p, _, xs, carry0, _ = make_problem(form)
    want_carry, want_y = _step_from_equations(kind, opts, p, xs[:, 0], carry0)
    final, ys = ref.forward(kind, p, xs[:, :1], carry0, **opts)
    assert set(final) == set(want_carry)
    for k in want_carry:
        np.testing.assert_allclose(final[k], want_carry[k], rtol=STEP_RTOL, atol=STEP_ATOL)
    np.testing.assert_allclose(ys[:, 0], want_y, rtol=STEP_RTOL, atol=STEP_ATOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", FORMS)
def test_padding_garbage_changes_nothing(form, mode):
    kind, opts, params, readout, xs, carry0, labels = make_problem(form)
    kw = {"lengths": MIXED_LENGTHS, "mode": mode, **opts}
    padded = np.arange(T)[None, :] >= MIXED_LENGTHS[:, None]  # (B, T)
    garbage = xs.copy()
    garbage[padded] = np.random.default_rng(2).normal(0.0, 100.0, (padded.sum(), I))
    garbage_nan = xs.copy()
    garbage_nan[padded] = np.nan

    value, grads = ref.loss_and_grads(kind, params, readout, xs, labels[mode], carry0, **kw)
    for bad in (garbage, garbage_nan):
        value2, grads2 = ref.loss_and_grads(kind, params, readout, bad, labels[mode], carry0, **kw)
        assert value2 == value
        for part in ("params", "readout", "carry0"):
            for k in grads[part]:
                np.testing.assert_array_equal(grads2[part][k], grads[part][k])
        np.testing.assert_array_equal(grads2["xs"], grads["xs"])
        assert np.all(grads2["xs"][padded] == 0.0)


@pytest.mark.parametrize("form", FORMS)
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


def test_defaults_are_modrelu_and_normalize():
    """Given an orthogonal or LRU problem, when no option is passed, then the kind's default form runs."""
    for form, default in (("orthogonal-modrelu", {"activation": None}), ("lru-normalize", {})):
        kind, opts, params, _, xs, carry0, _ = make_problem(form)
        want = ref.forward(kind, params, xs, carry0, **opts)
        assert ref.max_relative_error(ref.forward(kind, params, xs, carry0, **default), want) == 0.0


@pytest.mark.parametrize("scale", [0.1, 1.0, 4.0])
def test_expm_is_orthogonal_on_skew_matrices_and_matches_independent_expm(scale):
    rng = np.random.default_rng(3)
    a = rng.normal(0.0, scale, (6, 6))
    w = expm(a - a.T)
    assert np.abs(w @ w.T - np.eye(6)).max() <= ORTHOGONAL_ATOL
    for m in (a - a.T, a):  # skew-symmetric, and a general matrix
        assert ref.max_relative_error(expm(m), _expm_independent(m)) <= EXPM_RTOL


def test_expm_frechet_adjoint_matches_finite_differences():
    """dS of sum(G * expm(S)) by the block-matrix formula vs central differences."""
    rng = np.random.default_rng(4)
    s, g = rng.normal(0.0, 0.8, (4, 4)), rng.normal(size=(4, 4))
    numeric = ref.numerical_grad(lambda m: np.sum(g * expm(m)), s)
    assert ref.max_relative_error(expm_frechet_adjoint(s, g), numeric) <= GRAD_RTOL


def test_modrelu_derivative_at_zero_is_zero():
    params = {"w_ih": np.zeros((I, H)), "a": np.zeros((H, H)), "b": np.full(H, 0.5)}
    grads = ref.backward("orthogonal", params, np.ones((B, T, I)), np.ones((B, T, H)))
    for k in params:
        assert np.all(grads["params"][k] == 0.0), k


def test_errors_name_the_argument():
    _, _, p_orth, _, xs, _, _ = make_problem("orthogonal-tanh")
    _, _, p_lru, _, _, carry_lru, _ = make_problem("lru-plain")
    _, _, p_min, _, _, _, _ = make_problem("mingru")
    with pytest.raises(ValueError, match="kind must be one of") as info:
        ref.forward("rnn", p_orth, xs)
    assert all(repr(k) in str(info.value) for k in ALL_KINDS), str(info.value)
    with pytest.raises(ValueError, match=r"activation must be one of \('modrelu', 'tanh'\).*'relu'"):
        ref.forward("orthogonal", p_orth, xs, activation="relu")
    with pytest.raises(TypeError, match="normalize must be a bool, got 'yes'"):
        ref.forward("lru", p_lru, xs, normalize="yes")
    with pytest.raises(ValueError, match=r"params for kind 'lru' must have keys \['nu', 'theta'"):
        ref.forward("lru", p_orth, xs)
    with pytest.raises(ValueError, match=r"params\['c_re'\] must have shape \(3, 3\), got \(3, 4\)"):
        ref.forward("lru", {**p_lru, "c_re": np.zeros((H, H + 1))}, xs)
    with pytest.raises(ValueError, match=r"params\['a'\] must have shape \(H, H\) for kind 'orthogonal'"):
        ref.forward("orthogonal", {**p_orth, "a": np.zeros(H)}, xs)
    with pytest.raises(ValueError, match=r"params\['w_ih'\] must have shape \(I, 2H\) for kind 'mingru'"):
        ref.forward("mingru", {**p_min, "w_ih": np.zeros((I, 5))}, xs)
    with pytest.raises(ValueError, match=r"params\['b'\] must have shape \(9,\), got \(6,\)"):
        ref.forward("minlstm", {"w_ih": np.zeros((I, 3 * H)), "b": np.zeros(2 * H)}, xs)
    with pytest.raises(ValueError, match=r"carry0 must have keys \['h', 'h_im'\]"):
        ref.forward("lru", p_lru, xs, {"h": carry_lru["h"]})
    with pytest.raises(ValueError, match=r"d_final_carry must have keys \['h', 'h_im'\]"):
        ref.backward("lru", p_lru, xs, np.zeros((B, T, H)), d_final_carry={"h": carry_lru["h"]})
