"""`python -m experiments.classify explain`: which words a trained classifier listens to.

    python -m experiments.classify explain --run NAME --text "the screen is great" "a complete disappointment"
    python -m experiments.classify explain --run NAME --cell gru --text "..." --top 3 --baseline padding

For each text: the run's prediction and probability, then its `--top` tokens by |integrated gradients| of
the predicted class's logit (`rnnjax.attribution.attribute`, from the zero embedding, or from the
embedding of the padding id 0 with `--baseline padding`), signed: + pushes toward the predicted class.
The texts are read as in training and as `predict` reads them (the run's level, lowercasing, vocabulary
and `max_len`); a token outside the vocabulary is read as `<unk>` and shown in brackets, "[word]".

Writes into the run folder (or `--out`): explain_<cell>.json (tokens, logits, every attribution, the
integrated-gradients completeness gap and the gate traces), explain_<cell>.png (each word shaded by its
attribution, one row per text, one panel per method: gradient norm ‖∂f/∂e_t‖, gradient × input and
integrated gradients, each scaled by its largest |value| in the text) and, for cells with gates,
explain_<cell>_gates.png (every gate's mean activation per token, one panel per text and layer
direction). Existing files are replaced only with `--overwrite`.

Refused with one line `error: ...`: a run that is not a classifier run, an empty text, a text whose tokens
are all unknown to the run's vocabulary (nothing would be left to attribute).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from rnnjax import attribution, cells, results
from rnnjax.command import cli as _cli
from rnnjax.command import plots as _plots
from rnnjax.command.plots import plt
from rnnjax.data import labelled
from rnnjax.train import classify

EXPERIMENT = "classify"
METHOD_TITLES = {
    "gradient_norm": "gradient norm ‖∂f/∂e‖",
    "gradient_x_input": "gradient × input",
    "integrated_gradients": "integrated gradients",
}
CHARS_PER_LINE = 44  # words per panel line, in monospace characters (a 4.2-inch panel at 9 pt)


@dataclasses.dataclass(frozen=True)
class Explain:
    """Which words decide a trained run's predictions (a few seconds): each text's prediction and top
    tokens by integrated gradients, a PNG of every word shaded by its attribution and one of the gates."""

    run: str  # the trained run: results/classify/<run>
    text: tuple[str, ...] = ()  # texts to explain, one argument each
    cell: str | None = None  # the trained cell to use; default: the run's best by validation accuracy
    top: int = 5  # tokens listed per text, by |integrated gradients|
    steps: int = attribution.IG_STEPS  # Gauss–Legendre points per panel of the integrated-gradients integral
    baseline: Literal["zero", "padding"] = "zero"  # IG baseline: zero embedding, or the padding id's (0)
    out: Path | None = None  # folder of the written files; default: the run folder
    overwrite: bool = False  # replace existing explain_<cell>* files
    quick: bool = False  # accepted as by every command (explaining is already quick)
    progress: bool = True  # accepted as by every command (no progress bar)

    def __post_init__(self):
        results.check_run_name(self.run)
        if not self.text:
            raise ValueError("text: expected at least one --text TEXT to explain, got none")
        blank = [i + 1 for i, t in enumerate(self.text) if not t.strip()]
        if blank:
            raise ValueError(f"text: text(s) {blank} are empty; expected words to explain")
        if self.cell is not None and self.cell not in cells.KINDS:
            raise ValueError(f"cell: expected one of the cell kinds {tuple(cells.KINDS)}, got {self.cell!r}")
        _cli.check_ints(self, "top", "steps")


def encode(loaded: classify.Loaded, texts) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """The texts as the run reads them: (the tokens read, a token the vocabulary lacks shown in brackets,
    "[word]", since it is read as `<unk>`), token ids <int32>[N, T] and lengths <int32>[N]; refuses a
    text with no known token."""
    cfg, vocab = loaded.config, loaded.vocab
    token_lists = labelled.tokenize(texts, level=cfg.level, lowercase=cfg.lowercase)
    empty = [i + 1 for i, toks in enumerate(token_lists) if not toks]
    if empty:
        raise ValueError(
            f"text: text(s) {empty} have no tokens at level {cfg.level!r}; expected words to explain"
        )
    ids = [vocab.encode(toks) for toks in token_lists]
    T = cfg.max_len if cfg.max_len is not None else max(len(x) for x in ids)
    tokens, lengths = labelled.pad_sequences(ids, T, truncate=cfg.truncate)
    shown = []
    for i, n in enumerate(lengths.tolist()):
        if np.all(tokens[i, :n] == vocab.unk_id):
            raise ValueError(
                f"text: every token of text {i + 1} ({texts[i][:60]!r}) is unknown to the run's vocabulary "
                f"({len(vocab)} {cfg.level}s); expected at least one word the classifier was trained on"
            )
        kept = token_lists[i][:n] if cfg.truncate == "post" else token_lists[i][len(token_lists[i]) - n :]
        shown.append(
            [tok if t != vocab.unk_id else f"[{tok}]" for tok, t in zip(kept, tokens[i, :n].tolist())]
        )
    return shown, tokens, lengths


def explanation(loaded: classify.Loaded, texts, *, steps: int, baseline: str) -> dict:
    """JSON-able attributions and gate traces of `texts` under the loaded classifier."""
    shown, tokens, lengths = encode(loaded, texts)
    model, params = loaded.model, loaded.params
    att = attribution.attribute(
        model, params, tokens, lengths, steps=steps, baseline=0 if baseline == "padding" else "zero"
    )
    traces = attribution.gate_traces(model, params, tokens, lengths)
    probs = classify.softmax(att.logits)
    names = loaded.label_set.labels
    rows = []
    for i, toks in enumerate(shown):
        n = len(toks)
        rows.append(
            dict(
                text=texts[i],
                tokens=toks,
                prediction=names[int(att.target[i])],
                probability=float(probs[i, att.target[i]]),
                logits=att.logits[i].tolist(),
                baseline_logit=float(att.baseline_logit[i]),
                completeness_error=float(att.completeness_error[i]),
                points=int(att.points[i]),
                **{m: getattr(att, m)[i, :n].tolist() for m in attribution.METHODS},
                gates=[
                    {d: {g: v[i, :n].tolist() for g, v in gates.items()} for d, gates in layer.items()}
                    for layer in traces
                ],
            )
        )
    return dict(
        cell=loaded.cell, step=loaded.step, labels=list(names), steps=steps, baseline=att.baseline, texts=rows
    )


def top_tokens(row: dict, k: int) -> list[tuple[str, float]]:
    """The `k` tokens of a text with the largest |integrated gradients|, largest first."""
    values = np.asarray(row["integrated_gradients"])
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    return [(row["tokens"][t], float(values[t])) for t in order]


def report(saved: dict, k: int) -> list[str]:
    """The lines printed: each text's prediction and its top tokens, then the completeness check."""
    lines = []
    for i, row in enumerate(saved["texts"], 1):
        lines.append(f"{i}. {row['prediction']} (p {row['probability']:.3f}): {row['text']}")
        tops = ", ".join(f"{tok} {v:+.3g}" for tok, v in top_tokens(row, k))
        lines.append(f"   top words by integrated gradients (+ toward {row['prediction']}): {tops}")
    errors = [row["completeness_error"] for row in saved["texts"]]  # None: f(e) = f(e') exactly
    worst = max((e for e in errors if e is not None), default=0.0)
    verdict = "within" if worst <= attribution.COMPLETENESS_TOLERANCE else "NOT within"
    points = max(row["points"] for row in saved["texts"])
    lines.append(
        f"integrated gradients (baseline {saved['baseline']}, at most {points} points per text) sum to the "
        f"logit's change from the baseline {verdict} {attribution.COMPLETENESS_TOLERANCE:.0%} (worst text: "
        f"{worst:.2e})"
    )
    return lines


