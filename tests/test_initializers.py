"""Initialisers and presets (`rnnjax.initializers` through the cell constructors) against independent
references: the real Flax linen cells, the formulas Keras and PyTorch document (checked with
Kolmogorov–Smirnov tests against SciPy distributions), and NumPy linear algebra for orthogonality,
identity blocks, gain and spectral radius. Every random draw uses a fixed seed, so the KS p-values
are deterministic: a failure is a real mismatch, never flakiness."""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rnnjax import cells
from rnnjax import initializers as rinit

# Significance level of the KS tests that must *accept* (same distribution). The seeds are fixed, so
# each p-value is a fixed number; under the null it is uniform, so 1e-3 wrongly fails ~0.1% of
# seed choices, while the sample sizes below (thousands of entries) make any real mismatch of scale,
# shape or support give p far below it.
KS_ALPHA = 1e-3
# The negative controls must reject with p below this: proof that the KS tests have power here.
KS_REJECT = 1e-8
# float64 orthogonality: |WᵀW − I| entrywise, exact up to rounding.
ORTHO_TOL = 1e-12
# float64 spectral radius from np.linalg.eigvals vs the requested radius.
RADIUS_TOL = 1e-10
# float64 jit vs eager init (same ops, possibly different fusion).
JIT_TOL = 1e-12
# A gate block of a fused semi-orthogonal (H, G·H) matrix is far from orthogonal: for G ≥ 3 its
# singular values spread over [0, 1]; require max |BᵀB − I| to exceed this.
NOT_ORTHO_MARGIN = 0.3
# max|w| of n ≥ 6000 U(±L) draws lies within L·(1 − this) of L except with probability
# (1 − 2e-3)^n < 1e-5.
BOUND_GAP = 2e-3

H = 64  # hidden size: large enough that each matrix gives thousands of samples
I = 48  # input size ≠ H, so a fan_in/fan_out mix-up changes the distribution
SEEDS = range(4)  # rnnjax draws; pooled across seeds for power
KERNEL_SEEDS = range(2)  # glorot input kernels: ≥ 6000 entries each already (and keras' fused QR is slow)
FLAX_SEEDS = range(1000, 1004)  # disjoint from SEEDS so the two samples are independent
NUM_BLOCKS = {"simple": 1, "lstm": 4, "gru": 3}
KINDS = list(NUM_BLOCKS)
F64 = jnp.float64


def make_cell(kind, h=H, **kwargs):
    """An rnnjax cell of `kind` in float64; the GRU in its reset-after form (which has b_hn)."""
    if kind == "simple":
        return cells.simple(h, "tanh", dtype=F64, **kwargs)
    if kind == "lstm":
        return cells.lstm(h, dtype=F64, **kwargs)
    return cells.gru(h, reset_after=True, dtype=F64, **kwargs)


def init_params(kind, seed, h=H, **kwargs):
    """Params of an rnnjax cell as a dict of float64 NumPy arrays (None fields dropped)."""
    return dict(_init_params(kind, seed, h, tuple(sorted(kwargs.items()))))


@functools.cache
def _init_params(kind, seed, h, kwargs):
    # Cached: several tests look at the same draw, and QR of tall matrices is slow on small CPUs.
    params = make_cell(kind, h, **dict(kwargs)).init(jax.random.key(seed), I)
    out = {k: np.asarray(v, np.float64) for k, v in params._asdict().items() if v is not None}
    for v in out.values():
        v.flags.writeable = False
    return tuple(out.items())


def pooled(kind, field, seeds=SEEDS, **kwargs):
    """All entries of one param field, pooled over seeds: 1-D float64 array."""
    return np.concatenate([init_params(kind, s, **kwargs)[field].ravel() for s in seeds])


def gate_blocks(w, g):
    """Split the last axis of a fused kernel/bias into its g gate blocks."""
    return np.split(np.asarray(w), g, axis=-1)


def orthogonality_error(m):
    """max |MᵀM − I| and max |MMᵀ − I| for a square matrix, in NumPy float64."""
    m = np.asarray(m, np.float64)
    eye = np.eye(m.shape[0])
    return max(np.max(np.abs(m.T @ m - eye)), np.max(np.abs(m @ m.T - eye)))


def np_spectral_radius(m):
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(m, np.float64)))))


def torch_uniform(h=H):
    a = 1.0 / math.sqrt(h)
    return stats.uniform(loc=-a, scale=2 * a)


