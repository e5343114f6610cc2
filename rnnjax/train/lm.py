"""Training word- and character-level language models on text: truncated backpropagation through time
over contiguous streams (the carry passed from batch to batch), data parallel over all local devices,
validation loss / perplexity / bits per token, metrics in `metrics.jsonl`, and orbax checkpoints that
resume to exactly the parameters of an uninterrupted run.

    config = lm.LMConfig(level="char", cell="lstm", steps=2000)
    corpus = lm.prepare(rnnjax.data.corpora.load("tinyshakespeare"), config)
    result = lm.fit(config, corpus, "results/text_generation/run1")
    model, params, vocab, config = lm.load("results/text_generation/run1", "best")

Everything a step does is a function of the step number and the saved state: batch k of the stream is
`step % batches_per_epoch` (carries reset to zeros when an epoch starts), dropout keys are
`fold_in(key(seed), step)`, and the learning-rate schedule is indexed by the step. A checkpoint holds the
params, the optimiser state and the carries, so resuming replays the same computation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from rnnjax import readout
from rnnjax.data import text as text_lib
from rnnjax.models import CELL_KINDS, LanguageModel
from rnnjax.results import atomic_write_text, write_json
from rnnjax.train import parallel
from rnnjax.train.checkpoint import METRIC, Checkpoints, find_checkpoints
from rnnjax.train.optimizers import OPTIMIZERS, make_optimizer

__all__ = [
    "LEVELS",
    "SCHEDULES",
    "Corpus",
    "FitResult",
    "LMConfig",
    "TrainState",
    "evaluate",
    "fit",
    "learning_rate_schedule",
    "load",
    "make_model",
    "prepare",
    "tokenize",
]

LEVELS = ("char", "word")
ACTIVATIONS = ("tanh", "relu", "linear")
SCHEDULES = ("constant", "cosine", "linear")
LN2 = math.log(2.0)
# Testing aid: a fit() that finishes this step (and its checkpoint) kills its own process with SIGKILL,
# to test resuming a run that died without any clean-up.
KILL_ENV = "RNNJAX_KILL_AFTER_STEP"

# Config fields that must match between a checkpoint and the run that resumes or samples from it.
MODEL_FIELDS = ("cell", "activation", "hidden_size", "num_layers", "embed_size")
DATA_FIELDS = ("level", "lowercase", "strip_punctuation", "min_count", "max_vocab", "valid_fraction")
# Fields that define the training trajectory: resuming with other values is allowed (e.g. more steps) but
# no longer reproduces an uninterrupted run, so it warns.
TRAJECTORY_FIELDS = (
    "dropout",
    "carry_reset",
    "steps",
    "batch_size",
    "seq_len",
    "optimizer",
    "learning_rate",
    "schedule",
    "warmup_steps",
    "final_lr_fraction",
    "clip_norm",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Everything that defines a language-model run (saved with each checkpoint).

    Text: `level` "char" or "word"; `lowercase`/`strip_punctuation` as in `rnnjax.data.text.normalize`;
    the vocabulary is built from the training split only (`min_count`, `max_vocab` entries at most,
    `<unk>` included); the last `valid_fraction` of the tokens is the validation split.
    Model: `LanguageModel(cell, hidden_size, num_layers, embed_size (None: one-hot), dropout)`;
    `activation` ("tanh", "relu", "linear") applies to the "simple" cell only.
    Streams: each row's carry is passed from batch to batch (truncated BPTT), except that at every step
    each row restarts from zero carries with probability `carry_reset` (and all rows at each new pass
    over the text), so that the model also learns to read a prompt from the zero state sampling uses.
    Optimisation: `steps` updates on batches of `batch_size` rows x `seq_len` tokens, `optimizer`
    ("adam", "rmsprop", "sgd") at `learning_rate` with `schedule` ("constant", "cosine" or "linear"
    decay to `final_lr_fraction` x the rate, after `warmup_steps` of linear warm-up), gradients clipped
    to global norm `clip_norm` (None: no clipping).
    Bookkeeping: validation every `eval_every` steps and checkpoints every `checkpoint_every` steps
    (and at the end), keeping the last `keep_last` and the best; a training-loss record in
    `metrics.jsonl` every `log_every` steps; `devices` local devices (None: all).
    """

    level: str = "char"
    lowercase: bool = False
    strip_punctuation: bool = False
    min_count: int = 1
    max_vocab: int | None = None
    valid_fraction: float = 0.1
    cell: str = "lstm"
    activation: str = "tanh"
    hidden_size: int = 256
    num_layers: int = 2
    embed_size: int | None = 64
    dropout: float = 0.0
    carry_reset: float = 0.05
    steps: int = 2000
    batch_size: int = 64
    seq_len: int = 100
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    schedule: str = "cosine"
    warmup_steps: int = 0
    final_lr_fraction: float = 0.1
    clip_norm: float | None = 5.0
    seed: int = 0
    eval_every: int = 200
    checkpoint_every: int = 200
    keep_last: int = 3
    log_every: int = 10
    devices: int | None = None

    def __post_init__(self):
        def need(cond: bool, name: str, expected: str):
            if not cond:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

        def is_int(v) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        need(self.level in LEVELS, "level", f"one of {LEVELS}")
        need(self.cell in CELL_KINDS, "cell", f"one of {CELL_KINDS}")
        need(self.activation in ACTIVATIONS, "activation", f"one of {ACTIVATIONS}")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {sorted(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}")
        for name in ("hidden_size", "num_layers", "steps", "batch_size", "seq_len", "min_count"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        for name in ("eval_every", "checkpoint_every", "keep_last", "log_every"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        need(
            is_int(self.warmup_steps) and 0 <= self.warmup_steps < self.steps,
            "warmup_steps",
            "an int in [0, steps)",
        )
        need(
            self.embed_size is None or (is_int(self.embed_size) and self.embed_size >= 1),
            "embed_size",
            "None (one-hot) or an int >= 1",
        )
        need(
            self.max_vocab is None or (is_int(self.max_vocab) and self.max_vocab >= 2),
            "max_vocab",
            "None or an int >= 2",
        )
        need(
            self.devices is None or (is_int(self.devices) and self.devices >= 1),
            "devices",
            "None or an int >= 1",
        )
        need(0.0 <= self.dropout < 1.0, "dropout", "a rate in [0, 1)")
        need(0.0 <= self.carry_reset <= 1.0, "carry_reset", "a probability in [0, 1]")
        need(0.0 < self.valid_fraction < 1.0, "valid_fraction", "a number in (0, 1)")
        need(self.learning_rate > 0 and math.isfinite(self.learning_rate), "learning_rate", "a number > 0")
        need(0.0 <= self.final_lr_fraction <= 1.0, "final_lr_fraction", "a number in [0, 1]")
        need(self.clip_norm is None or self.clip_norm > 0, "clip_norm", "None or a number > 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class Corpus(NamedTuple):
    """A tokenised text: the vocabulary (built on `train` only) and the two contiguous id streams."""

    vocab: text_lib.Vocabulary
    train: np.ndarray  # <int32>[n_train], the first 1 - valid_fraction of the tokens
    valid: np.ndarray  # <int32>[n_valid], the rest


class TrainState(NamedTuple):
    """What a checkpoint holds; every leaf is an array."""

    step: jax.Array  # <int32>[], updates done so far
    params: Any  # the LanguageModel's params
    opt_state: Any  # the optax state
    carries: tuple  # one carry per layer, each field <float32>[batch_size, hidden_size]: the TBPTT state


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the last good `TrainState` (on divergence: the one before the non-finite step).
      status: "done", "stopped" (at `stop_after`) or "diverged".
      message: a human-readable account of how training ended.
      valid: the last validation record (dict with loss, perplexity, bits_per_token, tokens) or None.
      best_step: the checkpointed step with the lowest validation loss, or None.
      run: the run folder.
    """

    state: TrainState
    status: str
    message: str
    valid: dict | None
    best_step: int | None
    run: Path


# ------------------------------------------------------------------------------------------- text


def tokenize(text: str, config: LMConfig) -> list[str]:
    """`text` normalised and split into tokens as `config` says (level, lowercase, strip_punctuation)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    text = text_lib.normalize(text, lowercase=config.lowercase, strip_punctuation=config.strip_punctuation)
    return text_lib.char_tokens(text) if config.level == "char" else text_lib.word_tokens(text)


def prepare(text: str, config: LMConfig, vocab: text_lib.Vocabulary | None = None) -> Corpus:
    """Tokenise `text`, split it into contiguous train/valid blocks, build the vocabulary on the train block.

    Args:
      text: the whole corpus.
      config: the run's `LMConfig`.
      vocab: use this vocabulary (e.g. a checkpoint's) instead of building one.
    Returns:
      A `Corpus`. Raises ValueError if a split is too short for one batch.
    """
    tokens = tokenize(text, config)
    n = len(tokens)
    n_valid = round(n * config.valid_fraction)
    train_tokens, valid_tokens = tokens[: n - n_valid], tokens[n - n_valid :]
    if vocab is None:
        vocab = text_lib.Vocabulary.build(train_tokens, min_count=config.min_count, max_size=config.max_vocab)
    train, valid = (
        np.asarray(vocab.encode(train_tokens), np.int32),
        np.asarray(vocab.encode(valid_tokens), np.int32),
    )
    need_train = config.batch_size * (config.seq_len + 1)
    if train.size < need_train:
        raise ValueError(
            f"text: the training split has {train.size} {config.level} tokens (of {n}); expected at least "
            f"batch_size * (seq_len + 1) = {config.batch_size} * {config.seq_len + 1} = {need_train} for one "
            f"batch. Use a longer text or a smaller --batch-size/--seq-len"
        )
    if valid.size < 2 * config.batch_size:
        raise ValueError(
            f"text: the validation split has {valid.size} {config.level} tokens; expected at least "
            f"2 * batch_size = {2 * config.batch_size} (one input and one target per row). Use a longer "
            f"text, a larger --valid-fraction or a smaller --batch-size"
        )
    return Corpus(vocab, train, valid)


# ------------------------------------------------------------------------------------ model and state


def make_model(config: LMConfig, vocab_size: int) -> LanguageModel:
    """The `LanguageModel` that `config` describes, over `vocab_size` tokens."""
    return LanguageModel(
        vocab_size=vocab_size,
        cell=config.cell,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        embed_size=config.embed_size,
        dropout=config.dropout,
        cell_options=(("activation", config.activation),) if config.cell == "simple" else (),
    )


def learning_rate_schedule(config: LMConfig) -> optax.Schedule:
    """Linear warm-up over `warmup_steps`, then constant, cosine or linear decay to
    `final_lr_fraction * learning_rate` at `steps`."""
    lr, end = config.learning_rate, config.learning_rate * config.final_lr_fraction
    decay_steps = config.steps - config.warmup_steps
    if config.schedule == "constant":
        after = optax.constant_schedule(lr)
    elif config.schedule == "cosine":
        after = optax.cosine_decay_schedule(lr, decay_steps, alpha=config.final_lr_fraction)
    else:
        after = optax.linear_schedule(lr, end, decay_steps)
    if config.warmup_steps == 0:
        return after
    warm = optax.linear_schedule(0.0, lr, config.warmup_steps)
    return optax.join_schedules([warm, after], [config.warmup_steps])


def _optimizer(config: LMConfig) -> optax.GradientTransformation:
    return make_optimizer(config.optimizer, learning_rate_schedule(config), config.clip_norm)


def _zero_carries(model: LanguageModel, params, batch_size: int) -> tuple:
    shapes = jax.eval_shape(
        lambda p: model.apply({"params": p}, jnp.zeros((batch_size, 1), jnp.int32))[1], params
    )
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _init_state(model: LanguageModel, config: LMConfig) -> TrainState:
    params = model.init(jax.random.key(config.seed), jnp.zeros((1, 1), jnp.int32))["params"]
    opt_state = _optimizer(config).init(params)
    return TrainState(jnp.int32(0), params, opt_state, _zero_carries(model, params, config.batch_size))


def _state_shardings(mesh, state: TrainState) -> TrainState:
    rep, bat = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    return TrainState(
        rep,
        jax.tree.map(lambda _: rep, state.params),
        jax.tree.map(lambda _: rep, state.opt_state),
        jax.tree.map(lambda _: bat, state.carries),
    )


def _place(mesh, state: TrainState) -> TrainState:
    return jax.tree.map(lambda x, s: jax.device_put(x, s), state, _state_shardings(mesh, state))


def _make_train_step(model: LanguageModel, config: LMConfig, mesh, like: TrainState):
    tx = _optimizer(config)
    dropout_key = jax.random.key(config.seed + 1)
    reset_key = jax.random.key(config.seed + 2)

    def step_fn(state: TrainState, x, y):
        # Restart some rows from zero carries, so the model also learns to start from the state that
        # sampling starts from (with carries only ever passed on, zeros are seen once per epoch).
        reset = jax.random.bernoulli(
            jax.random.fold_in(reset_key, state.step), config.carry_reset, (x.shape[0],)
        )
        start = jax.tree.map(lambda c: jnp.where(reset[:, None], jnp.zeros_like(c), c), state.carries)

        def loss_fn(params):
            logits, carries = model.apply(
                {"params": params},
                x,
                start,
                train=True,
                rngs={"dropout": jax.random.fold_in(dropout_key, state.step)},
            )
            return jnp.mean(readout.cross_entropy(logits, y)), carries  # mean over (B, T)

        (loss, carries), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grad_norm = optax.tree.norm(grads)  # before clipping
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        carries = jax.lax.stop_gradient(carries)
        return TrainState(state.step + 1, params, opt_state, carries), {"loss": loss, "grad_norm": grad_norm}

    shardings = _state_shardings(mesh, like)
    bat, rep = parallel.batch_sharding(mesh), parallel.replicated(mesh)
    return jax.jit(step_fn, in_shardings=(shardings, bat, bat), out_shardings=(shardings, rep))


# ------------------------------------------------------------------------------------------ evaluation


def _stream_rows(ids: np.ndarray, batch_size: int) -> np.ndarray:
    row_len = ids.shape[0] // batch_size
    return ids[: batch_size * row_len].reshape(batch_size, row_len)  # (B, row_len): row b continues itself


_EVAL_CACHE: dict = {}


def _eval_chunk_fn(model: LanguageModel, mesh):
    key = (model, mesh)
    if key not in _EVAL_CACHE:

        def chunk(params, carries, x, y):
            logits, carries = model.apply({"params": params}, x, carries)
            return jnp.sum(readout.cross_entropy(logits, y)), carries

        bat, rep = parallel.batch_sharding(mesh), parallel.replicated(mesh)
        _EVAL_CACHE[key] = jax.jit(chunk, in_shardings=(rep, bat, bat, bat), out_shardings=(rep, bat))
    return _EVAL_CACHE[key]


def evaluate(model: LanguageModel, params, ids, *, batch_size: int, seq_len: int, mesh=None) -> dict:
    """Mean next-token loss of `model` on the stream `ids`, read as `batch_size` contiguous rows with the
    carry passed along each row in chunks of `seq_len` (the last chunk of a row may be shorter), so every
    token except the first of each row and the `len(ids) % batch_size` at the end is predicted once.

    Args:
      model, params: the `LanguageModel` and its params.
      ids: <int>[n] token ids, n >= 2 * batch_size.
      batch_size: rows (a multiple of the mesh's device count).
      seq_len: tokens per chunk.
      mesh: a `parallel.data_mesh` (None: all local devices).
    Returns:
      dict with "loss" (mean nats per token), "perplexity" = exp(loss), "bits_per_token" = loss / ln 2
      (bits per character for a char-level model) and "tokens" (the number scored).
    """
    mesh = parallel.data_mesh() if mesh is None else mesh
    parallel.check_batch_size(mesh, batch_size)
    ids = np.asarray(ids, np.int32)
    if ids.ndim != 1 or ids.shape[0] < 2 * batch_size:
        raise ValueError(
            f"ids: expected a 1-D stream of at least 2 * batch_size = {2 * batch_size} tokens, "
            f"got shape {ids.shape}"
        )
    rows = _stream_rows(ids, batch_size)
    chunk = _eval_chunk_fn(model, mesh)
    carries = jax.device_put(_zero_carries(model, params, batch_size), parallel.batch_sharding(mesh))
    total, count = 0.0, 0
    for t0 in range(0, rows.shape[1] - 1, seq_len):
        t1 = min(t0 + seq_len, rows.shape[1] - 1)
        x, y = parallel.shard_batch(mesh, (rows[:, t0:t1], rows[:, t0 + 1 : t1 + 1]))
        nll, carries = chunk(params, carries, x, y)
        total += float(nll)
        count += x.size
    loss = total / count
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bits_per_token": loss / LN2,
        "tokens": count,
    }


# ------------------------------------------------------------------------------------------- training


class _Metrics:
    """`metrics.jsonl`: one JSON record per line, flushed as written."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after `step` (written by a run that is being resumed from `step`)."""
        if not self.path.exists():
            return
        keep = [
            line for line in self.path.read_text().splitlines() if line.strip() and _record_step(line) <= step
        ]
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def _record_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable (e.g. cut by a crash): dropped on truncation


def _check_compatible(saved: dict, config: LMConfig, what: str) -> list[str]:
    """Raise if the model or data fields differ; return the trajectory fields that differ."""
    bad = [
        f"{k}: checkpoint {saved.get(k)!r}, requested {getattr(config, k)!r}"
        for k in MODEL_FIELDS + DATA_FIELDS
        if saved.get(k) != getattr(config, k)
    ]
    if bad:
        raise ValueError(f"{what}: the checkpoint's model or data config does not match: " + "; ".join(bad))
    return [k for k in TRAJECTORY_FIELDS if saved.get(k) != getattr(config, k)]


def _check_vocab(saved_tokens: list, vocab: text_lib.Vocabulary, what: str) -> None:
    if list(saved_tokens) != list(vocab.tokens):
        i = next(
            (i for i, (a, b) in enumerate(zip(saved_tokens, vocab.tokens, strict=False)) if a != b),
            min(len(saved_tokens), len(vocab)),
        )
        raise ValueError(
            f"{what}: the checkpoint's vocabulary ({len(saved_tokens)} tokens) differs from this corpus's "
            f"({len(vocab)} tokens) from id {i}; train on the same text with the same settings, "
            f"or start a new run"
        )


def fit(
    config: LMConfig,
    corpus: Corpus,
    run: str | os.PathLike,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    time_limit: float | None = None,
    progress: bool = True,
) -> FitResult:
    """Train a language model on `corpus.train`, validating on `corpus.valid`, writing into folder `run`.

    Writes `run/config.json`, `run/vocab.json`, `run/metrics.jsonl` (records {"step", "split": "train",
    "loss", "grad_norm", "learning_rate", "tokens_per_second"} every `log_every` steps and {"step",
    "split": "valid", "loss", "perplexity", "bits_per_token", "tokens"} at each evaluation) and
    `run/checkpoints/<step>/`. A NaN or infinite loss or gradient stops training without saving; the
    checkpoints already written are untouched.

    Args:
      config: the run's `LMConfig`.
      corpus: from `prepare(text, config)`.
      run: the run folder (created). It must not hold checkpoints unless `resume`.
      resume: continue from the latest checkpoint in `run` (with the same data and model config, and the
        saved vocabulary); the result equals an uninterrupted run.
      stop_after: stop (as if interrupted) after this step, having checkpointed it.
      time_limit: stop the same way after the first step that ends more than this many seconds after
        training started (compilation and validation included).
      progress: show a progress bar with the loss and tokens per second.
    Returns:
      A `FitResult`.
    """
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run / "checkpoints"
    has_ckpt = ckpt_dir.is_dir() and any(p.name.isdigit() for p in ckpt_dir.iterdir())
    if has_ckpt and not resume:
        raise ValueError(
            f"run: {str(run)!r} already holds checkpoints; pass resume=True (--resume) to continue it, "
            f"or use a new run folder"
        )
    if resume and not has_ckpt:
        raise ValueError(f"resume: {str(run)!r} holds no checkpoint to resume from")
    mesh = parallel.data_mesh(config.devices)
    parallel.check_batch_size(mesh, config.batch_size)
    model = make_model(config, len(corpus.vocab))
    state = _init_state(model, config)
    metrics = _Metrics(run / "metrics.jsonl")
    store = Checkpoints(ckpt_dir, keep_last=config.keep_last)
    try:
        if resume:
            start = store.latest_step()
            saved, meta = store.restore(start, like=state)
            changed = _check_compatible(meta["config"], config, "resume")
            _check_vocab(meta["vocab"], corpus.vocab, "resume")
            if changed:
                warnings.warn(
                    f"resume: {', '.join(changed)} differ from the checkpoint's; training continues, but no "
                    f"longer reproduces an uninterrupted run",
                    stacklevel=2,
                )
            state = saved
            metrics.truncate_after(start)
        else:
            if (run / "metrics.jsonl").exists():
                (run / "metrics.jsonl").unlink()
            start = 0
        write_json(run / "config.json", config.to_dict())
        corpus.vocab.save(run / "vocab.json")
        return _loop(
            config, corpus, model, mesh, state, start, store, metrics, run, stop_after, time_limit, progress
        )
    finally:
        store.close()


def _loop(
    config, corpus, model, mesh, state, start, store, metrics, run, stop_after, time_limit, progress
) -> FitResult:
    state = _place(mesh, state)
    step_fn = _make_train_step(model, config, mesh, state)
    rows = _stream_rows(corpus.train, config.batch_size)
    per_epoch = (rows.shape[1] - 1) // config.seq_len
    schedule = learning_rate_schedule(config)
    zeros = _place(
        mesh, state._replace(carries=_zero_carries(model, state.params, config.batch_size))
    ).carries
    meta = {"config": config.to_dict(), "vocab": list(corpus.vocab.tokens), "unk": corpus.vocab.unk}
    kill_at = int(os.environ.get(KILL_ENV, "-1"))
    last = min(config.steps, stop_after) if stop_after is not None else config.steps
    tokens_per_step = config.batch_size * config.seq_len
    window: list[tuple[float, float]] = []
    valid, status, message, done = None, "done", "", start
    t_start = t_window = time.perf_counter()

    def validate(step: int) -> dict:
        v = evaluate(
            model, state.params, corpus.valid, batch_size=config.batch_size, seq_len=config.seq_len, mesh=mesh
        )
        metrics.write({"step": step, "split": "valid", **v})
        return v

    bar = tqdm(
        total=config.steps,
        initial=start,
        unit="step",
        desc=f"{config.cell} {config.level}-level",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        for step in range(start, last):
            k = step % per_epoch
            if k == 0:  # a new pass over the stream starts from zero carries
                state = state._replace(carries=zeros)
            t0 = k * config.seq_len
            x, y = parallel.shard_batch(
                mesh, (rows[:, t0 : t0 + config.seq_len], rows[:, t0 + 1 : t0 + config.seq_len + 1])
            )
            new_state, out = step_fn(state, x, y)
            loss, grad_norm = (float(v) for v in jax.device_get((out["loss"], out["grad_norm"])))
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                good = store.latest_step()
                status = "diverged"
                message = (
                    f"training stopped at step {step + 1}: the loss is {loss} and the gradient norm "
                    f"{grad_norm} "
                    f"(not finite). Nothing was saved for this step; the last good checkpoint is "
                    + (
                        f"step {good} in {str(store.directory)!r}"
                        if good is not None
                        else "none (none was written yet)"
                    )
                    + ". Try a lower --learning-rate or --clip-norm."
                )
                metrics.write(
                    {"step": step + 1, "split": "train", "loss": None, "grad_norm": None, "diverged": True}
                )
                break
            state = new_state
            done = step + 1
            window.append((loss, grad_norm))
            if done == start + 1:  # the first call compiled the step: keep that out of the throughput
                metrics.write({"step": done, "split": "compile", "seconds": time.perf_counter() - t_window})
                t_window = time.perf_counter()
            if done % config.log_every == 0 or done == last:
                elapsed = time.perf_counter() - t_window
                record = {
                    "step": done,
                    "split": "train",
                    "loss": float(np.mean([w[0] for w in window])),
                    "grad_norm": float(np.mean([w[1] for w in window])),
                    "learning_rate": float(schedule(step)),
                    "tokens_per_second": len(window) * tokens_per_step / max(elapsed, 1e-9),
                }
                metrics.write(record)
                bar.set_postfix(
                    loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_second']:.0f}", refresh=False
                )
                window, t_window = [], time.perf_counter()
            bar.update(1)
            out_of_time = time_limit is not None and time.perf_counter() - t_start > time_limit
            checkpoint = done % config.checkpoint_every == 0 or done == last or out_of_time
            if checkpoint or done % config.eval_every == 0:
                valid = validate(done)
                t_window = time.perf_counter()  # validation time is not training throughput
            if checkpoint:
                store.save(done, state, meta=meta, metrics={METRIC: valid["loss"]})
            if done == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if out_of_time:
                break
    if status == "done":
        if done < config.steps:
            status = "stopped"
            why = "the time limit" if done < last else "stop_after"
            message = (
                f"stopped by {why} after step {done} of {config.steps} (checkpointed); continue with resume"
            )
        else:
            message = f"finished {config.steps} steps"
        if valid is not None:
            message += (
                f"; validation loss {valid['loss']:.4f} nats/token, perplexity {valid['perplexity']:.2f}, "
                f"{valid['bits_per_token']:.4f} bits/token"
            )
    host = jax.device_get(state)
    return FitResult(host, status, message, valid, store.best_step(), run)


# ------------------------------------------------------------------------------------------- loading


def load(path: str | os.PathLike, which: str | int = "best"):
    """A trained model from a run folder (or its `checkpoints/` folder).

    Args:
      path: the run folder written by `fit`.
      which: "best" (lowest validation loss), "latest", or a saved step number.
    Returns:
      (model, params, vocab, config, step): the `LanguageModel`, its params (host arrays), the
      `Vocabulary` it was trained with, its `LMConfig` and the step loaded.
    """
    store = Checkpoints(find_checkpoints(path), keep_last=1 << 30)
    try:
        step = store.resolve(which)
        meta = store.read_meta(step)
        config = LMConfig.from_dict(meta["config"])
        vocab = text_lib.Vocabulary(meta["vocab"], unk=meta.get("unk"))
        model = make_model(config, len(vocab))
        like = jax.eval_shape(lambda: _init_state(model, config))
        state, _ = store.restore(step, like=jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), like))
    finally:
        store.close()
    return model, state.params, vocab, config, step