# ------------------------------------------------------------------------------------------- figures


def layout(tokens: list[str], width: int = CHARS_PER_LINE) -> list[tuple[int, int]]:
    """(line, column) of every token when words are set left to right, one space apart, in lines of
    `width` monospace characters (a longer word gets a line of its own)."""
    line, col, places = 0, 0, []
    for tok in tokens:
        if col > 0 and col + len(tok) > width:
            line, col = line + 1, 0
        places.append((line, col))
        col += len(tok) + 1
    return places


def shade_words(
    ax, tokens: list[str], values, *, signed: bool, width: int = CHARS_PER_LINE, bold=None
) -> None:
    """Set `tokens` in `ax` (axis hidden), each on a box coloured by its value scaled by the largest |value|:
    red positive, blue negative (signed) or darker larger (unsigned); text black or white for contrast,
    in bold where `bold` (<bool>[len(tokens)], optional) holds."""
    values = np.asarray(values, np.float64)
    scale = np.max(np.abs(values)) if values.size and np.max(np.abs(values)) > 0 else 1.0
    cmap = plt.get_cmap("RdBu_r" if signed else "Purples")
    places = layout(tokens, width)
    lines = 1 + max((p[0] for p in places), default=0)
    ax.set(xlim=(0, width), ylim=(lines, 0))
    ax.axis("off")
    bold = [False] * len(tokens) if bold is None else bold
    for tok, (line, col), v, heavy in zip(tokens, places, values, bold):
        color = cmap(0.5 + 0.5 * v / scale if signed else 0.85 * abs(v) / scale)
        ax.text(
            col, line + 0.5, tok, family="monospace", fontsize=9, va="center", ha="left",
            color=_plots.text_color_on(color), bbox=dict(facecolor=color, edgecolor="none", pad=1.0),
            fontweight="bold" if heavy else "normal",
        )  # fmt: skip


