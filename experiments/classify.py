"""Many-to-one sequence classification: embedding -> LSTM / GRU / Elman -> last valid step (or mean over
valid steps) -> dense -> class logits, on a labelled CSV file or on a synthetic sentiment set whose label
is decided by one word near the start of a long padded text (`rnnjax.train.classify`).

    python -m experiments.classify                          # synthetic set, LSTM vs GRU vs simple
    python -m experiments.classify --synthetic-min-len 50   # harder: every gap of at least 45 words
    python -m experiments.classify --quick --run smoke      # seconds; results/classify/smoke/
    python -m experiments.classify --csv reviews.csv --text-column review --label-column sentiment
    python -m experiments.classify --csv data.csv --level char --max-len 400 --truncate post
    python -m experiments.classify --run NAME --resume      # continue a stopped run from its checkpoints
    python -m experiments.classify --plot-only results/classify/<run>   # figures again from saved metrics
    python -m experiments.classify predict --run NAME --text "what a great film" "so dull"
    python -m experiments.classify predict --run NAME --csv new.csv --id-column id
        # writes results/classify/NAME/predict_<cell>_new.csv
    python -m experiments.classify explain --run NAME --text "what a great film"   # which words decide
        # (experiments/classify_explain.py): top tokens, explain_<cell>.png, explain_<cell>_gates.png

`--no-progress` hides the progress bars; bad input prints one line `error: ...` (`--debug`: traceback).
An existing `--run` is refused unless `--overwrite` (replace it) or `--resume` (continue it: the run's
saved settings are the defaults, and only the number of epochs or steps and the log, checkpoint and
padding-check settings may change). Run times and measured results: README ("Text: language models,
generation and classification").

`predict` labels new text with a trained run's model (the checkpoint holds the params, the vocabulary
and the labels; the texts are read as in training). It first names the run, the cell and the checkpoint
step it used (a run of several cells uses the one with the best validation accuracy unless `--cell`),
and warns in one line when texts have more than `--unknown-warning` (50%) of their tokens outside the
run's vocabulary: those are read as `<unk>`, so their labels are guesses. `--text` prints each text's
class, probability and share of unknown tokens; `--csv FILE` labels every row of the run's text column
(`--text-column`) and writes `predict_<cell>_<FILE stem>.csv` into the run folder (or `--out`), with the
cell, the unknown share and, with `--id-column`, the file's own id column (accuracy and the confusion
matrix too when the file has the run's label column).

Data. With `--csv`, the text and label columns are read with `rnnjax.data.labelled.read_csv`. Without it,
`labelled.synthetic_sentiment` makes 12000 texts of 10-100 neutral filler words (uniform length) with one
sentiment word ("good", "awful", ...) in the first 5 positions; the label is its polarity, and texts are
right-padded to T=100. With `--pooling last` the network must carry that word across up to 100 steps of
filler to the last valid step. Either way the examples are split 80/10/10 into train/valid/test by a
seeded shuffle and the vocabulary is built on the training rows (see `rnnjax.train.classify.prepare`).
Texts are lowercased before tokenizing, at either level ("Great" and "great" are one token: case seldom
decides a class, and a capitalised first word would otherwise often be `<unk>`); `--no-lowercase` keeps it.

Training (`rnnjax.train.classify.train`, over `rnnjax.train.fit`): Adam (lr 3e-3, gradients clipped to
global norm 1) on the mean softmax cross-entropy of shuffled minibatches of 64 for 5 epochs, validation
accuracy after every epoch. Then, with the last params, on the test split: accuracy, accuracy by length
quarter, the confusion matrix, every prediction, and the padding check (the test set padded to 2x and 4x
its length with random ids must give the same predictions, the logits differing by rounding at most).

Training prints the test accuracy of each cell against the test set's own majority-class share, a data
summary (rows per split, class counts, vocabulary size, share of valid/test tokens unknown to the
vocabulary) and each cell's test confusion matrix. It writes `results/classify/<run>/`: config.json,
vocab.json, labels.json, metrics.json (the data's facts and each cell's final results), curves.png (train
loss and valid accuracy against step), summary.md, and for each cell `<cell>/`: metrics.jsonl (training
and validation records), checkpoints/ (orbax, with config, vocabulary and labels:
`rnnjax.train.classify.load`), predictions.csv (the test rows), confusion.json, confusion.png.
summary.md shows each cell's test confusion matrix and the padding check's table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Annotated, Union

import matplotlib
import numpy as np
import tyro

from experiments import classify_explain
from rnnjax import cells, results
from rnnjax.command import cli as _cli
from rnnjax.command import plots as _plots
from rnnjax.command import runs
from rnnjax.data import labelled
from rnnjax.train import classify
from rnnjax.train.classify import ClassifyConfig
from rnnjax.train.loop import MetricsLog

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPERIMENT = "classify"
# --quick: seconds instead of minutes (a CSV keeps its data and trains one epoch).
QUICK = dict(hidden_size=16, embed_size=16, padding_factors=(2,))
QUICK_SYNTHETIC = dict(synthetic_n=600, synthetic_seq_len=30, synthetic_min_len=5, epochs=2)
METRICS_KEYS = ("config", "data", "cells")  # what the figures and `predict` read from metrics.json
# predict warns about texts with more than this share of their tokens unknown to the run's vocabulary.
UNKNOWN_WARNING = 0.5


@dataclasses.dataclass(frozen=True)
class Config:
    """Train and test classifiers (`predict --help`: label new text with a trained run). Expected run time
    on a 2-core CPU: the synthetic set with all three cells about 75-90 s; --quick about 10 s."""

    classify: Annotated[ClassifyConfig, tyro.conf.arg(name="")] = ClassifyConfig()
    run: str | None = None  # results/classify/<run>; default: a UTC timestamp
    overwrite: bool = False  # replace an existing run of the same --run (without it, it is refused)
    quick: bool = False  # smoke run: 600 texts of 5-30 words, 2 epochs (1 epoch on a CSV), H=16
    progress: bool = True  # progress bars
    resume: bool = False  # continue the cells of an existing --run from their latest checkpoints
    plot_only: Path | None = None  # redraw the figures of an existing run folder from its saved metrics


@dataclasses.dataclass(frozen=True)
class Predict:
    """Label new text with a trained run's classifier (a few seconds). Prints the run, cell and checkpoint
    step used, and each text's share of tokens unknown to the run's vocabulary (read as <unk>: a text
    mostly unknown gets a guessed label, and a warning says how many such texts there are)."""

    run: str  # the trained run: results/classify/<run>
    text: tuple[str, ...] = ()  # texts to label, one argument each
    csv: Path | None = None  # or a CSV file with a header row: label every row and write a CSV (see --out)
    text_column: str | None = None  # the CSV's text column; default: the run's --text-column
    id_column: str | None = None  # a column of the CSV (e.g. its ids) copied as the first output column
    out: Path | None = None
    """The CSV written with --csv; default results/classify/<run>/predict_<cell>_<csv file stem>.csv.
    Columns: [--id-column], cell, row (1 = the first data row), length (tokens read), unknown_share (of
    those, the share not in the vocabulary), label and correct (if the CSV has the run's label column),
    prediction, p_<class> (probability of each class), text."""
    cell: str | None = None  # the trained cell to use; default: the run's best by validation accuracy
    unknown_warning: float = UNKNOWN_WARNING  # warn about texts with more than this share of unknown tokens
    overwrite: bool = False  # replace an existing --out file
    quick: bool = False  # accepted as by every command (predicting is already quick)
    progress: bool = True  # accepted as by every command (no progress bar)

    def __post_init__(self):
        results.check_run_name(self.run)
        if bool(self.text) == (self.csv is not None):
            raise ValueError(
                f"text, csv: expected --text TEXT... or --csv FILE (one of them), got "
                f"{'both' if self.text else 'neither'}"
            )
        for name in ("id_column", "out"):
            if getattr(self, name) is not None and self.csv is None:
                raise ValueError(f"{name}: expected --csv FILE with it, got --text")
        share = self.unknown_warning
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
            raise ValueError(f"unknown_warning: expected a share in [0, 1], got {share!r}")
        if self.cell is not None and self.cell not in cells.KINDS:
            raise ValueError(f"cell: expected one of the cell kinds {tuple(cells.KINDS)}, got {self.cell!r}")


def command(argv: list[str]):
    """The command-line type: `Config` (train), or `Predict` after the word `predict`; with `--resume
    --run NAME`, the run's saved settings are the defaults (only the flags given change them)."""
    if argv[:1] in (["predict"], ["explain"]):
        return Annotated[
            Union[  # noqa: UP007 (tyro reads the Annotated members of a typing.Union)
                Annotated[Config, tyro.conf.subcommand("train")],
                Annotated[Predict, tyro.conf.subcommand("predict")],
                Annotated[classify_explain.Explain, tyro.conf.subcommand("explain")],
            ],
            tyro.conf.OmitArgPrefixes,
        ]
    saved = _cli.saved_config(argv, EXPERIMENT, keys=("classify",), build=config_from_json, required=True)
    return Config if saved is None else (Config, saved)


def config_from_json(saved: dict) -> Config:
    """The `Config` of a run's config.json, checked (`classify.check_config`): a value of another type or
    out of range is refused (ValueError, TypeError naming the field)."""
    if not isinstance(saved["classify"], dict):
        raise TypeError(f"classify: expected a JSON object of the run's settings, got {saved['classify']!r}")
    cc = classify.config_from_json(saved["classify"])
    classify.check_config(cc)
    names = {f.name for f in dataclasses.fields(Config)} - {"classify", "plot_only"}
    return Config(classify=cc, **{k: v for k, v in saved.items() if k in names})


def final_results(
    cfg: ClassifyConfig, data: classify.Data, result: classify.TrainResult, folder: Path
) -> dict:
    """Evaluate a trained cell on the test split, write its predictions.csv and confusion.json to
    `folder`, and return its final record (validation figures read back from its metrics.jsonl)."""
    model, params = result.model, result.params
    ev = classify.evaluate(model, params, data.test)
    classify.write_predictions(folder / "predictions.csv", data, ev)
    counts = classify.confusion_matrix(data.test.labels, ev.predictions, len(data.label_set))
    confusion = dict(
        labels=data.label_set.labels, rows="true class", columns="predicted class", counts=counts
    )
    results.write_json(folder / "confusion.json", dict(confusion, accuracy=ev.accuracy))
    valid = [r for r in MetricsLog(folder / "metrics.jsonl").read() if r.get("split") == "valid"]
    last = valid[-1] if valid else dict(loss=math.nan, accuracy=math.nan)
    return dict(
        cell=folder.name,
        valid_accuracy=last["accuracy"],
        valid_loss=last["loss"],
        best_valid_accuracy=max((r["accuracy"] for r in valid), default=math.nan),
        test_accuracy=ev.accuracy,
        test_loss=ev.loss,
        padding=classify.padding_check(model, params, data.test, cfg.padding_factors, seed=cfg.seed),
        accuracy_by_length=classify.accuracy_by_length(data.test.lengths, ev.predictions == data.test.labels),
        steps=result.fit.step,
        epochs=result.history["epochs"],
        status=result.fit.status,
        compile_seconds=result.history["compile_seconds"],
        train_seconds=result.history["train_seconds"],
    )


# ------------------------------------------------------------------------------------------- reporting


def describe(data: classify.Data) -> dict:
    """JSON-able facts about `data`: sizes, classes and their counts per split, padded length, the share
    of valid and test tokens unknown to the vocabulary, and each held-out split's majority-class
    baseline, the class most frequent in that split itself ("majority_accuracy": valid)."""
    C, names = len(data.label_set), data.label_set.labels
    splits = dict(train=data.train, valid=data.valid, test=data.test)
    majority = {k: classify.majority_baseline(splits[k].labels, C) for k in ("valid", "test")}
    unknown = {
        k: int(labelled.unknown_counts(splits[k].tokens, splits[k].lengths, data.vocab.unk_id).sum())
        / int(splits[k].lengths.sum())
        for k in ("valid", "test")
    }
    return dict(
        source=data.source,
        n_train=len(data.train.labels),
        n_valid=len(data.valid.labels),
        n_test=len(data.test.labels),
        vocab_size=len(data.vocab),
        num_classes=C,
        labels=list(names),
        class_counts={k: np.bincount(v.labels, minlength=C).tolist() for k, v in splits.items()},
        T=int(data.train.tokens.shape[1]),
        mean_length=float(np.mean(np.concatenate([v.lengths for v in splits.values()]))),
        unknown_share=unknown,
        majority_class=names[majority["valid"][0]],
        majority_accuracy=majority["valid"][1],
        test_majority_class=names[majority["test"][0]],
        test_majority_accuracy=majority["test"][1],
    )


def plot_curves(run: Path, metrics: dict) -> None:
    """curves.png: training loss and validation accuracy against step, one line per cell."""
    data = metrics["data"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for i, cell in enumerate(f["cell"] for f in metrics["cells"]):
        records = MetricsLog(run / cell / "metrics.jsonl").read()
        tr = [r for r in records if r.get("split") == "train" and r.get("loss") is not None]
        va = [r for r in records if r.get("split") == "valid"]
        ax_loss.plot([r["step"] for r in tr], [r["loss"] for r in tr], color=f"C{i}", lw=1, label=cell)
        ax_acc.plot(
            [r["step"] for r in va], [r["accuracy"] for r in va], "o-", color=f"C{i}", ms=3, label=cell
        )
    ax_loss.set(
        xlabel="training step", ylabel="cross-entropy (nats, log scale)", yscale="log", title="train loss"
    )
    ax_acc.axhline(data["majority_accuracy"], color="gray", ls="--", lw=1, label="majority class")
    ax_acc.set(
        xlabel="training step", ylabel="accuracy (fraction)", ylim=(0, 1.02), title="validation accuracy"
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _plots.title_and_caption(
        fig,
        "Which cell learns the task: training loss and validation accuracy per step",
        f"data: {data['source']}, sequences of up to {data['T']} tokens, pooling "
        f"{metrics['config']['pooling']}; dashed: always answering the most frequent class",
    )
    _plots.save(fig, run / "curves.png")


def plot_confusion(folder: Path) -> None:
    """confusion.png: the test confusion matrix of one cell, shaded by the share of each true class."""
    saved = read_confusion(folder)
    counts, labels = np.asarray(saved["counts"]), saved["labels"]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.5 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        color = _plots.text_color_on(image.to_rgba(share[i, j]))  # legible on light and dark blue
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"{folder.name}: test accuracy {saved['accuracy']:.4f}",
    )
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    _plots.save(fig, folder / "confusion.png")


def plot_all(run: Path) -> None:
    """Every figure of a run folder, from its saved metrics."""
    metrics = read_metrics(run)
    with runs.from_file(run / "metrics.json"):  # the figures' values, as saved
        plot_curves(run, metrics)
    for final in metrics["cells"]:
        with runs.from_file(run / final["cell"] / "confusion.json"):
            plot_confusion(run / final["cell"])


def read_metrics(run: Path) -> dict:
    """A run's metrics.json (`runs.read_json`), with its "cells" checked: one record per trained cell,
    each naming a cell kind (a folder of the run)."""
    path = run / "metrics.json"
    metrics = runs.read_json(path, METRICS_KEYS, what=f"the metrics.json of a {EXPERIMENT} run")
    finals = metrics["cells"]
    with runs.from_file(path):
        if not isinstance(finals, list) or not all(isinstance(f, dict) for f in finals):
            raise TypeError(f"cells: expected a list of records, one per cell, got {finals!r}")
        for f in finals:
            if f.get("cell") not in cells.KINDS:
                raise ValueError(f"cells: expected records of the cells {tuple(cells.KINDS)}, got {f!r}")
    return metrics


def read_confusion(folder: Path) -> dict:
    """A cell's confusion.json (`runs.read_json`): "labels", "counts" and "accuracy"."""
    keys = ("labels", "counts", "accuracy")
    return runs.read_json(folder / "confusion.json", keys, what=f"the confusion.json of a {EXPERIMENT} cell")


def summary_table(finals: list[dict]) -> str:
    """Markdown table: one row per cell with validation and test accuracy and the padding check."""
    factors = "/x".join(str(p["factor"]) for p in (finals[0]["padding"][1:] if finals else []))
    lines = [
        "| cell | valid acc | best valid acc | test acc | test acc, longest quarter | test acc at padding x"
        + factors
        + " | max abs logit diff | preds changed | steps | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in finals:
        pads, longest = f["padding"][1:], f["accuracy_by_length"][-1]
        lines.append(
            f"| {f['cell']} | {f['valid_accuracy']:.4f} | {f['best_valid_accuracy']:.4f} | "
            f"{f['test_accuracy']:.4f} | "
            f"{longest['accuracy']:.4f} (L {longest['min_length']}-{longest['max_length']}) | "
            + "/".join(f"{p['accuracy']:.4f}" for p in pads)
            + f" | {max((p['max_abs_logit_diff'] for p in pads), default=0.0):.2g} | "
            f"{sum(p['predictions_changed'] for p in pads)} | {f['steps']} | {f['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def confusion_table(labels: list[str], counts) -> str:
    """A Markdown table of confusion counts <[C, C]> (rows: true class, columns: predicted class)."""
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {y} | " + " | ".join(str(int(n)) for n in row) + " |" for y, row in zip(labels, counts)]
    return "\n".join(lines)


def write_summary(run: Path, metrics: dict) -> str:
    """summary.md of a run folder; returns its table."""
    cfg, data = metrics["config"], metrics["data"]
    table = summary_table(metrics["cells"])
    text = [
        f"# classify: {data['source']}",
        "",
        f"{data['n_train']} train / {data['n_valid']} valid / {data['n_test']} test examples, "
        f"{data['num_classes']} classes {data['labels']}, vocabulary {data['vocab_size']} ({cfg['level']}s), "
        f"padded length T={data['T']} (mean length {data['mean_length']:.1f}), pooling={cfg['pooling']}, "
        f"H={cfg['hidden_size']}, embed={cfg['embed_size']}, {cfg['optimizer']} lr={cfg['learning_rate']}, "
        f"clip={cfg['clip_norm']}, seed={cfg['seed']}.",
        f"Majority-class baseline (each split's own most frequent class): valid "
        f"{data['majority_accuracy']:.4f} ({data['majority_class']!r}), "
        f"test {data['test_majority_accuracy']:.4f} ({data['test_majority_class']!r}).",
        "",
        data_line(data, cfg) + ".",
        "",
        f"Padding check: test set re-padded with random ids to {cfg['padding_factors']}x T; "
        "accuracy and predictions must not change.",
        "",
        table,
        "",
        f"Wall time {metrics['wall_seconds']:.1f} s (data, compile, training and evaluation of all cells).",
    ]
    for final in metrics["cells"]:
        saved = read_confusion(run / final["cell"])
        text += ["", f"Test confusion matrix, {final['cell']} (rows: true class, columns: predicted):", ""]
        text.append(confusion_table(saved["labels"], saved["counts"]))
    results.atomic_write_text(run / "summary.md", "\n".join(text) + "\n")
    return table


def data_line(data: dict, cfg: dict) -> str:
    """One line: rows per split, class counts, vocabulary and the share of unknown held-out tokens."""
    counts = data["class_counts"]
    classes = ", ".join(
        f"{y} {'/'.join(str(counts[k][j]) for k in ('train', 'valid', 'test'))}"
        for j, y in enumerate(data["labels"])
    )
    unknown = data["unknown_share"]
    return (
        f"data: {data['n_train']} train / {data['n_valid']} valid / {data['n_test']} test rows; "
        f"classes (train/valid/test) {classes}; vocabulary {data['vocab_size']} {cfg['level']}s of the "
        f"training rows{', lowercased' if cfg['lowercase'] else ''}; tokens unknown to it: "
        f"valid {unknown['valid']:.1%}, test {unknown['test']:.1%}"
    )


def aligned_confusion(labels: list[str], counts, indent: str = "  ") -> list[str]:
    """A confusion matrix <[C, C]> as aligned text lines (rows: true class, columns: predicted class)."""
    width = max(max(map(len, labels)), len(str(int(np.max(counts)))))
    lines = [indent + " " * width + "".join(f"  {y:>{width}}" for y in labels)]
    lines += [
        indent + f"{y:<{width}}" + "".join(f"  {int(n):>{width}}" for n in row)
        for y, row in zip(labels, counts)
    ]
    return lines


def terminal_report(run: Path, metrics: dict) -> str:
    """What training prints: test accuracy per cell against the test set's majority class, the data in
    one line, each cell's test confusion matrix and the padding check's verdict (its table: summary.md)."""
    data, finals = metrics["data"], metrics["cells"]
    accuracy = ", ".join(f"{f['cell']} {f['test_accuracy']:.4f}" for f in finals)
    below = [f["cell"] for f in finals if not f["test_accuracy"] > data["test_majority_accuracy"]]
    verdict = f"not beaten by {', '.join(below)}" if below else "every cell beats it"
    lines = [
        f"test accuracy ({data['n_test']} test rows): {accuracy}; always answering the test set's most "
        f"frequent class {data['test_majority_class']!r} scores {data['test_majority_accuracy']:.4f}: "
        + verdict,
        data_line(data, metrics["config"]),
    ]
    for final in finals:
        saved = read_confusion(run / final["cell"])
        lines.append(f"{final['cell']} test confusion matrix (rows: true class, columns: predicted):")
        lines += aligned_confusion(saved["labels"], saved["counts"])
    changed = [
        f"{f['cell']} {p['predictions_changed']} at {p['factor']}x"
        for f in finals
        for p in f["padding"][1:]
        if p["predictions_changed"]
    ]
    factors = "/".join(f"{p['factor']}x" for p in (finals[0]["padding"][1:] if finals else []))
    lines.append(
        f"padding check ({factors or 'none'}): "
        + (f"predictions CHANGED: {', '.join(changed)}" if changed else "no prediction changed")
        + " (table in summary.md)"
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main


def train(cfg: Config) -> dict:
    """Run the experiment of `cfg`; returns {"out": folder, "data": ..., "finals": [one dict per cell]}."""
    if cfg.plot_only is not None:
        plot_all(_cli.saved_run(cfg.plot_only, EXPERIMENT, keys={"metrics.json": METRICS_KEYS}))
        print(f"redrew the figures of {cfg.plot_only}")
        return {"out": Path(cfg.plot_only)}
    cc = cfg.classify
    if cfg.quick and not cfg.resume:  # a resumed run keeps its saved (quick) settings
        cc = _cli.quick(cc, QUICK | (QUICK_SYNTHETIC if cc.csv is None else dict(epochs=1)))
    wall_start = time.perf_counter()
    data = classify.prepare(cc)
    cells = classify.cells_for(cc)
    out = _cli.run_folder(EXPERIMENT, cfg, resume=cfg.resume)
    if cfg.resume:  # every check before anything is written: a refused resume changes nothing
        if not (out / "config.json").is_file():
            raise ValueError(f"resume: {str(out)!r} holds no config.json of a classify run to continue")
        for cell in cells:
            classify.check_resumable(cc, data, cell, out / cell)
    results.write_json(
        out / "config.json", dataclasses.replace(cfg, classify=cc, resume=False, overwrite=False)
    )
    data.vocab.save(out / "vocab.json")
    results.atomic_write_text(out / "labels.json", data.label_set.to_json() + "\n")
    finals = []
    for cell in cells:
        result = classify.train(
            cc, data, cell, run=out / cell, resume=cfg.resume, progress=cfg.progress, desc=f"{cell:>6}"
        )
        finals.append(final_results(cc, data, result, out / cell))
    metrics = dict(
        config=cc, data=describe(data), cells=finals, wall_seconds=time.perf_counter() - wall_start
    )
    results.write_json(out / "metrics.json", metrics)
    metrics = json.loads((out / "metrics.json").read_text())  # plots and summary read the saved metrics
    plot_all(out)
    write_summary(out, metrics)
    print(terminal_report(out, metrics))
    print(
        f"wrote {out} in {metrics['wall_seconds']:.1f} s (summary.md, curves.png, per cell: predictions.csv)"
    )
    diverged = [f["cell"] for f in finals if f["status"] == "diverged"]
    if diverged:  # the results are written, but a diverged training is a failed run (exit status 1)
        raise _cli.RunFailed(
            f"training diverged for {', '.join(diverged)} (a NaN or infinite loss or gradient; see "
            f"{str(out / 'summary.md')!r}); try a lower --learning-rate or --clip-norm"
        )
    return dict(out=out, data=metrics["data"], finals=finals)


def best_cell(run: Path) -> tuple[str, str]:
    """The cell of a run with the best validation accuracy (from metrics.json), or its only trained cell,
    and why it was chosen."""
    if (run / "metrics.json").exists():
        finals = read_metrics(run)["cells"]
        with runs.from_file(run / "metrics.json"):
            best = max(finals, key=lambda f: f["valid_accuracy"] or 0.0)["cell"]
        names = [f["cell"] for f in finals]
        return best, (
            f"best validation accuracy of {', '.join(names)}" if len(names) > 1 else "its only cell"
        )
    trained = sorted(p.parent.name for p in run.glob("*/checkpoints") if p.parent.name in cells.KINDS)
    if not trained:
        raise ValueError(
            f"run: {str(run)!r} holds no trained cell (no <cell>/checkpoints/ folder of a cell kind "
            f"{tuple(cells.KINDS)}): a run stopped before its first checkpoint?"
        )
    if len(trained) > 1:
        raise ValueError(f"cell: expected --cell, one of the trained cells {trained} of {str(run)!r}")
    return trained[0], "its only trained cell"


def output_path(args: Predict, run: Path, cell: str) -> Path:
    """Where `predict --csv` writes: `--out`, else `<run>/predict_<cell>_<csv stem>.csv`; never a file of
    the training (a path inside the run folder must be named predict_*)."""
    target = args.out if args.out is not None else run / f"predict_{cell}_{Path(args.csv).stem}.csv"
    if target.resolve().is_relative_to(run.resolve()) and not target.name.startswith("predict_"):
        raise ValueError(
            f"out: expected a path outside the run folder or a name predict_*.csv inside it (the run's own "
            f"files stay), got {str(target)!r}"
        )
    if target.is_dir():
        raise ValueError(f"out: expected a CSV file path, got the folder {str(target)!r}")
    if target.exists() and not args.overwrite:
        raise ValueError(f"out: {str(target)!r} exists; pass --overwrite to replace it")
    return target


def predict(args: Predict) -> dict:
    """Label `args.text` (printed) or the rows of `args.csv` (written to `output_path`) with the run's
    classifier; returns {"cell", "step", "labels", "probabilities", "unknown" (the share of each text's
    tokens not in the vocabulary), "out" (the CSV written or None), "accuracy" (CSV with labels only)}."""
    run = _cli.trained_run(EXPERIMENT, args.run)
    cell, why = (args.cell, "chosen by --cell") if args.cell else best_cell(run)
    if not (run / cell).is_dir():
        raise ValueError(f"cell: expected a trained cell of {str(run)!r}, got {cell!r}")
    loaded = classify.load(run / cell)
    names = list(loaded.label_set.labels)
    target, columns = None, {}
    if args.csv is not None:
        columns = read_table(args, loaded.config)
        texts, labels = columns["text_column"], columns["label_column"]
        if labels is not None and not set(labels) <= set(names):
            labels = None  # not this run's classes (or some rows unlabelled): no accuracy
        written = classify.prediction_columns(names, labelled=labels is not None)
        if args.id_column is not None and args.id_column.strip() in ["cell", *written]:
            raise ValueError(
                f"id_column: expected a column name other than the written columns {['cell', *written]}, got "
                f"{args.id_column!r}"
            )
        target = output_path(args, run, cell)
    else:
        texts, labels = list(args.text), None
    got = classify.predict(loaded, texts)
    vocab = f"{len(loaded.vocab)} {loaded.config.level}s"
    print(
        f"run {args.run}, cell {cell} ({why}), checkpoint step {loaded.step}; vocabulary {vocab}"
        f"{', lowercased' if loaded.config.lowercase else ''}",
        flush=True,  # before the warning, which goes to stderr
    )
    guesses = int(np.sum(got.unknown > args.unknown_warning))
    if guesses:
        warnings.warn(
            f"{guesses} of {len(texts)} texts have more than {args.unknown_warning:.0%} tokens unknown to "
            f"run {args.run}'s vocabulary ({vocab}); their labels are guesses",
            UserWarning,
            stacklevel=2,
        )
    probs = classify.softmax(got.ev.logits)  # (N, C)
    out = dict(cell=cell, step=loaded.step, labels=got.labels, probabilities=probs, unknown=got.unknown)
    out.update(out=target, accuracy=None)
    if args.csv is None:
        width = max(len("prediction"), *map(len, names))
        print(f"{'prediction':<{width}}  p      unknown  text")
        for text, name, p, share in zip(texts, got.labels, probs.max(axis=1), got.unknown):
            print(f"{name:<{width}}  {p:.3f}  {share:>7.0%}  {text}")
        return out
    ids = loaded.label_set.encode(labels) if labels is not None else None
    leading = {"cell": [cell] * len(texts)}
    if args.id_column is not None:
        leading = {args.id_column.strip(): columns["id_column"], **leading}
    rows = list(range(1, len(texts) + 1))
    classify.write_prediction_csv(
        target, names, got.ev, texts, rows, got.lengths, ids, unknown=got.unknown, leading=leading
    )
    predicted = np.bincount(got.ev.predictions, minlength=len(names))
    print(
        f"labelled {len(texts)} rows of {args.csv}: "
        + ", ".join(f"{y} {n}" for y, n in zip(names, predicted))
        + f"; wrote {target}"
    )
    if ids is not None:
        out["accuracy"] = float(np.mean(got.ev.predictions == ids))
        counts = classify.confusion_matrix(ids, got.ev.predictions, len(names))
        print(
            f"accuracy {out['accuracy']:.4f} on the file's labels; confusion matrix (rows: true class, "
            "columns: predicted):"
        )
        print("\n".join(aligned_confusion(names, counts)))
    return out


def read_table(args: Predict, cfg: ClassifyConfig) -> dict:
    """The columns of `args.csv` that `predict` reads: "text_column", "label_column" (None if the file
    has no column of the run's labels) and "id_column" (with `--id-column`; refused if missing)."""
    columns = dict(text_column=args.text_column or cfg.text_column, label_column=cfg.label_column)
    if args.id_column is not None:
        columns["id_column"] = args.id_column
    return labelled.read_columns(
        args.csv,
        columns,
        optional=("label_column",),
        strip=("label_column",),
        encoding=cfg.encoding,
        errors=cfg.decode_errors,
    )


def main(cfg: Config | Predict | classify_explain.Explain) -> dict:
    if isinstance(cfg, classify_explain.Explain):
        return classify_explain.explain(cfg, best_cell)
    return predict(cfg) if isinstance(cfg, Predict) else train(cfg)


if __name__ == "__main__":
    _cli.run(command, main)
