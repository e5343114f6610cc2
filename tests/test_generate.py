"""Text generation: the compiled scan (prompt read once, one token per step, carries threaded) against a
plain Python loop that re-runs the full model on the growing sequence at every step; the filters against
a NumPy implementation written with explicit loops; sampling frequencies against the filtered softmax."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rnnjax import cells, models
from rnnjax import generate as gen
from rnnjax.data.text import Vocabulary, char_tokens, word_tokens

# float64 throughout; the scan (one token at a time with carries) and the loop (whole sequence from
# zero carries) differ only by rounding.
TOL_F64 = 1e-10
# Frequencies of N samples lie within this many binomial standard deviations of the probabilities.
SIGMAS = 5.0

V = 11


# ------------------------------------------------------------------------------------------ helpers


def random_params(model, seed, dtype=np.float64):
    """Params of `model`'s structure drawn directly with NumPy (cheaper than `model.init`, and far from
    uniform logits): matrices N(0, 1.5 / sqrt(rows)), vectors N(0, 0.3)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"]
    rng = np.random.default_rng(seed)

    def draw(s):
        std = 1.5 / math.sqrt(s.shape[0]) if len(s.shape) == 2 else 0.3
        return jnp.asarray(rng.normal(0.0, std, s.shape).astype(dtype))

    return jax.tree_util.tree_map(draw, shapes)


@functools.cache
def make_model(cell="lstm", num_layers=2, seed=0):
    """A tiny float64 language model; one layer reads one-hot tokens, two layers an embedding."""
    model = models.language_model(
        V, cells.make(cell, 8), num_layers=num_layers, embed_size=None if num_layers == 1 else 5
    )
    return model, random_params(model, seed)


@functools.cache
def full_logits_fn(model):
    """Logits of a whole sequence from zero carries (carries=None), compiled once per input shape."""
    return jax.jit(lambda p, toks: model.apply({"params": p}, toks)[0])


def rerun_loop(model, params, prompt, length, choose, seed=0):
    """The obvious generator: at step t re-run the full model from zero carries on prompt + tokens so
    far, take the logits <float64>[B, V] at the last of those positions and let `choose(t, logits)` pick
    tokens <int>[B].

    The input always has P + L columns (one compile per test rather than one per step); the columns after
    the prefix are fresh random tokens at every step, so the result can only match if the model's logits
    at a position depend on nothing after it."""
    prompt = np.asarray(prompt)
    batch, p = prompt.shape
    junk = np.random.default_rng(seed)
    seq = prompt
    for t in range(length):
        filler = junk.integers(0, model.vocab_size, (batch, length - t))
        logits = np.asarray(full_logits_fn(model)(params, jnp.asarray(np.concatenate([seq, filler], 1))))
        token = np.asarray(choose(t, logits[:, p + t - 1]))
        seq = np.concatenate([seq, token[:, None]], axis=1)
    return seq[:, p:]  # (B, L)


def np_filtered_log_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """Temperature, then top-k, then top-p, row by row with explicit loops (NumPy and math only).

    Ranking: by logit descending, ties by lower id. Top-p walks that ranking adding the renormalised
    probabilities of the top-k set and stops at the first token where the total reaches p (top_p=1
    keeps them all)."""
    logits = np.asarray(logits, np.float64)
    out = np.full(logits.shape, -np.inf)
    for idx in np.ndindex(logits.shape[:-1]):
        row = [float(x) / temperature for x in logits[idx]]
        ranking = sorted(range(len(row)), key=lambda j: (-row[j], j))
        if top_k is not None:
            ranking = ranking[:top_k]
        m = max(row[j] for j in ranking)
        weight = {j: math.exp(row[j] - m) for j in ranking}
        total = sum(weight.values())
        kept, running = [], 0.0
        for j in ranking:
            kept.append(j)
            running += weight[j] / total
            if top_p is not None and top_p < 1 and running >= top_p:
                break
        log_z = math.log(sum(weight[j] for j in kept))
        for j in kept:
            out[idx + (j,)] = row[j] - m - log_z
    return out


def assert_same_log_probs(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))  # the same tokens removed
    finite = np.isfinite(want)
    assert np.max(np.abs(got[finite] - want[finite])) <= TOL_F64


PROMPTS = np.array([[3, 1, 4], [1, 5, 9], [2, 6, 5]])  # (B, P)


