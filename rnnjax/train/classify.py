"""Many-to-one sequence classification on labelled text: embedding -> LSTM / GRU / Elman stack -> last
valid step (or mean over valid steps) -> dense -> class logits (`rnnjax.models.classifier`), trained by
the one loop `rnnjax.train.fit`, on a labelled CSV file or on the synthetic sentiment set of
`rnnjax.data.labelled`. The run's settings are one `ClassifyConfig` (`rnnjax.train.classify_config`).

    cfg = ClassifyConfig(csv=Path("reviews.csv"), text_column="review", label_column="sentiment")
    data = prepare(cfg)                                   # train / valid / test Examples, vocabulary, labels
    result = train(cfg, data, "lstm", run="results/classify/run1/lstm")   # orbax checkpoint at the end
    ev = evaluate(result.model, result.params, data.test) # loss, accuracy, logits, predictions
    loaded = load("results/classify/run1/lstm")           # model, params, vocab, labels, config, step
    labels, lengths, unknown, ev = predict(loaded, ["a new text"])   # unknown: share of <unk> tokens

Data: the examples are split by a seeded shuffle into train / valid / test (`labelled.split_rows`; they
are independent, so a random split leaks nothing), tokenized into words or characters and encoded with a
vocabulary of the training rows (id 0 is `<unk>`, also the padding id: padded steps are masked by the
lengths, so its value is irrelevant).

Training: the mean softmax cross-entropy of minibatches, the update of
`rnnjax.train.make_optimizer(optimizer, learning_rate, clip_norm)`. Each epoch visits the training rows
in the permutation seeded by (seed, epoch), so the batch of a step is a function of the step and a
resumed run replays an uninterrupted one; a final partial batch is dropped (one compiled step serves
every batch). The validation set is evaluated after every epoch and at the end.

Padding check (`padding_check`): a split is padded to k times its length with *random* ids (not zeros)
and evaluated again; since padded steps are masked, accuracy and every prediction must be unchanged and
the logits may differ only by float32 rounding.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import cells, models, results
from rnnjax.data import labelled
from rnnjax.data import text as text_lib
from rnnjax.train.checkpoint import Checkpoints, find_checkpoints
from rnnjax.train.classify_config import (
    RESUMABLE_FIELDS,
    ClassifyConfig,
    cells_for,
    check_config,
    config_from_json,
)
from rnnjax.train.loop import FitResult, fit
from rnnjax.train.optimizers import make_optimizer

__all__ = [
    "ClassifyConfig",
    "Data",
    "Evaluation",
    "Examples",
    "Loaded",
    "Predictions",
    "TrainResult",
    "TrainState",
    "accuracy_by_length",
    "cells_for",
    "check_config",
    "config_from_json",
    "confusion_matrix",
    "evaluate",
    "init_state",
    "load",
    "majority_baseline",
    "make_batches",
    "make_model",
    "make_train_step",
    "padding_check",
    "predict",
    "prediction_columns",
    "prepare",
    "softmax",
    "train",
    "write_prediction_csv",
    "write_predictions",
]


class Examples(NamedTuple):
    """Labelled, right-padded sequences."""

    tokens: np.ndarray  # <int32>[N, T] token ids, 0 after each row's length
    lengths: np.ndarray  # <int32>[N] in [1, T]
    labels: np.ndarray  # <int32>[N] class ids


class Data(NamedTuple):
    """What `prepare` returns."""

    train: Examples
    valid: Examples
    test: Examples
    vocab: text_lib.Vocabulary
    label_set: labelled.LabelSet
    source: str  # "synthetic" or the CSV path
    texts: list[str]  # every example's text, in source order
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]  # the source rows (0-based) of train, valid, test


class Evaluation(NamedTuple):
    """What `evaluate` returns."""

    loss: float  # mean softmax cross-entropy, nats
    accuracy: float  # fraction of argmax predictions equal to the labels
    logits: np.ndarray  # <float32>[N, C]
    predictions: np.ndarray  # <int32>[N]


class TrainState(NamedTuple):
    """What `train_step` updates and a checkpoint holds."""

    params: Any  # the classifier's params: {"embed", "rnn": {"layer_k": cell params}, "readout"}
    opt_state: Any  # the optax state
    step: jax.Array  # <int32>[] updates done


class TrainResult(NamedTuple):
    """What `train` returns.

    history: the `rnnjax.train.fit` history ("loss", "accuracy" (of the batch) and "grad_norm" (before
    clipping) per step, "steps", "diverged", "message", "compile_seconds", "train_seconds"), plus "valid":
    a list of {"step", "loss", "accuracy"} per evaluation in this call, and "epochs" (passes begun).
    """

    model: models.RNNModel
    params: Any
    history: dict
    fit: FitResult


class Loaded(NamedTuple):
    """What `load` returns."""

    model: models.RNNModel
    params: Any
    vocab: text_lib.Vocabulary
    label_set: labelled.LabelSet
    config: ClassifyConfig
    cell: str
    step: int  # the training step of the restored checkpoint


class Predictions(NamedTuple):
    """What `predict` returns."""

    labels: list[str]  # the predicted class name of each text
    lengths: np.ndarray  # <int32>[N] tokens read (after truncation to max_len)
    unknown: np.ndarray  # <float64>[N] share of those tokens missing from the vocabulary (read as <unk>)
    ev: Evaluation  # logits and predictions; its loss and accuracy refer to placeholder labels 0


# ------------------------------------------------------------------------------------------------ data


def prepare(cfg: ClassifyConfig) -> Data:
    """Read (or generate), split, tokenize, encode and pad the labelled examples of `cfg`.

    The vocabulary is built from the training rows only; the label set from all rows (class names are
    targets, not inputs). All splits are padded to one length T (`cfg.max_len`, else the longest row).
    """
    check_config(cfg)
    if cfg.csv is not None:
        texts, labels = labelled.read_csv(
            cfg.csv,
            text_column=cfg.text_column,
            label_column=cfg.label_column,
            encoding=cfg.encoding,
            errors=cfg.decode_errors,
        )
        source = str(cfg.csv)
    else:
        texts, labels = labelled.synthetic_sentiment(
            cfg.synthetic_n,
            seq_len=cfg.synthetic_seq_len,
            min_len=cfg.synthetic_min_len,
            seed=cfg.seed,
            signal_position=tuple(cfg.synthetic_signal),
        )
        source = "synthetic"
    label_set = labelled.LabelSet.build(labels)
    ys = label_set.encode(labels)
    token_lists = labelled.tokenize(texts, level=cfg.level, lowercase=cfg.lowercase)
    for i, toks in enumerate(token_lists):
        if not toks:
            raise ValueError(f"text_column: row {i + 1} of {source} has no tokens at level={cfg.level!r}")
    if len(texts) < 3:
        where = "csv" if cfg.csv is not None else "synthetic_n"
        raise ValueError(f"{where}: expected at least 3 examples (train, valid, test), got {len(texts)}")
    rows = labelled.split_rows(len(texts), (cfg.valid_fraction, cfg.test_fraction), seed=cfg.seed)
    vocab = text_lib.Vocabulary.build(
        (tok for i in rows[0] for tok in token_lists[i]), min_count=cfg.min_count, max_size=cfg.max_vocab
    )
    ids = [vocab.encode(toks) for toks in token_lists]
    T = cfg.max_len if cfg.max_len is not None else max(len(x) for x in ids)
    tokens, lengths = labelled.pad_sequences(ids, T, truncate=cfg.truncate)
    train_set, valid_set, test_set = (Examples(tokens[r], lengths[r], ys[r]) for r in rows)
    return Data(train_set, valid_set, test_set, vocab, label_set, source, list(texts), rows)


# --------------------------------------------------------------------------------------- model, steps


def make_model(cfg: ClassifyConfig, cell: str, vocab_size: int, num_classes: int) -> models.RNNModel:
    """`models.classifier` of `cfg` with `cells.make(cell, cfg.hidden_size)` in every layer."""
    return models.classifier(
        vocab_size,
        num_classes,
        cells.make(cell, cfg.hidden_size),
        num_layers=cfg.num_layers,
        embed_size=cfg.embed_size,
        dropout=cfg.dropout,
        pooling=cfg.pooling,
        bidirectional=cfg.bidirectional,
    )


def init_state(model: models.RNNModel, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """The state `train` starts from: params initialised from `split(key(seed))[0]`, step 0."""
    k_init = jax.random.split(jax.random.key(seed))[0]
    one = jnp.zeros((1, 1), jnp.int32)  # (B, T); the params do not depend on the shapes of the example
    params = model.init(k_init, one, lengths=jnp.ones((1,), jnp.int32))["params"]
    return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


def make_train_step(model: models.RNNModel, tx: optax.GradientTransformation):
    """`train_step(state, (tokens, lengths, labels), key) -> (state, {"loss", "accuracy", "grad_norm"})`:
    one update on the mean softmax cross-entropy of the batch (dropout masks from `key`); "accuracy" is
    the batch's argmax accuracy before the update, "grad_norm" the gradient's global norm before clipping.
    Pure, for `rnnjax.train.fit`."""

    def loss_fn(params, tokens, lengths, labels, key):
        logits, _ = model.apply(
            {"params": params}, tokens, lengths=lengths, train=True, rngs={"dropout": key}
        )  # (B, C)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == labels)

    def train_step(state: TrainState, batch, key):
        tokens, lengths, labels = batch
        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, tokens, lengths, labels, key
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1)
        return new, {"loss": loss, "accuracy": accuracy, "grad_norm": optax.tree.norm(grads)}

    return train_step


def make_batches(data: Examples, batch_size: int, seed: int):
    """`(batches, steps_per_epoch)`: `batches(step)` is the batch (tokens, lengths, labels) of `step`,
    rows `[k B, (k + 1) B)` of the permutation seeded by (seed, epoch), with epoch, k = divmod(step,
    steps_per_epoch) and B = min(batch_size, N)."""
    data = _check_examples("data", data)
    _check_batch_size(batch_size)
    n = data.tokens.shape[0]
    B = min(batch_size, n)
    per_epoch = n // B

    @functools.lru_cache(maxsize=1)
    def order(epoch: int) -> np.ndarray:
        return np.random.default_rng((seed, epoch)).permutation(n)

    def batches(step: int):
        epoch, k = divmod(int(step), per_epoch)
        rows = order(epoch)[k * B : (k + 1) * B]
        return data.tokens[rows], data.lengths[rows], data.labels[rows]

    return batches, per_epoch


# ------------------------------------------------------------------------------------------ evaluation


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")


def _check_examples(name: str, data) -> Examples:
    if not isinstance(data, Examples):
        raise TypeError(f"{name}: expected Examples(tokens, lengths, labels), got {type(data).__name__}")
    n = data.tokens.shape[0]
    if data.tokens.ndim != 2 or data.lengths.shape != (n,) or data.labels.shape != (n,) or n == 0:
        raise ValueError(
            f"{name}: expected tokens [N, T], lengths [N] and labels [N] with N >= 1, got shapes "
            f"{data.tokens.shape}, {data.lengths.shape}, {data.labels.shape}"
        )
    return data


@functools.partial(jax.jit, static_argnums=0)
def _logits(model, params, tokens, lengths):
    return model.apply({"params": params}, tokens, lengths=lengths)[0]  # (B, C)


def evaluate(model: models.RNNModel, params, data: Examples, *, batch_size: int = 256) -> Evaluation:
    """Loss, accuracy, logits and predictions of `model` on `data` (no dropout).

    Every batch has `batch_size` rows (the last one is filled with copies of row 0 and cut back), so one
    compiled function serves all batches of a given T.

    Args:
      model: the classifier; params: its parameters (`variables["params"]`).
      data: `Examples` with tokens <int32>[N, T], lengths <int32>[N], labels <int32>[N].
      batch_size: rows per forward pass.

    Returns:
      `Evaluation(loss, accuracy, logits <float32>[N, C], predictions <int32>[N])`.
    """
    data = _check_examples("data", data)
    _check_batch_size(batch_size)
    n = data.tokens.shape[0]
    B = min(batch_size, n)
    chunks = []
    for start in range(0, n, B):
        rows = np.arange(start, start + B)
        rows[rows >= n] = 0  # filler rows, dropped below
        out = _logits(
            model, params, jnp.asarray(data.tokens[rows], jnp.int32), jnp.asarray(data.lengths[rows])
        )
        chunks.append(np.asarray(out)[: min(B, n - start)])
    logits = np.concatenate(chunks).astype(np.float32)  # (N, C)
    labels = np.asarray(data.labels, np.int32)
    log_p = logits.astype(np.float64) - np.logaddexp.reduce(logits.astype(np.float64), axis=1, keepdims=True)
    loss = float(-np.mean(log_p[np.arange(n), labels]))
    predictions = np.argmax(logits, axis=1).astype(np.int32)
    return Evaluation(loss, float(np.mean(predictions == labels)), logits, predictions)


def padding_check(model: models.RNNModel, params, data: Examples, factors=(2, 4), *, seed: int = 0) -> list:
    """Evaluate `data` as given and padded to `factor` times its length with random token ids.

    The extra columns hold ids drawn uniformly from the vocabulary (not zeros), so the check also fails if
    padded inputs leak into the result. The lengths are unchanged.

    Args:
      model, params: the classifier.
      data: `Examples` with tokens <int32>[N, T].
      factors: multiples of T to pad to (each >= 2).
      seed: seed of the random padding ids.

    Returns:
      One dict per length (factor 1 first) with "factor", "T", "accuracy", "loss",
      "max_abs_logit_diff" (against factor 1) and "predictions_changed" (how many argmax predictions differ).
    """
    data = _check_examples("data", data)
    for f in factors:
        if isinstance(f, bool) or not isinstance(f, int) or f < 2:
            raise ValueError(f"factors: expected ints >= 2, got {factors!r}")
    base = evaluate(model, params, data)
    N, T = data.tokens.shape

    def row(factor: int, ev: Evaluation) -> dict:
        return dict(
            factor=factor,
            T=factor * T,
            accuracy=ev.accuracy,
            loss=ev.loss,
            max_abs_logit_diff=float(np.max(np.abs(ev.logits - base.logits))),
            predictions_changed=int(np.sum(ev.predictions != base.predictions)),
        )

    rows = [row(1, base)]
    rng = np.random.default_rng(seed)
    for f in factors:
        extra = rng.integers(model.vocab_size, size=(N, (f - 1) * T), dtype=np.int32)
        padded = Examples(np.concatenate([data.tokens, extra], axis=1), data.lengths, data.labels)
        rows.append(row(f, evaluate(model, params, padded)))
    return rows


def accuracy_by_length(lengths, correct, groups: int = 4) -> list[dict]:
    """Accuracy within groups of examples of similar length (sorted by length, cut into equal counts).

    Args:
      lengths: <int>[N] lengths; correct: <bool>[N] whether each prediction is right.
      groups: number of groups (fewer if N is smaller).

    Returns:
      One dict per group, shortest first: "min_length", "max_length", "n", "accuracy".
    """
    lengths, correct = np.asarray(lengths), np.asarray(correct, bool)
    order = np.argsort(lengths, kind="stable")
    return [
        dict(
            min_length=int(lengths[g].min()),
            max_length=int(lengths[g].max()),
            n=int(g.size),
            accuracy=float(correct[g].mean()),
        )
        for g in np.array_split(order, min(groups, lengths.size))
    ]


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts <int64>[C, C]: entry [i, j] is the number of examples of class i predicted as class j."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"labels, predictions: expected two arrays of shape [N], got {labels.shape}, {predictions.shape}"
        )
    for name, ids in (("labels", labels), ("predictions", predictions)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(
                f"{name}: expected class ids in [0, {num_classes}), got [{ids.min()}, {ids.max()}]"
            )
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def majority_baseline(labels, num_classes: int) -> tuple[int, float]:
    """The accuracy of always predicting the most frequent class of `labels` <int>[N] (class ids in
    [0, num_classes); ties go to the lower id): (that class id, its share of the N examples). Compare a
    split's accuracy with the baseline of the same split."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels: expected class ids of shape [N] with N >= 1, got shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels: expected class ids in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=num_classes)
    top = int(np.argmax(counts))
    return top, float(counts[top] / labels.size)


