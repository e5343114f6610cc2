"""Walkthrough 3: the classic word-level "Alice in Wonderland" Keras model (10 one-hot words -> the next
word) with SimpleRNN, LSTM and GRU cells side by side, and the last model's prediction recomputed in NumPy.

    python -m experiments.walkthrough_alice                       # all three cells, 10 epochs; ~7 min
    python -m experiments.walkthrough_alice --cells lstm --epochs 20
    python -m experiments.walkthrough_alice --path my_book.txt    # any local UTF-8 text file

Data: the `alice` corpus (rnnjax.data.corpora; `$RNNJAX_DATA` or a one-time download), lowercased and
stripped of punctuation, split into words. The last 10% of the words (a contiguous tail) is held out for
validation; the vocabulary holds the training words by frequency (ties by first occurrence) behind
`<unk>` at id 0, which validation words unseen in training map to. Examples are every window of 10
words and the word after it (`text.sliding_windows`), inputs one-hot over the vocabulary.

Model and training, as in the Keras tutorial: SimpleRNN(128) / LSTM(128) / GRU(128) with Keras' default
initialisers (preset "keras": glorot input kernel, orthogonal recurrent kernel, zero bias, LSTM forget
bias 1, GRU reset_after) reading the 10 one-hot words (`rnnjax.unroll`, a `lax.scan`), the last hidden
state into Dense(vocab) + softmax; categorical cross-entropy; RMSprop as Keras has it (rho 0.9, eps 1e-7
outside the square root: `optax.rmsprop(lr, 0.9, 1e-7, eps_in_sqrt=False)`) but at lr 3e-3, not Keras'
1e-3 (below), batch 128, shuffled every epoch, one jitted train step. After every epoch: the mean
training loss over the epoch, validation loss and accuracy, and a greedy 10-word continuation of one
random validation window (the same window for every cell and epoch).
At the end, the last cell's next-word probabilities for that window are recomputed from scratch in
NumPy float64 (one-hot -> cell steps -> dense -> softmax) next to the library's.

Measured (seed 0, jax 0.10.2, default command: 7 min 02 s wall, 420 s in main, on a 2-core CPU shared
with other jobs, load average ~4.7; per epoch SimpleRNN 6 s, LSTM 20 s, GRU 15 s). 26465 words,
vocabulary 2598, 23809 training / 2636 validation windows. Context-free baselines on validation:
unigram 6.207 nats, always "the" accuracy 0.085.

    cell        valid loss / accuracy      best valid loss / accuracy      final train loss
                after epoch 10             (epoch)
    SimpleRNN   6.808 / 0.058              5.874 / 0.099 (3)               3.134
    LSTM        6.396 / 0.090              5.715 / 0.127 (4)               3.752
    GRU         5.930 / 0.129              5.592 / 0.138 (4)               3.739

Every cell overfits the 24k windows after 3-4 epochs (the one-hot input kernel alone has 2598 x 128
weights per gate): training loss keeps falling while validation loss turns up, fastest for the SimpleRNN.
The GRU is best throughout. Greedy continuations of the seed window "and this was her dream first she
<unk> of little" go from "the and and the the ..." after epoch 1 to, e.g. (GRU, epoch 6), "house and
the queen was so much at the door". From scratch in NumPy vs rnnjax (GRU, all 2598 probabilities):
max |difference| 5.1e-8.

Learning rate: at Keras' 1e-3, 10 epochs give best validation losses SimpleRNN 6.146 (epoch 3, barely
under the unigram 6.207), LSTM 6.048 (8), GRU 5.746 (9): 3e-3 reaches lower minima, and as soon or
sooner (epochs 3-4 against 3-9).

Writes `results/walkthrough_alice/<run>/` (or `--out`): config.json, vocab.json, metrics.json
(rewritten after every epoch), loss.png (drawn from metrics.json), summary.md; all atomically.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import tyro
from tqdm import tqdm

import rnnjax
from rnnjax import readout, results
from rnnjax.data import corpora
from rnnjax.data import text as text_lib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPERIMENT = "walkthrough_alice"
UNK = "<unk>"
# Validation windows per jitted evaluation call (the last call is padded and masked): one compiled shape.
EVAL_BATCH = 512
# rnnjax computes in float32, the NumPy recomputation in float64 from the same weights; probabilities
# (each <= 1) then differ by float32 rounding accumulated over 10 steps and a V-way softmax.
TOL_FROM_SCRATCH = 1e-6
# Keras' RMSprop defaults.
RMSPROP_DECAY = 0.9
RMSPROP_EPS = 1e-7

CellKind = Literal["simple", "lstm", "gru"]
CELL_NAMES = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


@dataclasses.dataclass(frozen=True)
class Config:
    """Data, model, training and output options."""

    corpus: str = "alice"  # a registered corpus (rnnjax.data.corpora)
    path: Path | None = None  # a local UTF-8 text file instead of `corpus`
    max_words: int | None = None  # use only the first this many words (quick runs); None: all
    seq_len: int = 10  # words per input window
    valid_fraction: float = 0.1  # contiguous tail of the words held out for validation
    cells: tuple[CellKind, ...] = ("simple", "lstm", "gru")  # trained one after another
    hidden_size: int = 128
    batch_size: int = 128
    epochs: int = 10
    learning_rate: float = 3e-3  # Keras' RMSprop default is 1e-3: slower here (see the docstring)
    generate: int = 10  # words of greedy continuation printed after every epoch
    top: int = 8  # words shown in the final probability table
    seed: int = 0  # initial weights, batch order and the seed window
    progress: bool = True  # tqdm progress bars
    out: Path | None = None  # output folder; default results/walkthrough_alice/<UTC timestamp>


class Data(NamedTuple):
    vocab: text_lib.Vocabulary  # <unk> at 0, then training words by frequency
    train_x: np.ndarray  # <int32>[N_train, T] windows
    train_y: np.ndarray  # <int32>[N_train] the next word
    valid_x: np.ndarray  # <int32>[N_valid, T]
    valid_y: np.ndarray  # <int32>[N_valid]
    num_words: int  # words in the text used
    seed_window: np.ndarray  # <int32>[T] a random validation window, the generation prompt


class Params(NamedTuple):
    cell: object  # SimpleParams / LSTMParams / GRUParams
    dense: readout.DenseParams  # w [H, V], b [V]


# ------------------------------------------------------------------------------------------------ data


def _check_config(cfg: Config) -> None:
    for name in ("seq_len", "hidden_size", "batch_size", "epochs", "generate", "top"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    if cfg.max_words is not None and (not isinstance(cfg.max_words, int) or cfg.max_words < 1):
        raise ValueError(f"max_words: expected None or an int >= 1, got {cfg.max_words!r}")
    if not 0.0 < cfg.valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {cfg.valid_fraction!r}")
    if not cfg.cells:
        raise ValueError("cells: expected at least one of simple, lstm, gru, got none")
    bad = [c for c in cfg.cells if c not in CELL_NAMES]
    if bad:
        raise ValueError(f"cells: expected each of {sorted(CELL_NAMES)}, got {bad}")
    if len(set(cfg.cells)) != len(cfg.cells):
        raise ValueError(f"cells: expected each cell at most once, got {list(cfg.cells)}")


def load_words(cfg: Config) -> list[str]:
    """The corpus (or `cfg.path`) lowercased, punctuation stripped, split into words (first max_words)."""
    raw = corpora.load(cfg.path if cfg.path is not None else cfg.corpus)
    words = text_lib.word_tokens(text_lib.normalize(raw, lowercase=True, strip_punctuation=True))
    return words[: cfg.max_words] if cfg.max_words is not None else words


def prepare(words: list[str], cfg: Config) -> Data:
    """Vocabulary from the training words, (window -> next word) pairs from each split, a seed window."""
    n = len(words)
    n_valid = round(n * cfg.valid_fraction)
    n_train = n - n_valid
    for name, size in (("training", n_train), ("validation", n_valid)):
        if size < cfg.seq_len + 1:
            raise ValueError(
                f"text: the {name} split has {size} of {n} words; expected at least seq_len + 1 = "
                f"{cfg.seq_len + 1} (use a longer text, or change valid_fraction/seq_len)"
            )
    vocab = text_lib.Vocabulary.build(words[:n_train], unk=UNK)
    train, valid, _ = text_lib.split(vocab.encode(words), valid_fraction=n_valid / n)
    assert len(valid) == n_valid
    train_x, train_y = text_lib.sliding_windows(train, cfg.seq_len)
    valid_x, valid_y = text_lib.sliding_windows(valid, cfg.seq_len)
    if len(train_y) < cfg.batch_size:
        raise ValueError(
            f"batch_size: expected at most the {len(train_y)} training windows, got {cfg.batch_size}"
        )
    seed_window = valid_x[np.random.default_rng(cfg.seed).integers(len(valid_x))]
    return Data(vocab, train_x, train_y, valid_x, valid_y, n, seed_window)


# ----------------------------------------------------------------------------------------------- model


def make_cell(kind: CellKind, hidden_size: int) -> rnnjax.Cell:
    """Keras' SimpleRNN / LSTM / GRU (reset_after=True) with Keras' default initialisers."""
    if kind == "simple":
        return rnnjax.cells.simple(hidden_size, "tanh", preset="keras")
    if kind == "lstm":
        return rnnjax.cells.lstm(hidden_size, preset="keras")
    return rnnjax.cells.gru(hidden_size, reset_after=True, preset="keras")


def init_params(key, cell: rnnjax.Cell, vocab_size: int) -> Params:
    """Cell params for `vocab_size` one-hot inputs and a Keras Dense readout (glorot kernel, zero bias),
    initialised under one `jit` (op by op it takes seconds)."""

    def init(key):
        k_cell, k_dense = jax.random.split(key)
        kernel_init = rnnjax.initializers.glorot_uniform()
        dense = readout.dense_init(k_dense, cell.hidden_size, vocab_size, kernel_init=kernel_init)
        return Params(cell.init(k_cell, vocab_size), dense)

    return jax.jit(init)(key)


def logits_fn(cell: rnnjax.Cell, params: Params, x: jax.Array) -> jax.Array:
    """Next-word logits <float32>[B, V] of windows of word ids x <int>[B, T] (one-hot inputs)."""
    V = params.dense.w.shape[1]
    onehot = jax.nn.one_hot(x, V, dtype=jnp.float32)  # (B, T, V)
    _, hs = rnnjax.unroll(cell, params.cell, onehot)  # (B, T, H), a lax.scan over T
    return readout.dense(params.dense, hs[:, -1])  # (B, V)


def make_optimizer(learning_rate: float) -> optax.GradientTransformation:
    """RMSprop as Keras defines it: eps added to sqrt(mean square), not inside it."""
    return optax.rmsprop(learning_rate, decay=RMSPROP_DECAY, eps=RMSPROP_EPS, eps_in_sqrt=False)


def evaluate(predict, params: Params, xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy over every window, in padded chunks of EVAL_BATCH."""
    total_loss, total_correct = 0.0, 0
    for start in range(0, len(ys), EVAL_BATCH):
        x, y = xs[start : start + EVAL_BATCH], ys[start : start + EVAL_BATCH]
        n = len(y)
        pad = EVAL_BATCH - n
        x = np.pad(x, ((0, pad), (0, 0)))
        y = np.pad(y, (0, pad))
        loss, correct = predict(params, x, y)  # per-example (EVAL_BATCH,)
        total_loss += float(np.sum(np.asarray(loss)[:n], dtype=np.float64))
        total_correct += int(np.sum(np.asarray(correct)[:n]))
    return total_loss / len(ys), total_correct / len(ys)


