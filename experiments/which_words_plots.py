"""Figures, findings and summary.md of `experiments.which_words`, drawn from a run's saved metrics.json.

`plot_all(run)` draws positions.png (accuracy and share of |IG| on the deciding phrase by its position,
one dot per seed), tutorial.png (the six tutorial comments, each word shaded by its integrated gradient
under seed 0's model of every cell, bold phrase in bold) and lag.png (mean share of |IG| and median
log10 ‖∂f/∂c_t‖ of the carry against the distance from the end). `findings(metrics)` gives the few lines
a run prints first (k/N statements), `summary(metrics)` the whole summary.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.classify_explain import layout, shade_words
from rnnjax.command import plots as _plots
from rnnjax.command.plots import plt
from rnnjax.command.runs import read_json
from rnnjax.data import opinions

__all__ = ["findings", "plot_all", "summary"]


def _runs(metrics: dict, cell: str) -> list[dict]:
    return [r for r in metrics["runs"] if r["cell"] == cell]


def _median(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else float("nan")


def _mean_share(run: dict) -> float:
    """A run's share of |IG| on the deciding phrase, averaged over the positions (complete texts); NaN
    where no text's IG was complete."""
    values = [v for v in run["phrase_share_by_position"].values() if v is not None]
    return float(np.mean(values)) if values else float("nan")


def claims(metrics: dict, cell: str) -> dict:
    """The k/N counts of one cell's seeds (thresholds from metrics.json)."""
    t, runs = metrics["thresholds"], _runs(metrics, cell)
    acc = [r["accuracy_by_position"] for r in runs]
    return dict(
        n=len(runs),
        fails_at_start=sum(a["start"] <= t["fail"] for a in acc),
        solves_every_position=sum(min(a.values()) >= t["solved"] for a in acc),
        phrase_dominates=sum(_mean_share(r) >= t["dominant"] for r in runs),
        phrase_takes_all=sum(_mean_share(r) >= t["all"] for r in runs),
        tutorial_all_correct=sum(all(c["correct"] for c in r["tutorial"]) for r in runs),
    )


def findings(metrics: dict) -> list[str]:
    """What a run found, in a few lines: accuracy by position, the phrase's share of the attribution and
    the tutorial comments, each as k/N seeds."""
    t, lines = metrics["thresholds"], []
    for cell in metrics["cells"]:
        runs, c = _runs(metrics, cell), claims(metrics, cell)
        acc = " / ".join(
            f"{_median(r['accuracy_by_position'][p] for r in runs):.2f}" for p in opinions.POSITIONS
        )
        share, top = (
            " / ".join(f"{_median(r[key][p] for r in runs):.2f}" for p in opinions.POSITIONS)
            for key in ("phrase_share_by_position", "top_token_in_phrase_by_position")
        )
        n, bold = c["n"], _median(x["phrase_share"] for r in runs for x in r["tutorial"])
        lines.append(
            f"{cell}: accuracy start/middle/end {acc} (median of {n} seeds); fails at the start "
            f"(<= {t['fail']}) on {c['fails_at_start']}/{n}, solves every position (>= {t['solved']}) "
            f"on {c['solves_every_position']}/{n}. Share of |IG| on the deciding phrase {share}; the "
            f"phrase holds >= {t['dominant']:.0%} of it on {c['phrase_dominates']}/{n} seeds, >= "
            f"{t['all']:.0%} ('ignores all other words') on {c['phrase_takes_all']}/{n}; its top token is "
            f"in the phrase in a share {top} of the texts. Tutorial "
            f"comments: all 6 right on {c['tutorial_all_correct']}/{n}, median bold-phrase share {bold:.2f}."
        )
    return lines