def torch_triangular(h=H):
    """The sum of two independent U(±a), a = 1/√H: triangular on (−2a, 2a) with its mode at 0."""
    a = 1.0 / math.sqrt(h)
    return stats.triang(c=0.5, loc=-2 * a, scale=4 * a)


def glorot_fused(g):
    """Keras' glorot_uniform on the fused (I, G·H) input kernel: U(±sqrt(6 / (I + G·H)))."""
    limit = math.sqrt(6.0 / (I + g * H))
    return limit, stats.uniform(loc=-limit, scale=2 * limit)


# ---------------------------------------------------------------------------------------------
# "flax": against the real flax.linen cells.

FLAX_CELLS = {
    # kind: (cell class, input Dense names, recurrent Dense names), gates in rnnjax's order
    "simple": (nn.SimpleCell, ["i"], ["h"]),
    "lstm": (nn.LSTMCell, ["ii", "if", "ig", "io"], ["hi", "hf", "hg", "ho"]),
    "gru": (nn.GRUCell, ["ir", "iz", "in"], ["hr", "hz", "hn"]),
}


@functools.cache
def flax_params(kind, seed):
    cls, _, _ = FLAX_CELLS[kind]
    cell = cls(features=H, param_dtype=jnp.float64)
    x = jnp.zeros((I,), jnp.float64)
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    return jax.tree_util.tree_map(np.asarray, cell.init(jax.random.key(seed), carry, x)["params"])


@pytest.mark.parametrize("kind", KINDS)
def test_flax_preset_input_kernel_matches_flax_in_distribution(kind):
    _, ins, _ = FLAX_CELLS[kind]
    ours = pooled(kind, "w_ih", preset="flax")
    theirs = np.concatenate(
        [flax_params(kind, s)[name]["kernel"].ravel() for s in FLAX_SEEDS for name in ins]
    )
    assert ours.size == theirs.size
    p = stats.ks_2samp(ours, theirs).pvalue
    assert p > KS_ALPHA, f"rnnjax flax-preset W_ih differs from flax.linen's: KS p={p:.3g}"
    # Negative control: the same test tells Flax's lecun_normal from the default preset's glorot.
    p_glorot = stats.ks_2samp(pooled(kind, "w_ih", preset="default"), theirs).pvalue
    assert p_glorot < KS_REJECT, f"KS cannot tell lecun_normal from glorot_uniform: p={p_glorot:.3g}"