def softmax(logits) -> np.ndarray:
    """Class probabilities <float64>[N, C] of logits <[N, C]>."""
    logits = np.asarray(logits, np.float64)
    return np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))


def prediction_columns(label_names, *, labelled: bool, leading=()) -> list[str]:
    """The header of `write_prediction_csv`: the `leading` columns, "row", "length", "unknown_share",
    then "label", "prediction", "correct" (`labelled`) or "prediction", "p_<label>" per class, "text"."""
    known = ["label", "prediction", "correct"] if labelled else ["prediction"]
    return [*leading, "row", "length", "unknown_share", *known, *(f"p_{y}" for y in label_names), "text"]


def write_prediction_csv(
    path: str | os.PathLike,
    label_names,
    ev: Evaluation,
    texts,
    rows,
    lengths,
    labels=None,
    *,
    unknown=None,
    leading: dict | None = None,
):
    """Write one CSV row per example of `ev`, atomically (header: `prediction_columns`): the `leading`
    columns ({name: N values}, e.g. an id column of the input, the cell), "row" (`rows`, 1-based),
    "length" (tokens read), "unknown_share" (`unknown` <float>[N]: the share of those tokens missing from
    the vocabulary; empty without it), "label" and "correct" (0/1; only with class ids `labels`),
    "prediction", "p_<label>" (the softmax probability of each class), "text"."""
    probs, given, leading = softmax(ev.logits), labels is not None, dict(leading or {})  # (N, C)
    header = prediction_columns(label_names, labelled=given, leading=leading)
    if len(set(header)) != len(header):
        raise ValueError(f"leading: expected column names other than the written ones, got {list(leading)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, p in enumerate(ev.predictions.tolist()):
        y = int(labels[i]) if given else None
        known = [label_names[y], label_names[p], int(y == p)] if given else [label_names[p]]
        share = "" if unknown is None else f"{float(unknown[i]):.4f}"
        front = [values[i] for values in leading.values()]
        writer.writerow(
            [*front, rows[i], int(lengths[i]), share, *known, *(f"{q:.6f}" for q in probs[i]), texts[i]]
        )
    results.atomic_write_text(path, buffer.getvalue())


def write_predictions(path: str | os.PathLike, data: Data, ev: Evaluation) -> None:
    """Write `ev` (an evaluation of `data.test`) as CSV, one row per test example, atomically
    (`write_prediction_csv`; "row" is the example's data row in the source, 1 = the first row after a CSV
    header)."""
    rows, test = data.rows[2], data.test
    if ev.logits.shape[0] != rows.size:
        raise ValueError(
            f"ev: expected an evaluation of the {rows.size} test examples, got {ev.logits.shape[0]}"
        )
    texts, numbers = [data.texts[r] for r in rows.tolist()], (rows + 1).tolist()
    unknown = labelled.unknown_counts(test.tokens, test.lengths, data.vocab.unk_id) / test.lengths
    names = data.label_set.labels
    write_prediction_csv(path, names, ev, texts, numbers, test.lengths, test.labels, unknown=unknown)


def predict(loaded: Loaded, texts, *, batch_size: int = 256) -> Predictions:
    """Label new `texts` with a trained classifier (`load`), read as in its training: the same level,
    lowercasing, vocabulary (unknown tokens become `<unk>`), `max_len` and truncation. A text whose tokens
    are mostly unknown is read as mostly `<unk>`: its label says little (see `Predictions.unknown`).

    Args:
      loaded: what `load` returned.
      texts: N >= 1 strings, each with at least one token.
      batch_size: rows per forward pass.

    Returns:
      `Predictions(labels, lengths, unknown, ev)`: the predicted class name of each text, the tokens read
      <int32>[N], the share of them unknown to the vocabulary <float64>[N], and the `Evaluation` (its
      logits and predictions; loss and accuracy refer to placeholder labels 0).
    """
    if not isinstance(loaded, Loaded):
        raise TypeError(f"loaded: expected the Loaded of classify.load, got {type(loaded).__name__}")
    cfg = loaded.config
    token_lists = labelled.tokenize(texts, level=cfg.level, lowercase=cfg.lowercase)
    if not token_lists:
        raise ValueError("texts: expected at least one text, got none")
    empty = [i + 1 for i, toks in enumerate(token_lists) if not toks]
    if empty:
        raise ValueError(
            f"texts: text(s) {empty[:10]} have no tokens at level {cfg.level!r}; expected at least one each"
        )
    ids = [loaded.vocab.encode(toks) for toks in token_lists]
    tokens, lengths = labelled.pad_sequences(
        ids, cfg.max_len if cfg.max_len is not None else max(len(x) for x in ids), truncate=cfg.truncate
    )
    placeholder = np.zeros(len(ids), np.int32)
    ev = evaluate(loaded.model, loaded.params, Examples(tokens, lengths, placeholder), batch_size=batch_size)
    unknown = labelled.unknown_counts(tokens, lengths, loaded.vocab.unk_id) / lengths  # (N,)
    return Predictions([loaded.label_set.labels[p] for p in ev.predictions.tolist()], lengths, unknown, ev)


# ------------------------------------------------------------------------------------ training, loading


def _has_checkpoint(run) -> bool:
    try:
        find_checkpoints(run)
    except FileNotFoundError:
        return False
    return True


def _check_resume(meta: dict):
    def check(saved: dict) -> None:
        for key in ("cell", "vocab", "labels"):
            if saved.get(key) != meta[key]:
                raise ValueError(
                    f"resume: the checkpoint's {key} differs from this run's; use a new run folder"
                )
        saved_cfg, cfg = saved.get("config", {}), meta["config"]
        changed = [k for k in cfg if k not in RESUMABLE_FIELDS and saved_cfg.get(k) != cfg[k]]
        if changed:
            raise ValueError(
                f"resume: the checkpoint was trained with other {', '.join(changed)} "
                f"({'; '.join(f'{k}: saved {saved_cfg.get(k)!r}, given {cfg[k]!r}' for k in changed)}); "
                f"only {', '.join(RESUMABLE_FIELDS)} may change"
            )

    return check


def _meta(cfg: ClassifyConfig, data: Data, cell: str) -> dict:
    """The record saved with every checkpoint (and compared on resume)."""
    vocab, labels = data.vocab.to_json(), data.label_set.to_json()
    return dict(config=results.to_jsonable(cfg), cell=cell, vocab=vocab, labels=labels)


def check_resumable(cfg: ClassifyConfig, data: Data, cell: str, run: str | os.PathLike) -> None:
    """Refuse (ValueError, as `train(..., resume=True)` would) to continue the checkpoint in `run` with
    `cfg`, `data` and `cell` when its vocabulary, labels, cell or settings other than `RESUMABLE_FIELDS`
    differ; reads only (nothing in `run` changes). A folder with no checkpoint passes (it starts afresh)."""
    if not _has_checkpoint(run):
        return
    meta = _meta(cfg, data, cell)
    with Checkpoints(find_checkpoints(run), writable=False) as store:
        intact = store.intact_steps()
        if not intact:
            return  # `train` reports the corrupt steps
        _check_resume(meta)(store.read_meta(intact[-1]))


def train(
    cfg: ClassifyConfig,
    data: Data,
    cell: str,
    *,
    run: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Train the classifier of `cfg` with `cell` on `data.train`, validating on `data.valid`.

    `cfg.steps` updates (default `cfg.epochs` passes over the training rows) through `rnnjax.train.fit`:
    evaluation after every epoch and at the end, training records every `cfg.log_every` steps, and, with
    a `run` folder, `metrics.jsonl` and an orbax checkpoint every `cfg.save_every` steps and at the end,
    each with the config, the cell, the vocabulary and the labels (see `load`). If the loss becomes NaN or
    inf, training stops with a RuntimeWarning and the params are those before that step.

    Args:
      cfg: the run's config; data: `prepare(cfg)`; cell: a kind of `rnnjax.cells.KINDS`.
      run: folder of this cell's metrics and checkpoints; None keeps everything in memory.
      resume: continue from the latest checkpoint in `run` if it holds one (its config may differ only
        in `RESUMABLE_FIELDS`, its vocabulary and labels not at all).
      progress: show a progress bar; desc: its label (default: the cell).

    Returns:
      `TrainResult(model, params, history, fit)`.
    """
    check_config(cfg)
    if cell not in cells.KINDS:
        raise ValueError(f"cell: expected one of {tuple(cells.KINDS)}, got {cell!r}")
    model = make_model(cfg, cell, len(data.vocab), len(data.label_set))
    tx = make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.clip_norm)
    batches, per_epoch = make_batches(data.train, cfg.batch_size, cfg.seed)
    valid_records = []

    def validate(state: TrainState) -> dict:
        ev = evaluate(model, state.params, data.valid)
        valid_records.append(dict(step=int(state.step), loss=ev.loss, accuracy=ev.accuracy))
        return {"loss": ev.loss, "accuracy": ev.accuracy}

    meta = _meta(cfg, data, cell)
    result = fit(
        make_train_step(model, tx),
        init_state(model, tx, cfg.seed),
        batches,
        steps=cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch,
        key=jax.random.split(jax.random.key(cfg.seed))[1],
        evaluate=validate,
        eval_every=per_epoch,
        run=run,
        resume=resume and run is not None and _has_checkpoint(run),
        save_every=cfg.save_every if run is not None else None,
        meta=meta,
        check_resume=_check_resume(meta),
        log_every=cfg.log_every,
        items_per_step=("examples", min(cfg.batch_size, data.train.tokens.shape[0])),
        progress=progress,
        desc=desc or cell,
    )
    history = dict(result.history, valid=valid_records, epochs=math.ceil(result.step / per_epoch))
    return TrainResult(model, result.state.params, history, result)


def load(path: str | os.PathLike, which: str | int = "latest") -> Loaded:
    """The classifier saved by `train(..., run=path)`: `Loaded(model, params, vocab, label_set, config,
    cell, step)`; `which` is "latest", "best" (lowest validation loss) or a saved step, among the intact
    steps (a corrupt one skipped with a warning, or refused when asked for: `Checkpoints.resolve`)."""
    with Checkpoints(find_checkpoints(path), writable=False) as store:
        step = store.resolve(which)
        meta = store.read_meta(step)
        cfg = config_from_json(meta["config"])
        vocab = text_lib.Vocabulary.from_json(meta["vocab"])
        label_set = labelled.LabelSet.from_json(meta["labels"])
        model = make_model(cfg, meta["cell"], len(vocab), len(label_set))
        like = init_state(model, make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.clip_norm), cfg.seed)
        state, _ = store.restore(step, like=like)
    return Loaded(model, state.params, vocab, label_set, cfg, meta["cell"], int(step))
