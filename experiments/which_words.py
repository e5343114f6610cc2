"""Which words does each cell listen to? SimpleRNN, LSTM and GRU classifiers tested on the tutorial claim
that an LSTM or GRU "ignores all other words except the opinion words" and that a plain RNN forgets the
start of a long comment (issue #21).

    python -m experiments.which_words              # 3 cells x 5 seeds; time and results: docs/which_words.md
    python -m experiments.which_words --quick --run smoke          # a smoke run of seconds
    python -m experiments.which_words --plot-only results/which_words/<run>   # redraw from metrics.json

Data (`rnnjax.data.labelled.opinion_reviews`, lexicon in `rnnjax.data.opinions`): texts of `--min-len` to
`--max-len` word tokens of neutral filler in which ONE opinion phrase decides the label, at the start,
in the middle or at the end, plain, negated ("not satisfied") or in a contrast ("fast , but ... a complete
disappointment"), balanced. Per seed s: `--n-train` training texts (data seed s), 300 validation texts
(seed 1000 + s) and `--n-test` test texts (seed 2000 + s).

Models: `rnnjax.models.classifier` (embedding `--embed-size`, one layer, the last valid step, dense head)
with the same parameter budget: each cell's hidden size gives the recurrent layer about as many
parameters as an LSTM with H = `--budget-hidden` (`hidden_for_budget`). Trained by
`rnnjax.train.classify.train` (Adam, lr `--learning-rate`, clipping at 1, `--epochs` epochs of batches of
64), then, per cell and seed:
- test accuracy by the position of the deciding phrase, and by construction;
- integrated gradients of the predicted class's logit (`rnnjax.attribution.attribute`, zero-embedding
  baseline, adaptive Gauss–Legendre) on the first `--n-attribute` test texts: the share of Σ_t |IG_t| on the
  deciding phrase and whether the single most attributed token is in it, over the texts whose IG is
  complete within 1 % (how many they are is reported);
- the same on the six tutorial comments (`rnnjax.data.opinions.TUTORIAL`; only the first is the
  tutorial's own text, the other five are reconstructions around its bold phrases);
- the gradient story: the mean share of |IG| at each distance from the end (lag), beside the median
  log10 ‖∂f/∂c_t‖ at that lag, c_t the carry after token t (h_t; [h_t, c_t] for the LSTM), by
  `rnnjax.diagnostics.model_hidden_state_grads` (same model, same texts).

Writes `results/which_words/<run>/`: config.json, metrics.json, summary.md (the k/N statements and the
tables), positions.png (accuracy and phrase share by position), tutorial.png (the six comments shaded by
IG), lag.png (the gradient story), all drawn from metrics.json (`experiments.which_words_plots`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import which_words_plots
from rnnjax import attribution, cells, diagnostics
from rnnjax.command import cli as _cli
from rnnjax.data import labelled, opinions
from rnnjax.data import text as text_lib
from rnnjax.train import classify

EXPERIMENT = "which_words"
QUICK = dict(
    cells=("simple", "lstm"), seeds=1, budget_hidden=8, embed_size=8, n_train=240, n_test=256, n_attribute=24,
    min_len=25, max_len=28, epochs=1, ig_max_steps=attribution.IG_STEPS,
)  # fmt: skip
N_VALID = (
    300  # validation texts per seed; with n_test >= 256 both are evaluated in batches of 256 (one compile)
)
# The k/N statements of summary.md: a position is "failed" at or below FAIL_ACCURACY (chance is 0.5) and
# "solved" at or above SOLVED_ACCURACY; the deciding phrase "dominates" a text's attribution when it holds
# at least DOMINANT_SHARE of Σ|IG|, and "all the attribution" means at least ALL_SHARE of it.
FAIL_ACCURACY, SOLVED_ACCURACY = 0.6, 0.95
DOMINANT_SHARE, ALL_SHARE = 0.5, 0.9


@dataclasses.dataclass(frozen=True)
class Config:
    """Three cells x `seeds` seeds on opinion-phrase texts. Expected run time on a 2-core CPU: see
    docs/which_words.md (measured); --quick well under 30 s."""

    cells: tuple[str, ...] = ("simple", "lstm", "gru")  # cell kinds (rnnjax.cells.KINDS)
    seeds: int = 5  # seeds 0 .. seeds - 1: data, initial weights, batch order
    budget_hidden: int = 24  # parameter budget: the recurrent parameters of an LSTM with this hidden size
    embed_size: int = 32
    n_train: int = 4000  # training texts per seed
    n_test: int = 600  # test texts per seed (balanced positions and constructions)
    n_attribute: int = 300  # test texts whose integrated gradients are computed
    min_len: int = 40  # shortest text, in tokens (at least opinions.min_length())
    max_len: int = 60  # longest text, in tokens (the padded length T)
    epochs: int = 10
    learning_rate: float = 3e-3
    ig_max_steps: int = attribution.IG_MAX_STEPS  # the most quadrature points of a text's IG
    run: str | None = None  # results/which_words/<run>; default: a timestamp
    overwrite: bool = False  # replace an existing run of the same --run
    quick: bool = False  # smoke run: simple and LSTM, 1 seed, 240 short texts, 1 epoch, no IG refinement
    progress: bool = True  # progress bars
    plot_only: Path | None = None  # redraw the figures of an existing run folder from its metrics.json


def check_config(cfg: Config) -> Config:
    """Refuses bad settings by name; returns `cfg` with the QUICK settings if asked."""
    if not cfg.cells or not set(cfg.cells) <= set(cells.KINDS):
        raise ValueError(f"cells: expected cell kinds from {tuple(cells.KINDS)}, got {list(cfg.cells)}")
    cfg = _cli.quick(cfg, QUICK) if cfg.quick else cfg
    _cli.check_ints(cfg, "seeds", "budget_hidden", "embed_size", "n_train", "n_test", "n_attribute", "epochs")
    _cli.check_ints(cfg, "n_train", "n_test", minimum=6)
    if cfg.n_attribute > cfg.n_test:
        raise ValueError(f"n_attribute: expected at most n_test={cfg.n_test}, got {cfg.n_attribute}")
    if not opinions.min_length() <= cfg.min_len <= cfg.max_len:
        raise ValueError(
            f"min_len, max_len: expected {opinions.min_length()} <= min_len <= max_len, got {cfg.min_len} "
            f"and {cfg.max_len}"
        )
    if not 0 < cfg.learning_rate < 1:
        raise ValueError(f"learning_rate: expected a number in (0, 1), got {cfg.learning_rate!r}")
    _cli.check_ints(cfg, "ig_max_steps", minimum=attribution.IG_STEPS)
    return cfg


@functools.cache
def recurrent_parameters(kind: str, hidden: int, inputs: int) -> int:
    """How many parameters the recurrent layer of `kind` with `hidden` units reading `inputs` holds."""
    shapes = jax.eval_shape(lambda k: cells.make(kind, hidden).init(k, inputs), jax.random.key(0))
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))


@functools.cache
def hidden_for_budget(kind: str, budget_hidden: int, inputs: int) -> tuple[int, int]:
    """(H, its parameter count): the hidden size of `kind` whose recurrent layer comes closest to that of
    an LSTM with `budget_hidden` units (both reading `inputs` features); the count grows with H, so the
    two sizes around the budget are found by bisection."""
    budget, lo, hi = recurrent_parameters("lstm", budget_hidden, inputs), 1, 16 * budget_hidden
    while hi - lo > 1:  # count(lo) < budget <= count(hi), or the ends
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if recurrent_parameters(kind, mid, inputs) < budget else (lo, mid)
    best = min((lo, hi), key=lambda h: abs(recurrent_parameters(kind, h, inputs) - budget))
    return best, recurrent_parameters(kind, best, inputs)


def make_data(cfg: Config, seed: int) -> tuple[classify.Data, opinions.Opinions]:
    """The seed's train / valid / test sets as `classify.Data` (vocabulary of the training texts, every
    split padded to T = max_len) and the test set's `Opinions` (where each label comes from)."""
    sets = [
        opinions.opinion_reviews(n, min_len=cfg.min_len, max_len=cfg.max_len, seed=offset + seed)
        for n, offset in ((cfg.n_train, 0), (N_VALID, 1000), (cfg.n_test, 2000))
    ]
    token_lists = [labelled.tokenize(s.texts, level="word", lowercase=True) for s in sets]
    vocab = text_lib.Vocabulary.build(tok for toks in token_lists[0] for tok in toks)
    label_set = labelled.LabelSet.build(list(opinions.LABELS))
    splits = []
    for s, toks in zip(sets, token_lists):
        tokens, lengths = labelled.pad_sequences([vocab.encode(t) for t in toks], cfg.max_len)
        splits.append(classify.Examples(tokens, lengths, label_set.encode(s.labels)))
    rows = tuple(np.arange(len(s.texts)) for s in sets)
    return classify.Data(*splits, vocab, label_set, "opinion_reviews", sets[0].texts, rows), sets[2]