@pytest.mark.parametrize("kind", KINDS)
def test_flax_preset_recurrent_blocks_orthogonal_and_biases_zero_like_flax(kind):
    _, ins, recs = FLAX_CELLS[kind]
    g = NUM_BLOCKS[kind]
    for seed, flax_seed in zip(SEEDS[:2], FLAX_SEEDS[:2]):
        ours = init_params(kind, seed, preset="flax")
        theirs = flax_params(kind, flax_seed)
        for block in gate_blocks(ours["w_hh"], g):
            assert orthogonality_error(block) < ORTHO_TOL
        for name in recs:
            assert orthogonality_error(theirs[name]["kernel"]) < ORTHO_TOL
        # Flax's biases (on whichever Dense layers have them) are all zero, and so are ours,
        # including the LSTM forget gate (Flax adds no forget bias) and the GRU's b_hn.
        flax_biases = [
            leaf for path, leaf in jax.tree_util.tree_leaves_with_path(theirs) if path[-1].key == "bias"
        ]
        assert flax_biases and all(np.all(b == 0) for b in flax_biases)
        assert np.all(ours["b"] == 0)
        if kind == "gru":
            assert ours["b_hn"].shape == theirs["hn"]["bias"].shape
            assert np.all(ours["b_hn"] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_flax_preset_recurrent_entries_match_flax_in_distribution(kind):
    # Each gate block is a Haar-orthogonal (H, H) matrix in both; compare the pooled entries.
    _, _, recs = FLAX_CELLS[kind]
    ours = pooled(kind, "w_hh", preset="flax")
    theirs = np.concatenate(
        [flax_params(kind, s)[name]["kernel"].ravel() for s in FLAX_SEEDS for name in recs]
    )
    p = stats.ks_2samp(ours, theirs).pvalue
    assert p > KS_ALPHA, f"rnnjax flax-preset W_hh entries differ from flax.linen's: KS p={p:.3g}"


# ---------------------------------------------------------------------------------------------
# "keras" and "default": glorot_uniform on the fused input kernel.


@pytest.mark.parametrize("preset", ["keras", "default"])
@pytest.mark.parametrize("kind", KINDS)
def test_glorot_input_kernel_on_fused_matrix(kind, preset):
    g = NUM_BLOCKS[kind]
    limit, dist = glorot_fused(g)
    w = pooled(kind, "w_ih", seeds=KERNEL_SEEDS, preset=preset)
    assert w.size >= 6000
    assert np.max(np.abs(w)) <= limit
    assert np.max(np.abs(w)) >= limit * (1 - BOUND_GAP)
    p = stats.kstest(w, dist.cdf).pvalue
    assert p > KS_ALPHA, f"W_ih is not U(±{limit:.4g}): KS p={p:.3g}"
    if g > 1:
        # Negative control: glorot applied per (I, H) gate block would have a wider limit.
        per_gate = math.sqrt(6.0 / (I + H))
        p_gate = stats.kstest(w, stats.uniform(loc=-per_gate, scale=2 * per_gate).cdf).pvalue
        assert p_gate < KS_REJECT


@pytest.mark.parametrize("kind", KINDS)
def test_keras_recurrent_kernel_orthogonal_on_fused_matrix(kind):
    g = NUM_BLOCKS[kind]
    for seed in KERNEL_SEEDS:
        w = init_params(kind, seed, preset="keras")["w_hh"]  # (H, G·H)
        # Rows orthonormal: W Wᵀ = I_H.
        assert np.max(np.abs(w @ w.T - np.eye(H))) < ORTHO_TOL
        if g == 1:
            assert orthogonality_error(w) < ORTHO_TOL
        else:
            # ... so the gate blocks are not orthogonal themselves (Σ_k B_k B_kᵀ = I).
            for block in gate_blocks(w, g):
                assert np.max(np.abs(block.T @ block - np.eye(H))) > NOT_ORTHO_MARGIN


@pytest.mark.parametrize("preset", ["keras", "default"])
@pytest.mark.parametrize("kind", KINDS)
def test_keras_and_default_biases(kind, preset):
    params = init_params(kind, 0, preset=preset)
    expected = np.zeros(NUM_BLOCKS[kind] * H)
    if kind == "lstm":
        expected[H : 2 * H] = 1.0  # unit_forget_bias (Keras) / forget bias 1 (rnnjax default)
    np.testing.assert_array_equal(params["b"], expected)
    if kind == "gru":
        np.testing.assert_array_equal(params["b_hn"], np.zeros(H))


@pytest.mark.parametrize("kind", KINDS)
def test_default_recurrent_kernel_orthogonal_per_gate_block(kind):
    g = NUM_BLOCKS[kind]
    for seed in SEEDS[:3]:
        w = init_params(kind, seed, preset="default")["w_hh"]
        blocks = gate_blocks(w, g)
        for block in blocks:
            assert orthogonality_error(block) < ORTHO_TOL
        # Independent draws per gate: no two blocks coincide.
        for a in range(g):
            for b in range(a + 1, g):
                assert np.max(np.abs(blocks[a] - blocks[b])) > NOT_ORTHO_MARGIN


def test_default_lstm_forget_bias_is_one_and_overridable():
    key = jax.random.key(3)
    base = cells.lstm(H, dtype=F64).init(key, I)
    zero = cells.lstm(H, forget_bias=0.0, dtype=F64).init(key, I)
    np.testing.assert_array_equal(
        np.asarray(base.b) - np.asarray(zero.b), np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)]
    )


# ---------------------------------------------------------------------------------------------
# "pytorch": every weight U(±1/√H); biases are b_ih + b_hh, a sum of two uniforms.


@pytest.mark.parametrize("field", ["w_ih", "w_hh"])
@pytest.mark.parametrize("kind", KINDS)
def test_pytorch_weights_uniform(kind, field):
    w = pooled(kind, field, preset="pytorch")
    a = 1.0 / math.sqrt(H)
    assert np.max(np.abs(w)) <= a
    assert np.max(np.abs(w)) >= a * (1 - BOUND_GAP)
    p = stats.kstest(w, torch_uniform().cdf).pvalue
    assert p > KS_ALPHA, f"{field} is not U(±1/√H): KS p={p:.3g}"


