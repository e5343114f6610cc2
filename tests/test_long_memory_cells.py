"""The long-memory kinds (orthogonal, LRU, minGRU, minLSTM), each fact computed a second, independent way:
the whole-sequence kernel against the step scan, the step scan against a Python loop, one step against the
module docs' equations written out in NumPy, masking, remat and chunking against the plain unroll, models
against their layers composed by hand, diagnostics against autodiff written here; and the two issue
requirements: W = expm(A − Aᵀ) stays orthogonal under Adam (expRNN), and the LRU's state norm under white
inputs is Proposition 3 of Orvieto et al. (2023)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from conftest import as_dict, max_rel_err, perturb_params

import rnnjax
from rnnjax import cells, diagnostics, models, readout
from rnnjax.unrolling import BidirectionalParams

# float64, one quantity by two computations (rounding only).
TOL_F64 = 1e-10
# float32 at "highest" matmul precision, the whole-sequence kernel vs the step scan.
TOL_F32 = 1e-5
# Issue requirement: max |WᵀW − I| in float32 after 500 Adam steps on A.
ORTHOGONALITY_F32 = 1e-5
# max |WᵀW − I| of the float64 initialisation (and its distance to the block rotation).
ORTHOGONALITY_F64 = 1e-12
# A must have moved at least this much (max |ΔA|) for the orthogonality test to mean anything.
MIN_MOVE = 0.1
# The LRU's top Lyapunov exponent vs max_j log|λ_j| (its Jacobian is exactly diag(λ)).
TOL_LYAPUNOV = 1e-8
# Issue requirement: Monte Carlo E‖s_T‖² within 2 % of Proposition 3's value.
MC_REL_TOL = 0.02
# The sample size must keep the Monte Carlo standard error five times below MC_REL_TOL.
MC_MAX_SE = MC_REL_TOL / 5

B, T, I, H = 2, 7, 3, 4
LENGTHS = jnp.array([T, 3])
V = 5  # vocabulary of the model tests

# Every form of the four long-memory kinds: (kind, constructor options).
FORMS = {
    "orthogonal-modrelu": ("orthogonal", {"activation": "modrelu"}),
    "orthogonal-tanh": ("orthogonal", {"activation": "tanh"}),
    "lru-normalize": ("lru", {"normalize": True}),
    "lru-plain": ("lru", {"normalize": False}),
    "mingru": ("mingru", {}),
    "minlstm": ("minlstm", {}),
}
# One form of each kind, for the tests of machinery that the forms of a kind share (masking, remat and
# chunking in `unroll`, the models, the float32 comparison): each compiled scan costs seconds, the
# orthogonal cell's (expm and its derivative in the scan body) the most.
ONE_PER_KIND = ("orthogonal-modrelu", "lru-normalize", "mingru", "minlstm")
# The forms whose kernel solves a linear recurrence, by either evaluation of `linear_scan.solve`.
SCANS = ("associative", "sequential")
# Each form's kernel in both directions, the two evaluations of the linear recurrence split between them
# (each compiled scan costs seconds; both evaluations in both directions are in test_linear_scan.py).
KERNEL_CASES = [
    (form, scan, reverse)
    for form, (kind, _) in FORMS.items()
    for scan, reverse in (
        ((None, False), (None, True)) if kind == "orthogonal" else zip(SCANS, (False, True))
    )
]
# The model tests assemble layers generically: the kinds whose scans compile fastest stand for all.
MODEL_FORMS = ("lru-normalize", "mingru", "minlstm")


def make(form, hidden_size=H, dtype=jnp.float64, scan=None):
    kind, options = FORMS[form]
    if scan is not None:
        options = {**options, "scan": scan}
    return cells.make(kind, hidden_size, dtype=dtype, **options)


def setup(form, scan=None, dtype=jnp.float64, seed=0):
    """A cell, perturbed params (no zero biases or special structure), xs <[B, T, I]> and a random carry."""
    cell = make(form, dtype=dtype, scan=scan)
    k = jax.random.split(jax.random.key(seed), 4)
    params = perturb_params(cell.init(k[0], I), k[1])
    xs = jax.random.normal(k[2], (B, T, I), dtype)
    carry = perturb_params(cell.initial_carry((B,), dtype), k[3], 0.5)
    return cell, params, xs, carry


def loss(final, ys):
    """A scalar that reads every output and every carry field, additive over examples (sin 0 = 0, so
    padded zero outputs add nothing)."""
    return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c**2) for c in final)


def unroll_and_grads(cell, params, xs, carry, **options):
    """((final, ys), grads of `loss` w.r.t. (params, xs, carry)) of `rnnjax.unroll`."""

    def f(p, x, c):
        final, ys = rnnjax.unroll(cell, p, x, c, **options)
        return loss(final, ys), (final, ys)

    (_, out), grads = jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)(params, xs, carry)
    return out, grads


@functools.cache
def step_scan(form, reverse):
    """`unroll_and_grads` of the plain step scan (fast=False) on `setup(form)`, shared by the tests that
    compare against it (each scan costs a compilation; the orthogonal cell's expm in its body is the
    slowest to compile)."""
    cell, params, xs, carry = setup(form)
    return unroll_and_grads(cell, params, xs, carry, reverse=reverse, fast=False)


def python_loop(cell, params, xs, carry, reverse=False):
    """(final carry, ys <[..., T, H]>) by a plain Python loop over `cell.step`; ys[t] is the output on
    reading xs[t] (a reverse run reads t = T − 1 first)."""
    steps = xs.shape[-2]
    ys = [None] * steps
    for t in reversed(range(steps)) if reverse else range(steps):
        carry, ys[t] = cell.step(params, carry, xs[..., t, :])
    return carry, jnp.stack(ys, axis=-2)


def loop_and_grads(cell, params, xs, carry, reverse=False):
    """((final, ys), grads of `loss` w.r.t. (params, xs, carry)) of `python_loop` (no lax.scan)."""

    def f(p, x, c):
        final, ys = python_loop(cell, p, x, c, reverse)
        return loss(final, ys), (final, ys)

    (_, out), grads = jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)(params, xs, carry)
    return out, grads


def take(tree, b):
    return jax.tree.map(lambda a: a[b], tree)


def output_of(cell, params, carry, x):
    """y of a step from its new carry: the carry's h, or the cell's `output` (the LRU's Re(s C) + x D)."""
    return carry.h if cell.output is None else cell.output(params, carry, x)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_step(kind, options, p, c, x):
    """(new carry, y, gates) of one step by the module docs' equations in NumPy float64 (dicts of arrays)."""
    if kind == "orthogonal":
        w = scipy.linalg.expm(p["a"] - p["a"].T)
        z = x @ p["w_ih"] + c["h"] @ w
        if options["activation"] == "modrelu":
            h = np.sign(z) * np.maximum(np.abs(z) + p["b"], 0)
        else:
            h = np.tanh(z + p["b"])
        return {"h": h}, h, {}
    if kind == "lru":
        lam = np.exp(-np.exp(p["nu"]) + 1j * p["theta"])
        gamma = np.sqrt(1 - np.abs(lam) ** 2) if options["normalize"] else 1.0
        s = lam * (c["h"] + 1j * c["h_im"]) + gamma * (x @ (p["b_re"] + 1j * p["b_im"]))
        y = np.real(s @ (p["c_re"] + 1j * p["c_im"])) + x @ p["d"]
        return {"h": s.real, "h_im": s.imag}, y, {}
    if kind == "mingru":
        a_z, candidate = np.split(x @ p["w_ih"] + p["b"], 2, axis=-1)
        z = sigmoid(a_z)
        h = (1 - z) * c["h"] + z * candidate
        return {"h": h}, h, {"z": z, "keep": 1 - z}
    assert kind == "minlstm"
    a_f, a_i, candidate = np.split(x @ p["w_ih"] + p["b"], 3, axis=-1)
    f, i = sigmoid(a_f), sigmoid(a_i)
    h = f / (f + i) * c["h"] + i / (f + i) * candidate
    return {"h": h}, h, {"f": f, "i": i, "keep": f / (f + i)}


# --------------------------------------------------------------------------------------------------
# 1, 2, 3, 10: the evaluations of one cell agree


@pytest.mark.parametrize("form, scan, reverse", KERNEL_CASES)
def test_kernel_equals_step_scan_values_and_grads(form, scan, reverse):
    cell, params, xs, carry = setup(form, scan)
    assert cell.sequence is not None
    kernel = unroll_and_grads(cell, params, xs, carry, reverse=reverse, fast=True)
    steps = step_scan(form, reverse)
    assert max_rel_err(kernel[0], steps[0]) <= TOL_F64  # final carry and ys
    assert max_rel_err(kernel[1], steps[1]) <= TOL_F64  # ∂L/∂params, ∂L/∂xs, ∂L/∂carry0


@pytest.mark.parametrize("form", FORMS)
def test_step_scan_equals_python_loop_and_one_step_the_equations(form):
    cell, params, xs, carry = setup(form)
    for reverse in (False, True):
        assert (
            max_rel_err(step_scan(form, reverse), loop_and_grads(cell, params, xs, carry, reverse)) <= TOL_F64
        )
    kind, options = FORMS[form]
    want_carry, want_y, want_gates = numpy_step(
        kind, options, as_dict(params), as_dict(carry), np.asarray(xs[:, 0])
    )
    new, y = cell.step(params, carry, xs[:, 0])
    assert max_rel_err(as_dict(new), want_carry) <= TOL_F64
    assert max_rel_err(y, want_y) <= TOL_F64
    gates = {} if cell.gate_values is None else cell.gate_values(params, carry, xs[:, 0])
    assert set(gates) == set(want_gates)
    assert max_rel_err(gates, want_gates) <= TOL_F64


@pytest.mark.parametrize(
    "form", MODEL_FORMS
)  # the orthogonal cell's lengths: tests/test_equivalence_long_memory.py
def test_lengths_remat_and_checkpointing_equal_the_plain_unroll(form):
    cell, params, xs, carry = setup(form)
    for reverse in (False, True):
        # lengths: each example alone on its own prefix (a Python loop), values and gradients; padded
        # outputs and their input gradients are zeros (the loss is a sum over examples).
        (final, ys), grads = unroll_and_grads(cell, params, xs, carry, lengths=LENGTHS, reverse=reverse)
        total = jax.tree.map(jnp.zeros_like, grads[0])
        for b, n in enumerate(LENGTHS.tolist()):
            (final_b, ys_b), grads_b = loop_and_grads(cell, params, xs[b, :n], take(carry, b), reverse)
            assert max_rel_err(take(final, b), final_b) <= TOL_F64
            assert max_rel_err(ys[b, :n], ys_b) <= TOL_F64
            assert np.all(np.asarray(ys[b, n:]) == 0)
            assert max_rel_err(grads[1][b, :n], grads_b[1]) <= TOL_F64  # ∂L/∂xs of the valid steps
            assert np.all(np.asarray(grads[1][b, n:]) == 0)
            assert max_rel_err(take(grads[2], b), grads_b[2]) <= TOL_F64  # ∂L/∂carry0
            total = jax.tree.map(jnp.add, total, grads_b[0])
        assert max_rel_err(grads[0], total) <= TOL_F64
        # remat (forward) and checkpoint_every (reverse: chunks 3 + 3 + 1, the short one read first) equal
        # the plain step scan, values and grads. One direction each: either compiles its own scans, and
        # the orthogonal cell's chunked run alone costs several seconds.
        options = {"checkpoint_every": 3} if reverse else {"remat": True}
        other = unroll_and_grads(cell, params, xs, carry, reverse=reverse, **options)
        assert max_rel_err(other, step_scan(form, reverse)) <= TOL_F64, options


@pytest.mark.parametrize("form", ONE_PER_KIND)
def test_float32_kernel_equals_step_scan(form):
    scan = None if FORMS[form][0] == "orthogonal" else "associative"  # the evaluation furthest from the step
    cell, params, xs, carry = setup(form, scan, dtype=jnp.float32)
    with jax.default_matmul_precision("highest"):
        kernel = rnnjax.unroll(cell, params, xs, carry, fast=True, precision="highest")
        steps = rnnjax.unroll(cell, params, xs, carry, fast=False, precision="highest")
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves((kernel, steps)))
    assert max_rel_err(kernel, steps) <= TOL_F32


