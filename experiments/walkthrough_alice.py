"""Walkthrough 3: the classic word-level "Alice in Wonderland" Keras model (10 one-hot words -> the next
word) with SimpleRNN, LSTM and GRU cells side by side, and the last model's prediction recomputed in NumPy.

    python -m experiments.walkthrough_alice                       # all three cells, 10 epochs (README)
    python -m experiments.walkthrough_alice --quick --run smoke   # seconds: 3000 words, H=32, 2 epochs
    python -m experiments.walkthrough_alice --cells lstm --epochs 20 --path my_book.txt   # a UTF-8 file

`--run NAME`: outputs in `results/walkthrough_alice/NAME/` (a new name per run; default: a timestamp);
`--no-progress` hides the progress bars; bad input prints one line `error: ...` (`--debug`: traceback).

Data: the `alice` corpus (`rnnjax.data.corpora`) lowercased, punctuation stripped, split into words; the
last 10% (a contiguous tail) held out for validation; the vocabulary of the training words by frequency
behind `<unk>` at id 0; examples are every window of 10 words and the word after it.

Model and training as in the Keras tutorial: `rnnjax.models.classifier` (one-hot inputs, the last step)
with SimpleRNN / LSTM / GRU (128 units) and Keras' initialisers (preset "keras"; Dense: glorot kernel,
zero bias), softmax cross-entropy, Keras' RMSprop (rho 0.9, eps 1e-7 outside the square root) at lr 3e-3
(Keras' 1e-3 is slower here: README), batch 128 reshuffled every epoch, `rnnjax.train.fit`. After every
epoch: the epoch's mean training loss, validation loss and accuracy, and a greedy continuation of one
random validation window. At the end the last cell's next-word probabilities for that window are
recomputed from scratch in NumPy float64 (one-hot -> cell steps -> dense -> softmax).

Writes `results/walkthrough_alice/<run>/`: config.json, vocab.json, metrics.json (rewritten after every
epoch), loss.png (drawn from metrics.json), summary.md (the printout), and per cell `<cell>/metrics.jsonl`
(the training loop's log) and `<cell>/checkpoints/` (the trained model).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib import ticker
from tqdm import tqdm

from rnnjax import cells, initializers, models, readout, results
from rnnjax.command import cli as _cli
from rnnjax.command.plots import plt, save
from rnnjax.data import corpora
from rnnjax.data import text as text_lib
from rnnjax.train import classify, parallel
from rnnjax.train.loop import MetricsLog, fit
from rnnjax.train.optimizers import check_positive

EXPERIMENT = "walkthrough_alice"
UNK = "<unk>"
# rnnjax computes in float32, the NumPy recomputation in float64 from the same weights; probabilities
# (each <= 1) then differ by float32 rounding accumulated over 10 steps and a V-way softmax.
TOL_FROM_SCRATCH = 1e-6

CellKind = Literal["simple", "lstm", "gru"]
CELL_NAMES = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


@dataclasses.dataclass(frozen=True)
class Config:
    """Data, model, training and output options. Expected run time on a 2-core CPU: about 7 min at the
    defaults (README); --quick about 8 s."""

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
    quick: bool = False  # a seconds-long smoke run: see QUICK
    progress: bool = True  # tqdm progress bars
    run: str | None = None  # results/walkthrough_alice/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)


QUICK = dict(max_words=3000, hidden_size=32, epochs=2)


class Data(NamedTuple):
    vocab: text_lib.Vocabulary  # <unk> at 0, then training words by frequency
    train_x: np.ndarray  # <int32>[N_train, T] windows
    train_y: np.ndarray  # <int32>[N_train] the next word
    valid_x: np.ndarray  # <int32>[N_valid, T]
    valid_y: np.ndarray  # <int32>[N_valid]
    num_words: int  # words in the text used
    seed_window: np.ndarray  # <int32>[T] a random validation window, the generation prompt


def check_config(cfg: Config) -> Config:
    """Refuses bad settings by name; returns `cfg` with the QUICK settings if asked."""
    _cli.check_ints(cfg, "seq_len", "hidden_size", "batch_size", "epochs", "generate", "top")
    if cfg.max_words is not None and (not isinstance(cfg.max_words, int) or cfg.max_words < 1):
        raise ValueError(f"max_words: expected None or an int >= 1, got {cfg.max_words!r}")
    if not (isinstance(cfg.valid_fraction, int | float) and 0.0 < cfg.valid_fraction < 1.0):
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {cfg.valid_fraction!r}")
    if not cfg.cells or len(set(cfg.cells)) != len(cfg.cells) or not set(cfg.cells) <= set(CELL_NAMES):
        raise ValueError(f"cells: expected each cell at most once, of {list(CELL_NAMES)}; got {cfg.cells}")
    _cli.check_ints(cfg, "seed", minimum=0)
    check_positive("learning_rate", cfg.learning_rate)
    parallel.check_recurrent_size(
        "hidden_size", cfg.hidden_size, gates=4, input_size=0, hidden_size=cfg.hidden_size
    )
    if cfg.run is not None and not cfg.overwrite:
        folder = Path("results") / EXPERIMENT / results.check_run_name(cfg.run)
        if any(folder.glob("*/checkpoints")):
            raise FileExistsError(
                f"run: {folder} holds a trained run; choose a new --run name, or --overwrite to replace it"
            )
    return _cli.quick(cfg, QUICK) if cfg.quick else cfg


def load_words(cfg: Config) -> list[str]:
    """The corpus (or `cfg.path`) lowercased, punctuation stripped, split into words (first max_words)."""
    with _cli.named("path" if cfg.path is not None else "corpus", "name_or_path", "path"):
        raw = corpora.load(cfg.path if cfg.path is not None else cfg.corpus)
    words = text_lib.word_tokens(text_lib.normalize(raw, lowercase=True, strip_punctuation=True))
    return words[: cfg.max_words] if cfg.max_words is not None else words


def prepare(words: list[str], cfg: Config) -> Data:
    """Vocabulary from the training words, (window -> next word) pairs from each split, a seed window."""
    n = len(words)
    n_valid = round(n * cfg.valid_fraction)
    for name, size in (("training", n - n_valid), ("validation", n_valid)):
        if size < cfg.seq_len + 1:
            raise ValueError(
                f"text: the {name} split has {size} of {n} words; expected at least seq_len + 1 = "
                f"{cfg.seq_len + 1} (use a longer text, or change valid_fraction/seq_len)"
            )
    vocab = text_lib.Vocabulary.build(words[: n - n_valid], unk=UNK)
    train, valid, _ = text_lib.split(vocab.encode(words), valid_fraction=n_valid / n)
    train_x, train_y = text_lib.sliding_windows(train, cfg.seq_len)
    valid_x, valid_y = text_lib.sliding_windows(valid, cfg.seq_len)
    if len(train_y) < cfg.batch_size:
        raise ValueError(
            f"batch_size: expected at most the {len(train_y)} training windows, got {cfg.batch_size}"
        )
    seed_window = valid_x[np.random.default_rng(cfg.seed).integers(len(valid_x))]
    return Data(vocab, train_x, train_y, valid_x, valid_y, n, seed_window)


def make_model(kind: CellKind, hidden_size: int, vocab_size: int) -> models.RNNModel:
    """Keras' SimpleRNN (tanh) / LSTM / GRU (reset_after) with Keras' initialisers, reading windows of
    word ids <int>[B, T] one-hot; the last step's output -> logits <float32>[B, vocab_size]."""
    cell = cells.make(kind, hidden_size, preset="keras")
    return models.classifier(vocab_size, vocab_size, cell, embed_size=None, pooling="last")


