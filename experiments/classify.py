"""Many-to-one sequence classification: embedding -> LSTM / GRU / Elman -> last valid step (or mean over
valid steps) -> dense -> class logits (`rnnjax.models.SequenceClassifier`), on a labelled CSV file or on a
synthetic sentiment set whose label is decided by one word near the start of a long padded text.

    python -m experiments.classify                     # synthetic set, LSTM vs GRU vs simple; ~75 s
    python -m experiments.classify --synthetic-min-len 50      # the harder variant below; ~75 s
    python -m experiments.classify --quick             # smoke run, ~30 s (mostly compilation)
    python -m experiments.classify --csv reviews.csv --text-column review --label-column sentiment
    python -m experiments.classify --csv data.csv --level char --lowercase --max-len 400 --truncate post
    python -m experiments.classify --replot results/classify/<run>     # figure again from metrics.jsonl

Data. With `--csv`, the text and label columns are read with `rnnjax.data.labelled.read_csv`, split
80/20 into train/valid by a seeded shuffle (independent examples, so no leakage; see `split_indices`),
tokenized into words or characters, and encoded with a vocabulary built on the training rows only (id 0
is `<unk>`, which also serves as the padding id; padded steps are masked by the lengths, so its value is
irrelevant). Without `--csv`, `labelled.synthetic_sentiment` makes 12000 texts of 10-100 neutral filler
words (uniform length) with one sentiment word ("good", "awful", ...) in the first 5 positions; the label
is its polarity, and texts are right-padded to T=100. With `--pooling last` the network must carry that
word across up to 100 steps of filler to the last valid step.

Training: Adam (lr 3e-3, gradients clipped to global norm 1) on the mean softmax cross-entropy of
shuffled minibatches of 64, compiled once with `jax.jit`; validation accuracy after every epoch.

Padding check: after training, the validation set is padded to 2x and 4x its length with *random* ids
(not zeros) and evaluated again; since padded steps are masked, accuracy and every prediction must be
unchanged, and the logits may differ only by float32 rounding.

Measured (seed 0, 2-core CPU shared with other jobs, jax 0.10.2; 74 s wall for the default command, of
which ~9 s compilation; 750 steps per cell; H=64, embed 32, pooling last, T=100):

    texts of 10-100 words (default)   valid acc   longest quarter (79-100 words)   at 2x / 4x padding
    lstm                              1.0000      1.0000                           1.0000 / 1.0000
    gru                               1.0000      1.0000                           1.0000 / 1.0000
    simple (tanh)                     0.9700      0.9733                           0.9700 / 0.9700

    texts of 50-100 words (--synthetic-min-len 50; 71 s)
    lstm                              0.9363      0.9267 (88-100)                  0.9363 / 0.9363
    gru                               0.4808      0.4950                           0.4808 / 0.4808
    simple (tanh)                     0.5054      0.5050                           0.5054 / 0.5054

- With short texts in the mix, all three cells learn, and the long texts are classified as well as the
  short ones: the short texts give a gradient that reaches the sentiment word, and the memory learned
  there carries over to 100-step gaps. The LSTM is at 0.999 after one epoch, the GRU at 0.980, the tanh
  RNN needs all five (0.51, 0.76, 0.79, 0.74, 0.97).
- Without short texts (every gap >= 45 steps) only the LSTM (forget-gate bias 1) gets off the ground
  (0.88 after one epoch, best 0.95, no trend with length); the GRU (update gate at 0.5, i.e. a memory
  that halves every step at initialisation) and the tanh RNN stay at chance for all five epochs.
- Padding check: in every run above the logits at 2x and 4x padding equal those at 1x exactly (max abs
  difference 0.0), so no prediction changes.

Writes `results/classify/<run>/` (or `--out`): config.json, vocab.json, labels.json, metrics.jsonl (one
JSON object per line, flushed as training goes: "data", then "train" every `log_every` steps, "valid"
every epoch and "final" per cell, then "done"), curves.png (train loss and valid accuracy vs step),
summary.md. All but metrics.jsonl are written atomically.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import tyro
from tqdm import tqdm

from rnnjax import models, results
from rnnjax.data import labelled
from rnnjax.data import text as text_lib
from rnnjax.train.optimizers import make_optimizer

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPERIMENT = "classify"
# Steps between updates of the progress bar's loss/accuracy display.
POSTFIX_EVERY = 10


Cell = Literal["lstm", "gru", "simple"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Data (a CSV file or the synthetic set), model, training and output options."""

    csv: Path | None = None  # labelled CSV with a header row; None: the synthetic sentiment set
    text_column: str = "text"  # CSV column with each example's text
    label_column: str = "label"  # CSV column with each example's class (any strings)
    encoding: str = "utf-8"  # codec of the CSV file
    decode_errors: Literal["strict", "replace"] = "strict"  # "replace": undecodable bytes become U+FFFD
    level: Literal["word", "char"] = "word"  # tokens: words and punctuation marks, or characters
    lowercase: bool = False  # lowercase the texts before tokenizing
    min_count: int = 1  # keep tokens seen at least this often in the training rows; the rest are <unk>
    max_vocab: int | None = 20000  # vocabulary size cap, <unk> included
    max_len: int | None = None  # truncate longer sequences; None: pad to the longest
    truncate: Literal["pre", "post"] = "pre"  # drop the start ("pre") or the end ("post") of long ones
    valid_fraction: float = 0.2  # seeded random share of the examples held out for validation
    synthetic_n: int = 12000  # synthetic set (without --csv): number of texts
    synthetic_seq_len: int = 100  # synthetic set: longest text, in words
    synthetic_min_len: int = 10  # synthetic set: shortest text (short ones let gradients reach the word)
    synthetic_signal: tuple[int, int] = (0, 5)  # synthetic set: sentiment word position drawn from [lo, hi)
    cell: tuple[Cell, ...] | None = None  # cells to train; None: lstm gru simple (synthetic), lstm (CSV)
    pooling: Literal["last", "mean"] = "last"  # classify from the last valid step or the mean over them
    hidden_size: int = 64
    embed_size: int | None = 32  # None: one-hot inputs
    num_layers: int = 1
    dropout: float = 0.0  # between layers and before the readout, training only
    epochs: int = 5
    steps: int | None = None  # if set, train exactly this many steps instead of `epochs` epochs
    batch_size: int = 64
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: float = 3e-3
    clip_norm: float | None = 1.0  # clip the gradient's global norm; None: no clipping
    seed: int = 0  # fixes the synthetic set, the split, the initial params and the batch order
    padding_factors: tuple[int, ...] = (2, 4)  # padding check: evaluate at these multiples of the length
    log_every: int = 10  # steps per "train" line of metrics.jsonl
    progress: bool = True  # tqdm progress bars
    quick: bool = False  # smoke run: 1000 texts of 5-30 words, 3 epochs (1 epoch on a CSV), H=16
    out: Path | None = None  # output folder; default results/classify/<UTC timestamp>
    replot: Path | None = None  # redraw curves.png of an existing run folder from its metrics.jsonl