def greedy(next_probs, params: Params, window: np.ndarray, steps: int) -> list[int]:
    """`steps` argmax words after `window`, the window sliding forward over its own output (as in the
    Keras tutorial, the model always reads the last T words)."""
    window = np.asarray(window, np.int32)
    out = []
    for _ in range(steps):
        probs = np.asarray(next_probs(params, window[None]))[0]
        word = int(np.argmax(probs))
        out.append(word)
        window = np.concatenate([window[1:], [word]]).astype(np.int32)
    return out


def train_cell(kind: CellKind, data: Data, cfg: Config, on_epoch) -> tuple[Params, dict]:
    """Train one cell for cfg.epochs epochs; `on_epoch(record)` is called after each epoch.

    Returns:
      (params, history) with history {"epochs": [per-epoch records], "compile_seconds", "train_seconds"}.
    """
    cell = make_cell(kind, cfg.hidden_size)
    V = len(data.vocab)
    params = init_params(jax.random.key(cfg.seed), cell, V)
    opt = make_optimizer(cfg.learning_rate)

    def loss_fn(p, x, y):
        logits = logits_fn(cell, p, x)
        return readout.cross_entropy(logits, y).mean(), jnp.mean(jnp.argmax(logits, -1) == y)

    @jax.jit
    def update(p, state, x, y):
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss, acc

    @jax.jit
    def predict(p, x, y):
        logits = logits_fn(cell, p, x)
        return readout.cross_entropy(logits, y), jnp.argmax(logits, -1) == y

    next_probs = jax.jit(lambda p, x: jax.nn.softmax(logits_fn(cell, p, x), axis=-1))

    state = opt.init(params)
    t0 = time.perf_counter()
    shape_x = jax.ShapeDtypeStruct((cfg.batch_size, cfg.seq_len), jnp.int32)
    shape_y = jax.ShapeDtypeStruct((cfg.batch_size,), jnp.int32)
    update = update.lower(params, state, shape_x, shape_y).compile()
    compile_seconds = time.perf_counter() - t0

    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = len(data.train_y) // cfg.batch_size
    history: dict = dict(epochs=[], compile_seconds=compile_seconds, steps_per_epoch=steps_per_epoch)
    train_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        batches = text_lib.window_batches(data.train_x, data.train_y, cfg.batch_size, rng=rng)
        bar = tqdm(
            batches,
            total=steps_per_epoch,
            desc=f"{CELL_NAMES[kind]:>9} epoch {epoch}/{cfg.epochs}",
            unit="batch",
            disable=not cfg.progress,
            leave=False,
        )
        losses, accs = [], []
        for k, (x, y) in enumerate(bar):
            params, state, loss, acc = update(params, state, x, y)
            losses.append(loss)
            accs.append(acc)
            if k % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        train_loss = float(np.mean(jax.device_get(losses)))
        train_acc = float(np.mean(jax.device_get(accs)))
        valid_loss, valid_acc = evaluate(predict, params, data.valid_x, data.valid_y)
        sample = data.vocab.decode(greedy(next_probs, params, data.seed_window, cfg.generate))
        record = dict(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_acc,
            valid_loss=valid_loss,
            valid_accuracy=valid_acc,
            sample=" ".join(sample),
            seconds=time.perf_counter() - epoch_start,
        )
        history["epochs"].append(record)
        on_epoch(record)
    history["train_seconds"] = time.perf_counter() - train_start
    history["next_probs"] = next_probs
    return params, history


