"""`rnnjax.train.lm`, `rnnjax.train.lm_config`, `rnnjax.train.checkpoint` and `rnnjax.train.parallel`:
the batch of each step vs index arithmetic on the raw stream, chunked evaluation vs one pass over whole
rows, one step vs optax by hand, resume vs an uninterrupted run, data parallel on 4 host devices vs 1,
checkpoint retention vs the metrics log, NaN stop, and bad input. (The command line and the resume
after SIGKILL: tests/experiments/test_text_generation.py.)"""

import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax import generate, readout
from rnnjax.data import text as text_lib
from rnnjax.train import checkpoint, lm, lm_config, parallel

ROOT = Path(__file__).resolve().parents[2]
# Chunked evaluation (carry passed between chunks) vs one pass over each whole row: float32 model, sums
# of a few thousand per-token losses, so agreement to ~1e-6 relative is float32 round-off, not a bug.
EVAL_RTOL = 1e-5
# Data parallel vs one device: the gradient all-reduce adds the 4 shards in another order (float32),
# and 5 SGD steps carry that round-off into the params; real bugs (a shard dropped, a mean over a
# shard instead of the batch) change params by ~1e-2 relative after one step at learning rate 0.5.
# (SGD, not Adam: Adam's first step divides each gradient entry by its own size, so an entry of ~2e-8,
# near its eps, turns 1e-10 of round-off into an update difference of ~1e-5.)
DP_RTOL = 1e-5

WORDS = "the cat sat on a mat and the dog ran to the red door while a bird sang in the old tree".split()


def make_text(n_words: int = 3000, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words)) + "\n"


def small_config(**kw) -> lm.LMConfig:
    base = dict(
        level="char",
        hidden_size=16,
        num_layers=2,
        embed_size=8,
        dropout=0.1,
        steps=24,
        batch_size=8,
        seq_len=16,
        eval_every=6,
        save_every=6,
        keep_last=2,
        log_every=3,
        learning_rate=1e-2,
    )
    base.update(kw)
    return lm.LMConfig(**base)


def leaves_equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)))


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------ data


def test_the_batch_of_each_step_follows_the_stream_by_index_arithmetic():
    ids = (np.arange(1003) * 7 + 3) % 37  # 8 rows of 125 tokens (3 dropped): 7 batches of 16 per pass
    batches = lm.make_batches(ids, small_config(batch_size=8, seq_len=16))
    for step in range(16):
        k = step % 7
        batch = batches(step)
        want_x = [[ids[b * 125 + k * 16 + t] for t in range(16)] for b in range(8)]
        want_y = [[ids[b * 125 + k * 16 + t + 1] for t in range(16)] for b in range(8)]
        assert batch.inputs.tolist() == want_x and batch.targets.tolist() == want_y
        assert batch.inputs.dtype == np.int32 and bool(batch.new_pass) == (k == 0)


def test_prepare_splits_contiguously_and_builds_vocab_on_train_only():
    text = "abcab" * 200 + "xyz" * 30  # the last 10% holds characters the training part never has
    cfg = small_config(valid_fraction=0.1)
    corpus = lm.prepare(text, cfg)
    n_valid = round(len(text) * 0.1)
    assert corpus.train.size + corpus.valid.size == len(text)
    assert set(corpus.vocab.tokens) == {"<unk>", "a", "b", "c"}
    assert corpus.vocab.decode(corpus.train) == list(text[: len(text) - n_valid])
    assert np.all(corpus.valid[-90:] == 0)  # x, y, z are unknown: <unk>


def test_prepare_word_level_normalises():
    cfg = small_config(level="word", lowercase=True, strip_punctuation=True, batch_size=2, seq_len=3)
    corpus = lm.prepare("The Cat, the cat! " * 20, cfg)
    assert set(corpus.vocab.tokens) == {"<unk>", "the", "cat"}


