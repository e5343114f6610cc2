"""Walkthrough 1: the classic tiny Keras word model ("this is" -> "an", "is an" -> "example") rebuilt with
rnnjax, then its prediction recomputed by hand in NumPy from the trained weights.

    python -m experiments.walkthrough_tiny                 # seconds (run time and results: README)
    python -m experiments.walkthrough_tiny --epochs 1000 --seed 1 --run long
    python -m experiments.walkthrough_tiny --prefixes      # also "this" -> "is", pre-padded to [<pad>, this]

`--run NAME` writes to `results/walkthrough_tiny/NAME/` (default: a timestamp); `--quick` is accepted
for uniformity and changes nothing (the default run already takes seconds); `--no-progress` hides the
progress bar; bad input prints one line `error: ...` (`--debug`: traceback).

What it does, step for step as in the Keras tutorial:
  1. Words -> integers by frequency (ties by first occurrence), id 0 reserved for padding:
     <pad>=0, this=1, is=2, an=3, example=4. Windows of 2 words -> the next word, pre-padded to length 2
     (a no-op for full windows; `--prefixes` adds the shorter ones, which it pads).
  2. Labels one-hot over 5 classes (4 words + the padding id).
  3. Model (`rnnjax.models.sequence_model`, pooling "last"): SimpleRNN(1 unit, zero recurrent init,
     Keras' glorot input kernel and zero bias) reading the word id itself as one scalar feature per step,
     then Dense(5, Keras' glorot kernel, zero bias) + softmax. Adam, categorical cross-entropy, full
     batch, 500 epochs (`rnnjax.train.fit`, one step per epoch), lr 3e-2: with Keras' Adam default 1e-3,
     500 epochs are too few for one unit reading raw ids (README).
  4. A Keras-style summary table; the counts are computed from the params pytree:
     SimpleRNN 1*1 + 1*1 + 1 = 3, Dense 1*5 + 5 = 10, total 13.
  5. Predictions, then the same probabilities from scratch in NumPy (float64): per step
     z = x*W_ih + h*W_hh + b, h = tanh(z); logits = h W_o + b_o; softmax; and max |difference|.

Writes `results/walkthrough_tiny/<run>/`: config.json, metrics.json (losses, parameter counts,
probabilities both ways), summary.md (the printout), all atomically.
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import cells, initializers, models, readout, results
from rnnjax.command import cli as _cli
from rnnjax.data import text as text_lib
from rnnjax.train import parallel
from rnnjax.train.loop import fit
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "walkthrough_tiny"
PAD = "<pad>"  # id 0: padding (and, as in Keras' Tokenizer, never a real word)
# rnnjax runs in float32, the NumPy recomputation in float64 from the same (float32) weights: the
# probabilities may differ by float32 rounding only.
TOL_FROM_SCRATCH = 1e-6


@dataclasses.dataclass(frozen=True)
class Config:
    """The corpus, model and training of the tiny example (about 4 s)."""

    text: str = "this is an example"  # lowercased and stripped of punctuation before splitting into words
    window: int = 2  # words of context per example (inputs are pre-padded to this length)
    prefixes: bool = False  # also train on the shorter prefixes ("this" -> "is"), pre-padded with <pad>
    hidden_size: int = 1  # SimpleRNN units
    epochs: int = 500  # full-batch Adam steps
    learning_rate: float = 3e-2  # Keras' Adam default 1e-3 does not get there in 500 epochs (docstring)
    seed: int = 0  # initial weights
    quick: bool = False  # accepted by every experiment; the default run already takes seconds
    progress: bool = True  # tqdm progress bar
    run: str | None = None  # results/walkthrough_tiny/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)


class Dataset(NamedTuple):
    vocab: text_lib.Vocabulary  # id 0 is PAD, then words by frequency
    xs: np.ndarray  # <int32>[N, window] word ids, pre-padded with 0
    ys: np.ndarray  # <int32>[N] the next word's id


class TrainState(NamedTuple):
    params: dict  # the model's params {"rnn": {"layer_0": SimpleParams}, "readout": DenseParams}
    opt_state: optax.OptState


def pad_pre(sequences: list[list[int]], length: int) -> np.ndarray:
    """Keras' `pad_sequences(..., padding="pre", truncating="pre")`: each list of ids left-padded with 0,
    or cut to its last `length` ids; returns <int32>[len(sequences), length]."""
    out = np.zeros((len(sequences), length), np.int32)
    for i, seq in enumerate(sequences):
        seq = list(seq)[-length:]
        if seq:
            out[i, length - len(seq) :] = seq
    return out


def make_dataset(text: str, window: int, prefixes: bool = False) -> Dataset:
    """Words of `text` -> ids by frequency (PAD at 0), then (window of `window` >= 1 words -> next word)
    pairs; `prefixes` also uses the contexts shorter than `window` at the start of the text."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window: expected an int >= 1, got {window!r}")
    words = text_lib.word_tokens(text_lib.normalize(text, lowercase=True, strip_punctuation=True))
    if len(words) < window + 1:
        raise ValueError(
            f"text: expected at least window + 1 = {window + 1} words, got {len(words)} ({words!r})"
        )
    vocab = text_lib.Vocabulary.build(words, unk=PAD)
    ids = vocab.encode(words)
    first = 1 if prefixes else window
    contexts = [ids[max(0, i - window) : i].tolist() for i in range(first, len(ids))]
    return Dataset(vocab, pad_pre(contexts, window), ids[first:].astype(np.int32))