def triangular_cdf(x, h=H):
    """CDF of U(±a) + U(±a), a = 1/√h, written out (independent of scipy.stats.triang)."""
    t = np.clip(np.asarray(x) / (2.0 / math.sqrt(h)), -1.0, 1.0)  # support mapped to [-1, 1]
    return np.where(t < 0, 0.5 * (1 + t) ** 2, 1 - 0.5 * (1 - t) ** 2)


BIAS_SEEDS = range(24)  # biases are small (G·H entries per draw): pool more seeds


@pytest.mark.parametrize("kind", ["simple", "lstm"])
def test_pytorch_bias_is_sum_of_two_uniforms(kind):
    b = pooled(kind, "b", seeds=BIAS_SEEDS, preset="pytorch")
    assert np.max(np.abs(b)) < 2.0 / math.sqrt(H)
    p = stats.kstest(b, torch_triangular().cdf).pvalue
    p_formula = stats.kstest(b, triangular_cdf).pvalue
    assert p > KS_ALPHA, f"bias is not triangular on ±2/√H: KS p={p:.3g}"
    assert p_formula == pytest.approx(p, rel=1e-9)  # scipy's triang and the written CDF agree
    # Negative control: the bias is NOT a single U(±1/√H).
    p_single = stats.kstest(b, torch_uniform().cdf).pvalue
    assert p_single < KS_REJECT, f"KS cannot tell the summed bias from one uniform: p={p_single:.3g}"


def test_pytorch_gru_biases():
    params = [init_params("gru", s, preset="pytorch") for s in BIAS_SEEDS]
    rz = np.concatenate([p["b"][: 2 * H] for p in params])  # b_ir + b_hr, b_iz + b_hz
    n = np.concatenate([p["b"][2 * H :] for p in params])  # b_in only
    hn = np.concatenate([p["b_hn"] for p in params])  # b_hn only
    assert stats.kstest(rz, torch_triangular().cdf).pvalue > KS_ALPHA
    for single in (n, hn):
        assert np.max(np.abs(single)) <= 1.0 / math.sqrt(H)
        assert stats.kstest(single, torch_uniform().cdf).pvalue > KS_ALPHA
        assert stats.kstest(single, torch_triangular().cdf).pvalue < KS_REJECT
    assert stats.kstest(rz, torch_uniform().cdf).pvalue < KS_REJECT


def test_pytorch_lstm_forget_bias_zero():
    # Two ways: the preset's forget block equals an explicit forget_bias=0.0 draw from the same key,
    # and it has the same (zero-centred triangular) distribution as the other gate blocks.
    key = jax.random.key(11)
    default = cells.lstm(H, preset="pytorch", dtype=F64).init(key, I)
    explicit = cells.lstm(H, preset="pytorch", forget_bias=0.0, dtype=F64).init(key, I)
    np.testing.assert_array_equal(np.asarray(default.b), np.asarray(explicit.b))
    forget = np.concatenate([init_params("lstm", s, preset="pytorch")["b"][H : 2 * H] for s in BIAS_SEEDS])
    assert stats.kstest(forget, torch_triangular().cdf).pvalue > KS_ALPHA


# ---------------------------------------------------------------------------------------------
# blockwise, identity, gain, spectral radius.


@pytest.mark.parametrize("g", [1, 3, 4])
def test_blockwise_orthogonal_makes_each_block_orthogonal(g):
    w = rinit.blockwise(rinit.orthogonal(), g)(jax.random.key(5), (H, g * H), F64)
    assert w.shape == (H, g * H)
    for block in gate_blocks(w, g):
        assert orthogonality_error(block) < ORTHO_TOL
    # Contrast: plain orthogonal on the fused matrix (g > 1) is only row-orthonormal.
    if g > 1:
        fused = np.asarray(rinit.orthogonal()(jax.random.key(5), (H, g * H), F64))
        assert np.max(np.abs(fused @ fused.T - np.eye(H))) < ORTHO_TOL
        assert all(np.max(np.abs(b.T @ b - np.eye(H))) > NOT_ORTHO_MARGIN for b in gate_blocks(fused, g))


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("kind", KINDS)
def test_identity_recurrent_init_gives_identity_blocks(kind, scale):
    g = NUM_BLOCKS[kind]
    w = init_params(kind, 0, recurrent_init=rinit.identity(scale))["w_hh"]
    np.testing.assert_array_equal(w, np.tile(scale * np.eye(H), (1, g)))