# --------------------------------------------------------------------------------------------------
# 4: models


@pytest.mark.parametrize("form", MODEL_FORMS)
def test_language_model_and_bidirectional_classifier_equal_their_layers_by_hand(form):
    cell = make(form)
    k = jax.random.split(jax.random.key(1), 3)
    tokens = jax.random.randint(k[0], (B, T), 0, V)
    zeros = cell.initial_carry((B,), jnp.float64)

    # A two-layer language model = embedding, two layers (Python loops over the step) and the dense head.
    model = models.language_model(V, cell, num_layers=2, embed_size=3)
    # all float64 (Flax makes the embedding float32), so that its gradient too is compared at TOL_F64
    params = jax.tree.map(lambda a: a.astype(jnp.float64), model.init(k[1], tokens)["params"])

    def by_hand(p):
        _, ys = python_loop(cell, p["rnn"]["layer_0"], p["embed"]["embedding"][tokens], zeros)
        _, ys = python_loop(cell, p["rnn"]["layer_1"], ys, zeros)
        return readout.dense(p["readout"], ys)

    def lm_loss(apply):
        def f(p):
            logits = apply(p)
            return jnp.mean(readout.cross_entropy(logits[:, :-1], tokens[:, 1:])), logits

        return jax.value_and_grad(f, has_aux=True)

    (_, logits), grads = lm_loss(lambda p: model.apply({"params": p}, tokens)[0])(params)
    (_, want_logits), want_grads = lm_loss(by_hand)(params)
    assert logits.shape == (B, T, V)
    assert max_rel_err(logits, want_logits) <= TOL_F64
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert max_rel_err(grads, want_grads) <= TOL_F64

    # A bidirectional classifier with lengths pools each example's last valid step of both directions.
    # Its params are assembled here (the model's init would cost two more compiled scans).
    clf = models.classifier(V, 3, cell, embed_size=3, bidirectional=True, pooling="last")
    k_f, k_b, k_r = jax.random.split(k[2], 3)
    params = {
        "embed": params["embed"],
        "rnn": {"layer_0": BidirectionalParams(cell.init(k_f, 3), cell.init(k_b, 3))},
        "readout": readout.dense_init(k_r, 2 * H, 3, dtype=jnp.float64),
    }
    logits, _ = clf.apply({"params": params}, tokens, lengths=LENGTHS)
    assert logits.shape == (B, 3) and bool(jnp.all(jnp.isfinite(logits)))
    layer = params["rnn"]["layer_0"]
    for b, n in enumerate(LENGTHS.tolist()):
        x = params["embed"]["embedding"][tokens[b, :n]]
        _, forward = python_loop(cell, layer.forward, x, take(zeros, b))
        _, backward = python_loop(cell, layer.backward, x, take(zeros, b), reverse=True)
        pooled = jnp.concatenate([forward[-1], backward[-1]])  # both directions at step n − 1
        assert max_rel_err(logits[b], readout.dense(params["readout"], pooled)) <= TOL_F64


