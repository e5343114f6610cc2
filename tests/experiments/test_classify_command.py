"""`python -m experiments.classify` end to end on a tiny CSV: the flags, the files of a run folder, resuming
and redrawing a run, and bad input reported as one line `error: ...`."""

import json

import pytest
import tyro

from experiments import _cli, classify
from rnnjax.train.classify import ClassifyConfig


def tiny_csv(tmp_path):
    rows = ["text,label"] + [
        f'"{w} film, {"really " * (i % 4)}ok",{"pos" if w == "great" else "neg"}'
        for i, w in enumerate(["great", "awful"] * 15)
    ]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_on_a_tiny_csv_writes_its_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    csv_path = tiny_csv(tmp_path)
    args = ["--csv", str(csv_path), "--text-column", "text", "--label-column", "label", "--cell", "lstm"]
    args += ["--hidden-size", "8", "--embed-size", "8", "--steps", "3", "--batch-size", "8"]
    args += ["--padding-factors", "2", "--log-every", "2", "--no-progress", "--run", "t"]
    cfg = tyro.cli(classify.Config, args=args)
    assert cfg.classify.csv == csv_path and cfg.classify.cell == ("lstm",) and cfg.classify.steps == 3
    assert cfg.run == "t" and not cfg.progress
    result = classify.main(cfg)
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