def summary(metrics: dict) -> str:
    """summary.md: the findings, the protocol, a table per seed and the tutorial table."""
    cfg, t = metrics["config"], metrics["thresholds"]
    text = [*findings(metrics), ""]
    text.append(
        f"Protocol: {cfg['n_train']} training texts of {cfg['min_len']}-{cfg['max_len']} tokens per seed, "
        f"{cfg['epochs']} epochs, lr {cfg['learning_rate']}, embed {cfg['embed_size']}, parameter budget of "
        f"an LSTM with H={cfg['budget_hidden']}; {cfg['n_test']} test texts, IG on the first "
        f"{cfg['n_attribute']} (shares over the texts whose IG is complete within 1 %); backend "
        f"{metrics['backend']}; wall time {metrics['wall_seconds']:.0f} s. Fail: accuracy <= {t['fail']}; "
        f"solved: >= {t['solved']}."
    )
    text += [
        "",
        "| cell | seed | H | params | test acc | acc start / middle / end | acc plain / negation / "
        "contrast | IG complete (refined) | phrase share start / middle / end | top token in phrase | "
        "decoy share | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda d: " / ".join("n/a" if v is None else f"{v:.2f}" for v in d.values())  # noqa: E731
    for r in metrics["runs"]:
        decoy = "n/a" if r["decoy_share"] is None else f"{r['decoy_share']:.2f}"
        text.append(
            f"| {r['cell']} | {r['seed']} | {r['hidden_size']} | {r['recurrent_parameters']} | "
            f"{r['test_accuracy']:.3f} | {fmt(r['accuracy_by_position'])} | "
            f"{fmt(r['accuracy_by_construction'])} | {r['ig']['complete']}/{r['ig']['texts']} "
            f"({r['ig']['refined']}) | "
            f"{fmt(r['phrase_share_by_position'])} | {fmt(r['top_token_in_phrase_by_position'])} | {decoy} | "
            f"{r['train_seconds']:.0f} |"
        )
    text += ["", "Tutorial comments (only comment 1 is the tutorial's text; 2-6 are reconstructions):", ""]
    text.append(
        "| # | expected | bold phrase | "
        + " | ".join(f"{c}: right k/N, bold share" for c in metrics["cells"])
        + " |"
    )
    text.append("|---" * (3 + len(metrics["cells"])) + "|")
    for i, comment in enumerate(metrics["tutorial"]):
        a, b = comment["span"]
        tokens = metrics["runs"][0]["tutorial"][i]["tokens"]
        cols = []
        for cell in metrics["cells"]:
            rows = [r["tutorial"][i] for r in _runs(metrics, cell)]
            share = _median(x["phrase_share"] for x in rows)
            cols.append(f"{sum(x['correct'] for x in rows)}/{len(rows)}, {share:.2f}")
        mark = "" if comment["verbatim"] else " (reconstructed)"
        text.append(
            f"| {i + 1}{mark} | {comment['label']} | {' '.join(tokens[a:b])} | " + " | ".join(cols) + " |"
        )
    return "\n".join(text)


# ------------------------------------------------------------------------------------------- figures


def plot_positions(metrics: dict, path: Path) -> None:
    """positions.png: accuracy (top) and the deciding phrase's share of |IG| (bottom) by position."""
    names, seeds = metrics["cells"], metrics["seeds"]
    fig, axes = _plots.panels(2, len(names), 3.0, 2.6, sharey="row")
    x = np.arange(len(opinions.POSITIONS))
    for j, cell in enumerate(names):
        runs = _runs(metrics, cell)
        for i, (key, label) in enumerate(
            (
                ("accuracy_by_position", "test accuracy (fraction)"),
                ("phrase_share_by_position", "share of |IG| on the phrase"),
            )
        ):
            ax = axes[i, j]
            for k, r in enumerate(runs):
                values = _plots.nan_if_none([r[key][p] for p in opinions.POSITIONS])
                ax.plot(x + 0.06 * (k - (len(runs) - 1) / 2), values, "o", ms=4, color="C0", alpha=0.6,
                        label="one seed" if k == 0 else None)  # fmt: skip
            median = [_median(r[key][p] for r in runs) for p in opinions.POSITIONS]
            ax.plot(x, median, "_", ms=18, mew=2, color="black", label=f"median of {seeds} seeds")
            if i == 0:
                ax.axhline(0.5, color="gray", ls="--", lw=1, label="chance")
            ax.set_xticks(x, opinions.POSITIONS)
            ax.set(ylim=(0, 1.05), title=cell if i == 0 else None)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(label)
        axes[1, j].set_xlabel("position of the deciding phrase")
    _plots.legend_below(
        fig, axes, "IG: integrated gradients of the predicted class's logit; shares over texts whose IG is "
        "complete within 1 %",
    )  # fmt: skip
    _plots.title_and_caption(fig, "Does each cell read the deciding phrase wherever it is, and only it?")
    _plots.save(fig, path)


def plot_tutorial(metrics: dict, path: Path) -> None:
    """tutorial.png: the six comments (rows) under seed 0's model of every cell (columns)."""
    names, comments = metrics["cells"], metrics["tutorial"]
    first = {cell: _runs(metrics, cell)[0] for cell in names}
    heights = [
        1 + max(p[0] for p in layout(first[names[0]]["tutorial"][i]["tokens"])) for i in range(len(comments))
    ]
    fig, axes = plt.subplots(
        len(comments), len(names), figsize=(4.2 * len(names), 1.6 + sum(0.22 * h + 0.45 for h in heights)),
        gridspec_kw=dict(height_ratios=heights), squeeze=False, layout="constrained",
    )  # fmt: skip
    for i, comment in enumerate(comments):
        a, b = comment["span"]
        for j, cell in enumerate(names):
            got = first[cell]["tutorial"][i]
            bold = [a <= t < b for t in range(len(got["tokens"]))]
            shade_words(axes[i, j], got["tokens"], got["integrated_gradients"], signed=True, bold=bold)
            verdict = "right" if got["correct"] else "WRONG"
            axes[i, j].set_title(
                f"{i + 1}{'' if comment['verbatim'] else ' (reconstr.)'}: {cell} says {got['prediction']} "
                f"({verdict}); bold share {got['phrase_share']:.2f}",
                fontsize=8.5,
            )
    _plots.title_and_caption(
        fig,
        "The tutorial's comments: where each model's integrated gradients go (bold: the tutorial's words)",
        "seed 0 of each cell; red raises the predicted class's logit, blue lowers it, each panel scaled by "
        "its largest |IG|; comment 1 is the tutorial's text, 2-6 are reconstructions around its bold phrases",
    )
    _plots.save(fig, path)


def plot_lag(metrics: dict, path: Path) -> None:
    """lag.png: mean share of |IG| (left) and median log10 ‖∂f/∂h_t‖ (right) against lag."""
    fig, axes = _plots.panels(1, 2, 4.6, 3.2)
    left, right = axes[0]
    for j, cell in enumerate(metrics["cells"]):
        runs = _runs(metrics, cell)
        for ax, key in ((left, "ig_share"), (right, "log10_grad_carry")):
            curves = np.array([_plots.nan_if_none(r["lag"][key]) for r in runs])
            with np.errstate(all="ignore"):
                ax.plot(np.nanmedian(curves, axis=0), color=f"C{j}", label=cell)
    left.set(xlabel="tokens from the end (lag)", ylabel="mean share of |IG| at the lag", yscale="log",
             title="where the attribution sits")  # fmt: skip
    right.set(xlabel="tokens from the end (lag)", ylabel="median log10 ‖∂f/∂c_t‖ (carry c_t)",
              title="how much gradient reaches the lag")  # fmt: skip
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _plots.legend_below(
        fig, [left, right], f"test texts with the phrase anywhere; median over {metrics['seeds']} seeds; "
        "f: the predicted class's logit; c_t: the carry after token t (h_t; [h_t, c_t] for the LSTM)",
    )  # fmt: skip
    _plots.title_and_caption(
        fig, "The gradient story: attribution mass and gradient norm against the distance from the end"
    )
    _plots.save(fig, path)


def plot_all(run: Path) -> None:
    """Every figure of a run folder, from its metrics.json."""
    metrics = read_json(Path(run) / "metrics.json")
    plot_positions(metrics, Path(run) / "positions.png")
    plot_tutorial(metrics, Path(run) / "tutorial.png")
    plot_lag(metrics, Path(run) / "lag.png")