# --------------------------------------------------------------------------------------------------
# 5: diagnostics


def hidden_grads_by_hand(cell, params, xs, carry, loss_fn):
    """∂L/∂c_t for every t: a Python loop over `cell.step` that adds ε_t to the carry after step t (y_t
    recomputed from the perturbed carry), differentiated at ε = 0."""
    steps = xs.shape[-2]

    def perturbed_loss(eps):
        c, ys = carry, []
        for t in range(steps):
            c, _ = cell.step(params, c, xs[..., t, :])
            c = type(c)(*(field + e[..., t, :] for field, e in zip(c, eps)))
            ys.append(output_of(cell, params, c, xs[..., t, :]))
        return loss_fn(jnp.stack(ys, axis=-2))

    zeros = type(carry)(*(jnp.zeros(xs.shape[:-1] + (cell.hidden_size,), xs.dtype) for _ in carry))
    return jax.grad(perturbed_loss)(zeros)


@pytest.mark.parametrize("form", ONE_PER_KIND)
def test_hidden_state_grads_and_jacobian_norms_equal_autodiff_written_here(form):
    cell, params, xs, carry = setup(form)
    weights = jax.random.normal(jax.random.key(7), (B, T, H), jnp.float64)

    def loss_fn(ys):
        return jnp.sum(weights * jnp.sin(ys))

    fast = diagnostics.hidden_state_grads(cell, params, xs, loss_fn, carry)
    assert max_rel_err(fast, hidden_grads_by_hand(cell, params, xs, carry, loss_fn)) <= TOL_F64

    # jacobian_norms[t] = log10 ‖J_{T-1} ⋯ J_{t+1}‖₂, with J_t = ∂c_t/∂c_{t-1} from jax.jacobian of the step
    x, c0 = xs[0], take(carry, 0)
    fields = len(c0)

    def flat_step(c_flat, x_t):
        new, _ = cell.step(params, type(c0)(*jnp.split(c_flat, fields)), x_t)
        return jnp.concatenate(list(new))

    before, c = [], c0  # before[t] = c_{t-1}, flattened
    for t in range(T):
        before.append(jnp.concatenate(list(c)))
        c, _ = cell.step(params, c, x[t])
    product, want = np.eye(fields * H), [0.0]
    for t in range(T - 1, 0, -1):
        product = product @ np.asarray(jax.jacobian(flat_step)(before[t], x[t]))
        want.append(np.log10(np.linalg.norm(product, 2)))
    got = np.asarray(diagnostics.jacobian_norms(cell, params, x, c0))
    assert np.max(np.abs(got - np.array(want[::-1]))) <= TOL_F64