class Examples(NamedTuple):
    """Labelled, right-padded sequences."""

    tokens: np.ndarray  # <int32>[N, T] token ids, 0 after each row's length
    lengths: np.ndarray  # <int32>[N] in [1, T]
    labels: np.ndarray  # <int32>[N] class ids


class Data(NamedTuple):
    """What `prepare` returns."""

    train: Examples
    valid: Examples
    vocab: text_lib.Vocabulary
    label_set: labelled.LabelSet
    source: str  # "synthetic" or the CSV path


class Evaluation(NamedTuple):
    """What `evaluate` returns."""

    loss: float  # mean softmax cross-entropy, nats
    accuracy: float  # fraction of argmax predictions equal to the labels
    logits: np.ndarray  # <float32>[N, C]
    predictions: np.ndarray  # <int32>[N]


class TrainResult(NamedTuple):
    """What `train_classifier` returns; unpacks as `params, history = ...`.

    history: "step", "loss", "accuracy": per logged interval (the mean training loss and batch accuracy
    over the `log_every` steps ending at "step"); "valid": a list of {"epoch", "step", "loss", "accuracy"}
    per evaluation; "steps", "epochs", "diverged", "compile_seconds", "train_seconds".
    """

    params: dict
    history: dict


# ------------------------------------------------------------------------------------------------ data


