"""`rnnjax.train.classify`: logits unchanged by extra padding, one training step against SGD by hand, the
batches of an epoch against a permutation, a quick training run that learns, evaluation in batches
against one pass, a saved model restored to the same logits, and the confusion matrix and predictions
file against plain loops."""

import csv
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import max_rel_err

from rnnjax import cells, models
from rnnjax.train import classify
from rnnjax.train.optimizers import make_optimizer

# Padded steps are masked (carry kept, output zero), so the float64 logits at T and 3T should agree to
# rounding of reordered sums at most.
TOL_PAD_F64 = 1e-12
# Same float32 forward pass in batches (with filler rows) or in one batch: rounding only.
TOL_BATCH_F32 = 1e-6
# The same float32 step (matmul precision pinned to highest) computed by train_step and by hand.
TOL_STEP_F32 = 1e-6

# 8-word texts, the sentiment word in the first two: an LSTM separates them within ~40 steps. Splits of
# 400 / 100 / 100 examples.
EASY = classify.ClassifyConfig(
    synthetic_n=600,
    synthetic_seq_len=8,
    synthetic_min_len=3,
    synthetic_signal=(0, 2),
    valid_fraction=1 / 6,
    test_fraction=1 / 6,
    hidden_size=8,
    embed_size=8,
    epochs=3,
    batch_size=32,
    learning_rate=1e-2,
)


@pytest.fixture(scope="module")
def easy_data():
    return classify.prepare(EASY)


# ------------------------------------------------------------------------------------------ the model


@pytest.mark.parametrize(
    "cell, pooling, bidirectional",
    [("lstm", "last", False), ("gru", "last", False), ("simple", "mean", False), ("lstm", "last", True)],
)
def test_logits_unchanged_by_extra_random_padding(cell, pooling, bidirectional):
    V, B, T = 13, 5, 7
    model = models.classifier(
        V,
        3,
        cells.make(cell, 8, dtype=jnp.float64),
        embed_size=8,
        pooling=pooling,
        bidirectional=bidirectional,
    )
    rng = np.random.default_rng(0)
    lengths = np.array([7, 1, 3, 5, 2], np.int32)
    tokens = rng.integers(V, size=(B, T)).astype(np.int32)
    long = np.concatenate([tokens, rng.integers(V, size=(B, 2 * T)).astype(np.int32)], axis=1)  # (B, 3T)
    params = model.init(jax.random.key(1), tokens, lengths=lengths)["params"]
    # a different value in the ordinary padding positions should change nothing either
    refilled = np.where(np.arange(T) < lengths[:, None], tokens, V - 1).astype(np.int32)

    @jax.jit
    def logits(params):
        return [model.apply({"params": params}, x, lengths=lengths)[0] for x in (tokens, long, refilled)]

    short_logits, long_logits, refilled_logits = (np.asarray(x) for x in logits(params))
    assert short_logits.dtype == np.float64
    scale = np.max(np.abs(short_logits))
    assert np.max(np.abs(long_logits - short_logits)) <= TOL_PAD_F64 * scale
    assert np.max(np.abs(refilled_logits - short_logits)) <= TOL_PAD_F64 * scale


# ---------------------------------------------------------------------------------------- the pieces


def test_train_step_is_one_sgd_step_on_the_mean_cross_entropy(easy_data):
    cfg = dataclasses.replace(EASY, optimizer="sgd", clip_norm=None, learning_rate=0.5)
    model = classify.make_model(cfg, "simple", len(easy_data.vocab), len(easy_data.label_set))
    tx = make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.clip_norm)
    state = classify.init_state(model, tx, seed=3)
    batches, _ = classify.make_batches(easy_data.train, cfg.batch_size, cfg.seed)
    tokens, lengths, labels = batches(0)

    def loss_by_hand(params):  # log-softmax written out, mean over the batch
        logits = model.apply({"params": params}, tokens, lengths=lengths)[0]
        log_p = logits - jnp.log(jnp.sum(jnp.exp(logits), axis=1, keepdims=True))
        return -jnp.mean(log_p[jnp.arange(labels.size), labels])

    with jax.default_matmul_precision("highest"):
        new, metrics = jax.jit(classify.make_train_step(model, tx))(state, batches(0), jax.random.key(0))
        loss, grads = jax.jit(jax.value_and_grad(loss_by_hand))(state.params)
        want = jax.tree.map(lambda p, g: p - cfg.learning_rate * g, state.params, grads)
    assert max_rel_err(new.params, want) <= TOL_STEP_F32
    assert abs(float(metrics["loss"]) - float(loss)) <= TOL_STEP_F32 * float(loss)
    assert abs(float(metrics["grad_norm"]) - float(optax.tree.norm(grads))) <= TOL_STEP_F32 * float(
        metrics["grad_norm"]
    )
    ev = classify.evaluate(model, state.params, classify.Examples(tokens, lengths, labels))
    assert float(metrics["accuracy"]) == ev.accuracy and int(new.step) == 1