@pytest.mark.parametrize("form", FORMS)
def test_lyapunov_and_recurrent_spectrum(form):
    cell, params, xs, carry = setup(form)
    kind, _ = FORMS[form]
    if kind == "lru":
        # Well separated |λ| so that the default warm-up (20 % of 50 steps) aligns the frame with the top
        # unit's plane: the error left is (0.3/0.95)^(2·10) ≈ 1e-10 per step, and decays from there.
        radii = np.array([0.95, 0.3, 0.2, 0.1])
        params = params._replace(nu=jnp.asarray(np.log(-np.log(radii))))
    steps = jax.random.normal(jax.random.key(3), (50, I), jnp.float64)
    res = diagnostics.lyapunov(cell, params, steps, take(carry, 0), k=2)
    assert res.exponents.shape == (2,) and bool(jnp.all(jnp.isfinite(res.exponents)))
    if kind == "lru":
        lam = np.exp(-np.exp(np.asarray(params.nu)))  # |λ_j|
        # J = diag(λ) exactly: as a real 2H×2H map each unit is |λ_j| times a rotation, so the top two
        # exponents are both log max|λ|.
        assert np.max(np.abs(np.asarray(res.exponents) - np.log(lam.max()))) <= TOL_LYAPUNOV
    else:
        # ‖J_t‖₂ ≤ 1 at every step (orthogonal W with |φ'| ≤ 1; the min cells' diag of keep gates in (0, 1)).
        assert float(jnp.max(res.exponents)) <= TOL_F64

    if kind in ("mingru", "minlstm"):
        with pytest.raises(ValueError, match=r"^cell: a min(gru|lstm) cell has no fixed recurrent matrix"):
            diagnostics.recurrent_spectrum(cell, params)
        return
    spectrum = diagnostics.recurrent_spectrum(cell, params)
    assert set(spectrum) == {"h"}
    want = 1.0 if kind == "orthogonal" else float(lam.max())
    assert abs(spectrum["h"]["sigma_max"] - want) <= TOL_F64
    assert abs(spectrum["h"]["spectral_radius"] - want) <= TOL_F64