# ----------------------------------------------------------------------- generation vs re-run loop


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_greedy_equals_rerun_argmax_loop(cell, num_layers):
    model, params = make_model(cell, num_layers)
    length = 6
    got = gen.generate(model, params, PROMPTS, length, greedy=True)
    want = rerun_loop(model, params, PROMPTS, length, lambda t, logits: np.argmax(logits, axis=-1))
    assert got.shape == (len(PROMPTS), length) and got.dtype == jnp.int32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "cell, num_layers, options",
    [
        ("lstm", 2, dict(temperature=0.7, top_k=5, top_p=0.8)),
        ("gru", 1, dict(temperature=1.3, top_p=0.6)),
        ("simple", 2, dict(temperature=2.0)),
    ],
)
def test_sampling_equals_rerun_loop_with_the_documented_key_schedule(cell, num_layers, options):
    model, params = make_model(cell, num_layers, seed=1)
    key, length = jax.random.key(42), 6  # shapes as in the greedy test: its compiled loop is reused
    tokens, log_probs = gen.generate_with_log_probs(model, params, PROMPTS, length, key=key, **options)

    keys = jax.random.split(key, length)  # the schedule in the module docstring
    want_lp = []

    def choose(t, logits):
        lp = np_filtered_log_probs(logits, **options)
        want_lp.append(lp)
        return jax.random.categorical(keys[t], jnp.asarray(lp), axis=-1)

    want = rerun_loop(model, params, PROMPTS, length, choose)
    np.testing.assert_array_equal(tokens, want)
    assert_same_log_probs(log_probs, np.stack(want_lp, axis=1))  # (B, L, V)
    # every token has non-zero probability under the distribution it was drawn from
    chosen = np.take_along_axis(np.asarray(log_probs), np.asarray(tokens)[..., None], axis=-1)
    assert np.all(np.isfinite(chosen))


# The sampling tests below share compiled generators (same model configuration, shapes and filters
# switched on; the filter values themselves are traced, not compiled in), which keeps this file fast.


def test_generate_returns_the_tokens_of_generate_with_log_probs():
    model, params = make_model("lstm", 2, seed=2)
    options = dict(key=jax.random.key(3), temperature=0.9, top_k=4, top_p=0.95)
    tokens, _ = gen.generate_with_log_probs(model, params, PROMPTS, 6, **options)
    np.testing.assert_array_equal(gen.generate(model, params, PROMPTS, 6, **options), tokens)


def test_single_token_prompt_equals_rerun_argmax_loop():
    model, params = make_model("lstm", 2, seed=5)  # with P = 1 the scan starts from zero carries
    got = gen.generate(model, params, PROMPTS[:, :1], 6, greedy=True)
    want = rerun_loop(model, params, PROMPTS[:, :1], 6, lambda t, logits: np.argmax(logits, axis=-1))
    np.testing.assert_array_equal(got, want)


def test_top_k_one_and_tiny_top_p_equal_greedy():
    model, params = make_model("lstm", 2, seed=4)
    greedy = gen.generate(model, params, PROMPTS, 6, greedy=True)
    for options in (dict(top_k=1, top_p=1.0, temperature=0.3), dict(top_k=V, top_p=1e-9, temperature=3.0)):
        sampled = gen.generate(model, params, PROMPTS, 6, key=jax.random.key(5), **options)
        np.testing.assert_array_equal(sampled, greedy)


def test_float32_model_and_legacy_key():
    model = models.language_model(V, cells.make("lstm", 8), num_layers=1, embed_size=4)
    params = {"params": random_params(model, 0, np.float32)}  # the variables dict is accepted too
    out, lp = gen.generate_with_log_probs(model, params, PROMPTS, 4, key=jax.random.PRNGKey(0), top_k=4)
    assert out.shape == (3, 4) and out.dtype == jnp.int32
    assert np.all((np.asarray(out) >= 0) & (np.asarray(out) < V))
    assert lp.dtype == jnp.float32 and np.all(np.isfinite(lp).sum(axis=-1) == 4)