def test_batches_of_an_epoch_are_its_permutation_in_order(easy_data):
    batches, per_epoch = classify.make_batches(easy_data.train, 32, seed=4)
    assert per_epoch == 400 // 32
    train = easy_data.train
    for epoch in (0, 2):
        order = np.random.default_rng((4, epoch)).permutation(400)
        for k in range(per_epoch):
            rows = order[k * 32 : (k + 1) * 32]
            tokens, lengths, labels = batches(epoch * per_epoch + k)
            assert np.array_equal(tokens, train.tokens[rows]) and np.array_equal(labels, train.labels[rows])
            assert np.array_equal(lengths, train.lengths[rows])
    assert not np.array_equal(batches(0)[2], batches(per_epoch)[2])  # a new order each epoch


# -------------------------------------------------------------------------------------------- training


def test_training_learns_an_easy_synthetic_set_and_padding_does_not_matter(easy_data, tmp_path):
    data = easy_data
    result = classify.train(EASY, data, "lstm", run=tmp_path / "lstm", progress=False)
    history = result.history
    assert history["steps"] == 3 * (400 // 32) and len(history["valid"]) == 3 and history["epochs"] == 3
    records = [line for line in (tmp_path / "lstm" / "metrics.jsonl").read_text().splitlines()]
    assert sum('"split": "valid"' in r for r in records) == 3
    model, params = result.model, result.params
    # 100 balanced validation examples: chance accuracy is 0.5 with standard deviation 0.05, so 0.8 is
    # 6 standard deviations above chance (measured: 0.95 after 3 epochs).
    accuracy = classify.evaluate(model, params, data.valid).accuracy
    assert accuracy >= 0.8 and accuracy == history["valid"][-1]["accuracy"]
    # batches of 37 (the last one filled up with copies of row 0) equal one pass over all 100 rows, and
    # the loss and accuracy equal those computed here from the one-pass logits
    ev = classify.evaluate(model, params, data.valid, batch_size=37)
    logits = classify.evaluate(model, params, data.valid, batch_size=100).logits.astype(np.float64)
    assert np.max(np.abs(ev.logits - logits)) <= TOL_BATCH_F32 * np.max(np.abs(logits))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert abs(ev.loss - (-log_p[np.arange(100), data.valid.labels].mean())) <= TOL_BATCH_F32 * ev.loss
    assert ev.predictions.tolist() == np.argmax(logits, axis=1).tolist() and ev.accuracy == accuracy
    rows = classify.padding_check(model, params, data.valid, (3,))
    assert rows[1]["T"] == 3 * data.valid.tokens.shape[1]
    assert rows[1]["accuracy"] == accuracy and rows[1]["predictions_changed"] == 0

    # the checkpoint written at the end restores the same classifier
    loaded = classify.load(tmp_path / "lstm")
    assert loaded.cell == "lstm" and loaded.config == EASY
    assert loaded.vocab == data.vocab and loaded.label_set == data.label_set
    again = classify.evaluate(loaded.model, loaded.params, data.valid)
    assert np.array_equal(again.logits, classify.evaluate(model, params, data.valid).logits)
    assert loaded.step == history["steps"]

    # predict: the share of each text's tokens missing from the vocabulary, against a count by hand
    texts = ["good zzz the qqq film", "Awful", "xx yy zz good"]
    got = classify.predict(loaded, texts)
    known = set(data.vocab.tokens) - {data.vocab.unk}
    words = [t.lower().split() for t in texts]  # EASY lowercases; these texts have no punctuation
    assert (
        got.unknown.tolist() == [sum(w not in known for w in ws) / len(ws) for ws in words] == [0.4, 0, 0.75]
    )
    assert got.lengths.tolist() == [5, 1, 4] and set(got.labels) <= set(data.label_set.labels)

    # resuming the finished run trains nothing more; another model size is refused
    resumed = classify.train(EASY, data, "lstm", run=tmp_path / "lstm", resume=True, progress=False)
    assert resumed.fit.step == history["steps"] and resumed.history["steps"] == 0
    wider = dataclasses.replace(EASY, hidden_size=9)
    with pytest.raises(ValueError, match=r"resume: the checkpoint was trained with other hidden_size"):
        classify.train(wider, data, "lstm", run=tmp_path / "lstm", resume=True, progress=False)


# ------------------------------------------------------------------------------------------ reporting


def test_confusion_matrix_and_predictions_file_match_loops(easy_data, tmp_path):
    data, C = easy_data, len(easy_data.label_set)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(data.test.labels), C)).astype(np.float32)
    ev = classify.Evaluation(0.0, 0.0, logits, np.argmax(logits, axis=1).astype(np.int32))
    counts = classify.confusion_matrix(data.test.labels, ev.predictions, C)
    want = np.zeros((C, C), int)
    for y, p in zip(data.test.labels, ev.predictions):
        want[y, p] += 1
    assert counts.tolist() == want.tolist()

    classify.write_predictions(tmp_path / "p.csv", data, ev)
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = data.label_set.labels
    assert len(rows) == len(data.test.labels)
    for i, row in enumerate(rows):
        source = int(row["row"]) - 1
        assert row["text"] == data.texts[source] and source == data.rows[2][i]
        assert row["label"] == names[data.test.labels[i]] and row["prediction"] == names[ev.predictions[i]]
        assert row["correct"] == str(int(row["label"] == row["prediction"]))
        p = np.array([float(row[f"p_{y}"]) for y in names])
        assert abs(p.sum() - 1) <= 1e-5 and names[int(np.argmax(p))] == row["prediction"]
    with pytest.raises(ValueError, match=r"predictions: expected class ids in \[0, 2\)"):
        classify.confusion_matrix([0, 1], [0, 2], 2)