# --------------------------------------------------------------------------------------------------
# 6, 7: the requirements


def test_orthogonal_cell_stays_orthogonal_through_500_adam_steps():
    hidden = 16
    cell = cells.orthogonal(hidden, dtype=jnp.float32)
    k = jax.random.split(jax.random.key(0), 3)
    params0 = cell.init(k[0], I)
    xs = jax.random.normal(k[1], (8, 10, I), jnp.float32)
    targets = 0.5 * jax.random.normal(k[2], (8, 10, hidden), jnp.float32)
    opt = optax.adam(1e-2)

    def mse(p):
        return jnp.mean((rnnjax.unroll(cell, p, xs)[1] - targets) ** 2)

    @jax.jit
    def train(params):
        def step(state, _):
            params, opt_state = state
            value, grads = jax.value_and_grad(mse)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=500)
        return params, losses

    with jax.default_matmul_precision("highest"):
        params, losses = train(params0)
        w = cell.recurrent_matrices(params)["h"]
        error = float(jnp.max(jnp.abs(w.T @ w - jnp.eye(hidden, dtype=jnp.float32))))
    moved = float(jnp.max(jnp.abs(params.a - params0.a)))
    print(
        f"\northogonal H={hidden} float32, 500 Adam steps: max|WᵀW − I| = {error:.3g}, "
        f"max|ΔA| = {moved:.3g}, loss {float(losses[0]):.4f} -> {float(losses[-1]):.4f}"
    )
    assert w.dtype == jnp.float32 and params.a.dtype == jnp.float32
    assert moved >= MIN_MOVE  # training really changed W ...
    assert float(losses[-1]) < float(losses[0])
    assert error <= ORTHOGONALITY_F32  # ... and W stayed orthogonal