def test_changing_filter_values_does_not_recompile():
    if not hasattr(gen._generate, "_cache_size"):
        pytest.skip("jax.jit object without _cache_size")
    model, params = make_model("lstm", 2, seed=6)
    key = jax.random.key(0)
    gen.generate(model, params, PROMPTS, 6, key=key, temperature=0.5, top_k=2, top_p=0.5)
    size = gen._generate._cache_size()
    for t, k, p in [(0.9, 4, 0.7), (2.0, 11, 0.99), (1.0, 1, 1.0)]:
        gen.generate(model, params, PROMPTS, 6, key=key, temperature=t, top_k=k, top_p=p)
    assert gen._generate._cache_size() == size


# ------------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.3])
@pytest.mark.parametrize("top_k", [None, 1, 3, V])
@pytest.mark.parametrize("top_p", [None, 0.3, 0.9, 1.0])
def test_filters_equal_numpy_loops(temperature, top_k, top_p):
    logits = np.random.default_rng(7).normal(0.0, 2.0, (5, 4, V))
    logits[0, 0] = [1, 3, 3, 0, 3, 3, -1, 2, 2, 0, 3]  # ties at the top and inside
    logits[0, 1] = 0.0  # all tied
    got = gen.filtered_log_probs(jnp.asarray(logits), temperature=temperature, top_k=top_k, top_p=top_p)
    assert_same_log_probs(got, np_filtered_log_probs(logits, temperature, top_k, top_p))
    np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, rtol=0, atol=TOL_F64)


def test_filter_edge_cases_by_hand():
    ties = jnp.array([1.0, 3.0, 3.0, 0.0, 3.0])
    lp = np.asarray(gen.filtered_log_probs(ties, top_k=2))  # the two lowest ids among the tied maxima
    np.testing.assert_array_equal(np.isfinite(lp), [False, True, True, False, False])
    np.testing.assert_allclose(lp[[1, 2]], math.log(0.5), rtol=0, atol=TOL_F64)
    lp = np.asarray(gen.filtered_log_probs(ties, top_k=1))  # top_k=1 is argmax, first of the ties
    assert np.flatnonzero(np.isfinite(lp)).tolist() == [int(np.argmax(ties))] == [1]

    four = jnp.zeros(4)  # probabilities exactly 1/4: the set {0, 1} reaches p = 1/2 exactly
    lp = np.asarray(gen.filtered_log_probs(four, top_p=0.5))
    np.testing.assert_array_equal(np.isfinite(lp), [True, True, False, False])
    lp = np.asarray(gen.filtered_log_probs(four, top_p=0.5000001))
    np.testing.assert_array_equal(np.isfinite(lp), [True, True, True, False])

    tail = jnp.array([0.0, -60.0, -800.0])  # running sum is 1.0 in float64 after the first token
    np.testing.assert_array_equal(gen.filtered_log_probs(tail, top_p=1.0), jax.nn.log_softmax(tail))
    assert np.isfinite(gen.filtered_log_probs(tail, top_p=0.999999)).tolist() == [True, False, False]

    x = jnp.asarray(np.random.default_rng(8).normal(0.0, 1.0, (5, 4, V)))  # shape as above: no recompile
    plain = jax.nn.log_softmax(x / 0.7)
    assert np.max(np.abs(gen.filtered_log_probs(x, temperature=0.7, top_k=V) - plain)) <= TOL_F64
    assert np.max(np.abs(gen.filtered_log_probs(x, temperature=0.7, top_p=1.0) - plain)) <= TOL_F64


@pytest.mark.parametrize(
    "options", [dict(temperature=0.8, top_k=6, top_p=0.9), dict(temperature=2.0, top_k=3, top_p=1.0)]
)
def test_first_token_frequencies_match_filtered_softmax(options):
    model, params = make_model("lstm", 2, seed=9)
    n = 20000
    prompts = np.tile(PROMPTS[:1], (n, 1))  # (N, P): N independent draws of the first token
    first = np.asarray(gen.generate(model, params, prompts, 1, key=jax.random.key(10), **options))[:, 0]
    # the reference logits after the prompt, from the full model on (3, 9) inputs (compiled for the
    # greedy test already); positions after the prompt do not affect them
    padded = np.concatenate([PROMPTS, np.zeros((3, 6), PROMPTS.dtype)], axis=1)
    logits = np.asarray(full_logits_fn(model)(params, jnp.asarray(padded)))[0, PROMPTS.shape[1] - 1]
    p = np.exp(np_filtered_log_probs(logits, **options))  # (V,)
    kept = p > 0
    assert 3 <= kept.sum() < V  # the filters remove something and leave a real choice
    counts = np.bincount(first, minlength=V)
    assert counts[~kept].sum() == 0  # filtered-out tokens never appear
    assert kept.sum() <= options["top_k"]
    freq = counts / n
    bound = SIGMAS * np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= bound), (freq, p, bound)
    assert stats.chisquare(counts[kept], n * p[kept]).pvalue > 1e-6


