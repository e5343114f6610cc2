"""`rnnjax.train.lm`, `rnnjax.train.checkpoint`, `rnnjax.train.parallel` and the text_generation command:
streams vs the data module's batching, chunked evaluation vs one pass over whole rows, resume vs an
uninterrupted run (in process and after SIGKILL), data parallel on 4 host devices vs 1, checkpoint
retention vs the metrics log, NaN stop, and bad input."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnjax import readout
from rnnjax.data import text as text_lib
from rnnjax.train import checkpoint, lm, parallel

ROOT = Path(__file__).resolve().parents[1]
# Chunked evaluation (carry passed between chunks) vs one pass over each whole row: float32 model, sums
# of a few thousand per-token losses, so agreement to ~1e-6 relative is float32 round-off, not a bug.
EVAL_RTOL = 1e-5
# Data parallel vs one device: the gradient all-reduce adds the 4 shards in another order (float32),
# and 5 Adam steps carry that round-off into the params; real bugs (a shard dropped, a mean over a
# shard instead of the batch) change params by ~1e-3 relative after one step.
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
        checkpoint_every=6,
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


def test_training_stream_equals_stream_batches():
    ids = np.arange(1000, dtype=np.int32) % 37
    rows = lm._stream_rows(ids, 8)
    per_epoch = (rows.shape[1] - 1) // 16
    assert per_epoch == text_lib.num_stream_batches(ids, 8, 16)
    for k, (x, y) in enumerate(text_lib.stream_batches(ids, 8, 16)):
        np.testing.assert_array_equal(rows[:, k * 16 : (k + 1) * 16], x)
        np.testing.assert_array_equal(rows[:, k * 16 + 1 : (k + 1) * 16 + 1], y)


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
    with pytest.raises(ValueError, match=r"batch_size \* \(seq_len \+ 1\) = 8 \* 17 = 136"):
        lm.prepare("short text " * 5, small_config())


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


def test_learning_rate_schedule_matches_its_formula():
    cfg = small_config(
        steps=100, warmup_steps=10, learning_rate=1e-2, final_lr_fraction=0.1, schedule="cosine"
    )
    sched = lm.learning_rate_schedule(cfg)
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
    assert int(done.state.step) == 24
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


def test_fit_refuses_to_overwrite_or_to_resume_nothing(corpus, full_run, tmp_path):
    with pytest.raises(ValueError, match=r"run: .* already holds checkpoints; pass resume=True"):
        lm.fit(small_config(), corpus, full_run.run, progress=False)
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
    # A simple ReLU network under plain SGD at a huge rate without clipping overflows within a few steps.
    cfg = small_config(
        cell="simple",
        activation="relu",
        optimizer="sgd",
        learning_rate=1e4,
        clip_norm=None,
        schedule="constant",
        checkpoint_every=1,
        eval_every=1,
        steps=50,
        dropout=0.0,
    )
    result = lm.fit(cfg, corpus, tmp_path, progress=False)
    assert result.status == "diverged", result.message
    bad_step = int(result.state.step) + 1
    assert f"stopped at step {bad_step}" in result.message and "not finite" in result.message
    store = checkpoint.Checkpoints(tmp_path / "checkpoints", keep_last=2)
    try:
        assert store.latest_step() == bad_step - 1
        assert f"last good checkpoint is step {bad_step - 1}" in result.message
        saved, _ = store.restore(bad_step - 1, like=result.state)
    finally:
        store.close()
    assert leaves_equal(saved, result.state)
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
                              batch_size=8, seq_len=16, eval_every=5, checkpoint_every=5, learning_rate=1e-2,
                              devices=n)
            corpus = lm.prepare(text, cfg)
            out[n] = lm.fit(cfg, corpus, r"{tmp_path}/run%d" % n, progress=False)
        mesh = parallel.data_mesh(4)
        x = parallel.shard_batch(mesh, np.zeros((8, 16), np.int32))
        assert sorted(s.data.shape for s in x.addressable_shards) == [(2, 16)] * 4
        state = lm._place(mesh, lm._init_state(lm.make_model(cfg, len(corpus.vocab)), cfg))
        step = lm._make_train_step(lm.make_model(cfg, len(corpus.vocab)), cfg, mesh, state)
        hlo = step.lower(state, x, x).compile().as_text()
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


def _cli_train(tmp_path, run, *extra, env=None, timeout=300):
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        corpus.write_text(make_text())
    args = [
        "train",
        "--corpus",
        str(corpus),
        "--level",
        "char",
        "--hidden-size",
        "16",
        "--num-layers",
        "1",
        "--embed-size",
        "8",
        "--batch-size",
        "8",
        "--seq-len",
        "16",
        "--steps",
        "30",
        "--eval-every",
        "10",
        "--checkpoint-every",
        "10",
        "--dropout",
        "0.1",
        "--sample-length",
        "5",
        "--run",
        run,
        *extra,
    ]
    code = f"import sys; from experiments.text_generation import main; main({args!r})"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout
    )


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole = _cli_train(tmp_path, "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _cli_train(tmp_path, "killed", env={lm.KILL_ENV: "15"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    ckpts = tmp_path / "results/text_generation/killed/checkpoints"
    assert sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) == [10]
    resumed = _cli_train(tmp_path, "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, p_whole, _, _, s1 = lm.load(tmp_path / "results/text_generation/whole", "latest")
    _, p_resumed, _, _, s2 = lm.load(tmp_path / "results/text_generation/killed", "latest")
    assert s1 == s2 == 30
    assert leaves_equal(p_whole, p_resumed)
    assert not [p for p in ckpts.iterdir() if "tmp" in p.name]
    summary = (tmp_path / "results/text_generation/killed/summary.md").read_text()
    assert "bigram baseline" in summary and "## Samples" in summary


def test_sample_command(full_run, capsys):
    from experiments.text_generation import main

    texts = main(
        [
            "sample",
            "--checkpoint",
            str(full_run.run),
            "--prompt",
            "the c",
            "--length",
            "12",
            "--num-samples",
            "2",
        ]
    )
    assert len(texts) == 2 and all(t.startswith("the c") and len(t) == 17 for t in texts)
    assert "--- sample 2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="length"):
        main(["sample", "--checkpoint", str(full_run.run), "--prompt", "the", "--length", "0"])
    with pytest.raises(ValueError, match="temperature"):
        main(["sample", "--checkpoint", str(full_run.run), "--prompt", "the", "--temperature", "0"])
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        main(["sample", "--checkpoint", str(full_run.run / "nowhere"), "--prompt", "the"])


def test_optax_is_what_the_step_uses(corpus):
    # One step by hand (value_and_grad + the same optax chain) equals fit's first update.
    cfg = small_config(dropout=0.0, steps=1, checkpoint_every=1, eval_every=1)
    model = lm.make_model(cfg, len(corpus.vocab))
    state = lm._init_state(model, cfg)
    rows = lm._stream_rows(corpus.train, cfg.batch_size)
    x, y = rows[:, :16], rows[:, 1:17]

    def loss(p):
        return jnp.mean(readout.cross_entropy(model.apply({"params": p}, x)[0], y))

    grads = jax.grad(loss)(state.params)
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adam(lm.learning_rate_schedule(cfg)))
    updates, _ = tx.update(grads, tx.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    mesh = parallel.data_mesh(1)
    placed = lm._place(mesh, state)
    new, out = lm._make_train_step(model, cfg, mesh, placed)(placed, x, y)
    assert float(out["loss"]) == pytest.approx(float(loss(state.params)), rel=1e-6)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_whatsapp_corpus_is_the_message_texts(tmp_path):
    from experiments.text_generation import Train, read_corpus

    chat = tmp_path / "chat.txt"
    chat.write_text(
        "12/03/2024, 21:14 - Messages and calls are end-to-end encrypted. Tap to learn more.\n"
        "12/03/2024, 21:15 - Ana: hello there\n"
        "12/03/2024, 21:16 - Ben: <Media omitted>\n"
        "12/03/2024, 21:17 - Ben: hi\n"
        "second line\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="ambiguous date order"):
        read_corpus(Train(corpus=str(chat), whatsapp=True))
    args = dict(corpus=str(chat), whatsapp=True, dayfirst=True)
    assert read_corpus(Train(**args)) == "Ana: hello there\nBen: hi\nsecond line"
    assert read_corpus(Train(**args, authors=("Ana",))) == "Ana: hello there"


@pytest.mark.parametrize("carry_reset", [0.0, 1.0])
def test_carry_reset_restarts_rows_from_zero_carries(corpus, carry_reset):
    # With carry_reset=1 a step from any carries equals the step from zero carries; with 0 it does not.
    cfg = small_config(dropout=0.0, carry_reset=carry_reset)
    model = lm.make_model(cfg, len(corpus.vocab))
    mesh = parallel.data_mesh(1)
    state = lm._place(mesh, lm._init_state(model, cfg))
    noisy = state._replace(carries=jax.tree.map(lambda c: c + 0.5, state.carries))
    rows = lm._stream_rows(corpus.train, cfg.batch_size)
    x, y = rows[:, :16], rows[:, 1:17]
    step = lm._make_train_step(model, cfg, mesh, state)
    from_noisy, from_zero = step(noisy, x, y)[0], step(state, x, y)[0]
    assert leaves_equal(from_noisy.params, from_zero.params) == (carry_reset == 1.0)