def white_noise_final_carries(forms, params, samples, steps, key):
    """The carry of each cell in `forms` after `steps` steps from zeros, for `samples` sequences of white
    inputs x_t ~ N(0, I) that all cells read alike (x_t drawn inside the scan: no [T, samples, I] array)."""
    inputs = jnp.shape(params[2])[0]

    @jax.jit
    def run(params, key):
        def body(carries, t):
            x = jax.random.normal(jax.random.fold_in(key, t), (samples, inputs), jnp.float64)
            return tuple(cell.step(params, c, x)[0] for cell, c in zip(forms, carries)), None

        start = tuple(cell.initial_carry((samples,), jnp.float64) for cell in forms)
        return jax.lax.scan(body, start, jnp.arange(steps))[0]

    return run(params, key)


def test_lru_proposition_3_state_norm_under_white_inputs():
    """Orvieto et al. (2023), Proposition 3: with |λ_j| = r for every unit and x_t ~ N(0, I),
    E‖s_∞‖² = E‖x B‖² / (1 − r²), E‖x B‖² = ‖B_re‖_F² + ‖B_im‖_F²; with γ = √(1 − r²) it is E‖x B‖²."""
    hidden, inputs, samples = 32, 16, 4096
    for r in (0.9, 0.99):
        steps = math.ceil(20 / (1 - r**2))  # r^(2T) ≤ e^(−20): the finite-T deficit is below 3e-9
        forms = [cells.lru(hidden, r_min=r, r_max=r, normalize=n, dtype=jnp.float64) for n in (False, True)]
        params = forms[0].init(jax.random.key(0), inputs)  # one ring: the init does not read `normalize`
        radius = np.exp(-np.exp(np.asarray(params.nu)))
        assert np.max(np.abs(radius - r)) <= TOL_F64
        expected_xb = float(np.sum(np.asarray(params.b_re) ** 2) + np.sum(np.asarray(params.b_im) ** 2))

        # Sample size: v = (Re s_T, Im s_T) is Gaussian, v = Σ_m R_m x_{T−m} with R_m the real form of
        # γ λ^m ⊙ Bᵀ, so with Σ = Σ_m R_m R_mᵀ, E‖v‖² = tr Σ and Var ‖v‖² = 2 tr Σ². The relative standard
        # error of the mean of `samples` draws is √(2 tr Σ² / samples) / tr Σ (0.34 % at r = 0.9 and 0.29 %
        # at r = 0.99 here, against the 2 % tolerance).
        lam = radius * np.exp(1j * np.asarray(params.theta))
        k = lam ** np.arange(steps)[:, None, None] * (np.asarray(params.b_re) + 1j * np.asarray(params.b_im))
        rows = np.concatenate([k.real, k.imag], axis=-1)  # [T, I, 2H]
        sigma = np.einsum("tia,tib->ab", rows, rows)
        se = math.sqrt(2 * np.sum(sigma**2) / samples) / np.trace(sigma)
        assert se <= MC_MAX_SE
        assert abs(np.trace(sigma) * (1 - r**2) / expected_xb - 1) <= 1e-8  # T long enough

        plain, normalized = white_noise_final_carries(forms, params, samples, steps, jax.random.key(1))
        ratios = []
        for carry, want in ((plain, expected_xb / (1 - r**2)), (normalized, expected_xb)):
            mean = float(jnp.mean(jnp.sum(carry.h**2 + carry.h_im**2, axis=-1)))
            ratios.append(mean / want)
        print(f"\nLRU r={r}, T={steps}, {samples} sequences (SE {se:.2%}): E‖s_T‖² / Proposition 3 = "
              f"{ratios[0]:.4f} (normalize=False), {ratios[1]:.4f} (normalize=True)")  # fmt: skip
        assert all(abs(ratio - 1) <= MC_REL_TOL for ratio in ratios)