# ---------------------------------------------------------------------------------- NumPy from scratch


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def from_scratch(kind: CellKind, params: Params, window: np.ndarray) -> np.ndarray:
    """Next-word probabilities of one window, recomputed in float64 NumPy with explicit steps.

    Args:
      kind: the cell's kind (its equations: see rnnjax.cells).
      params: trained params.
      window: <int>[T] word ids.
    Returns:
      <float64>[V] probabilities.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.cell._asdict().items() if v is not None}
    w_o, b_o = np.asarray(params.dense.w, np.float64), np.asarray(params.dense.b, np.float64)
    V, H = w_o.shape[1], p["w_hh"].shape[0]
    h, c = np.zeros(H), np.zeros(H)
    for word in window:
        x = np.zeros(V)
        x[word] = 1.0  # one-hot
        if kind == "simple":
            h = np.tanh(x @ p["w_ih"] + h @ p["w_hh"] + p["b"])
        elif kind == "lstm":
            z = x @ p["w_ih"] + h @ p["w_hh"] + p["b"]
            z_i, z_f, z_g, z_o = np.split(z, 4)  # gate order i, f, g, o
            i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
            c = f * c + i * g
            h = o * np.tanh(c)
        else:  # GRU, reset gate after the recurrent matmul
            xr = x @ p["w_ih"] + p["b"]
            hr = h @ p["w_hh"]
            r = _sigmoid(xr[:H] + hr[:H])
            u = _sigmoid(xr[H : 2 * H] + hr[H : 2 * H])  # the update gate z
            n = np.tanh(xr[2 * H :] + r * (hr[2 * H :] + p["b_hn"]))
            h = (1.0 - u) * n + u * h
    logits = h @ w_o + b_o
    e = np.exp(logits - logits.max())
    return e / e.sum()


# ------------------------------------------------------------------------------------------- reporting


def plot(metrics: dict, path: Path) -> None:
    """Train/valid cross-entropy and valid accuracy vs epoch for each cell (from saved metrics)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (kind, m) in enumerate(metrics["cells"].items()):
        epochs = [r["epoch"] for r in m["epochs"]]
        color = f"C{i}"
        name = CELL_NAMES[kind]
        train = [r["train_loss"] for r in m["epochs"]]
        ax_loss.plot(epochs, train, "--", color=color, label=f"{name} train (epoch mean)")
        ax_loss.plot(epochs, [r["valid_loss"] for r in m["epochs"]], "-o", color=color, label=f"{name} valid")
        ax_acc.plot(epochs, [r["valid_accuracy"] for r in m["epochs"]], "-o", color=color, label=name)
    base = metrics["data"]["baseline"]
    ax_loss.axhline(base["unigram_loss"], color="gray", ls=":", label="unigram (valid)")
    ax_acc.axhline(base["majority_accuracy"], color="gray", ls=":", label=f"always {base['majority_word']!r}")
    title = f"Next word after {metrics['data']['seq_len']} words"
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy (nats/word)", title=title)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
    ax_loss.legend(fontsize=7)
    ax_acc.legend(fontsize=7)
    results.save_figure(fig, path)
    plt.close(fig)


