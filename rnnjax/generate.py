"""Text generation from a trained language model (`rnnjax.models.language_model`): greedy decoding or
sampling with temperature, top-k and top-p (nucleus) filtering, one compiled `lax.scan` that feeds one
token per step and threads the carry.

The prompt is read once: one call of the model over all but its last token gives the carries, then a
`lax.scan` of L steps feeds one token at a time with the carries threaded through (the prompt's last
token first, then each generated token). Producing L tokens costs P + L - 1 token steps in all, never
a re-read of the prompt.

Example (an untrained model, so the text is gibberish; `python -m doctest -v rnnjax/generate.py`):

    >>> import jax, jax.numpy as jnp
    >>> from rnnjax import cells, generate as gen, models
    >>> from rnnjax.data.text import Vocabulary, char_tokens
    >>> vocab = Vocabulary.build(char_tokens("hello world"), unk=None)
    >>> model = models.language_model(len(vocab), cells.make("lstm", 16), num_layers=1, embed_size=8)
    >>> params = model.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"]
    >>> tokens = gen.generate(model, params, jnp.array([[1, 2], [3, 4]]), 5, key=jax.random.key(1),
    ...                       temperature=0.8, top_k=5, top_p=0.9)
    >>> tokens.shape, tokens.dtype
    ((2, 5), dtype('int32'))
    >>> continuation = gen.sample_text(model, params, vocab, "hel", 6, level="char", seed=0, top_p=0.95)
    >>> len(continuation)
    6
    >>> both = gen.sample_text(model, params, vocab, "hel", 6, seed=0, top_p=0.95, include_prompt=True)
    >>> both == "hel" + continuation
    True

Key schedule (so that a plain loop can reproduce a sampled run exactly): with `L = length`,

    keys = jax.random.split(key, L)
    token[:, t] = jax.random.categorical(keys[t], log_probs[:, t], axis=-1)      # t = 0 .. L-1

where `log_probs[:, t]` <logits dtype>[B, V] is `filtered_log_probs(logits_t, temperature=..., top_k=...,
top_p=...)` of the model's logits for the position after the prompt and the first t generated tokens. One
key per step serves the whole batch (rows get independent Gumbel noise from it). `sample_text` uses
`key = jax.random.key(seed)` when given a seed.

Filtering, in this order (the order Hugging Face `generate` applies them; top-p is from Holtzman et al.
2020, "The Curious Case of Neural Text Degeneration"):
  1. temperature: logits / temperature;
  2. top-k: keep exactly the k largest logits; ties at the boundary go to the lower token id (the same
     order `argmax` uses, so `top_k=1` is greedy decoding);
  3. top-p: on the softmax of what top-k kept, keep the smallest set of most probable tokens whose
     cumulative probability is >= p, again ties in favour of the lower id. Token j (in that order) is kept
     iff the probability of the tokens before it is < p, so the most probable token is always kept;
     `top_p=1` keeps every token.
The removed tokens get log-probability -inf and the kept ones are renormalised.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks
from rnnjax.data import text as text_lib
from rnnjax.data.text import LEVELS
from rnnjax.models import RNNModel

__all__ = ["detokenize", "filtered_log_probs", "generate", "generate_with_log_probs", "sample_text"]

# Word-level detokenisation: no space before closing punctuation, none after opening punctuation.
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%…»”’")
_NO_SPACE_AFTER = frozenset("([{«“‘¿¡")


# ------------------------------------------------------------------------------------------- checks


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_length(length) -> int:
    if not _is_int(length):
        raise TypeError(f"length: expected an int >= 1 (tokens to generate), got {length!r}")
    if length < 1:
        raise ValueError(f"length: expected an int >= 1 (tokens to generate), got {length!r}")
    return int(length)


def _check_options(temperature, top_k, top_p, greedy, vocab_size: int) -> None:
    """Validate the decoding options (the rules of the module docstring); raises naming the argument."""
    _checks.check_bool("greedy", greedy)
    if not _is_real(temperature):
        raise TypeError(f"temperature: expected a number > 0, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    if top_k is not None:
        if not _is_int(top_k):
            raise TypeError(
                f"top_k: expected None or an int in [1, {vocab_size}] (the vocabulary size), got {top_k!r}"
            )
        if not 1 <= top_k <= vocab_size:
            raise ValueError(
                f"top_k: expected None or an int in [1, {vocab_size}] (the vocabulary size), got {top_k!r}"
            )
    if top_p is not None:
        if not _is_real(top_p):
            raise TypeError(f"top_p: expected None or a number in (0, 1], got {top_p!r}")
        if not 0 < top_p <= 1:  # also rejects NaN
            raise ValueError(f"top_p: expected None or a number in (0, 1], got {top_p!r}")
    if greedy:
        conflicts = []
        if temperature != 1.0:
            conflicts.append(f"temperature={temperature!r}")
        if top_k is not None:
            conflicts.append(f"top_k={top_k!r}")
        if top_p is not None:
            conflicts.append(f"top_p={top_p!r}")
        if conflicts:
            raise ValueError(
                f"greedy: greedy=True takes the argmax and ignores sampling options, got greedy=True "
                f"with {', '.join(conflicts)}; expected temperature=1.0, top_k=None and top_p=None "
                "(or greedy=False)"
            )


def _check_model(model) -> int:
    """The vocabulary size of a language model: an `RNNModel` over token ids with logits at every step."""
    if not isinstance(model, RNNModel):
        raise TypeError(
            f"model: expected an rnnjax.models.RNNModel (e.g. models.language_model(...)), got "
            f"{type(model).__name__}"
        )
    problems = [
        f"{name}={value!r} (expected {expected})"
        for name, value, expected, ok in (
            ("vocab_size", model.vocab_size, "the number of token ids", model.vocab_size is not None),
            ("pooling", model.pooling, "None: logits at every step", model.pooling is None),
            ("bidirectional", model.bidirectional, "False", not model.bidirectional),
            ("output_size", model.output_size, f"vocab_size={model.vocab_size}",
             model.output_size == model.vocab_size),
        )
        if not ok
    ]  # fmt: skip
    if problems:
        raise ValueError(
            "model: expected a language model (models.language_model: token ids in, next-token logits at "
            "every step), got an RNNModel with " + ", ".join(problems)
        )
    return model.vocab_size


def _unwrap_params(params):
    """Accept both the params tree and the `{"params": ...}` variables dict that `model.init` returns.
    (Whether the tree fits the model is checked by the model itself, when it is applied.)"""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params: expected the model's params dict (model.init(...)['params']), "
            f"got {type(params).__name__}"
        )
    if set(params.keys()) == {"params"}:
        return params["params"]
    return params


def _check_prompt(prompt, vocab_size: int) -> jax.Array:
    arr = np.asarray(prompt) if not isinstance(prompt, jax.Array) else prompt
    if arr.ndim not in (1, 2):
        raise ValueError(f"prompt: expected token ids of shape [P] or [B, P], got shape {arr.shape}")
    if arr.shape[-1] < 1 or arr.size == 0:
        raise ValueError(
            f"prompt: expected at least one token per row (P >= 1, B >= 1), got shape {arr.shape}"
        )
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"prompt: expected integer token ids, got dtype {arr.dtype}")
    if isinstance(arr, jax.core.Tracer):
        raise TypeError("prompt: expected concrete token ids, got a traced array (call generate outside jit)")
    values = np.asarray(arr)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"prompt: expected token ids in [0, {vocab_size}), got values in [{lo}, {hi}]")
    return jnp.asarray(values, jnp.int32)


# ---------------------------------------------------------------------------------------- filtering


def _filter(logits, temperature, top_k, top_p, *, use_top_k: bool, use_top_p: bool):
    """Filtered log-probabilities <float>[..., V]; `temperature`, `top_k`, `top_p` may be traced."""
    scaled = logits / temperature  # (..., V)
    if not (use_top_k or use_top_p):
        return jax.nn.log_softmax(scaled, axis=-1)
    # A stable sort of -logits lists tokens most probable first with ties in id order, as argmax does.
    order = jnp.argsort(-scaled, axis=-1, stable=True)  # (..., V) token id at each rank
    ranked = jnp.take_along_axis(scaled, order, axis=-1)  # (..., V) logits, descending
    rank = jnp.arange(scaled.shape[-1])  # (V,)
    keep = jnp.ones(ranked.shape, bool)
    if use_top_k:
        keep = jnp.broadcast_to(rank < top_k, ranked.shape)
        ranked = jnp.where(keep, ranked, -jnp.inf)
    if use_top_p:
        probs = jax.nn.softmax(ranked, axis=-1)  # renormalised over what top-k kept
        # probability of the tokens ranked above each one: 0 (exactly) for the top token, always kept
        before = jnp.cumsum(probs, axis=-1)
        before = jnp.concatenate([jnp.zeros_like(before[..., :1]), before[..., :-1]], axis=-1)
        # top_p = 1 keeps every token even if the running sum rounds to 1 before the tail.
        keep = keep & ((before < top_p) | (top_p >= 1.0))
    keep = jnp.take_along_axis(keep, jnp.argsort(order, axis=-1), axis=-1)  # back to id order
    return jax.nn.log_softmax(jnp.where(keep, scaled, -jnp.inf), axis=-1)


_filter_jit = jax.jit(_filter, static_argnames=("use_top_k", "use_top_p"))


def filtered_log_probs(logits, *, temperature=1.0, top_k=None, top_p=None) -> jax.Array:
    """The distribution that sampling draws from: log softmax of the temperature-scaled logits after
    top-k and top-p filtering (see the module docstring for the exact rules and tie-breaking).

    Args:
      logits: <float>[..., V] unnormalised log-probabilities.
      temperature: finite number > 0; < 1 sharpens, > 1 flattens.
      top_k: None, or an int in [1, V]: keep the k largest logits.
      top_p: None, or a number in (0, 1]: keep the smallest most-probable set with probability >= p.

    Returns:
      <float>[..., V] log-probabilities, -inf for removed tokens; the kept ones sum to 1 in probability.
    """
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating) or logits.ndim < 1 or logits.shape[-1] < 1:
        raise TypeError(f"logits: expected a floating-point array [..., V], got {logits.dtype}{logits.shape}")
    _check_options(temperature, top_k, top_p, False, logits.shape[-1])
    return _filter_jit(
        logits,
        temperature,
        top_k if top_k is not None else logits.shape[-1],
        top_p if top_p is not None else 1.0,
        use_top_k=top_k is not None,
        use_top_p=top_p is not None,
    )


# --------------------------------------------------------------------------------------- generation


@partial(
    jax.jit,
    static_argnames=("model", "length", "greedy", "use_top_k", "use_top_p", "return_log_probs"),
)
def _generate(
    params,
    prompt,
    key,
    temperature,
    top_k,
    top_p,
    allowed,
    *,
    model,
    length,
    greedy,
    use_top_k,
    use_top_p,
    return_log_probs,
):
    """Compiled once per (model, length, shapes, greedy, which filters are on); the numbers temperature,
    top_k and top_p are traced, so changing them does not recompile."""
    variables = {"params": params}

    def choose(logits, step_key):  # logits (B, V) -> token (B,), log-probs (B, V)
        logits = jnp.where(allowed, logits, -jnp.inf)  # excluded tokens are never chosen
        if greedy:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32), jax.nn.log_softmax(logits, axis=-1)
        log_probs = _filter(logits, temperature, top_k, top_p, use_top_k=use_top_k, use_top_p=use_top_p)
        return jax.random.categorical(step_key, log_probs, axis=-1).astype(jnp.int32), log_probs

    # The prompt is read once: all but its last token in one pass here, the last token as the first
    # step of the scan (so the sampler is compiled once, inside the loop body, and no step is wasted).
    if prompt.shape[1] > 1:
        _, carries = model.apply(variables, prompt[:, :-1])  # one carry per layer
    else:  # nothing before the last token: the zero carries that carries=None stands for
        shapes = jax.eval_shape(lambda: model.apply(variables, prompt)[1])
        carries = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    keys = None if greedy else jax.random.split(key, length)  # the documented key schedule

    def step(state, step_key):
        carries, token = state  # token (B,): the latest token, not yet read by the model
        logits, carries = model.apply(variables, token[:, None], carries)  # (B, 1, V)
        token, log_probs = choose(logits[:, 0], step_key)
        return (carries, token), ((token, log_probs) if return_log_probs else (token, None))

    _, (tokens, log_probs) = jax.lax.scan(step, (carries, prompt[:, -1]), keys, length=length)
    tokens = tokens.T  # (L, B) -> (B, L)
    if return_log_probs:
        log_probs = jnp.moveaxis(log_probs, 0, 1)  # (L, B, V) -> (B, L, V)
    return tokens, log_probs


def _run(
    model,
    params,
    prompt,
    length,
    return_log_probs,
    *,
    key,
    temperature=1.0,
    top_k=None,
    top_p=None,
    greedy=False,
    exclude=(),
):
    """`generate`, plus the log-probabilities if `return_log_probs`; options default as in `generate`."""
    vocab_size = _check_model(model)
    length = _check_length(length)
    _check_options(temperature, top_k, top_p, greedy, vocab_size)
    allowed = _allowed(exclude, vocab_size)
    prompt = _check_prompt(prompt, vocab_size)
    if not greedy:
        if key is None:
            raise ValueError(
                "key: expected a JAX PRNG key for sampling (e.g. jax.random.key(0)), got None; "
                "pass key=... or greedy=True"
            )
        _checks.check_key("key", key)
    squeeze = prompt.ndim == 1
    tokens, log_probs = _generate(
        _unwrap_params(params),
        prompt[None] if squeeze else prompt,
        None if greedy else key,
        float(temperature),
        int(top_k) if top_k is not None else vocab_size,
        float(top_p) if top_p is not None else 1.0,
        allowed,
        model=model,
        length=length,
        greedy=bool(greedy),
        use_top_k=top_k is not None,
        use_top_p=top_p is not None,
        return_log_probs=return_log_probs,
    )
    if squeeze:
        tokens = tokens[0]
        log_probs = None if log_probs is None else log_probs[0]
    return tokens, log_probs


def _allowed(exclude, vocab_size: int) -> jax.Array:
    """<bool>[V]: False at the ids of `exclude` (distinct ints in [0, V), not all of them)."""
    ids = list(exclude) if isinstance(exclude, list | tuple | set | frozenset | range) else None
    if ids is None or not all(_is_int(i) and 0 <= i < vocab_size for i in ids):
        raise ValueError(f"exclude: expected token ids in [0, {vocab_size}), got {exclude!r}")
    if len(set(ids)) >= vocab_size:
        raise ValueError(f"exclude: expected at least one of the {vocab_size} tokens left, got all of them")
    return jnp.ones(vocab_size, bool).at[jnp.asarray(sorted(set(ids)), jnp.int32)].set(False)


def generate(
    model: RNNModel,
    params,
    prompt,
    length: int,
    *,
    key=None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    exclude=(),
) -> jax.Array:
    """Continue each prompt by `length` tokens, greedily or by sampling (see the module docstring for the
    filters and the key schedule).

    Args:
      model: the language model, an `RNNModel` from `models.language_model` (its `vocab_size` V bounds
        the ids).
      params: its params (`variables["params"]`; the `{"params": ...}` dict itself is accepted too).
      prompt: <int>[P] or <int>[B, P] token ids in [0, V), P >= 1; rows are independent prompts.
      length: L >= 1 tokens to generate.
      key: a JAX PRNG key (`jax.random.key(seed)`), required unless `greedy`; unused when greedy.
      temperature: finite number > 0 dividing the logits before filtering.
      top_k: None, or an int in [1, V].
      top_p: None, or a number in (0, 1].
      greedy: take the argmax at every step (ties: lowest id) instead of sampling; then `temperature`,
        `top_k` and `top_p` must stay at their defaults.
      exclude: token ids never generated (e.g. the unknown token): their logits are set to -inf before
        the argmax or the filters.

    Returns:
      The generated tokens only (not the prompt): <int32>[L] for a 1-D prompt, <int32>[B, L] for a 2-D one.
    """
    options = dict(key=key, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, exclude=exclude)
    return _run(model, params, prompt, length, False, **options)[0]


def generate_with_log_probs(
    model: RNNModel, params, prompt, length: int, *, key=None, **options
) -> tuple[jax.Array, jax.Array]:
    """`generate`, plus the distribution each token was drawn from.

    Args: as `generate` (`options`: temperature, top_k, top_p, greedy, exclude).

    Returns:
      `(tokens, log_probs)`: tokens <int32>[B, L] (or [L] for a 1-D prompt) as `generate` returns them
      for the same arguments, and log_probs <float>[B, L, V] (or [L, V]) where `log_probs[b, t]` is
      `filtered_log_probs` of the logits that chose `tokens[b, t]` (-inf for filtered-out tokens). For
      greedy decoding it is the model's unfiltered log-softmax, whose argmax is the token.
    """
    return _run(model, params, prompt, length, True, key=key, **options)


# ------------------------------------------------------------------------------------------- text


def detokenize(tokens: Sequence[str], level: str) -> str:
    """Join tokens into text: characters with "", words with " " except before closing punctuation
    (`. , ; : ! ? ) ] } % … » ” ’`) and after opening punctuation (`( [ { « “ ‘ ¿ ¡`).

    Args:
      tokens: the tokens, e.g. `Vocabulary.decode(ids)`.
      level: "char" or "word".

    Returns:
      The text.
    """
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {LEVELS}, got {level!r}")
    if isinstance(tokens, str) or not isinstance(tokens, Iterable):
        raise TypeError(f"tokens: expected a sequence of str tokens, got {tokens!r}")
    tokens = list(tokens)
    bad = next((i for i, tok in enumerate(tokens) if not isinstance(tok, str)), None)
    if bad is not None:
        raise TypeError(
            f"tokens: expected a sequence of str, got {type(tokens[bad]).__name__} at index {bad}"
        )
    if level == "char":
        return "".join(tokens)
    pieces = []
    for i, tok in enumerate(tokens):
        if i > 0 and tok not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            pieces.append(" ")
        pieces.append(tok)
    return "".join(pieces)


def sample_text(
    model: RNNModel,
    params,
    vocab: text_lib.Vocabulary,
    prompt: str,
    length: int,
    *,
    level: str = "char",
    lowercase: bool = False,
    strip_punctuation: bool = False,
    collapse_whitespace: bool = False,
    key=None,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    include_prompt: bool = False,
    allow_unk: bool = False,
) -> str:
    """Continue a text prompt by `length` tokens and return the continuation as text.

    The prompt goes through the training pipeline: `text.tokenize(prompt, level, lowercase=...,
    strip_punctuation=..., collapse_whitespace=...)`, then `vocab.encode`. Prompt tokens not
    in the vocabulary are replaced by its unknown token with a warning naming them (a vocabulary without
    one raises a ValueError instead). Then `generate(model, params, ids, length, ...)`, `vocab.decode` and
    `detokenize(tokens, level)`.

    Args:
      model, params: the trained language model and its params; `len(vocab)` must equal `model.vocab_size`.
      vocab: the `Vocabulary` the model was trained with.
      prompt: the text to continue (at least one token after normalisation).
      length: tokens (characters or words) to generate, >= 1.
      level: "char" or "word", as in training.
      lowercase, strip_punctuation, collapse_whitespace: the normalisation used in training.
      key, seed: the randomness for sampling: a JAX PRNG key, or an int seed meaning
        `jax.random.key(seed)` (one of them, not both; neither is needed when `greedy`).
      temperature, top_k, top_p, greedy: as in `generate`.
      include_prompt: also return the (normalised) prompt in front, joined with the same rules, e.g. for
        `print(sample_text(..., include_prompt=True))`.
      allow_unk: let the model generate the vocabulary's unknown token (by default it is left out, so the
        text holds only real tokens; the prompt may still contain it).

    Returns:
      The continuation only (default), or the normalised prompt followed by it with `include_prompt`.
    """
    if not isinstance(vocab, text_lib.Vocabulary):
        raise TypeError(f"vocab: expected an rnnjax.data.text.Vocabulary, got {type(vocab).__name__}")
    for name, value in (
        ("lowercase", lowercase),
        ("strip_punctuation", strip_punctuation),
        ("collapse_whitespace", collapse_whitespace),
        ("include_prompt", include_prompt),
        ("allow_unk", allow_unk),
    ):
        _checks.check_bool(name, value)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt: expected a str, got {type(prompt).__name__}")
    vocab_size = _check_model(model)
    if len(vocab) != vocab_size:
        raise ValueError(
            f"vocab: expected {vocab_size} tokens (model.vocab_size), got a vocabulary of {len(vocab)}"
        )
    if key is not None and seed is not None:
        raise ValueError(f"seed: give key or seed, not both; got key={key!r} and seed={seed!r}")
    if seed is not None:
        if not _is_int(seed):
            raise TypeError(f"seed: expected an int, got {seed!r}")
        key = jax.random.key(int(seed))

    options = dict(
        lowercase=lowercase, strip_punctuation=strip_punctuation, collapse_whitespace=collapse_whitespace
    )
    tokens = text_lib.tokenize(prompt, level, **options)  # the training pipeline
    if not tokens:
        normalized = text_lib.normalize(prompt, **options)
        raise ValueError(
            f"prompt: expected at least one {level} token, got {prompt!r} (normalised to {normalized!r})"
        )
    unknown = list(dict.fromkeys(tok for tok in tokens if tok not in vocab))  # unique, in order
    if unknown:
        if vocab.unk is None:
            raise ValueError(
                f"prompt: tokens {unknown!r} are not in the vocabulary, which has no unknown token; "
                f"expected only its {len(vocab)} tokens"
            )
        warnings.warn(
            f"prompt: tokens {unknown!r} are not in the vocabulary; they are read as {vocab.unk!r}",
            stacklevel=2,
        )
    ids = vocab.encode(tokens)  # unknown tokens -> unk id 0
    exclude = () if allow_unk or vocab.unk_id is None else (vocab.unk_id,)
    out = generate(model, params, ids, length, key=key, temperature=temperature, top_k=top_k, top_p=top_p,
                   greedy=greedy, exclude=exclude)  # fmt: skip
    continuation = vocab.decode(np.asarray(out))
    return detokenize(tokens + continuation if include_prompt else continuation, level)