# --------------------------------------------------------------------------------------------- text

CHAR_TEXT = "hello world, hold the door"
WORD_TEXT = "the cat sat on the mat . the dog ran ! did the cat see ( the dog ) ?"


# The text tests share compiled generators where their shapes agree: keep prompt lengths and lengths.


@functools.cache
def char_setup():
    vocab = Vocabulary.build(char_tokens(CHAR_TEXT), unk=None)
    model = models.language_model(len(vocab), cells.make("gru", 12), num_layers=1, embed_size=6)
    return vocab, model, random_params(model, 11)


@functools.cache
def word_setup():
    vocab = Vocabulary.build(word_tokens(WORD_TEXT))  # with "<unk>" at id 0
    model = models.language_model(len(vocab), cells.make("lstm", 12), num_layers=2, embed_size=6)
    return vocab, model, random_params(model, 13)


def test_sample_text_char_round_trip():
    vocab, model, params = char_setup()
    ids = np.array([vocab.tokens.index(c) for c in "hello"])[None]  # encoded by hand
    want_ids = rerun_loop(model, params, ids, 12, lambda t, logits: np.argmax(logits, axis=-1))[0]
    want = "".join(vocab.tokens[i] for i in want_ids)
    got = gen.sample_text(model, params, vocab, "HeLLo", 12, level="char", lowercase=True, greedy=True)
    assert got == want and len(got) == 12
    both = gen.sample_text(
        model, params, vocab, "HeLLo", 12, lowercase=True, greedy=True, include_prompt=True
    )
    assert both == "hello" + want

    sampled = gen.sample_text(model, params, vocab, "hello", 30, seed=3, temperature=1.5)
    assert sampled == gen.sample_text(
        model, params, vocab, "hello", 30, key=jax.random.key(3), temperature=1.5
    )
    assert sampled != gen.sample_text(model, params, vocab, "hello", 30, seed=4, temperature=1.5)
    assert set(sampled) <= set(vocab.tokens)


def test_sample_text_word_round_trip():
    vocab, model, params = word_setup()
    prompt = ["the", "cat", "sat", "on"]
    prompt_ids = np.array([vocab.tokens.index(w) for w in prompt])  # encoded by hand
    no_unk = (vocab.unk_id,)  # sample_text leaves out the unknown token by default
    out = gen.generate(model, params, prompt_ids, 8, key=jax.random.key(15), temperature=1.5, exclude=no_unk)
    assert out.shape == (8,)  # a 1-D prompt is one row of a batch
    batch = gen.generate(model, params, prompt_ids[None], 8, key=jax.random.key(15), temperature=1.5,
                         exclude=no_unk)  # fmt: skip
    np.testing.assert_array_equal(out, batch[0])
    tokens = [vocab.tokens[i] for i in np.asarray(out)]
    got = gen.sample_text(
        model, params, vocab, "The  Cat\nSAT on", 8, level="word", lowercase=True, seed=15, temperature=1.5
    )
    assert got == gen.detokenize(tokens, "word")
    assert got.replace(" ", "") == "".join(tokens)  # only spaces are added between the tokens
    both = gen.sample_text(
        model, params, vocab, "the cat sat on", 8, level="word", seed=15, temperature=1.5, include_prompt=True
    )
    assert both == gen.detokenize(prompt + tokens, "word")


def test_sample_text_unknown_word_warns_and_reads_unk():
    vocab, model, params = word_setup()
    with pytest.warns(UserWarning, match=r"prompt: tokens \['zebra', 'quickly'\] are not in the vocabulary"):
        got = gen.sample_text(model, params, vocab, "the zebra sat quickly", 8, level="word", seed=16)
    ids = np.array([vocab.tokens.index("the"), 0, vocab.tokens.index("sat"), 0])  # 0 is "<unk>"
    assert vocab.tokens[0] == "<unk>"
    want = gen.generate(model, params, ids, 8, key=jax.random.key(16), exclude=(0,))
    assert got == gen.detokenize(vocab.decode(np.asarray(want)), "word")


