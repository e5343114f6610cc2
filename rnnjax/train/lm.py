"""Word- and character-level language models on text: truncated backpropagation through time over
contiguous streams (the carry passed from batch to batch), data parallel over every device of the run
(`parallel.run_mesh`: the local devices, or those of every process of a `jax.distributed` run), trained by
the one loop `rnnjax.train.loop.fit` (progress, `metrics.jsonl`, validation, checkpoints, exact resume).

    config = LMConfig.for_level("char", steps=2000)
    corpus = lm.prepare(rnnjax.data.corpora.load("tinyshakespeare"), config)
    result = lm.fit(config, corpus, "results/text_generation/run1")
    model, params, vocab, config, step = lm.load("results/text_generation/run1", "best")
    print(lm.sample_text(model, params, vocab, config, "alice was", 60, temperature=0.8, seed=0))

Everything a step does is a function of the step number and the saved state: the batch of step s is
`text.stream_batch(rows, s % batches_per_pass, seq_len)` (all carries reset to zeros when a pass starts),
the randomness (dropout, carry resets) comes from `fold_in(key, s)`, and the learning rate from the
optimiser's step count. A checkpoint holds the params, the optimiser state and the carries, so resuming
replays the computation of an uninterrupted run.

Over several processes (`rnnjax.train.distributed.initialize` in each, then the same `fit` call in each)
every process builds the same global batch of each step and places its own devices' rows of it; the
params and optimiser state are replicated and the gradient all-reduced over all devices, so the run
computes what one process with all those devices computes (tests/train/test_distributed.py). Process 0
writes the run folder.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnjax import generate, models, readout
from rnnjax.data import text as text_lib
from rnnjax.results import write_json
from rnnjax.train import distributed, loop, parallel
from rnnjax.train.checkpoint import Checkpoints, find_checkpoints
from rnnjax.train.lm_config import (
    DATA_FIELDS,
    MODEL_FIELDS,
    TRAJECTORY_FIELDS,
    LMConfig,
    learning_rate_schedule,
    optimizer,
)

__all__ = [
    "Batch",
    "Corpus",
    "LMConfig",
    "TrainState",
    "check_resumable",
    "evaluate",
    "fit",
    "init_state",
    "load",
    "make_batches",
    "make_model",
    "make_train_step",
    "prepare",
    "sample_text",
]

LN2 = math.log(2.0)


class Corpus(NamedTuple):
    """A tokenised text: the vocabulary (built on `train` only) and the two contiguous id streams."""

    vocab: text_lib.Vocabulary
    train: np.ndarray  # <int32>[n_train], the first 1 - valid_fraction of the tokens
    valid: np.ndarray  # <int32>[n_valid], the rest


class TrainState(NamedTuple):
    """The state of truncated BPTT, what a checkpoint holds; every leaf is an array."""

    params: Any  # the language model's params
    opt_state: Any  # the optax state
    carries: tuple  # one carry per layer, each field <float32>[batch_size, hidden_size]


class Batch(NamedTuple):
    """The data of one step."""

    inputs: np.ndarray  # <int32>[batch_size, seq_len]
    targets: np.ndarray  # <int32>[batch_size, seq_len], the token after each input
    new_pass: np.ndarray  # <bool>[]: a new pass over the text starts, so every row starts from zeros


# ------------------------------------------------------------------------------------------- data


def prepare(text: str, config: LMConfig, vocab: text_lib.Vocabulary | None = None) -> Corpus:
    """Tokenise `text`, split it into contiguous train/valid blocks, build the vocabulary on the train block.

    Args:
      text: the whole corpus.
      config: the run's `LMConfig` (level, normalisation, vocabulary and split settings).
      vocab: use this vocabulary (e.g. a checkpoint's) instead of building one.
    Returns:
      A `Corpus`. Raises ValueError if a split is too short for one batch.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    tokens = text_lib.tokenize(
        text, config.level, lowercase=config.lowercase, strip_punctuation=config.strip_punctuation
    )
    n, need_train, need_valid = len(tokens), config.batch_size * (config.seq_len + 1), 2 * config.batch_size
    if n < need_train + need_valid:
        raise ValueError(
            f"text: the text has {n} {config.level} token{'' if n == 1 else 's'}; expected at least "
            f"batch_size * (seq_len + 1) + 2 * batch_size = {config.batch_size} * {config.seq_len + 1} + "
            f"2 * {config.batch_size} = {need_train + need_valid} (one training batch, and one input and "
            f"one target per row to validate). Use a longer text or a smaller --batch-size/--seq-len"
        )
    n_valid = round(n * config.valid_fraction)  # the validation block of `text_lib.split_sizes`
    if n_valid < need_valid:
        raise ValueError(
            f"text: the validation split has {n_valid} {config.level} tokens (valid_fraction "
            f"{config.valid_fraction:g} of {n}); expected at least 2 * batch_size = {need_valid} (one input "
            f"and one target per row). Use a longer text, a larger --valid-fraction or a smaller --batch-size"
        )
    n_train, _, _ = text_lib.split_sizes(n, valid_fraction=config.valid_fraction)
    if vocab is None:
        vocab = text_lib.Vocabulary.build(
            tokens[:n_train], min_count=config.min_count, max_size=config.max_vocab
        )
    train, valid = vocab.encode(tokens[:n_train]), vocab.encode(tokens[n_train:])
    if train.size < need_train:
        raise ValueError(
            f"text: the training split has {train.size} {config.level} tokens (of {n}); expected at least "
            f"batch_size * (seq_len + 1) = {config.batch_size} * {config.seq_len + 1} = {need_train} for one "
            f"batch. Use a longer text, a smaller --valid-fraction or a smaller --batch-size/--seq-len"
        )
    return Corpus(vocab, train, valid)


def make_batches(train: np.ndarray, config: LMConfig) -> Callable[[int], Batch]:
    """`step -> Batch`: the training stream cut into `batch_size` rows (`text.stream_rows`); step s reads
    `text.stream_batch(rows, s % K, seq_len)` with K = `text.num_stream_batches`, a new pass at s % K = 0."""
    rows = text_lib.stream_rows(train, config.batch_size)
    per_pass = text_lib.num_stream_batches(train, config.batch_size, config.seq_len)

    def batches(step: int) -> Batch:
        k = step % per_pass
        return Batch(*text_lib.stream_batch(rows, k, config.seq_len), np.bool_(k == 0))

    return batches


# ------------------------------------------------------------------------------------ model and state


def make_model(config: LMConfig, vocab_size: int) -> models.RNNModel:
    """`models.language_model` as `config` describes it, over `vocab_size` tokens."""
    return models.language_model(
        vocab_size,
        config.make_cell(),
        num_layers=config.num_layers,
        embed_size=config.embed_size,
        dropout=config.dropout,
    )


def _keys(config: LMConfig) -> tuple[jax.Array, jax.Array]:
    """(initialisation key, training key) of the run."""
    k_init, k_train = jax.random.split(jax.random.key(config.seed))
    return k_init, k_train


def init_state(model: models.RNNModel, config: LMConfig) -> TrainState:
    """The state training starts from: initial params, optimiser state, zero carries."""
    params = model.init(_keys(config)[0], jnp.zeros((1, 1), jnp.int32))["params"]
    return TrainState(params, optimizer(config).init(params), model.zero_carries(config.batch_size))


def _place(tree, shardings):
    """`tree` on the devices of `shardings` (one sharding, or a tree of them matching `tree`). Arrays
    placed otherwise go through the host, so each process places its own shards of the same whole value, as
    a multi-process run needs; arrays already placed so are kept."""
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree.map(lambda _: shardings, tree)

    def put(x, sharding):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        return jax.device_put(jax.device_get(x), sharding)

    return jax.tree.map(put, tree, shardings)


def _batch_shardings(mesh) -> Batch:
    bat = parallel.batch_sharding(mesh)
    return Batch(bat, bat, parallel.replicated(mesh))


def _state_shardings(mesh, state: TrainState) -> TrainState:
    rep, bat = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    return TrainState(
        jax.tree.map(lambda _: rep, state.params),
        jax.tree.map(lambda _: rep, state.opt_state),
        jax.tree.map(lambda _: bat, state.carries),
    )


def make_train_step(model: models.RNNModel, config: LMConfig, mesh, like: TrainState):
    """`train_step(state, batch, key) -> (state, {"loss", "grad_norm", "learning_rate"})`, jitted with the
    data-parallel shardings of `mesh` (params replicated, batch rows and carries split).

    Carries restart from zeros for every row when `batch.new_pass`, and for each row with probability
    `config.carry_reset`, so the model also learns to start from the state sampling starts from. The
    loss is the mean next-token cross-entropy over (B, T); the gradient norm is taken before clipping.
    """
    tx = optimizer(config)
    schedule = learning_rate_schedule(config)

    def train_step(state: TrainState, batch: Batch, key):
        k_reset, k_dropout = jax.random.split(key)
        reset = batch.new_pass | jax.random.bernoulli(k_reset, config.carry_reset, (batch.inputs.shape[0],))
        start = jax.tree.map(lambda c: jnp.where(reset[:, None], jnp.zeros_like(c), c), state.carries)

        def loss_fn(params):
            variables = {"params": params}
            logits, carries = model.apply(
                variables, batch.inputs, start, train=True, rngs={"dropout": k_dropout}
            )
            return jnp.mean(readout.cross_entropy(logits, batch.targets)), carries  # mean over (B, T)

        (loss, carries), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        step = optax.tree_utils.tree_get(state.opt_state, "count", filtering=_is_schedule_count)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(
            optax.apply_updates(state.params, updates), opt_state, jax.lax.stop_gradient(carries)
        )
        return new, {"loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": schedule(step)}

    rep = parallel.replicated(mesh)
    shardings = _state_shardings(mesh, like)
    return jax.jit(
        train_step, in_shardings=(shardings, _batch_shardings(mesh), rep), out_shardings=(shardings, rep)
    )


def _is_schedule_count(path, _value) -> bool:
    """The step count of the learning-rate schedule inside an optax state (its `ScaleByScheduleState`)."""
    return getattr(path[-1], "tuple_name", None) == "ScaleByScheduleState"


# ------------------------------------------------------------------------------------------ evaluation


@functools.lru_cache(maxsize=16)
def _eval_chunk(model: models.RNNModel, mesh):
    """`(params, carries, x, y) -> (summed loss, carries)`, compiled once per (model, mesh)."""

    def chunk(params, carries, x, y):
        logits, carries = model.apply({"params": params}, x, carries)
        return jnp.sum(readout.cross_entropy(logits, y)), carries

    bat, rep = parallel.batch_sharding(mesh), parallel.replicated(mesh)
    return jax.jit(chunk, in_shardings=(rep, bat, bat, bat), out_shardings=(rep, bat))


def evaluate(model: models.RNNModel, params, ids, *, batch_size: int, seq_len: int, mesh=None) -> dict:
    """Mean next-token loss of `model` on the stream `ids`, read as `batch_size` contiguous rows
    (`text.stream_rows`) with the carry passed along each row in chunks of `seq_len` (`text.stream_batch`,
    the last chunk of a row may be shorter), so every token except the first of each row and the
    `len(ids) % batch_size` at the end is predicted once.

    Args:
      model, params: the language model and its params.
      ids: <int>[n] token ids, n >= 2 * batch_size.
      batch_size: rows (a multiple of the mesh's device count).
      seq_len: tokens per chunk.
      mesh: a `parallel.data_mesh` or `parallel.run_mesh` (None: all local devices). With a mesh over
        several processes every process calls `evaluate` alike (it is a collective).
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
    rows = text_lib.stream_rows(ids, batch_size)
    chunk = _eval_chunk(model, mesh)
    bat = parallel.batch_sharding(mesh)
    params = _place(params, parallel.replicated(mesh))
    carries = _place(model.zero_carries(batch_size), bat)
    total, count = 0.0, 0
    for k in range(-(-(rows.shape[1] - 1) // seq_len)):  # ceil: the last chunk may be shorter
        x, y = text_lib.stream_batch(rows, k, seq_len)
        nll, carries = chunk(params, carries, *_place((x, y), bat))
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
    on_step: Callable[[int, TrainState], None] | None = None,
) -> loop.FitResult:
    """Train a language model on `corpus.train`, validating on `corpus.valid`, writing into folder `run`
    (`rnnjax.train.loop.fit` with `make_train_step`, `make_batches` and `evaluate`).

    Writes `run/config.json`, `run/vocab.json`, `run/metrics.jsonl` (records {"step", "split": "train",
    "loss", "grad_norm", "learning_rate", "tokens_per_second"} every `log_every` steps and {"step",
    "split": "valid", "loss", "perplexity", "bits_per_token", "tokens"} at each evaluation) and
    `run/checkpoints/<step>/`. A NaN or infinite loss or gradient stops training without saving; the
    checkpoints already written are untouched. The batch is split across `parallel.run_mesh(config.devices)`;
    in a multi-process run every process calls `fit` alike and process 0 writes the run folder.

    Args:
      config: the run's `LMConfig`.
      corpus: from `prepare(text, config)`.
      run: the run folder (created). It must not hold checkpoints unless `resume`.
      resume: continue from the latest checkpoint in `run` (with the same data and model config, and the
        saved vocabulary); the result equals an uninterrupted run.
      stop_after: stop (as if interrupted) after this step, having checkpointed it.
      time_limit: stop the same way after the first step that ends more than this many seconds after
        training started (compilation and validation included).
      progress: show a progress bar with the loss.
      on_step: `(step, state) -> None` after each completed step and its checkpoint (tests inject faults).
    Returns:
      The loop's `FitResult` (`state` is a `TrainState` on the host).
    """
    if not isinstance(config, LMConfig):
        raise TypeError(f"config: expected an LMConfig, got {type(config).__name__}")
    if not isinstance(corpus, Corpus):
        raise TypeError(f"corpus: expected the Corpus of lm.prepare, got {type(corpus).__name__}")

    def check_run() -> None:  # on process 0, the one that writes it; its error reaches every process
        if not isinstance(run, str | os.PathLike) or (Path(run).exists() and not Path(run).is_dir()):
            path = isinstance(run, str | os.PathLike)
            got = f"{str(run)!r}, which is a file" if path else type(run).__name__
            raise ValueError(f"run: expected the path of a run folder (created if missing), got {got}")

    distributed.on_main(check_run, "checking the run folder")
    mesh = parallel.run_mesh(config.devices)
    parallel.check_batch_size(mesh, config.batch_size)
    model = make_model(config, len(corpus.vocab))
    state = init_state(model, config)
    state = _place(state, _state_shardings(mesh, state))
    batches, batch_shardings = make_batches(corpus.train, config), _batch_shardings(mesh)

    def check_resume(meta: dict) -> None:
        changed = _check_compatible(meta["config"], config, "resume")
        _check_vocab(meta["vocab"], corpus.vocab, "resume")
        if changed:
            warnings.warn(
                f"resume: {', '.join(changed)} differ from the checkpoint's; training continues, but no "
                f"longer reproduces an uninterrupted run",
                stacklevel=5,
            )

    def on_start(_step: int) -> None:  # the run folder is checked: record what it trains
        write_json(Path(run) / "config.json", config.to_dict())
        corpus.vocab.save(Path(run) / "vocab.json")

    return loop.fit(
        make_train_step(model, config, mesh, state),
        state,
        lambda step: _place(batches(step), batch_shardings),
        steps=config.steps,
        key=_keys(config)[1],
        evaluate=lambda s: evaluate(
            model, s.params, corpus.valid, batch_size=config.batch_size, seq_len=config.seq_len, mesh=mesh
        ),
        eval_every=config.eval_every,
        run=run,
        resume=resume,
        save_every=config.save_every,
        keep_last=config.keep_last,
        meta={"config": config.to_dict(), "vocab": list(corpus.vocab.tokens), "unk": corpus.vocab.unk},
        check_resume=check_resume,
        log_every=config.log_every,
        items_per_step=("tokens", config.batch_size * config.seq_len),
        time_limit=time_limit,
        stop_after=stop_after,
        progress=progress,
        desc=f"{config.cell} {config.level}-level",
        on_step=on_step,
        on_start=on_start,
    )


def check_resumable(config: LMConfig, corpus: Corpus, run: str | os.PathLike) -> None:
    """Refuse (ValueError, as `fit(..., resume=True)` would) to continue the run in folder `run` with
    `config` and `corpus`: it holds no intact checkpoint, or the newest one's model or data settings or
    vocabulary differ. Reads only: nothing in `run` changes, so a command can check before it writes."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir() or not any(p.name.isdigit() for p in folder.iterdir()):
        raise ValueError(f"resume: {str(run)!r} holds no checkpoint to resume from")
    with Checkpoints(folder, keep_last=1 << 30, writable=False) as store:
        intact = store.intact_steps()
        if not intact:
            whys = "; ".join(store.problems().values())
            raise ValueError(f"resume: no intact checkpoint in {str(store.directory)!r}: {whys}")
        meta = store.read_meta(intact[-1])
    _check_compatible(meta["config"], config, "resume")
    _check_vocab(meta["vocab"], corpus.vocab, "resume")


# ------------------------------------------------------------------------------------------- loading


def load(path: str | os.PathLike, which: str | int = "best"):
    """A trained model from a run folder (or its `checkpoints/` folder).

    Args:
      path: the run folder written by `fit`.
      which: "best" (lowest validation loss), "latest", or a saved step number. Only intact steps load:
        "best" and "latest" skip a corrupt step with a warning naming it and the step used; a corrupt
        step asked for by number is refused as corrupt (`Checkpoints.resolve`).
    Returns:
      (model, params, vocab, config, step): the language model, its params (host arrays), the
      `Vocabulary` it was trained with, its `LMConfig` and the step loaded.
    """
    store = Checkpoints(find_checkpoints(path), keep_last=1 << 30, writable=False)
    try:
        step = store.resolve(which)
        meta = store.read_meta(step)
        config = LMConfig.from_dict(meta["config"])
        vocab = text_lib.Vocabulary(meta["vocab"], unk=meta.get("unk"))
        model = make_model(config, len(vocab))
        like = jax.eval_shape(lambda: init_state(model, config))
        state, _ = store.restore(step, like=jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), like))
    finally:
        store.close()
    return model, state.params, vocab, config, step


def sample_text(model, params, vocab, config: LMConfig, prompt: str, length: int, **options) -> str:
    """The prompt and `length` generated tokens (`rnnjax.generate.sample_text` with `include_prompt`), the
    prompt tokenised as in the run's training: `config`'s level, lowercasing and punctuation stripping,
    so a reloaded model needs no settings retyped. `options`: seed or key, temperature, top_k, top_p,
    greedy, as in `generate.sample_text`."""
    if not isinstance(config, LMConfig):
        raise TypeError(f"config: expected the LMConfig of lm.load, got {type(config).__name__}")
    return generate.sample_text(
        model, params, vocab, prompt, length, level=config.level, lowercase=config.lowercase,
        strip_punctuation=config.strip_punctuation, include_prompt=True, **options,
    )  # fmt: skip