def test_prepare_rejects_a_corpus_shorter_than_one_batch():
    # one batch of 8 rows x (16 + 1) tokens to train, and 2 tokens per row to validate: 136 + 16
    with pytest.raises(ValueError, match=r"text: the text has 55 char tokens; expected at least .* = 152 "):
        lm.prepare("short text " * 5, small_config())
    with pytest.raises(ValueError, match=r"text: the text has 1 char token; expected at least"):
        lm.prepare("a", small_config())  # its advice is a text or a batch, not a split the run refuses
    # 200 tokens, of which round(200 * 0.05) = 10 validate: fewer than 2 * 8 (the split, named)
    with pytest.raises(ValueError, match=r"validation split has 10 char tokens \(valid_fraction 0.05 of 200"):
        lm.prepare("ab" * 100, small_config(valid_fraction=0.05))


@pytest.mark.parametrize(
    "field, value",
    [
        ("level", "byte"),
        ("cell", "rnn"),
        ("steps", 0),
        ("batch_size", -1),
        ("dropout", 1.0),
        ("learning_rate", 0.0),
        ("clip_norm", -1.0),
        ("valid_fraction", 0.0),
        ("schedule", "step"),
        ("warmup_steps", 24),
        ("optimizer", "adagrad"),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: expected .* got {value!r}"):
        small_config(**{field: value})


@pytest.mark.parametrize(
    "field, value, error, pattern",
    [
        ("learning_rate", "3e-3", TypeError, r"expected a positive number, got '3e-3' \(str\)"),
        (
            "learning_rate",
            1e39,
            ValueError,
            r"expected a positive number that float32 \(the compute dtype\) holds",
        ),
        ("learning_rate", float("nan"), ValueError, r"expected a positive number, got nan"),
        (
            "clip_norm",
            float("inf"),
            ValueError,
            r"expected None or a positive number that float32 .*, got inf",
        ),
        ("dropout", "0.1", ValueError, r"expected a rate in \[0, 1\), got '0\.1'"),
        ("lowercase", "no", ValueError, r"expected True or False, got 'no'"),
        ("seed", -1, ValueError, r"expected an int >= 0, got -1"),
        ("hidden_size", 10**9, ValueError, r"expected a size whose arrays fit in half of this machine's"),
    ],
)
def test_config_refuses_strings_overflowing_and_unallocatable_values(field, value, error, pattern):
    with pytest.raises(error, match=rf"^{field}: {pattern}"):
        small_config(**{field: value})


def test_fit_refuses_a_run_path_that_is_a_file_before_any_work(corpus, tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder\n")
    with pytest.raises(ValueError, match=r"^run: expected the path of a run folder .* which is a file"):
        lm.fit(small_config(), corpus, path, progress=False)
    assert path.read_text() == "not a folder\n"


def test_for_level_applies_the_level_defaults_under_the_overrides():
    word = lm.LMConfig.for_level("word", steps=7)
    assert word.level == "word" and word.steps == 7
    for name, value in lm_config.LEVEL_DEFAULTS["word"].items():
        assert getattr(word, name) == (7 if name == "steps" else value)
    assert lm.LMConfig.for_level("char") == lm.LMConfig()  # the field defaults are the char ones
    with pytest.raises(ValueError, match=r"level: expected one of \('char', 'word'\), got 'byte'"):
        lm.LMConfig.for_level("byte")
    with pytest.raises(ValueError, match=r"activation: expected one of .*got 'cube'"):
        small_config(cell="simple", activation="cube")


def test_learning_rate_schedule_matches_its_formula():
    cfg = small_config(
        steps=100, warmup_steps=10, learning_rate=1e-2, final_lr_fraction=0.1, schedule="cosine"
    )
    sched = lm_config.learning_rate_schedule(cfg)
    for step in (0, 5, 10, 40, 99, 100):
        if step < 10:
            expected = 1e-2 * step / 10
        else:
            frac = (step - 10) / 90
            expected = 1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        assert float(sched(step)) == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------------ evaluation


def test_evaluate_with_chunks_equals_one_pass_over_whole_rows():
    cfg = small_config()
    corpus = lm.prepare(make_text(), cfg)
    model = lm.make_model(cfg, len(corpus.vocab))
    params = model.init(jax.random.key(3), jnp.zeros((1, 1), jnp.int32))["params"]
    ids = corpus.valid
    got = lm.evaluate(model, params, ids, batch_size=8, seq_len=7, mesh=parallel.data_mesh(1))
    # Independently: each row in one call from zero carries, no chunking.
    row_len = ids.size // 8
    rows = ids[: 8 * row_len].reshape(8, row_len)
    logits, _ = model.apply({"params": params}, rows[:, :-1])
    nll = np.asarray(readout.cross_entropy(logits, rows[:, 1:]), np.float64)
    assert got["tokens"] == nll.size
    assert got["loss"] == pytest.approx(nll.mean(), rel=EVAL_RTOL)
    assert got["perplexity"] == pytest.approx(math.exp(nll.mean()), rel=EVAL_RTOL)
    assert got["bits_per_token"] == pytest.approx(nll.mean() / math.log(2), rel=EVAL_RTOL)


# ------------------------------------------------------------------------------------------ fitting


@pytest.fixture(scope="module")
def corpus():
    return lm.prepare(make_text(), small_config())


@pytest.fixture(scope="module")
def full_run(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("full")
    return lm.fit(small_config(), corpus, run, progress=False)


def test_fit_learns_and_logs(full_run):
    records = read_metrics(full_run.run)
    train = [r for r in records if r["split"] == "train"]
    valid = [r for r in records if r["split"] == "valid"]
    assert [r["step"] for r in train] == list(range(3, 25, 3))
    assert [r["step"] for r in valid] == [6, 12, 18, 24]
    assert valid[-1]["loss"] < valid[0]["loss"] < math.log(len(lm.prepare(make_text(), small_config()).vocab))
    assert full_run.status == "done" and full_run.valid == {k: valid[-1][k] for k in full_run.valid}
    assert json.loads((full_run.run / "config.json").read_text()) == small_config().to_dict()
    assert (
        text_lib.Vocabulary.load(full_run.run / "vocab.json").tokens
        == lm.prepare(make_text(), small_config()).vocab.tokens
    )


def test_checkpoints_keep_the_last_k_and_the_best(full_run):
    valid = {r["step"]: r["loss"] for r in read_metrics(full_run.run) if r["split"] == "valid"}
    best = min(valid, key=valid.get)
    store = checkpoint.Checkpoints(full_run.run / "checkpoints", keep_last=2)
    try:
        assert store.steps() == sorted({18, 24, best})
        assert store.best_step() == full_run.best_step == best
    finally:
        store.close()
    assert not [p for p in (full_run.run / "checkpoints").iterdir() if "tmp" in p.name]


def test_resume_equals_an_uninterrupted_run(corpus, full_run, tmp_path):
    cfg = small_config()
    part = lm.fit(cfg, corpus, tmp_path, stop_after=10, progress=False)
    assert part.status == "stopped" and "after step 10" in part.message
    assert not leaves_equal(part.state.params, full_run.state.params)
    done = lm.fit(cfg, corpus, tmp_path, resume=True, progress=False)
    assert done.step == 24
    assert leaves_equal(done.state, full_run.state)  # params, optimiser state and carries, bit for bit

    # The same losses, except around the interruption: the stopped run validated at step 10, and the
    # train record at 12 averages over a window that restarted at 11.
    def losses(run):
        return [(r["split"], r["step"], r["loss"]) for r in read_metrics(run)
                if r["split"] != "compile" and not 10 <= r["step"] <= 12]  # fmt: skip

    assert losses(tmp_path) == losses(full_run.run)


def test_load_returns_the_saved_model(full_run):
    model, params, vocab, config, step = lm.load(full_run.run, "latest")
    assert step == 24 and config == small_config()
    assert leaves_equal(params, full_run.state.params)
    assert vocab.tokens == lm.prepare(make_text(), small_config()).vocab.tokens
    # Sampling a reloaded model takes its tokenisation from the config: the same text as retyping it.
    retyped = generate.sample_text(
        model, params, vocab, "the c", 8, level="char", lowercase=False, include_prompt=True, greedy=True
    )
    assert lm.sample_text(model, params, vocab, config, "the c", 8, greedy=True) == retyped


def test_fit_refuses_to_overwrite_or_to_resume_nothing(corpus, full_run, tmp_path):
    with pytest.raises(ValueError, match=r"run: .* already holds checkpoints; pass resume=True"):
        lm.fit(small_config(hidden_size=32), corpus, full_run.run, progress=False)
    assert json.loads((full_run.run / "config.json").read_text()) == small_config().to_dict()  # untouched
    with pytest.raises(ValueError, match=r"resume: .* holds no checkpoint"):
        lm.fit(small_config(), corpus, tmp_path, resume=True, progress=False)


def test_resume_rejects_a_mismatched_model_or_vocabulary(corpus, tmp_path):
    lm.fit(small_config(), corpus, tmp_path, stop_after=6, progress=False)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(ValueError, match=r"hidden_size: checkpoint 16, requested 32"):
        lm.fit(small_config(hidden_size=32), corpus, tmp_path, resume=True, progress=False)
    other = lm.prepare(make_text() + "QZ" * 50, small_config())
    with pytest.raises(ValueError, match=r"resume: the checkpoint's vocabulary \(\d+ tokens\) differs"):
        lm.fit(small_config(), other, tmp_path, resume=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(corpus, tmp_path):
    # A simple ReLU network under plain SGD at a huge rate without clipping: the first step is fine, the
    # second overflows (its evaluation loss is NaN), so only step 1 may be kept.
    cfg = small_config(
        cell="simple",
        activation="relu",
        optimizer="sgd",
        learning_rate=30.0,
        clip_norm=None,
        schedule="constant",
        save_every=1,
        eval_every=1,
        steps=50,
        dropout=0.0,
    )
    with pytest.warns(RuntimeWarning, match="not finite"):
        result = lm.fit(cfg, corpus, tmp_path / "run", progress=False)
    assert result.status == "diverged", result.message
    bad_step = int(re.search(r"stopped at step (\d+)", result.message).group(1))
    assert bad_step >= 2 and "not finite" in result.message
    assert f"newest finite checkpoint is step {bad_step - 1}" in result.message
    store = checkpoint.Checkpoints(tmp_path / "run" / "checkpoints", keep_last=2)
    try:
        assert store.steps() == list(range(1, bad_step))  # nothing saved for the diverging step
        saved, _ = store.restore(bad_step - 1, like=result.state)
    finally:
        store.close()
    # The kept checkpoint is the state of an uninterrupted run stopped at that step, and finite.
    again = lm.fit(cfg, corpus, tmp_path / "again", stop_after=bad_step - 1, progress=False)
    assert leaves_equal(saved, again.state)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(saved.params))


def test_checkpoint_store_errors(tmp_path):
    with pytest.raises(ValueError, match=r"keep_last: expected an int >= 1, got 0"):
        checkpoint.Checkpoints(tmp_path, keep_last=0)
    with pytest.raises(FileNotFoundError, match=r"checkpoint: expected a run folder"):
        checkpoint.find_checkpoints(tmp_path)


def test_parallel_rejects_bad_device_counts_and_batch_sizes():
    with pytest.raises(ValueError, match=r"devices: expected None or an int in \[1, "):
        parallel.data_mesh(jax.local_device_count() + 1)
    mesh = parallel.data_mesh(1)
    assert parallel.check_batch_size(mesh, 3) == 3


# ------------------------------------------------------------------------------------------ subprocesses


def _python(code: str, env_extra: dict | None = None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def test_data_parallel_on_4_host_devices_matches_one_device(tmp_path):
    code = f"""
        import jax, numpy as np
        from rnnjax.train import lm, parallel
        assert jax.local_device_count() == 4, jax.devices()
        words = {WORDS!r}
        rng = np.random.default_rng(0)
        text = " ".join(rng.choice(words, 3000)) + "\\n"
        out = {{}}
        for n in (4, 1):
            cfg = lm.LMConfig(level="char", hidden_size=16, num_layers=2, embed_size=8, dropout=0.0, steps=5,
                              batch_size=8, seq_len=16, eval_every=5, save_every=5, optimizer="sgd",
                              learning_rate=0.5, devices=n)
            corpus = lm.prepare(text, cfg)
            out[n] = lm.fit(cfg, corpus, r"{tmp_path}/run%d" % n, progress=False)
        mesh = parallel.data_mesh(4)
        x = parallel.shard_batch(mesh, np.zeros((8, 16), np.int32))
        assert sorted(s.data.shape for s in x.addressable_shards) == [(2, 16)] * 4
        model = lm.make_model(cfg, len(corpus.vocab))
        state = lm.init_state(model, cfg)
        step = lm.make_train_step(model, cfg, mesh, state)
        hlo = step.lower(state, lm.Batch(x, x, np.bool_(True)), jax.random.key(0)).compile().as_text()
        assert "all-reduce" in hlo
        worst = 0.0
        for a, b in zip(jax.tree.leaves(out[4].state.params), jax.tree.leaves(out[1].state.params)):
            worst = max(worst, float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
        print("WORST", worst, out[4].valid["loss"], out[1].valid["loss"])
    """
    p = _python(code, {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"})
    assert p.returncode == 0, p.stderr[-3000:]
    worst, loss4, loss1 = (float(v) for v in p.stdout.split("WORST")[1].split())
    assert worst < DP_RTOL, worst
    assert loss4 == pytest.approx(loss1, rel=DP_RTOL)


def test_optax_is_what_the_step_uses(corpus):
    # One step by hand (value_and_grad + the same optax chain) equals fit's first update.
    cfg = small_config(dropout=0.0, steps=1, save_every=1, eval_every=1)
    model = lm.make_model(cfg, len(corpus.vocab))
    state = lm.init_state(model, cfg)
    batch = lm.make_batches(corpus.train, cfg)(0)  # a new pass: every row starts from zero carries
    x, y = batch.inputs, batch.targets

    def loss(p):
        return jnp.mean(readout.cross_entropy(model.apply({"params": p}, x)[0], y))

    grads = jax.grad(loss)(state.params)
    schedule = lm_config.learning_rate_schedule(cfg)
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adam(schedule))
    updates, _ = tx.update(grads, tx.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    mesh = parallel.data_mesh(1)
    new, out = lm.make_train_step(model, cfg, mesh, state)(state, batch, jax.random.key(0))
    assert float(out["loss"]) == pytest.approx(float(loss(state.params)), rel=1e-6)
    assert float(out["learning_rate"]) == float(schedule(0))
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("carry_reset, new_pass", [(0.0, False), (1.0, False), (0.0, True)])
def test_carry_reset_restarts_rows_from_zero_carries(corpus, carry_reset, new_pass):
    # With carry_reset=1, or at a new pass over the text, a step from any carries equals the step from
    # zero carries; with carry_reset=0 inside a pass it does not.
    cfg = small_config(dropout=0.0, carry_reset=carry_reset)
    model = lm.make_model(cfg, len(corpus.vocab))
    state = lm.init_state(model, cfg)
    noisy = state._replace(carries=jax.tree.map(lambda c: c + 0.5, state.carries))
    batch = lm.make_batches(corpus.train, cfg)(1)._replace(new_pass=np.bool_(new_pass))
    step = lm.make_train_step(model, cfg, parallel.data_mesh(1), state)
    key = jax.random.key(1)
    from_noisy, from_zero = step(noisy, batch, key)[0], step(state, batch, key)[0]
    assert leaves_equal(from_noisy.params, from_zero.params) == (carry_reset == 1.0 or new_pass)