@pytest.mark.parametrize("exclude", [(0,), (2, 7, 9)])
def test_excluded_tokens_equal_a_loop_over_masked_logits(exclude):
    model, params = make_model("lstm", 2)
    length = 6

    def masked(logits):  # the loop's own masking: excluded logits to -inf, then argmax
        logits = logits.copy()
        logits[:, list(exclude)] = -np.inf
        return logits

    want = rerun_loop(model, params, PROMPTS, length, lambda t, logits: np.argmax(masked(logits), axis=-1))
    got = gen.generate(model, params, PROMPTS, length, greedy=True, exclude=exclude)
    np.testing.assert_array_equal(got, want)
    # Sampling draws from the filtered softmax of the masked logits (the NumPy filter as the second way)
    options = dict(temperature=0.9, top_k=6, top_p=0.9)
    tokens, log_probs = gen.generate_with_log_probs(model, params, PROMPTS, 1, key=jax.random.key(5),
                                                    exclude=exclude, **options)  # fmt: skip
    first = np.asarray(full_logits_fn(model)(params, jnp.asarray(PROMPTS)))[:, -1]
    expected = np_filtered_log_probs(masked(first), **options)
    np.testing.assert_allclose(np.asarray(log_probs[:, 0]), expected, rtol=0, atol=TOL_F64)
    assert not set(np.asarray(tokens).ravel()) & set(exclude)


def test_sample_text_leaves_out_unk_unless_allowed():
    vocab, model, params = word_setup()
    readout = params["readout"]  # make "<unk>" (id 0) by far the likeliest next token
    params = {**params, "readout": readout._replace(b=readout.b.at[0].set(50.0))}
    default = gen.sample_text(model, params, vocab, "the cat", 20, level="word", seed=1)
    allowed = gen.sample_text(model, params, vocab, "the cat", 20, level="word", seed=1, allow_unk=True)
    assert "<unk>" not in default and default.strip()
    assert allowed.split() == ["<unk>"] * 20


def test_detokenize_by_hand():
    words = ["hello", ",", "world", "!", "(", "see", "this", ")", "and", "«", "that", "»", "."]
    assert gen.detokenize(words, "word") == "hello, world! (see this) and «that»."
    assert gen.detokenize(["a", " ", "b", "\n"], "char") == "a b\n"
    assert gen.detokenize([], "word") == ""


# ---------------------------------------------------------------------------------------- bad input