def by_group(values, groups, names) -> dict[str, float | None]:
    """The mean of `values` <[n]> in each group (None where a group has no finite value)."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    out = {}
    for name in names:
        v = values[(groups == name) & np.isfinite(values)]
        out[name] = float(v.mean()) if v.size else None
    return out


def spans_mask(spans, shape) -> np.ndarray:
    """<bool>[B, T]: True on the tokens [start, stop) of each row's span."""
    t = np.arange(shape[1])
    return (t >= np.asarray(spans)[:, :1]) & (t < np.asarray(spans)[:, 1:])


def per_lag(values, lengths, T: int, reduce) -> list[float | None]:
    """`reduce` over texts of `values` <[B, T]> at each lag 0 .. T - 1 (distance from the last token)."""
    lengths = np.asarray(lengths)
    out = []
    for lag in range(T):
        rows = np.flatnonzero(lengths > lag)
        v = values[rows, lengths[rows] - 1 - lag]
        v = v[np.isfinite(v)]
        out.append(float(reduce(v)) if v.size else None)
    return out


def study(cfg: Config, kind: str, seed: int, tutorial) -> dict:
    """Train one cell on one seed's data and measure it (see the module docstring)."""
    data, test = make_data(cfg, seed)
    hidden, params_count = hidden_for_budget(kind, cfg.budget_hidden, cfg.embed_size)
    cc = classify.ClassifyConfig(
        hidden_size=hidden, embed_size=cfg.embed_size, epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        seed=seed, max_len=cfg.max_len, log_every=50,
    )  # fmt: skip
    result = classify.train(cc, data, kind, progress=cfg.progress, desc=f"{kind:>6} seed {seed}")
    model, params = result.model, result.params
    ev = classify.evaluate(model, params, data.test)
    correct = ev.predictions == data.test.labels
    # IG of the first n_attribute test texts and the six tutorial comments, in one batch (one compilation)
    texts, labels, bold, _ = tutorial
    t_tokens, t_lengths = labelled.pad_sequences(
        [data.vocab.encode(t) for t in labelled.tokenize(texts, level="word", lowercase=True)], cfg.max_len
    )
    n = cfg.n_attribute
    tokens = np.concatenate([data.test.tokens[:n], t_tokens])
    lengths = np.concatenate([data.test.lengths[:n], t_lengths])
    att = attribution.attribute(model, params, tokens, lengths, max_steps=cfg.ig_max_steps)
    ig, complete = att.integrated_gradients, att.completeness_error <= attribution.COMPLETENESS_TOLERANCE
    phrase = spans_mask(np.concatenate([test.spans[:n], bold]), tokens.shape)
    share = attribution.mass_share(ig, phrase)
    top_in_phrase = phrase[np.arange(len(tokens)), np.argmax(np.abs(ig), axis=1)]  # the most attributed token
    decoy = attribution.mass_share(ig[:n], spans_mask(test.decoys[:n], (n, cfg.max_len)))
    share_ok = np.where(complete, share, np.nan)
    # the gradient story: |IG| share and log10 ‖∂f/∂c_t‖ (c_t the carry) by lag, over the same test texts
    ig_share = np.abs(ig[:n]) / np.abs(ig[:n]).sum(1, keepdims=True)

    def carry_grads(params, tokens, lengths, target):  # one compiled program instead of op by op
        logit = lambda out: jnp.sum(jnp.take_along_axis(out, target[:, None], 1))  # noqa: E731
        return diagnostics.model_hidden_state_grads(model, params, tokens, logit, lengths=lengths)

    (layer,) = jax.jit(carry_grads)(params, tokens[:n], lengths[:n], att.target[:n])
    # the whole carry (h; and c for the LSTM, whose memory runs through c)
    grad_c = diagnostics.log10_norm(np.concatenate([np.asarray(f, np.float64) for f in layer], axis=-1))
    positions = np.asarray(test.positions)
    tutorial_probs = classify.softmax(att.logits[n:])
    names = data.label_set.labels
    return dict(
        cell=kind, seed=seed, hidden_size=hidden, recurrent_parameters=params_count,
        train_seconds=result.history["train_seconds"], test_accuracy=ev.accuracy,
        accuracy_by_position=by_group(correct, test.positions, opinions.POSITIONS),
        accuracy_by_construction=by_group(correct, test.constructions, opinions.CONSTRUCTIONS),
        ig=dict(
            texts=n, complete=int(complete[:n].sum()), max_points=int(att.points.max()),
            refined=int((att.points[:n] > attribution.IG_STEPS).sum()),  # one panel missed the 1/10 tolerance
            median_error=float(np.nanmedian(att.completeness_error[:n])),
        ),
        phrase_share_by_position=by_group(share_ok[:n], positions[:n], opinions.POSITIONS),
        top_token_in_phrase_by_position=by_group(
            np.where(complete[:n], top_in_phrase[:n], np.nan), positions[:n], opinions.POSITIONS
        ),
        decoy_share=float(np.nanmean(np.where(complete[:n], decoy, np.nan))) if complete[:n].any() else None,
        lag=dict(
            ig_share=per_lag(ig_share, lengths[:n], cfg.max_len, np.mean),
            log10_grad_carry=per_lag(grad_c, lengths[:n], cfg.max_len, np.median),
        ),
        tutorial=[
            dict(
                prediction=names[int(att.target[n + i])], probability=float(tutorial_probs[i].max()),
                correct=names[int(att.target[n + i])] == labels[i], phrase_share=float(share[n + i]),
                complete=bool(complete[n + i]), top_token_in_phrase=bool(top_in_phrase[n + i]),
                tokens=[data.vocab.tokens[t] for t in t_tokens[i, : t_lengths[i]]],
                integrated_gradients=ig[n + i, : t_lengths[i]].tolist(),
            )
            for i in range(len(texts))
        ],
    )  # fmt: skip