# --------------------------------------------------------------------------------------------------
# 8: initialisation


def test_lru_ring_initialisation():
    r_min, r_max, max_phase = 0.4, 0.8, math.pi / 3
    cell = cells.lru(512, r_min=r_min, r_max=r_max, max_phase=max_phase, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), I)
    radius = np.exp(-np.exp(np.asarray(params.nu)))
    theta = np.asarray(params.theta)
    assert np.all((radius >= r_min - TOL_F64) & (radius <= r_max + TOL_F64))
    assert np.all((theta >= 0) & (theta <= max_phase))
    # uniform on the ring's area: |λ|² ~ U[r_min², r_max²], mean and standard error of 512 draws
    mean, se = (r_min**2 + r_max**2) / 2, (r_max**2 - r_min**2) / math.sqrt(12 * radius.size)
    assert abs(np.mean(radius**2) - mean) <= 5 * se
    n = radius.size
    assert [np.shape(a) for a in params] == [(n,), (n,), (I, n), (I, n), (n, n), (n, n), (I, n)]


def test_orthogonal_initialisation_is_a_block_rotation():
    hidden = 7  # odd: the last unit is outside every 2×2 block
    cell = cells.orthogonal(hidden, dtype=jnp.float64)
    params = cell.init(jax.random.key(2), I)
    assert [np.shape(a) for a in params] == [(I, hidden), (hidden, hidden), (hidden,)]
    w = np.asarray(cell.recurrent_matrices(params)["h"])
    assert np.max(np.abs(w.T @ w - np.eye(hidden))) <= ORTHOGONALITY_F64
    # W = expm of the 2×2 blocks [[0, s], [−s, 0]]: the rotations [[cos s, sin s], [−sin s, cos s]]
    a = np.asarray(params.a)
    s = a[np.arange(0, hidden - 1, 2), np.arange(1, hidden, 2)]
    assert np.all(np.abs(s) <= math.pi)
    want = np.eye(hidden)  # an odd H leaves the last unit alone
    for j, angle in enumerate(s):
        want[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = [
            [np.cos(angle), np.sin(angle)],
            [-np.sin(angle), np.cos(angle)],
        ]
    assert np.max(np.abs(w - want)) <= ORTHOGONALITY_F64


@pytest.mark.parametrize("kind, blocks", [("mingru", 2), ("minlstm", 3)])
def test_min_cell_param_shapes(kind, blocks):
    cell = cells.make(kind, H, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), I)
    assert {f: np.shape(a) for f, a in params._asdict().items()} == {
        "w_ih": (I, blocks * H),
        "b": (blocks * H,),
    }
    assert all(a.dtype == jnp.float64 for a in params)
    assert len(cell.gates) == blocks and cell.memory_gate == "keep"