def _bad_generate_calls():
    model, params = make_model(num_layers=1)
    key = jax.random.key(0)
    good = dict(key=key)

    def call(prompt=PROMPTS, length=3, **kw):
        return lambda: gen.generate(model, params, prompt, length, **{**good, **kw})

    return [
        (call(length=0), ValueError, r"length: expected an int >= 1.*got 0"),
        (call(length=-2), ValueError, r"length: .*got -2"),
        (call(length=2.5), TypeError, r"length: .*got 2.5"),
        (call(length=True), TypeError, r"length: .*got True"),
        (call(temperature=0), ValueError, r"temperature: expected a finite number > 0, got 0"),
        (call(temperature=-1.0), ValueError, r"temperature: .*got -1.0"),
        (call(temperature=float("inf")), ValueError, r"temperature: .*got inf"),
        (call(temperature=float("nan")), ValueError, r"temperature: .*got nan"),
        (call(temperature="hot"), TypeError, r"temperature: expected a number > 0, got 'hot'"),
        (call(top_k=0), ValueError, r"top_k: expected None or an int in \[1, 11\].*got 0"),
        (call(top_k=V + 1), ValueError, r"top_k: .*got 12"),
        (call(top_k=2.0), TypeError, r"top_k: .*got 2.0"),
        (call(top_p=0.0), ValueError, r"top_p: expected None or a number in \(0, 1\], got 0.0"),
        (call(top_p=1.5), ValueError, r"top_p: .*got 1.5"),
        (call(top_p=float("nan")), ValueError, r"top_p: .*got nan"),
        (call(top_p="most"), TypeError, r"top_p: .*got 'most'"),
        (call(prompt=[]), ValueError, r"prompt: expected at least one token.*got shape \(0,\)"),
        (call(prompt=np.zeros((2, 0), int)), ValueError, r"prompt: .*got shape \(2, 0\)"),
        (
            call(prompt=[[0, V]]),
            ValueError,
            r"prompt: expected token ids in \[0, 11\), got values in \[0, 11\]",
        ),
        (call(prompt=[-1, 2]), ValueError, r"prompt: .*got values in \[-1, 2\]"),
        (call(prompt=[0.0, 1.0]), TypeError, r"prompt: expected integer token ids, got dtype float"),
        (
            call(prompt=np.zeros((1, 2, 3), int)),
            ValueError,
            r"prompt: expected .*\[P\] or \[B, P\].*\(1, 2, 3\)",
        ),
        (call(greedy=True, temperature=0.5), ValueError, r"greedy: .*temperature=0.5"),
        (call(greedy=True, top_k=3, top_p=0.9), ValueError, r"greedy: .*top_k=3, top_p=0.9"),
        (call(greedy="yes"), TypeError, r"greedy: expected True or False, got 'yes'"),
        (call(key=None), ValueError, r"key: expected a JAX PRNG key for sampling.*got None"),
        (call(key=3), TypeError, r"key: expected one JAX PRNG key.*got 3"),
        (call(key=jax.random.split(key, 2)), TypeError, r"key: .*shape \(2,\)"),
        (lambda: gen.generate("model", params, PROMPTS, 3, greedy=True), TypeError, r"model: expected"),
        (
            lambda: gen.generate(
                models.sequence_model(cells.make("lstm", 8), V), params, PROMPTS, 3, greedy=True
            ),
            ValueError,
            r"model: expected a language model .*got an RNNModel with vocab_size=None",
        ),
        (
            lambda: gen.generate(
                models.classifier(V, V, cells.make("lstm", 8)), params, PROMPTS, 3, greedy=True
            ),
            ValueError,
            r"model: expected a language model .*pooling='last' \(expected None: logits at every step\)",
        ),
        (lambda: gen.filtered_log_probs(jnp.zeros(4), top_k=5), ValueError, r"top_k: .*\[1, 4\].*got 5"),
        (lambda: gen.filtered_log_probs(jnp.zeros(4, int)), TypeError, r"logits: expected a floating"),
        (lambda: gen.detokenize(["a"], "byte"), ValueError, r"level: expected one of \('char', 'word'\)"),
    ]


def _bad_sample_text_calls():
    vocab, model, params = char_setup()
    word_vocab = Vocabulary.build(word_tokens(WORD_TEXT))

    def call(prompt="hello", length=3, v=vocab, **kw):
        return lambda: gen.sample_text(model, params, v, prompt, length, **{"seed": 0, **kw})

    return [
        (call(level="byte"), ValueError, r"level: expected one of \('char', 'word'\), got 'byte'"),
        (call(prompt=""), ValueError, r"prompt: expected at least one char token, got ''"),
        (call(prompt="!?", strip_punctuation=True), ValueError, r"prompt: .*normalised to ''"),
        (call(prompt=b"hello"), TypeError, r"prompt: expected a str, got bytes"),
        (
            call(prompt="hello zz"),
            ValueError,
            r"prompt: tokens \['z'\] are not in the vocabulary, which has no",
        ),
        (
            call(v=word_vocab),
            ValueError,
            r"vocab: expected 10 tokens \(model.vocab_size\), got a vocabulary of 15",
        ),
        (call(v="abc"), TypeError, r"vocab: expected an rnnjax.data.text.Vocabulary, got str"),
        (call(key=jax.random.key(0)), ValueError, r"seed: give key or seed, not both"),
        (call(seed=1.5), TypeError, r"seed: expected an int, got 1.5"),
        (call(seed=None), ValueError, r"key: expected a JAX PRNG key for sampling"),
        (call(length=0), ValueError, r"length: "),
        (call(seed=None, greedy=True, top_k=2), ValueError, r"greedy: .*top_k=2"),
    ]


@pytest.mark.parametrize("which", ["generate", "sample_text"])
def test_bad_input_names_the_argument(which):
    cases = _bad_generate_calls() if which == "generate" else _bad_sample_text_calls()
    for fn, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            fn()