def main(cfg: Config) -> dict:
    """Train and measure every cell on every seed; write the run folder; returns the metrics (and "out")."""
    if cfg.plot_only is not None:
        return dict(out=_cli.redraw(cfg.plot_only, EXPERIMENT, which_words_plots.plot_all, ("runs",)))
    cfg = check_config(cfg)
    out = _cli.new_run(EXPERIMENT, cfg)
    start = time.perf_counter()
    texts, labels, spans, verbatim = opinions.tutorial_comments()
    tutorial = (texts, labels, spans, verbatim)
    runs = [study(cfg, kind, seed, tutorial) for kind in cfg.cells for seed in range(cfg.seeds)]
    metrics = dict(
        config=cfg, cells=list(cfg.cells), seeds=cfg.seeds, backend=jax.default_backend(),
        tutorial=[dict(text=t, label=y, span=s.tolist(), verbatim=v) for t, y, s, v in zip(*tutorial)],
        thresholds=dict(fail=FAIL_ACCURACY, solved=SOLVED_ACCURACY, dominant=DOMINANT_SHARE, all=ALL_SHARE),
        runs=runs, wall_seconds=time.perf_counter() - start,
    )  # fmt: skip
    _cli.finish_run(out, "which_words", metrics, which_words_plots.plot_all, which_words_plots.summary)
    saved = json.loads((out / "metrics.json").read_text())  # what the terminal says is what the file holds
    print("\n".join(which_words_plots.findings(saved)))
    print(
        f"wrote {out} in {metrics['wall_seconds']:.0f} s (summary.md, positions.png, tutorial.png, lag.png)"
    )
    return saved | dict(out=out)


if __name__ == "__main__":
    _cli.run(Config, main)
