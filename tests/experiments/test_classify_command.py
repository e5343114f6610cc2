"""`python -m experiments.classify` end to end on a tiny CSV: the flags, the files of a run folder, resuming
and redrawing a run, the numbers printed after training checked against the files by hand, `predict`'s
header, unknown-token shares, warning and per-cell CSV files, and bad input reported as one line
`error: ...`."""

import collections
import contextlib
import csv
import io
import json
import os
import re
import warnings

import pytest
import tyro

from experiments import classify
from rnnjax.command import cli as _cli
from rnnjax.train.classify import ClassifyConfig


def tiny_csv(tmp_path):
    """30 rows "id,text,label"; each text ends in its own word w<i>, unknown unless its row trains."""
    rows = ["id,text,label"] + [
        f'x{i},"{w} film, {"really " * (i % 4)}ok w{i}",{"pos" if w == "great" else "neg"}'
        for i, w in enumerate(["great", "awful"] * 15)
    ]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


ARGS = ["--text-column", "text", "--label-column", "label", "--cell", "lstm", "simple"]
ARGS += ["--hidden-size", "8", "--embed-size", "8", "--steps", "3", "--batch-size", "8"]
ARGS += ["--padding-factors", "2", "--log-every", "2", "--no-progress", "--run", "t"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder with data.csv and the run `t` (an LSTM and a tanh RNN) trained on it: (folder, command-line
    arguments, what main returned, what it printed)."""
    folder = tmp_path_factory.mktemp("classify")
    args = ["--csv", str(tiny_csv(folder)), *ARGS]
    cwd, printed = os.getcwd(), io.StringIO()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            result = classify.main(tyro.cli(classify.Config, args=args))
    finally:
        os.chdir(cwd)
    return folder, args, result, printed.getvalue()


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def unknown_by_hand(text: str, vocab: set[str]) -> tuple[int, int]:
    """(unknown tokens, tokens) of a lowercased text: words and single punctuation marks."""
    tokens = re.findall(r"\w+|[^\w\s]", text.lower())
    return sum(t not in vocab for t in tokens), len(tokens)


def test_cli_on_a_tiny_csv_writes_its_files(trained, monkeypatch, capsys):
    tmp_path, args, result, _ = trained
    monkeypatch.chdir(tmp_path)
    csv_path = tmp_path / "data.csv"
    cfg = tyro.cli(classify.Config, args=args)
    assert (
        cfg.classify.csv == csv_path and cfg.classify.cell == ("lstm", "simple") and cfg.classify.steps == 3
    )
    assert cfg.run == "t" and not cfg.progress and cfg.classify.lowercase
    out = tmp_path / "results" / "classify" / "t"
    assert result["out"].resolve() == out.resolve()
    for name in ("config.json", "vocab.json", "labels.json", "metrics.json", "curves.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    for name in ("metrics.jsonl", "predictions.csv", "confusion.json", "confusion.png"):
        assert (out / "lstm" / name).stat().st_size > 0, name
    assert (out / "lstm" / "checkpoints" / "3").is_dir()
    records = [json.loads(line) for line in (out / "lstm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["compile", "train", "train", "valid"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["n_train"] == 24 and metrics["data"]["n_test"] == 3
    assert metrics["data"]["labels"] == ["neg", "pos"]
    final = result["finals"][0]
    assert final["cell"] == "lstm" and final["padding"][1]["predictions_changed"] == 0 and final["steps"] == 3
    assert json.loads((out / "config.json").read_text())["classify"]["csv"] == str(csv_path)
    assert json.loads((out / "labels.json").read_text())["labels"] == ["neg", "pos"]
    confusion = json.loads((out / "lstm" / "confusion.json").read_text())
    assert sum(map(sum, confusion["counts"])) == 3 and confusion["accuracy"] == final["test_accuracy"]
    assert len((out / "lstm" / "predictions.csv").read_text().splitlines()) == 1 + 3
    assert "| lstm |" in (out / "summary.md").read_text()
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temporary files

    # the same --run again: refused without --resume; with it, nothing more to train
    with pytest.raises(SystemExit):
        _cli.run(classify.Config, classify.main, args)
    assert "error: run: " in capsys.readouterr().err
    again = classify.main(tyro.cli(classify.Config, args=args + ["--resume"]))
    assert again["finals"][0]["test_accuracy"] == final["test_accuracy"]
    (out / "curves.png").unlink()
    classify.main(classify.Config(plot_only=out))
    assert (out / "curves.png").stat().st_size > 0


def test_training_prints_accuracy_against_the_test_majority_and_the_numbers_check_out(trained):
    tmp_path, _, _, printed = trained
    out, lines = tmp_path / "results" / "classify" / "t", printed.splitlines()
    metrics = json.loads((out / "metrics.json").read_text())
    data, finals = metrics["data"], metrics["cells"]
    labels = [r["label"] for r in read_rows(tmp_path / "data.csv")]
    test_rows = read_rows(out / "lstm" / "predictions.csv")  # the test rows, with their true labels
    # majority baseline: the test set's own most frequent class, against a count of the test rows' labels
    (top, n_top), *_ = collections.Counter(r["label"] for r in test_rows).most_common()
    assert data["test_majority_accuracy"] == n_top / len(test_rows) and data["test_majority_class"] == top
    # class counts per split: their sums against a count of the file's labels, the test's against the rows
    count = collections.Counter(labels)
    assert [sum(c[j] for c in data["class_counts"].values()) for j in range(2)] == [
        count["neg"],
        count["pos"],
    ]
    assert data["class_counts"]["test"] == [sum(r["label"] == y for r in test_rows) for y in ("neg", "pos")]
    # unknown share of the test tokens: every test text has its own word w<i>, unseen in training
    vocab = set(json.loads((out / "vocab.json").read_text())["tokens"])
    by_hand = [unknown_by_hand(r["text"], vocab) for r in test_rows]
    assert [n for n, _ in by_hand] == [1] * len(test_rows)
    assert data["unknown_share"]["test"] == sum(n for n, _ in by_hand) / sum(t for _, t in by_hand)
    assert [float(r["unknown_share"]) for r in test_rows] == [round(n / t, 4) for n, t in by_hand]
    # the terminal leads with the accuracy of each cell against that baseline, then the data
    accuracy = ", ".join(f"{f['cell']} {f['test_accuracy']:.4f}" for f in finals)
    assert lines[0].startswith(f"test accuracy (3 test rows): {accuracy}; always answering the test set's")
    assert f"{top!r} scores {n_top / 3:.4f}" in lines[0]
    assert lines[1].startswith("data: 24 train / 3 valid / 3 test rows; classes (train/valid/test) neg ")
    assert f"test {data['unknown_share']['test']:.1%}" in lines[1]
    # each cell's confusion matrix: printed as saved; its sum is the test size, its diagonal the accuracy,
    # each entry the count of its (label, prediction) pairs in the cell's predictions.csv
    for f in finals:
        counts = json.loads((out / f["cell"] / "confusion.json").read_text())["counts"]
        rows = read_rows(out / f["cell"] / "predictions.csv")
        pairs = collections.Counter((r["label"], r["prediction"]) for r in rows)
        assert counts == [[pairs[(y, p)] for p in ("neg", "pos")] for y in ("neg", "pos")]
        assert sum(map(sum, counts)) == 3 and (counts[0][0] + counts[1][1]) / 3 == f["test_accuracy"]
        at = lines.index(f"{f['cell']} test confusion matrix (rows: true class, columns: predicted):")
        assert [line.split() for line in lines[at + 1 : at + 4]] == [
            ["neg", "pos"],
            ["neg", *map(str, counts[0])],
            ["pos", *map(str, counts[1])],
        ]
    assert any(line.startswith("padding check (2x): no prediction changed") for line in lines)


def test_predict_names_its_run_and_cell_and_warns_about_unknown_tokens(trained, monkeypatch, capsys):
    tmp_path = trained[0]
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "classify" / "t"
    vocab = set(json.loads((out / "vocab.json").read_text())["tokens"])
    texts = ["Great film, really OK", "zzz qqq great"]
    argv = ["predict", "--run", "t", "--text", *texts]
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        got = classify.main(_cli.parse(classify.command, argv))
    assert len(caught) == 1 and str(caught[0].message) == (
        f"1 of 2 texts have more than 50% tokens unknown to run t's vocabulary ({len(vocab)} words); "
        "their labels are guesses"
    )
    assert got["unknown"].tolist() == [n / t for n, t in (unknown_by_hand(x, vocab) for x in texts)]
    assert got["unknown"].tolist() == [0.0, 2 / 3]
    lines = capsys.readouterr().out.splitlines()
    best = max(json.loads((out / "metrics.json").read_text())["cells"], key=lambda f: f["valid_accuracy"])
    assert lines[0] == (
        f"run t, cell {best['cell']} (best validation accuracy of lstm, simple), checkpoint step 3; "
        f"vocabulary {len(vocab)} words, lowercased"
    )
    assert lines[1].split() == ["prediction", "p", "unknown", "text"]
    assert [line.split()[2] for line in lines[2:]] == ["0%", "67%"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # above the threshold given, nothing to warn about
        classify.main(_cli.parse(classify.command, [*argv, "--unknown-warning", "0.7", "--cell", "simple"]))
    assert capsys.readouterr().out.startswith("run t, cell simple (chosen by --cell), checkpoint step 3;")


def test_predict_csv_writes_one_file_per_cell_with_the_input_ids(trained, monkeypatch):
    tmp_path = trained[0]
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "classify" / "t"
    test_file = (out / "lstm" / "predictions.csv").read_bytes()
    vocab = set(json.loads((out / "vocab.json").read_text())["tokens"])
    given = read_rows(tmp_path / "data.csv")

    def predict(*flags):
        return classify.main(
            _cli.parse(classify.command, ["predict", "--run", "t", "--csv", "data.csv", *flags])
        )

    for cell in ("lstm", "simple"):
        got = predict("--id-column", "id", "--cell", cell)
        assert got["out"].resolve() == (out / f"predict_{cell}_data.csv").resolve()
        rows = read_rows(got["out"])
        assert list(rows[0])[:5] == ["id", "cell", "row", "length", "unknown_share"]
        assert [r["id"] for r in rows] == [r["id"] for r in given] and {r["cell"] for r in rows} == {cell}
        assert [r["text"] for r in rows] == [r["text"] for r in given]
        shares = [n / t for n, t in (unknown_by_hand(r["text"], vocab) for r in given)]
        assert [float(r["unknown_share"]) for r in rows] == [round(x, 4) for x in shares]
        assert got["accuracy"] == sum(r["correct"] == "1" for r in rows) / len(rows)
    assert (out / "lstm" / "predictions.csv").read_bytes() == test_file  # the test predictions stay
    with pytest.raises(ValueError, match=r"out: '.*predict_simple_data\.csv' exists; pass --overwrite"):
        predict("--cell", "simple")
    assert predict("--cell", "simple", "--overwrite")["out"].name == "predict_simple_data.csv"
    assert predict("--out", "elsewhere/labels.csv")["out"].is_file()
    for flags, pattern in [
        (["--id-column", "key"], r"id_column: column 'key' not found .*\['id', 'text', 'label'\]"),
        (["--id-column", "text"], r"id_column: expected a column name other than the written columns"),
        (["--out", str(out / "lstm" / "predictions.csv")], r"out: expected a path outside the run folder"),
        (["--unknown-warning", "1.5"], r"unknown_warning: expected a share in \[0, 1\], got 1\.5"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            predict(*flags)
    with pytest.raises(ValueError, match=r"id_column: expected --csv FILE with it, got --text"):
        classify.Predict(run="t", text=("hi",), id_column="id")


def test_missing_csv_and_column_are_reported_from_main(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def config(path):
        return classify.Config(ClassifyConfig(csv=path), run="o", progress=False)

    with pytest.raises(FileNotFoundError, match=r"path: no such file"):
        classify.main(config(tmp_path / "missing.csv"))
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("review,sentiment\ngood,pos\nbad,neg\n")
    with pytest.raises(ValueError, match=r"text_column: column 'text' not found .*\['review', 'sentiment'\]"):
        classify.main(config(csv_path))


def test_bad_input_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(classify.Config, classify.main, ["--hidden-size", "0", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: hidden_size: expected an int >= 1, got 0\n"
    with pytest.raises(SystemExit):
        _cli.run(classify.Config, classify.main, ["--plot-only", str(tmp_path / "nothing")])
    assert capsys.readouterr().err.startswith("error: plot_only: expected a run folder holding metrics.json")