@pytest.mark.parametrize("gain", [0.5, 1.7, 0.0])
@pytest.mark.parametrize("preset", ["default", "pytorch"])
@pytest.mark.parametrize("kind", KINDS)
def test_gain_multiplies_recurrent_kernel_exactly(kind, preset, gain):
    one = init_params(kind, 4, preset=preset)
    scaled = init_params(kind, 4, preset=preset, gain=gain)
    np.testing.assert_array_equal(scaled["w_hh"], gain * one["w_hh"])
    for field in one:
        if field != "w_hh":
            np.testing.assert_array_equal(scaled[field], one[field])


@pytest.mark.parametrize("rho", [0.9, 1.3])
@pytest.mark.parametrize("kind", KINDS)
def test_spectral_radius_of_orthogonal_blocks(kind, rho):
    # An orthogonal block rescaled to radius ρ has *every* |eigenvalue| = ρ (and is ρ·orthogonal).
    g = NUM_BLOCKS[kind]
    w = init_params(kind, 6, spectral_radius=rho)["w_hh"]
    for block in gate_blocks(w, g):
        assert np.max(np.abs(np.abs(np.linalg.eigvals(block)) - rho)) < RADIUS_TOL
        assert orthogonality_error(block / rho) < ORTHO_TOL


@pytest.mark.parametrize("rho", [0.9, 1.3])
@pytest.mark.parametrize("kind", KINDS)
def test_spectral_radius_of_non_normal_blocks(kind, rho):
    # PyTorch's uniform W_hh is not normal: the radius is max |eigvals|, and each block must be the
    # unscaled block times ρ / radius(unscaled block) (rescaled, not redrawn). gain is overridden.
    g = NUM_BLOCKS[kind]
    raw = init_params(kind, 7, preset="pytorch")["w_hh"]
    w = init_params(kind, 7, preset="pytorch", spectral_radius=rho, gain=3.0)["w_hh"]
    for block, raw_block in zip(gate_blocks(w, g), gate_blocks(raw, g)):
        assert abs(np_spectral_radius(block) - rho) < RADIUS_TOL
        expected = raw_block * (rho / np_spectral_radius(raw_block))
        assert np.max(np.abs(block - expected)) < RADIUS_TOL * np.max(np.abs(expected))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_spectral_radius_under_jit_and_vmap(kind):
    # Same draw as test_spectral_radius_of_non_normal_blocks (eager, cached), now under jit and vmap.
    rho, seed = 0.9, 7
    g = NUM_BLOCKS[kind]
    kwargs = dict(preset="pytorch", spectral_radius=rho, gain=3.0)
    cell = make_cell(kind, **kwargs)
    eager = init_params(kind, seed, **kwargs)
    jitted = jax.jit(cell.init, static_argnums=1)(jax.random.key(seed), I)
    for field, value in eager.items():
        assert np.max(np.abs(np.asarray(getattr(jitted, field)) - value)) < JIT_TOL
    for block in gate_blocks(jitted.w_hh, g):
        assert abs(np_spectral_radius(block) - rho) < RADIUS_TOL
    if kind == "lstm":  # vmap over keys (the eigenvalue callback runs once per key)
        seeds = [seed, 0]
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        batched = jax.jit(jax.vmap(lambda k: cell.init(k, I)))(keys)
        for i, s in enumerate(seeds):
            single = init_params(kind, s, **kwargs)["w_hh"]
            assert np.max(np.abs(np.asarray(batched.w_hh[i]) - single)) < JIT_TOL
            for block in gate_blocks(batched.w_hh[i], g):
                assert abs(np_spectral_radius(block) - rho) < RADIUS_TOL


def test_spectral_radius_zero_and_zero_blocks():
    w = init_params("lstm", 9, spectral_radius=0.0)["w_hh"]
    np.testing.assert_array_equal(w, np.zeros((H, 4 * H)))
    # A zero gate block is left at zero (no 0/0), the others are rescaled.
    m = np.array(rinit.blockwise(rinit.orthogonal(), 2)(jax.random.key(1), (H, 2 * H), F64))
    m[:, H:] = 0.0
    out = np.asarray(rinit.rescale_recurrent(jnp.asarray(m), 2, radius=0.5))
    np.testing.assert_array_equal(out[:, H:], np.zeros((H, H)))
    assert abs(np_spectral_radius(out[:, :H]) - 0.5) < RADIUS_TOL