def plot_words(saved: dict, path: Path) -> None:
    """explain_<cell>.png: one row per text, one panel per method, each word shaded by its attribution."""
    rows = saved["texts"]
    heights = [1 + max(p[0] for p in layout(r["tokens"])) for r in rows]
    fig, axes = plt.subplots(
        len(rows), len(attribution.METHODS), figsize=(4.2 * 3, 1.3 + sum(0.22 * h + 0.45 for h in heights)),
        gridspec_kw=dict(height_ratios=heights), squeeze=False, layout="constrained",
    )  # fmt: skip
    for i, row in enumerate(rows):
        for j, method in enumerate(attribution.METHODS):
            shade_words(axes[i, j], row["tokens"], row[method], signed=method != "gradient_norm")
            axes[i, j].set_title(
                f"text {i + 1}: {row['prediction']} ({row['probability']:.0%}) · {METHOD_TITLES[method]}",
                fontsize=9,
            )
    _plots.title_and_caption(
        fig,
        f"Which words the {saved['cell']} classifier listens to",
        f"f = the predicted class's logit; red: raises f, blue: lowers it (gradient norm: darker = larger); "
        f"each panel scaled by its largest |value|; integrated gradients from the {saved['baseline']} "
        f"baseline; [word]: not in the vocabulary, read as <unk>",
    )
    _plots.save(fig, path)


def plot_gates(saved: dict, path: Path) -> bool:
    """explain_<cell>_gates.png: every gate's mean activation per token, one panel per text and layer
    direction; False (nothing drawn) for a cell without gates."""
    rows = saved["texts"]
    panels = [(k, d) for k, layer in enumerate(rows[0]["gates"]) for d, g in layer.items() if g]
    if not panels:
        return False
    longest = max(len(r["tokens"]) for r in rows)
    width = max(4.0, 0.16 * longest + 1.2)
    fig, axes = _plots.panels(len(rows), len(panels), width, 2.6, sharey=True)
    for i, row in enumerate(rows):
        for j, (k, direction) in enumerate(panels):
            ax = axes[i, j]
            for n, (gate, values) in enumerate(row["gates"][k][direction].items()):
                ax.plot(values, "o-", ms=3, lw=1, color=f"C{n}", label=f"gate {gate}")
            ax.set_xticks(range(len(row["tokens"])), row["tokens"], rotation=90, fontsize=8)
            ax.set(ylim=(0, 1), title=f"text {i + 1}, layer {k + 1} {direction}")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel("mean gate activation")
    _plots.legend_below(
        fig, axes, f"{saved['cell']}: each gate's activation at each token, averaged over the hidden units"
    )
    _plots.title_and_caption(fig, f"What the {saved['cell']}'s gates do at each word")
    _plots.save(fig, path)
    return True


# ------------------------------------------------------------------------------------------------ main


def explain(args: Explain, choose_cell: Callable[[Path], tuple[str, str]]) -> dict:
    """Explain `args.text` with the run's classifier (`choose_cell(run) -> (cell, why)` picks the cell when
    `--cell` is not given); prints the findings, writes the files; returns the saved record and "files"."""
    run = _cli.trained_run(EXPERIMENT, args.run)
    cell, why = (args.cell, "chosen by --cell") if args.cell else choose_cell(run)
    if not (run / cell / "checkpoints").is_dir():
        raise ValueError(
            f"cell: expected a trained cell of {str(run)!r} (a <cell>/checkpoints/ folder), got {cell!r}"
        )
    loaded = classify.load(run / cell)
    encode(loaded, list(args.text))  # bad texts are refused before anything is computed or checked
    out = Path(args.out) if args.out is not None else run
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: expected a folder, got the file {str(out)!r}")
    files = [out / f"explain_{cell}{suffix}" for suffix in (".json", ".png", "_gates.png")]
    existing = [str(f) for f in files if f.exists()]
    if existing and not args.overwrite:
        raise ValueError(f"out: {existing[0]!r} exists; pass --overwrite to replace it (or choose --out)")
    saved = explanation(loaded, list(args.text), steps=args.steps, baseline=args.baseline)
    print(f"run {args.run}, cell {cell} ({why}), checkpoint step {loaded.step}")
    print("\n".join(report(saved, args.top)))
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        f.unlink(missing_ok=True)
    results.write_json(files[0], saved)
    saved = json.loads(files[0].read_text())  # the figures show what the file holds
    plot_words(saved, files[1])
    written = files[:2] + (files[2:] if plot_gates(saved, files[2]) else [])
    print(f"wrote {', '.join(str(f) for f in written)}")
    return dict(saved, files=written)