# --------------------------------------------------------------------------------------------------
# 9: bad input


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: cells.lru(4, r_max=1.0), ValueError, r"^r_max: expected a number in \[0, 1\)"),
        (lambda: cells.lru(4, r_min=-0.1), ValueError, r"^r_min"),
        (lambda: cells.lru(4, r_min=0.9, r_max=0.5), ValueError, r"^r_min: expected at most r_max=0.5"),
        (lambda: cells.lru(4, max_phase=-1.0), ValueError, r"^max_phase"),
        (lambda: cells.lru(4, normalize="yes"), ValueError, r"^normalize: expected True or False"),
        (lambda: cells.lru(4, scan="parallel"), ValueError, r"^scan: expected None or one of"),
        (lambda: cells.orthogonal(4, activation="relu"), ValueError, r"^activation: expected one of"),
        (lambda: cells.mingru(4, scan="parallel"), ValueError, r"^scan: expected None or one of"),
        (lambda: cells.minlstm(4, scan="parallel"), ValueError, r"^scan: expected None or one of"),
        (lambda: cells.mingru(0), ValueError, r"^hidden_size: expected a positive int"),
        (lambda: cells.orthogonal(4, dtype=jnp.int32), TypeError, r"^dtype: expected a floating-point"),
        (lambda: cells.make("lru", 4).init(jax.random.key(0), 0), ValueError, r"^input_size"),
    ],
)
def test_constructors_refuse_bad_options_naming_them(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_params_of_the_wrong_kind_or_shape_are_refused_naming_the_field():
    lru = cells.lru(H, dtype=jnp.float64)
    params = lru.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    with pytest.raises(ValueError, match=rf"^params\.b_im: expected shape \({I}, {H}\)"):
        rnnjax.unroll(lru, params._replace(b_im=jnp.ones((I, H + 1))), xs)
    with pytest.raises(ValueError, match=rf"^params\.c_re: expected shape \({H}, {H}\)"):
        lru.step(params._replace(c_re=jnp.ones((H, 2))), lru.initial_carry((B,), jnp.float64), xs[:, 0])
    mingru = cells.mingru(H, dtype=jnp.float64)
    with pytest.raises(TypeError, match=r"^params: a lru cell expected LRUParams"):
        rnnjax.unroll(lru, mingru.init(jax.random.key(0), I), xs)
    with pytest.raises(ValueError, match=rf"^params\.b: expected shape \({2 * H},\)"):
        rnnjax.unroll(mingru, mingru.init(jax.random.key(0), I)._replace(b=jnp.ones(3 * H)), xs)
    with pytest.raises(TypeError, match=r"^carry: lru cell expected a LRUCarry"):
        rnnjax.unroll(lru, params, xs, mingru.initial_carry((B,)))
    with pytest.raises(ValueError, match=r"^kind: expected one of") as raised:
        cells.make("nosuch", 4)
    for kind in ("simple", "lstm", "gru", "orthogonal", "lru", "mingru", "minlstm"):
        assert repr(kind) in str(raised.value)


def test_model_refuses_lru_layer_params_of_another_input_size_naming_them():
    cell = cells.lru(H, dtype=jnp.float64)
    model = models.language_model(V, cell, num_layers=2, embed_size=3)
    tokens = jnp.zeros((B, T), int)
    shapes = jax.eval_shape(model.init, jax.random.key(0), tokens)["params"]  # the checks fail before compute
    params = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    params = {**params, "rnn": {**params["rnn"], "layer_1": cell.init(jax.random.key(1), H + 1)}}
    with pytest.raises(ValueError, match=r"^params\['rnn'\]\['layer_1'\]"):
        model.apply({"params": params}, tokens)