def test_majority_baseline_against_a_count():
    rng = np.random.default_rng(1)
    for C in (2, 3, 5):
        labels = rng.integers(C, size=97)
        values, counts = np.unique(labels, return_counts=True)
        top, share = classify.majority_baseline(labels, C)
        assert share == counts.max() / 97 == np.mean(labels == top)
        assert top == values[np.argmax(counts)]  # the first of tied classes, as np.unique sorts them
    assert classify.majority_baseline([1, 0, 2, 1, 0], 4) == (0, 0.4)  # a tie goes to the lower id
    with pytest.raises(ValueError, match=r"labels: expected class ids in \[0, 2\), got \[0, 2\]"):
        classify.majority_baseline([0, 2], 2)


def test_prediction_file_leading_columns_and_unknown_share(tmp_path):
    ev = classify.Evaluation(0.0, 0.0, np.array([[2.0, 0.0], [0.0, 1.0]], np.float32), np.array([0, 1]))
    leading = {"review_id": ["r9", "r4"], "cell": ["gru", "gru"]}
    path = tmp_path / "p.csv"
    texts, rows, lengths = ["a b", "c"], [1, 2], [2, 1]
    classify.write_prediction_csv(
        path, ("neg", "pos"), ev, texts, rows, lengths, unknown=[0.5, 1], leading=leading
    )
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == classify.prediction_columns(("neg", "pos"), labelled=False, leading=leading)
    assert rows[0][:5] == ["review_id", "cell", "row", "length", "unknown_share"]
    assert rows[1][:7] == ["r9", "gru", "1", "2", "0.5000", "neg", f"{1 / (1 + np.exp(-2.0)):.6f}"]
    assert rows[2][:6] == ["r4", "gru", "2", "1", "1.0000", "pos"]
    with pytest.raises(ValueError, match=r"leading: expected column names other than the written ones"):
        classify.write_prediction_csv(
            path, ("neg", "pos"), ev, ["a", "c"], [1, 2], [1, 1], leading={"text": [1, 2]}
        )


@pytest.mark.parametrize(
    "change, pattern",
    [
        (dict(cell=("lstm", "transformer")), r"cell: expected names from"),
        (dict(hidden_size=0), r"hidden_size: expected an int >= 1, got 0"),
        (dict(max_len=-1), r"max_len: expected None or an int >= 1, got -1"),
        (dict(valid_fraction=1.5), r"valid_fraction: expected a number in \(0, 1\), got 1.5"),
        (
            dict(valid_fraction=0.5, test_fraction=0.5),
            r"valid_fraction, test_fraction: expected a sum below 1",
        ),
        (dict(learning_rate=0.0), r"learning_rate: expected a positive number, got 0.0"),
        (dict(pooling="max"), r"pooling: expected one of \('last', 'mean'\), got 'max'"),
        (dict(optimizer="lion"), r"optimizer: expected one of \('adam', 'sgd', 'rmsprop'\), got 'lion'"),
        (dict(padding_factors=(1,)), r"padding_factors: expected ints >= 2, got \(1,\)"),
        (dict(dropout=1.0), r"dropout: expected a rate in \[0, 1\), got 1.0"),
        (dict(learning_rate=1e39), r"learning_rate: expected a positive number that float32 .* got 1e\+39"),
        (dict(clip_norm=float("nan")), r"clip_norm: expected None or a positive number, got nan"),
        (dict(lowercase="no"), r"lowercase: expected True or False, got 'no'"),
        (dict(synthetic_signal=(5, 2)), r"synthetic_signal: expected two ints lo, hi with 0 <= lo < hi"),
        (dict(synthetic_min_len=200), r"synthetic_min_len: expected an int in \[synthetic_signal hi = 5, "),
        (dict(hidden_size=10**9), r"hidden_size: expected a size whose arrays fit in half of this machine's"),
        (
            dict(synthetic_n=10**12),
            r"synthetic_n: expected a size whose arrays fit in half of this machine's",
        ),
    ],
)
def test_bad_config_names_the_argument(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        classify.check_config(classify.ClassifyConfig(**change))