def baseline(data: Data) -> dict:
    """Context-free baselines on the validation windows: the training unigram distribution (add-one)
    and always predicting the most frequent training word."""
    counts = np.bincount(data.train_y, minlength=len(data.vocab)).astype(np.float64) + 1.0
    probs = counts / counts.sum()
    top = int(np.argmax(counts))
    return dict(
        unigram_loss=float(-np.mean(np.log(probs[data.valid_y]))),
        majority_accuracy=float(np.mean(data.valid_y == top)),
        majority_word=data.vocab.tokens[top],
    )


def main(cfg: Config) -> dict:
    """Train every cell in cfg.cells, write the run folder; returns the metrics (and "out")."""
    _check_config(cfg)
    wall_start = time.perf_counter()
    data = prepare(load_words(cfg), cfg)
    out = Path(cfg.out) if cfg.out is not None else results.run_dir(EXPERIMENT)
    out.mkdir(parents=True, exist_ok=True)
    results.write_json(out / "config.json", cfg)
    data.vocab.save(out / "vocab.json")
    seed_words = " ".join(data.vocab.decode(data.seed_window))
    info = dict(
        source=str(cfg.path) if cfg.path is not None else cfg.corpus,
        words=data.num_words,
        seq_len=cfg.seq_len,
        vocab_size=len(data.vocab),
        train_windows=len(data.train_y),
        valid_windows=len(data.valid_y),
        seed_window=seed_words,
        baseline=baseline(data),
    )
    print(
        f"{info['words']} words, vocabulary {info['vocab_size']} (with {UNK}), {info['train_windows']} "
        f"training / {info['valid_windows']} validation windows of {cfg.seq_len} words"
    )
    print(
        f"baselines on validation: unigram {info['baseline']['unigram_loss']:.3f} nats, always "
        f"{info['baseline']['majority_word']!r} {info['baseline']['majority_accuracy']:.3f} accuracy"
    )
    print(f"seed window: {seed_words!r}")
    metrics: dict = dict(data=info, cells={})
    params = next_probs = None
    for kind in cfg.cells:
        metrics["cells"][kind] = dict(epochs=[])

        def on_epoch(record, kind=kind):
            metrics["cells"][kind]["epochs"].append(record)
            results.write_json(out / "metrics.json", metrics)
            (tqdm.write if cfg.progress else print)(
                f"{CELL_NAMES[kind]:>9} epoch {record['epoch']:>2}: train {record['train_loss']:.3f}, "
                f"valid loss {record['valid_loss']:.3f} acc {record['valid_accuracy']:.3f} "
                f"({record['seconds']:.0f} s) | {seed_words} -> {record['sample']}"
            )

        params, history = train_cell(kind, data, cfg, on_epoch)
        next_probs = history.pop("next_probs")
        metrics["cells"][kind].update({k: v for k, v in history.items() if k != "epochs"})
        results.write_json(out / "metrics.json", metrics)

    # The last cell, from scratch in NumPy.
    last = cfg.cells[-1]
    probs_lib = np.asarray(next_probs(params, data.seed_window[None]), np.float64)[0]
    probs_np = from_scratch(last, params, data.seed_window)
    diff = float(np.max(np.abs(probs_np - probs_lib)))
    order = np.argsort(-probs_lib)[: cfg.top]
    table = ["| word | rnnjax | NumPy from scratch |", "|---|---|---|"]
    table += [f"| {data.vocab.tokens[i]} | {probs_lib[i]:.6f} | {probs_np[i]:.6f} |" for i in order]
    print(f"\n{CELL_NAMES[last]}: next-word probabilities after {seed_words!r}")
    print("\n".join(table))
    print(f"max |NumPy - rnnjax| over all {len(probs_lib)} words: {diff:.2e} (tol. {TOL_FROM_SCRATCH:g})")
    metrics["from_scratch"] = dict(
        cell=last,
        top_words=[data.vocab.tokens[i] for i in order],
        probs_rnnjax=probs_lib,
        probs_numpy=probs_np,
        max_abs_diff=diff,
    )
    metrics["seconds"] = time.perf_counter() - wall_start
    results.write_json(out / "metrics.json", metrics)
    plot(json.loads((out / "metrics.json").read_text()), out / "loss.png")

    lines = [
        f"# walkthrough_alice: {info['source']}, {info['words']} words, vocabulary {info['vocab_size']}",
        "",
        f"{cfg.seq_len} one-hot words -> next word; H={cfg.hidden_size}, RMSprop lr {cfg.learning_rate:g}, "
        f"batch {cfg.batch_size}, {cfg.epochs} epochs; {metrics['seconds']:.0f} s in all.",
        f"Baselines on validation: unigram {info['baseline']['unigram_loss']:.3f} nats; always "
        f"{info['baseline']['majority_word']!r}: accuracy {info['baseline']['majority_accuracy']:.3f}.",
        "",
        "| cell | train loss | valid loss | valid accuracy | best valid loss (epoch) | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    for kind, m in metrics["cells"].items():
        final = m["epochs"][-1]
        best = min(m["epochs"], key=lambda r: r["valid_loss"])
        lines.append(
            f"| {CELL_NAMES[kind]} | {final['train_loss']:.3f} | {final['valid_loss']:.3f} | "
            f"{final['valid_accuracy']:.3f} | {best['valid_loss']:.3f} ({best['epoch']}) | "
            f"{m['train_seconds'] / len(m['epochs']):.1f} |"
        )
    lines += ["", f"Greedy continuations of the seed window *{seed_words}*:", ""]
    for kind, m in metrics["cells"].items():
        lines += [f"{CELL_NAMES[kind]}:", ""]
        lines += [f"- epoch {r['epoch']}: {r['sample']}" for r in m["epochs"]]
        lines.append("")
    lines += [f"{CELL_NAMES[last]} next-word probabilities after the seed window:", "", *table, ""]
    lines.append(f"max |NumPy - rnnjax| over all {len(probs_lib)} words: {diff:.2e}")
    results.atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    print(f"wrote {out} in {metrics['seconds']:.0f} s")
    return metrics | dict(out=out)


if __name__ == "__main__":
    main(tyro.cli(Config))