def check_config(cfg: Config) -> None:
    """Refuses bad settings by name (the text and window are checked by `make_dataset`)."""
    _cli.check_ints(cfg, "hidden_size", "epochs")
    _cli.check_ints(cfg, "seed", minimum=0)
    check_positive("learning_rate", cfg.learning_rate)
    parallel.check_recurrent_size(
        "hidden_size", cfg.hidden_size, gates=1, input_size=1, hidden_size=cfg.hidden_size
    )


def make_cell(hidden_size: int) -> cells.Cell:
    """Keras SimpleRNN defaults (glorot input kernel, zero bias) with a zero recurrent kernel."""
    return cells.simple(hidden_size, "tanh", preset="keras", recurrent_init=initializers.zeros())


def make_model(hidden_size: int, num_classes: int) -> models.RNNModel:
    """SimpleRNN -> Dense on the last step: inputs <float32>[N, T, 1] -> logits <float32>[N, num_classes]."""
    return models.sequence_model(make_cell(hidden_size), num_classes, pooling="last")


def init_params(key, hidden_size: int, num_classes: int) -> dict:
    """Keras' initialisation in the model's params form: the cell's, and Dense's glorot-uniform kernel
    with zero bias (the model's own `init` draws a lecun-normal readout)."""
    k_rnn, k_dense = jax.random.split(key)
    kernel_init = initializers.glorot_uniform()
    return {
        "rnn": {"layer_0": make_cell(hidden_size).init(k_rnn, 1)},
        "readout": readout.dense_init(k_dense, hidden_size, num_classes, kernel_init=kernel_init),
    }


def as_inputs(xs: np.ndarray) -> jax.Array:
    """Word ids <int>[N, T] -> the RNN's input <float32>[N, T, 1]: the id itself as one scalar feature."""
    return jnp.asarray(xs, jnp.float32)[..., None]


def predict(params: dict, xs: np.ndarray) -> jax.Array:
    """Softmax probabilities <float32>[N, V] of the next word after each window of ids <int>[N, T]."""
    w = params["readout"].w  # (H, V)
    logits, _ = make_model(w.shape[0], w.shape[1]).apply({"params": params}, as_inputs(xs))
    return jax.nn.softmax(logits, axis=-1)


def summary_rows(params: dict, num_classes: int) -> list[tuple[str, str, int]]:
    """Keras-style (layer, output shape, parameter count), the counts summed over each layer's arrays."""
    layers = {"simple_rnn": params["rnn"]["layer_0"], "dense": params["readout"]}
    hidden = layers["simple_rnn"].w_hh.shape[0]
    shapes = {"simple_rnn": f"(None, {hidden})", "dense": f"(None, {num_classes})"}
    return [
        (name, shapes[name], sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(layer)))
        for name, layer in layers.items()
    ]


def make_train_step(model: models.RNNModel, tx: optax.GradientTransformation):
    """`train_step(state, (inputs <[N, T, 1]>, one-hot labels <[N, V]>), key) -> (state, {"loss"})`:
    one Adam step on the mean categorical cross-entropy."""

    def train_step(state: TrainState, batch, key):
        del key  # no dropout
        inputs, labels = batch

        def loss_fn(params):
            logits, _ = model.apply({"params": params}, inputs)
            return optax.softmax_cross_entropy(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state), {"loss": loss}

    return train_step


def train(params: dict, data: Dataset, cfg: Config) -> tuple[dict, list[float]]:
    """Full-batch Adam for cfg.epochs steps; returns the params and the loss per epoch."""
    batch = (as_inputs(data.xs), jax.nn.one_hot(data.ys, len(data.vocab), dtype=jnp.float32))  # (N, V)
    tx = optax.adam(cfg.learning_rate)
    step = make_train_step(make_model(cfg.hidden_size, len(data.vocab)), tx)
    result = fit(
        step, TrainState(params, tx.init(params)), lambda _: batch, steps=cfg.epochs,
        log_every=cfg.epochs, progress=cfg.progress, desc="epochs",
    )  # fmt: skip
    if result.status == "diverged":
        raise _cli.RunFailed(result.message)
    return result.state.params, result.history["loss"]


def _vec(a) -> str:
    return np.array2string(np.asarray(a, np.float64), precision=6, suppress_small=False, floatmode="fixed")