def init_params(key, model: models.RNNModel) -> dict:
    """Keras' initialisation in the model's params form: the cell's, for one-hot inputs, and Dense's
    glorot-uniform kernel with zero bias (the model's own `init` draws a lecun-normal readout); under one
    `jit` (op by op it takes seconds)."""
    cell, V = model.cell, model.output_size

    def init(key):
        k_cell, k_dense = jax.random.split(key)
        dense = readout.dense_init(k_dense, cell.hidden_size, V, kernel_init=initializers.glorot_uniform())
        return {"rnn": {"layer_0": cell.init(k_cell, V)}, "readout": dense}

    return jax.jit(init)(key)


def greedy(next_probs, params: dict, window: np.ndarray, steps: int) -> list[int]:
    """`steps` argmax words after `window`, the window sliding forward over its own output (as in the
    Keras tutorial, the model always reads the last T words)."""
    window, out = np.asarray(window, np.int32), []
    for _ in range(steps):
        out.append(int(np.argmax(np.asarray(next_probs(params, window[None]))[0])))
        window = np.concatenate([window[1:], out[-1:]]).astype(np.int32)
    return out


def train_cell(kind: CellKind, data: Data, cfg: Config, run: Path, on_epoch):
    """Train one cell for cfg.epochs epochs: `rnnjax.train.fit` over the classifier's train step
    (`rnnjax.train.classify`), its metrics.jsonl and checkpoint in `run`. After each epoch,
    `on_epoch(record)` gets the epoch's mean training loss and accuracy, the validation loss and
    accuracy and a greedy continuation of the seed window.

    Returns:
      (params, history, next_probs): history {"epochs": [records], "steps_per_epoch", "compile_seconds",
      "train_seconds"}; `next_probs(params, x <int>[B, T]) -> <float32>[B, V]`, jitted.
    """
    model = make_model(kind, cfg.hidden_size, len(data.vocab))
    params = init_params(jax.random.key(cfg.seed), model)
    tx = optax.rmsprop(cfg.learning_rate, decay=0.9, eps=1e-7, eps_in_sqrt=False)  # Keras' (eps outside sqrt)
    rng = np.random.default_rng(cfg.seed)  # one permutation of the windows per epoch, drawn in order
    xs, ys = data.train_x, data.train_y
    epochs = [list(text_lib.window_batches(xs, ys, cfg.batch_size, rng=rng)) for _ in range(cfg.epochs)]
    per_epoch, log = len(epochs[0]), MetricsLog(run / "metrics.jsonl")
    valid = classify.Examples(data.valid_x, np.full(len(data.valid_y), cfg.seq_len, np.int32), data.valid_y)
    next_probs = jax.jit(lambda p, x: jax.nn.softmax(model.apply({"params": p}, x)[0], axis=-1))
    history, clock = dict(epochs=[], steps_per_epoch=per_epoch), [time.perf_counter()]

    def batch(step: int) -> tuple:  # (tokens, lengths, labels) of `step`; windows are whole, unpadded
        x, y = epochs[step // per_epoch][step % per_epoch]
        return x, np.full(len(y), cfg.seq_len, np.int32), y

    def evaluate(state: classify.TrainState) -> dict:
        ev = classify.evaluate(model, state.params, valid)
        return {"loss": ev.loss, "accuracy": ev.accuracy}

    def on_step(step: int, state: classify.TrainState) -> None:
        if step % per_epoch == 0:  # fit has just logged the epoch's training means and evaluated
            last = {r["split"]: r for r in log.read()}  # the latest record of each split
            words = data.vocab.decode(greedy(next_probs, state.params, data.seed_window, cfg.generate))
            means = {f"{s}_{k}": last[s][k] for s in ("train", "valid") for k in ("loss", "accuracy")}
            record = dict(epoch=step // per_epoch, **means, sample=" ".join(words))
            record["seconds"], clock[0] = time.perf_counter() - clock[0], time.perf_counter()
            history["epochs"].append(record)
            on_epoch(record)

    state = classify.TrainState(params, tx.init(params), jnp.int32(0))
    result = fit(
        classify.make_train_step(model, tx), state, batch, steps=cfg.epochs * per_epoch, evaluate=evaluate,
        eval_every=per_epoch, log_every=per_epoch, run=run, progress=cfg.progress, desc=CELL_NAMES[kind],
        on_step=on_step,
    )  # fmt: skip
    if result.status == "diverged":
        raise _cli.RunFailed(result.message)
    history.update({k: result.history[k] for k in ("compile_seconds", "train_seconds")})
    return result.state.params, history, next_probs


def from_scratch(kind: CellKind, params: dict, window: np.ndarray) -> np.ndarray:
    """Next-word probabilities <float64>[V] of one window of word ids <int>[T], recomputed in float64 NumPy
    with explicit steps from the model's params (the cell's equations: see rnnjax.cells)."""
    p = {k: np.asarray(v, np.float64) for k, v in params["rnn"]["layer_0"]._asdict().items() if v is not None}
    w_o, b_o = np.asarray(params["readout"].w, np.float64), np.asarray(params["readout"].b, np.float64)
    V, H = w_o.shape[1], p["w_hh"].shape[0]
    h, c, sigmoid = np.zeros(H), np.zeros(H), lambda a: 1.0 / (1.0 + np.exp(-a))
    for word in window:
        x = np.zeros(V)
        x[word] = 1.0  # one-hot
        if kind == "simple":
            h = np.tanh(x @ p["w_ih"] + h @ p["w_hh"] + p["b"])
        elif kind == "lstm":
            z = x @ p["w_ih"] + h @ p["w_hh"] + p["b"]
            z_i, z_f, z_g, z_o = np.split(z, 4)  # gate order i, f, g, o
            i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
            c = f * c + i * g
            h = o * np.tanh(c)
        else:  # GRU, reset gate after the recurrent matmul
            xr = x @ p["w_ih"] + p["b"]
            hr = h @ p["w_hh"]
            r = sigmoid(xr[:H] + hr[:H])
            u = sigmoid(xr[H : 2 * H] + hr[H : 2 * H])  # the update gate z
            n = np.tanh(xr[2 * H :] + r * (hr[2 * H :] + p["b_hn"]))
            h = (1.0 - u) * n + u * h
    logits = h @ w_o + b_o
    e = np.exp(logits - logits.max())
    return e / e.sum()


def plot(metrics: dict, path: Path) -> None:
    """Train/valid cross-entropy and valid accuracy vs epoch for each cell (from saved metrics)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for i, (kind, m) in enumerate(metrics["cells"].items()):
        epochs, name = [r["epoch"] for r in m["epochs"]], CELL_NAMES[kind]
        curve = {key: [r[key] for r in m["epochs"]] for key in ("train_loss", "valid_loss", "valid_accuracy")}
        ax_loss.plot(epochs, curve["train_loss"], "--", color=f"C{i}", label=f"{name} train (epoch mean)")
        ax_loss.plot(epochs, curve["valid_loss"], "-o", color=f"C{i}", label=f"{name} valid")
        ax_acc.plot(epochs, curve["valid_accuracy"], "-o", color=f"C{i}", label=name)
    base = metrics["data"]["baseline"]
    ax_loss.axhline(base["unigram_loss"], color="gray", ls=":", label="unigram (valid)")
    ax_acc.axhline(base["majority_accuracy"], color="gray", ls=":", label=f"always {base['majority_word']!r}")
    title = f"Next word after {metrics['data']['seq_len']} words"
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy (nats/word)", title=title)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # whole epochs
        ax.legend()
    save(fig, path)


def baseline(data: Data) -> dict:
    """Context-free baselines on the validation windows: the training unigram distribution (add-one)
    and always predicting the most frequent training word."""
    counts = np.bincount(data.train_y, minlength=len(data.vocab)).astype(np.float64) + 1.0
    top = int(np.argmax(counts))
    return dict(
        unigram_loss=float(-np.mean(np.log(counts[data.valid_y] / counts.sum()))),
        majority_accuracy=float(np.mean(data.valid_y == top)),
        majority_word=data.vocab.tokens[top],
    )


def main(cfg: Config) -> dict:
    """Train every cell in cfg.cells, print the results, write the run folder; returns the metrics (and
    "out")."""
    cfg = check_config(cfg)
    start = time.perf_counter()
    data = prepare(load_words(cfg), cfg)
    out = _cli.new_run(EXPERIMENT, cfg)
    data.vocab.save(out / "vocab.json")
    seed, base = " ".join(data.vocab.decode(data.seed_window)), baseline(data)
    info = dict(source=str(cfg.path or cfg.corpus), words=data.num_words, seq_len=cfg.seq_len)
    info.update(vocab_size=len(data.vocab), train_windows=len(data.train_y), valid_windows=len(data.valid_y))
    metrics: dict = dict(data=info | dict(seed_window=seed, baseline=base), cells={})
    say = _cli.Printout(tqdm.write if cfg.progress else print)  # between the progress bars

    say(
        f"{info['source']}: {info['words']} words, vocabulary {info['vocab_size']} (with {UNK}), "
        f"{info['train_windows']} training / {info['valid_windows']} validation windows of "
        f"{cfg.seq_len} words; H={cfg.hidden_size}, RMSprop lr {cfg.learning_rate:g}, batch "
        f"{cfg.batch_size}, {cfg.epochs} epochs"
    )
    say(
        f"baselines on validation: unigram {base['unigram_loss']:.3f} nats, always {base['majority_word']!r} "
        f"{base['majority_accuracy']:.3f} accuracy; seed window: {seed!r}"
    )
    for kind in cfg.cells:
        m = metrics["cells"][kind] = dict(epochs=[])

        def on_epoch(r: dict, m=m, name=CELL_NAMES[kind]) -> None:
            m["epochs"].append(r)
            results.write_json(out / "metrics.json", metrics)
            say(
                f"{name:>9} epoch {r['epoch']:>2}: train {r['train_loss']:.3f}, valid loss "
                f"{r['valid_loss']:.3f} acc {r['valid_accuracy']:.3f} ({r['seconds']:.0f} s) | "
                f"{seed} -> {r['sample']}"
            )

        params, history, next_probs = train_cell(kind, data, cfg, out / kind, on_epoch)
        m.update({k: v for k, v in history.items() if k != "epochs"})

    say("\n| cell | train loss | valid loss | valid accuracy | best valid loss (epoch) | s/epoch |")
    say("|---|---|---|---|---|---|")
    for kind, m in metrics["cells"].items():
        final, best = m["epochs"][-1], min(m["epochs"], key=lambda r: r["valid_loss"])
        seconds = (m["train_seconds"] - m["compile_seconds"]) / len(m["epochs"])
        say(
            f"| {CELL_NAMES[kind]} | {final['train_loss']:.3f} | {final['valid_loss']:.3f} | "
            f"{final['valid_accuracy']:.3f} | {best['valid_loss']:.3f} ({best['epoch']}) | {seconds:.1f} |"
        )

    last = cfg.cells[-1]  # its prediction for the seed window, from scratch in NumPy
    probs_lib = np.asarray(next_probs(params, data.seed_window[None]), np.float64)[0]
    probs_np = from_scratch(last, params, data.seed_window)
    diff, order = float(np.max(np.abs(probs_np - probs_lib))), np.argsort(-probs_lib)[: cfg.top]
    say(f"\n{CELL_NAMES[last]}: next-word probabilities after {seed!r}")
    say("| word | rnnjax | NumPy from scratch |\n|---|---|---|")
    for i in order:
        say(f"| {data.vocab.tokens[i]} | {probs_lib[i]:.6f} | {probs_np[i]:.6f} |")
    say(f"max |NumPy - rnnjax| over all {len(probs_lib)} words: {diff:.2e} (tol. {TOL_FROM_SCRATCH:g})")
    metrics["from_scratch"] = dict(
        cell=last, top_words=[data.vocab.tokens[i] for i in order], probs_rnnjax=probs_lib,
        probs_numpy=probs_np, max_abs_diff=diff,
    )  # fmt: skip
    metrics["seconds"] = time.perf_counter() - start
    results.write_json(out / "metrics.json", metrics)
    plot(json.loads((out / "metrics.json").read_text()), out / "loss.png")
    say(f"wrote {out} in {metrics['seconds']:.0f} s")
    say.save(out / "summary.md", "walkthrough_alice")
    return metrics | dict(out=out)


if __name__ == "__main__":
    _cli.run(Config, main)