def test_spectral_radius_function_against_triangular_matrix():
    # Eigenvalues of a triangular matrix are its diagonal: radius = max |diag|, no eigensolver needed.
    rng = np.random.default_rng(0)
    diag = rng.uniform(-2.0, 2.0, size=H)
    m = np.triu(rng.normal(size=(H, H)), 1) + np.diag(diag)
    got = float(rinit.spectral_radius(jnp.asarray(m)))
    assert abs(got - np.max(np.abs(diag))) < RADIUS_TOL
    # and a general non-symmetric matrix, against NumPy's eigvals, also under jit
    g = rng.normal(size=(H, H))
    got_jit = float(jax.jit(rinit.spectral_radius)(jnp.asarray(g)))
    assert abs(got_jit - np_spectral_radius(g)) < RADIUS_TOL * np_spectral_radius(g)


# ---------------------------------------------------------------------------------------------
# Bad options raise ValueError naming the argument.


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_preset_raises(kind):
    with pytest.raises(ValueError, match="preset"):
        make_cell(kind, preset="torch")
    with pytest.raises(ValueError, match="preset"):
        rinit.preset("Keras")


@pytest.mark.parametrize("bad", [-0.5, float("nan")])
@pytest.mark.parametrize("kind", KINDS)
def test_negative_gain_raises(kind, bad):
    with pytest.raises(ValueError, match="gain"):
        make_cell(kind, gain=bad)


@pytest.mark.parametrize("bad", [-0.5, float("nan")])
@pytest.mark.parametrize("kind", KINDS)
def test_negative_spectral_radius_raises(kind, bad):
    with pytest.raises(ValueError, match="spectral_radius"):
        make_cell(kind, spectral_radius=bad)


def test_rescale_recurrent_negative_radius_raises():
    with pytest.raises(ValueError, match="spectral_radius"):
        rinit.rescale_recurrent(jnp.eye(3), 1, radius=-1.0)


def test_numpy_scalar_options_accepted():
    # gain and spectral_radius given as NumPy float32 scalars (e.g. from a float32 config array) are
    # valid non-negative numbers and must act like the Python floats of the same value.
    # Currently FAILS: the checks use isinstance(x, (int, float)), so np.float32(0.5) is rejected with
    # "gain: expected a non-negative number, got np.float32(0.5)".
    # (Built directly, not through the init_params cache, where np.float32(0.5) == 0.5 would hit.)
    key = jax.random.key(2)
    want = cells.lstm(H, gain=0.5, dtype=F64).init(key, I)
    got = cells.lstm(H, gain=np.float32(0.5), dtype=F64).init(key, I)
    np.testing.assert_array_equal(np.asarray(got.w_hh), np.asarray(want.w_hh))
    want = cells.lstm(H, spectral_radius=0.75, dtype=F64).init(key, I)
    got = cells.lstm(H, spectral_radius=np.float32(0.75), dtype=F64).init(key, I)
    np.testing.assert_array_equal(np.asarray(got.w_hh), np.asarray(want.w_hh))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_uniform_nonpositive_limit_raises(bad):
    with pytest.raises(ValueError, match="limit"):
        rinit.uniform(bad)


def test_jitted_orthogonal_inits_never_hang():
    """Regression: two independent batched QRs in one jit deadlocked XLA:CPU's 2-thread pool (jaxlib
    0.10.2, `jnp.linalg.qr`); `initializers.orthogonal` computes its QR on the host and must finish. Run in
    a subprocess so that a hang fails this test by timeout instead of stalling the suite."""
    import subprocess
    import sys

    code = (
        "import jax\n"
        "from rnnjax import cells, initializers as init\n"
        "qr = init._host_qr_q\n"
        "f = jax.jit(lambda a, b: (qr(a).sum(), qr(b).sum()))  # two independent batched QRs\n"
        "a = jax.random.normal(jax.random.key(0), (64, 64, 64)); b = a + 1\n"
        "g = jax.jit(jax.vmap(lambda k: cells.lstm(32).init(k, 8)))  # one QR per gate, batched\n"
        "for i in range(300):\n"
        "    jax.block_until_ready((f(a, b), g(jax.random.split(jax.random.key(i), 4))))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