def from_scratch(params: dict, xs: np.ndarray, say=print) -> np.ndarray:
    """The model's probabilities recomputed in plain NumPy (float64), printing every intermediate.

    Args:
      params: trained params in the model's form (any float dtype).
      xs: <int>[N, T] word ids.
      say: where each line of the explanation goes.
    Returns:
      <float64>[N, V] probabilities.
    """
    rnn, dense = params["rnn"]["layer_0"], params["readout"]
    w_ih = np.asarray(rnn.w_ih, np.float64)  # (1, H)
    w_hh = np.asarray(rnn.w_hh, np.float64)  # (H, H)
    b = np.asarray(rnn.b, np.float64)  # (H,)
    w_o = np.asarray(dense.w, np.float64)  # (H, V)
    b_o = np.asarray(dense.b, np.float64)  # (V,)
    say(f"W_ih = {_vec(w_ih)}   W_hh = {_vec(w_hh)}   b = {_vec(b)}")
    say(f"W_o  = {_vec(w_o)}")
    say(f"b_o  = {_vec(b_o)}")
    out = []
    for n, window in enumerate(np.asarray(xs)):
        say(f"example {n}: ids {window.tolist()}")
        h = np.zeros(w_hh.shape[0])
        for t, word_id in enumerate(window):
            x = np.array([float(word_id)])  # the id as one feature
            x_part, h_part = x @ w_ih, h @ w_hh
            z = x_part + h_part + b
            h_new = np.tanh(z)
            say(
                f"  t={t}: x={x[0]:.0f}  x*W_ih={_vec(x_part)}  h*W_hh={_vec(h_part)}  + b "
                f"-> z={_vec(z)}  h=tanh(z)={_vec(h_new)}"
            )
            h = h_new
        logits = h @ w_o + b_o
        e = np.exp(logits - logits.max())  # subtracting the max changes nothing but avoids overflow
        probs = e / e.sum()
        say(f"  logits = h W_o + b_o = {_vec(logits)}")
        say(f"  softmax(logits)      = {_vec(probs)}")
        out.append(probs)
    return np.stack(out)


def main(cfg: Config) -> dict:
    """Train, print the summary, predictions and the NumPy recomputation; returns the numbers."""
    start = time.perf_counter()
    check_config(cfg)
    data = make_dataset(cfg.text, cfg.window, cfg.prefixes)
    V = len(data.vocab)
    out = _cli.new_run(EXPERIMENT, cfg)
    say = _cli.Printout()

    say("Vocabulary (by frequency, ties by first occurrence; 0 = padding): ")
    say("  " + ", ".join(f"{tok}={i}" for i, tok in enumerate(data.vocab.tokens)))
    say("Training pairs (pre-padded ids -> next id):")
    for x, y in zip(data.xs, data.ys):
        say(f"  {x.tolist()} ({' '.join(data.vocab.decode(x))}) -> {int(y)} ({data.vocab.decode([y])[0]})")
    say(f"One-hot labels: [{len(data.ys)}, {V}]")

    params = init_params(jax.random.key(cfg.seed), cfg.hidden_size, V)
    rows = summary_rows(params, V)
    total = sum(r[2] for r in rows)
    say("")
    say(f"{'Layer (type)':<24}{'Output Shape':<16}{'Param #':>8}")
    say("=" * 48)
    for (name, shape, count), kind in zip(rows, ("SimpleRNN", "Dense")):
        say(f"{f'{name} ({kind})':<24}{shape:<16}{count:>8}")
    say("=" * 48)
    say(f"Total params: {total}")
    say("")

    params, losses = train(params, data, cfg)
    say(f"Adam lr {cfg.learning_rate:g}, {cfg.epochs} epochs: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    probs = np.asarray(predict(params, data.xs), np.float64)  # (N, V)
    say("Predictions (rnnjax):")
    predictions = []
    for x, p in zip(data.xs, probs):
        context = " ".join(t for t in data.vocab.decode(x) if t != PAD)
        word = data.vocab.decode([int(np.argmax(p))])[0]
        predictions.append(dict(context=context, word=word, probability=float(p.max())))
        say(f"  {context!r} -> {word!r} (p = {p.max():.3f})   all: {_vec(p)}")
    say("")
    say("The same from scratch in NumPy (float64), from the trained weights:")
    probs_np = from_scratch(params, data.xs, say)
    diff = float(np.max(np.abs(probs_np - probs)))
    say(f"max |NumPy - rnnjax| over all probabilities: {diff:.2e} (tolerance {TOL_FROM_SCRATCH:g})")
    seconds = time.perf_counter() - start
    say(f"({seconds:.1f} s)")

    counts = {name: count for name, _, count in rows} | {"total": total}
    metrics = dict(vocab=list(data.vocab.tokens), param_counts=counts, losses=losses, predictions=predictions)
    metrics.update(probs_rnnjax=probs, probs_numpy=probs_np, max_abs_diff=diff, seconds=seconds)
    results.write_json(out / "metrics.json", metrics)
    say.save(out / "summary.md", "walkthrough_tiny")
    return metrics | dict(out=out, params=params)


if __name__ == "__main__":
    _cli.run(Config, main)