def _check_positive_int(name: str, value, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        want = "None or an int >= 1" if allow_none else "an int >= 1"
        raise ValueError(f"{name}: expected {want}, got {value!r}")


def check_config(cfg: Config) -> None:
    """Raise ValueError naming the first field of `cfg` that is out of range."""
    for name in ("min_count", "synthetic_n", "synthetic_seq_len", "synthetic_min_len", "hidden_size"):
        _check_positive_int(name, getattr(cfg, name))
    for name in ("num_layers", "epochs", "batch_size", "log_every"):
        _check_positive_int(name, getattr(cfg, name))
    for name in ("max_vocab", "max_len", "steps", "embed_size"):
        _check_positive_int(name, getattr(cfg, name), allow_none=True)
    choices = dict(
        decode_errors=("strict", "replace"),
        level=labelled.LEVELS,
        truncate=("pre", "post"),
        pooling=("last", "mean"),
        optimizer=("adam", "sgd", "rmsprop"),
    )
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name}: expected one of {allowed}, got {getattr(cfg, name)!r}")
    if cfg.cell is not None:
        if isinstance(cfg.cell, str) or not cfg.cell:
            raise ValueError(
                f"cell: expected a non-empty tuple of names from {models.CELL_KINDS}, got {cfg.cell!r}"
            )
        for c in cfg.cell:
            if c not in models.CELL_KINDS:
                raise ValueError(f"cell: expected names from {models.CELL_KINDS}, got {c!r}")
        if len(set(cfg.cell)) != len(cfg.cell):
            raise ValueError(f"cell: expected each cell once, got {cfg.cell!r}")
    if not 0.0 < cfg.valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {cfg.valid_fraction!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {cfg.dropout!r}")
    if not (isinstance(cfg.learning_rate, int | float) and cfg.learning_rate > 0):
        raise ValueError(f"learning_rate: expected a positive number, got {cfg.learning_rate!r}")
    if cfg.clip_norm is not None and not cfg.clip_norm > 0:
        raise ValueError(f"clip_norm: expected None or a positive number, got {cfg.clip_norm!r}")
    for f in cfg.padding_factors:
        if isinstance(f, bool) or not isinstance(f, int) or f < 2:
            raise ValueError(f"padding_factors: expected ints >= 2, got {cfg.padding_factors!r}")


def cells_for(cfg: Config) -> tuple[str, ...]:
    """The cells to train: `cfg.cell`, or all three on the synthetic set and the LSTM on a CSV."""
    if cfg.cell is not None:
        return tuple(cfg.cell)
    return ("lstm",) if cfg.csv is not None else ("lstm", "gru", "simple")


def prepare(cfg: Config) -> Data:
    """Read (or generate), split, tokenize, encode and pad the labelled examples of `cfg`.

    The vocabulary is built from the training rows only; the label set from all rows (class names are
    targets, not inputs). Both splits are padded to one length T (`cfg.max_len`, else the longest row).
    """
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
    train_rows, valid_rows = labelled.split_indices(
        len(texts), valid_fraction=cfg.valid_fraction, seed=cfg.seed
    )
    vocab = text_lib.Vocabulary.build(
        (tok for i in train_rows for tok in token_lists[i]), min_count=cfg.min_count, max_size=cfg.max_vocab
    )
    ids = [vocab.encode(toks) for toks in token_lists]
    T = cfg.max_len if cfg.max_len is not None else max(len(x) for x in ids)
    tokens, lengths = labelled.pad_sequences(ids, T, truncate=cfg.truncate)

    def take(rows):
        return Examples(tokens[rows], lengths[rows], ys[rows])

    return Data(take(train_rows), take(valid_rows), vocab, label_set, source)


def make_model(cfg: Config, cell: str, vocab_size: int, num_classes: int) -> models.SequenceClassifier:
    """The `SequenceClassifier` of `cfg` with the given cell."""
    return models.SequenceClassifier(
        vocab_size,
        num_classes,
        cell=cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        embed_size=cfg.embed_size,
        dropout=cfg.dropout,
        pooling=cfg.pooling,
    )


# -------------------------------------------------------------------------------------------- training


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
    return model.apply({"params": params}, tokens, lengths=lengths)  # (B, C)


def evaluate(
    model: models.SequenceClassifier, params, data: Examples, *, batch_size: int = 256
) -> Evaluation:
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
    _check_positive_int("batch_size", batch_size)
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


def train_classifier(
    model: models.SequenceClassifier,
    train: Examples,
    valid: Examples | None = None,
    *,
    epochs: int = 10,
    steps: int | None = None,
    batch_size: int = 64,
    optimizer: str | optax.GradientTransformation = "adam",
    learning_rate: float | None = 3e-3,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    log_every: int = 10,
    log: Callable[[dict], None] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> TrainResult:
    """Train a `SequenceClassifier` with optax on shuffled minibatches, validating after every epoch.

    Each epoch visits the training rows in a fresh seeded permutation, in batches of `batch_size` (a final
    partial batch is dropped so that one compiled step serves all batches). The loss is the mean softmax
    cross-entropy (`optax.softmax_cross_entropy_with_integer_labels`); the update is
    `rnnjax.train.make_optimizer(optimizer, learning_rate, clip_norm)`. Training stops early with a
    RuntimeWarning if the loss becomes NaN or inf (the params are those before that step).

    Args:
      model: the classifier.
      train: training `Examples`; valid: validation `Examples` or None.
      epochs: passes over the training rows (ignored when `steps` is given).
      steps: total optimisation steps, crossing epoch boundaries as needed; validation also runs after
        the last step.
      batch_size: rows per step (reduced to N when the training set is smaller).
      optimizer, learning_rate, clip_norm: see `rnnjax.train.make_optimizer`.
      seed: fixes the initial params, the dropout masks and the batch order.
      log_every: steps per "train" record (mean loss and accuracy over those steps).
      log: called with each record (a dict with "kind" "train" or "valid"), e.g. to append a JSON line.
      progress: show a tqdm bar with the loss, batch accuracy and last validation accuracy.
      desc: label of the progress bar.

    Returns:
      `TrainResult(params, history)`.
    """
    train = _check_examples("train", train)
    if valid is not None:
        valid = _check_examples("valid", valid)
    _check_positive_int("epochs", epochs)
    _check_positive_int("steps", steps, allow_none=True)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("log_every", log_every)
    tx = make_optimizer(optimizer, learning_rate, clip_norm)
    n = train.tokens.shape[0]
    B = min(batch_size, n)
    per_epoch = n // B
    total = steps if steps is not None else epochs * per_epoch
    k_init, k_dropout = jax.random.split(jax.random.key(seed))
    params = model.init(
        k_init, jnp.asarray(train.tokens[:B], jnp.int32), lengths=jnp.asarray(train.lengths[:B])
    )
    params = params["params"]
    opt_state = tx.init(params)

    def loss_fn(params, tokens, lengths, labels, key):
        logits = model.apply({"params": params}, tokens, lengths=lengths, train=True, rngs={"dropout": key})
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == labels)

    def update(params, opt_state, tokens, lengths, labels, step):
        key = jax.random.fold_in(k_dropout, step)
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, tokens, lengths, labels, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, acc

    def batch(rows):
        return (
            jnp.asarray(train.tokens[rows], jnp.int32),
            jnp.asarray(train.lengths[rows], jnp.int32),
            jnp.asarray(train.labels[rows], jnp.int32),
        )

    start = time.perf_counter()
    compiled = jax.jit(update).lower(params, opt_state, *batch(np.arange(B)), jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    history: dict = dict(step=[], loss=[], accuracy=[], valid=[], diverged=False)
    emit = log or (lambda record: None)
    window_loss, window_acc = [], []
    valid_acc = None
    step = epoch = 0
    start = time.perf_counter()

    def validate():
        nonlocal valid_acc
        if valid is None:
            return
        ev = evaluate(model, params, valid)
        valid_acc = ev.accuracy
        record = dict(kind="valid", epoch=epoch, step=step, loss=ev.loss, accuracy=ev.accuracy)
        history["valid"].append({k: v for k, v in record.items() if k != "kind"})
        emit(record)

    with tqdm(total=total, desc=desc, unit="step", disable=not progress) as bar:
        while step < total and not history["diverged"]:
            order = rng.permutation(n)
            epoch += 1
            for k in range(per_epoch):
                out = compiled(params, opt_state, *batch(order[k * B : (k + 1) * B]), jnp.int32(step))
                loss, acc = (float(v) for v in jax.device_get(out[2:]))
                if not math.isfinite(loss):
                    history["diverged"] = True
                    warnings.warn(
                        f"{desc or 'train_classifier'}: loss {loss} at step {step}; stopping with the params "
                        f"from before this step",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    break
                params, opt_state = out[0], out[1]
                step += 1
                window_loss.append(loss)
                window_acc.append(acc)
                bar.update(1)
                if step % log_every == 0 or step == total:
                    record = dict(
                        kind="train",
                        epoch=epoch,
                        step=step,
                        loss=float(np.mean(window_loss)),
                        accuracy=float(np.mean(window_acc)),
                    )
                    for key in ("step", "loss", "accuracy"):
                        history[key].append(record[key])
                    emit(record)
                    window_loss, window_acc = [], []
                if step % POSTFIX_EVERY == 0:
                    postfix = dict(loss=f"{loss:.3f}", acc=f"{acc:.2f}")
                    if valid_acc is not None:
                        postfix["valid_acc"] = f"{valid_acc:.3f}"
                    bar.set_postfix(postfix, refresh=False)
                if step == total:
                    break
            validate()
    history.update(
        steps=step, epochs=epoch, compile_seconds=compile_seconds, train_seconds=time.perf_counter() - start
    )
    return TrainResult(params, history)


def padding_check(
    model: models.SequenceClassifier,
    params,
    data: Examples,
    factors=(2, 4),
    *,
    seed: int = 0,
) -> list[dict]:
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
    base = evaluate(model, params, data)
    N, T = data.tokens.shape
    rows = [
        dict(
            factor=1,
            T=T,
            accuracy=base.accuracy,
            loss=base.loss,
            max_abs_logit_diff=0.0,
            predictions_changed=0,
        )
    ]
    rng = np.random.default_rng(seed)
    for f in factors:
        if isinstance(f, bool) or not isinstance(f, int) or f < 2:
            raise ValueError(f"factors: expected ints >= 2, got {factors!r}")
        extra = rng.integers(model.vocab_size, size=(N, (f - 1) * T), dtype=np.int32)
        padded = Examples(np.concatenate([data.tokens, extra], axis=1), data.lengths, data.labels)
        ev = evaluate(model, params, padded)
        rows.append(
            dict(
                factor=f,
                T=f * T,
                accuracy=ev.accuracy,
                loss=ev.loss,
                max_abs_logit_diff=float(np.max(np.abs(ev.logits - base.logits))),
                predictions_changed=int(np.sum(ev.predictions != base.predictions)),
            )
        )
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


# ------------------------------------------------------------------------------------------- reporting


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (a truncated last line, from an interrupted run, is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot(records: list[dict], path: Path) -> None:
    """Training loss and validation accuracy against step, one line per cell, from metrics records."""
    data = next((r for r in records if r["kind"] == "data"), {})
    cells = list(dict.fromkeys(r["cell"] for r in records if r["kind"] in ("train", "valid")))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for i, cell in enumerate(cells):
        tr = [r for r in records if r["kind"] == "train" and r["cell"] == cell]
        va = [r for r in records if r["kind"] == "valid" and r["cell"] == cell]
        ax_loss.plot([r["step"] for r in tr], [r["loss"] for r in tr], color=f"C{i}", lw=1, label=cell)
        ax_acc.plot(
            [r["step"] for r in va], [r["accuracy"] for r in va], "o-", color=f"C{i}", ms=3, label=cell
        )
    ax_loss.set(
        xlabel="training step", ylabel="cross-entropy (nats, log scale)", yscale="log", title="train loss"
    )
    if "majority_accuracy" in data:
        ax_acc.axhline(data["majority_accuracy"], color="gray", ls="--", lw=1, label="majority class")
    ax_acc.set(
        xlabel="training step", ylabel="accuracy (fraction)", ylim=(0, 1.02), title="validation accuracy"
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{data.get('source', '')}: T={data.get('T', '?')}, pooling={data.get('pooling', '?')}")
    results.save_figure(fig, path)
    plt.close(fig)


def summary_table(finals: list[dict]) -> str:
    """Markdown table: one row per cell with final and best validation accuracy and the padding check."""
    lines = [
        "| cell | valid acc | best valid acc | acc, longest quarter | acc at padding x"
        + "/x".join(str(p["factor"]) for p in (finals[0]["padding"][1:] if finals else []))
        + " | max abs logit diff | preds changed | steps | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in finals:
        pads, longest = f["padding"][1:], f["accuracy_by_length"][-1]
        lines.append(
            f"| {f['cell']} | {f['valid_accuracy']:.4f} | {f['best_valid_accuracy']:.4f} | "
            f"{longest['accuracy']:.4f} (L {longest['min_length']}-{longest['max_length']}) | "
            + "/".join(f"{p['accuracy']:.4f}" for p in pads)
            + f" | {max((p['max_abs_logit_diff'] for p in pads), default=0.0):.2g} | "
            f"{sum(p['predictions_changed'] for p in pads)} | {f['steps']} | {f['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main


def main(cfg: Config) -> dict:
    """Run the experiment of `cfg`; returns {"out": folder, "data": ..., "finals": [one dict per cell]}."""
    if cfg.replot is not None:
        plot(read_metrics(Path(cfg.replot) / "metrics.jsonl"), Path(cfg.replot) / "curves.png")
        return {"out": Path(cfg.replot)}
    if cfg.quick:
        quick = dict(hidden_size=16, embed_size=16, epochs=3 if cfg.csv is None else 1)
        if cfg.csv is None:
            quick.update(synthetic_n=1000, synthetic_seq_len=30, synthetic_min_len=5)
        cfg = dataclasses.replace(cfg, **quick)
    check_config(cfg)
    wall_start = time.perf_counter()
    data = prepare(cfg)
    out = Path(cfg.out) if cfg.out is not None else results.run_dir(EXPERIMENT)
    out.mkdir(parents=True, exist_ok=True)
    results.write_json(out / "config.json", cfg)
    data.vocab.save(out / "vocab.json")
    results.atomic_write_text(out / "labels.json", data.label_set.to_json() + "\n")
    counts = np.bincount(data.train.labels, minlength=len(data.label_set))
    info = dict(
        kind="data",
        source=data.source,
        n_train=len(data.train.labels),
        n_valid=len(data.valid.labels),
        vocab_size=len(data.vocab),
        num_classes=len(data.label_set),
        labels=list(data.label_set.labels),
        T=int(data.train.tokens.shape[1]),
        mean_length=float(np.mean(np.concatenate([data.train.lengths, data.valid.lengths]))),
        pooling=cfg.pooling,
        majority_accuracy=float(np.mean(data.valid.labels == np.argmax(counts))),
    )
    finals = []
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as metrics_file:

        def log(record: dict) -> None:
            metrics_file.write(json.dumps(results.to_jsonable(record)) + "\n")
            metrics_file.flush()

        log(info)
        for cell in cells_for(cfg):
            model = make_model(cfg, cell, len(data.vocab), len(data.label_set))
            params, history = train_classifier(
                model,
                data.train,
                data.valid,
                epochs=cfg.epochs,
                steps=cfg.steps,
                batch_size=cfg.batch_size,
                optimizer=cfg.optimizer,
                learning_rate=cfg.learning_rate,
                clip_norm=cfg.clip_norm,
                seed=cfg.seed,
                log_every=cfg.log_every,
                log=lambda r, cell=cell: log({"cell": cell, **r}),
                progress=cfg.progress,
                desc=f"{cell:>6}",
            )
            padding = padding_check(model, params, data.valid, cfg.padding_factors, seed=cfg.seed)
            ev = evaluate(model, params, data.valid)
            final = dict(
                kind="final",
                cell=cell,
                valid_accuracy=padding[0]["accuracy"],
                valid_loss=padding[0]["loss"],
                best_valid_accuracy=max((v["accuracy"] for v in history["valid"]), default=float("nan")),
                padding=padding,
                accuracy_by_length=accuracy_by_length(
                    data.valid.lengths, ev.predictions == data.valid.labels
                ),
                steps=history["steps"],
                epochs=history["epochs"],
                diverged=history["diverged"],
                compile_seconds=history["compile_seconds"],
                train_seconds=history["train_seconds"],
            )
            log(final)
            finals.append(final)
        wall = time.perf_counter() - wall_start
        log(dict(kind="done", wall_seconds=wall))
    plot(read_metrics(out / "metrics.jsonl"), out / "curves.png")
    table = summary_table(finals)
    header = [
        f"# classify: {data.source}",
        "",
        f"{info['n_train']} train / {info['n_valid']} valid examples, {info['num_classes']} classes "
        f"{info['labels']}, vocabulary {info['vocab_size']} ({cfg.level}s), padded length T={info['T']} "
        f"(mean length {info['mean_length']:.1f}), pooling={cfg.pooling}, H={cfg.hidden_size}, "
        f"embed={cfg.embed_size}, {cfg.optimizer} lr={cfg.learning_rate}, clip={cfg.clip_norm}, "
        f"seed={cfg.seed}.",
        f"Majority-class accuracy on valid: {info['majority_accuracy']:.4f}.",
        "",
        f"Padding check: valid set re-padded with random ids to {list(cfg.padding_factors)}x T; "
        "accuracy and predictions must not change.",
        "",
    ]
    footer = f"\nWall time {wall:.1f} s (data, compile, training and evaluation of all cells)."
    results.atomic_write_text(out / "summary.md", "\n".join(header) + table + "\n" + footer + "\n")
    print(table)
    print(f"wrote {out} in {wall:.1f} s")
    return dict(out=out, data=info, finals=finals)


if __name__ == "__main__":
    try:
        main(tyro.cli(Config))
    except (FileNotFoundError, ValueError) as e:  # bad input: the message names the argument
        raise SystemExit(f"error: {e}") from None
