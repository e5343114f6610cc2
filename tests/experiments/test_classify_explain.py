"""`python -m experiments.classify explain` on a run trained on the synthetic set and on a CSV-trained
bidirectional run: its predictions against `predict`'s, its top tokens against the saved attributions,
the completeness of integrated gradients, the files and figures it writes, and bad input (a run that is
not a classifier, an empty text, a text of unknown words only) reported as one line `error: ...`."""

import json

import numpy as np
import pytest
import tyro

from experiments import classify, classify_explain
from rnnjax import attribution
from rnnjax.command import cli as _cli
from rnnjax.command import plots as _plots

TINY = ["--hidden-size", "8", "--embed-size", "8", "--steps", "4", "--batch-size", "16"]
TINY += ["--padding-factors", "2", "--no-progress"]
TEXTS = ["good movie , the plot was fine", "awful , a complete waste qqq"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder holding results/classify/syn (an LSTM on the synthetic set) and results/classify/csv (a
    bidirectional GRU on a small CSV)."""
    folder = tmp_path_factory.mktemp("explain")
    rows = ["text,label"] + [
        f'"{w} movie , the plot was {"fine" if i % 3 else "long"}",{"pos" if w == "good" else "neg"}'
        for i, w in enumerate(["good", "awful"] * 10)
    ]
    (folder / "reviews.csv").write_text("\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        synthetic = ["--cell", "lstm", "--synthetic-n", "64", "--synthetic-seq-len", "8"]
        synthetic += ["--synthetic-min-len", "5", "--run", "syn"]
        classify.main(tyro.cli(classify.Config, args=[*synthetic, *TINY]))
        on_csv = ["--csv", "reviews.csv", "--cell", "gru", "--bidirectional", "--run", "csv"]
        classify.main(tyro.cli(classify.Config, args=[*on_csv, *TINY]))
    return folder


def explain(*argv):
    """`python -m experiments.classify explain ...` in process; returns what main returned."""
    return classify.main(_cli.parse(classify.command, ["explain", *argv]))


def test_explain_a_synthetic_run_agrees_with_predict_and_its_saved_attributions(runs, monkeypatch, capsys):
    monkeypatch.chdir(runs)
    monkeypatch.setattr(_plots, "STRICT", True)  # a figure with legibility problems fails the test
    got = explain("--run", "syn", "--text", *TEXTS, "--top", "3")
    printed = capsys.readouterr().out.splitlines()
    with pytest.warns(UserWarning, match="tokens unknown to run syn's vocabulary"):  # "qqq": read as <unk>
        predicted = classify.main(_cli.parse(classify.command, ["predict", "--run", "syn", "--text", *TEXTS]))
    assert [row["prediction"] for row in got["texts"]] == predicted["labels"]
    np.testing.assert_allclose(
        [r["probability"] for r in got["texts"]], predicted["probabilities"].max(1), atol=1e-6
    )
    assert printed[0] == "run syn, cell lstm (its only cell), checkpoint step 4"
    saved = json.loads((runs / "results/classify/syn/explain_lstm.json").read_text())
    for i, row in enumerate(saved["texts"]):
        assert printed[1 + 2 * i].startswith(f"{i + 1}. {row['prediction']} (p ")
        ig = np.asarray(row["integrated_gradients"])
        top = np.argsort(-np.abs(ig))[:3]  # the top tokens, recomputed from the file
        listed = printed[2 + 2 * i].split(": ", 1)[1].split(", ")
        assert [item.rsplit(" ", 1)[0] for item in listed] == [row["tokens"][t] for t in top]
        assert len(row["tokens"]) == len(ig) == len(row["gates"][0]["forward"]["f"])
        # completeness, from the file: Σ IG = f(e) − f(0)
        target = saved["labels"].index(row["prediction"])
        delta = row["logits"][target] - row["baseline_logit"]
        assert abs(ig.sum() - delta) <= attribution.COMPLETENESS_TOLERANCE * abs(delta)
    assert saved["texts"][1]["tokens"][-1] == "[qqq]"  # unknown to the vocabulary, read as <unk>
    assert "within 1%" in printed[-2]
    assert [f.name for f in got["files"]] == [
        "explain_lstm.json",
        "explain_lstm.png",
        "explain_lstm_gates.png",
    ]
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        explain("--run", "syn", "--text", "good")
    explain("--run", "syn", "--text", "good", "--overwrite", "--baseline", "padding")


def test_explain_a_csv_run_with_a_bidirectional_gru(runs, monkeypatch, capsys):
    monkeypatch.chdir(runs)
    got = explain("--run", "csv", "--text", "good movie", "awful plot , long", "--out", "elsewhere")
    assert got["cell"] == "gru" and got["labels"] == ["neg", "pos"]
    gates = got["texts"][1]["gates"]
    assert (
        len(gates) == 1
        and set(gates[0]) == {"forward", "backward"}
        and set(gates[0]["backward"]) == {"r", "z"}
    )
    assert all(0.0 < v < 1.0 for v in gates[0]["backward"]["z"])
    assert (runs / "elsewhere" / "explain_gru_gates.png").stat().st_size > 0
    assert "run csv, cell gru" in capsys.readouterr().out


def test_layout_wraps_words_at_the_line_width():
    assert classify_explain.layout(["ab", "cde", "f", "ghijk"], width=8) == [(0, 0), (0, 3), (0, 7), (1, 0)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--run", "lm", "--text", "hello"],
            "error: run: 'results/classify/lm' is a run of text_generation, not of",
        ),
        (["--run", "syn", "--text", "  "], "error: text: text(s) [1] are empty; expected words to explain"),
        (
            ["--run", "syn", "--text", "good", "qqq zzz"],
            "error: text: every token of text 2 ('qqq zzz') is unknown",
        ),
        (["--run", "syn"], "error: text: expected at least one --text TEXT to explain, got none"),
        (["--run", "nothing", "--text", "good"], "error: run: there is no run 'nothing' of classify"),
    ],
)
def test_bad_input_is_one_line_error(runs, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(runs)
    lm = runs / "results" / "classify" / "lm"  # a language-model run (its marker file) in the wrong place
    lm.mkdir(exist_ok=True)
    (lm / "command.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        _cli.run(classify.command, classify.main, ["explain", *argv])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith(message) and "\n" not in err, err
