"""`python -m experiments.which_words --quick` end to end, its numbers checked against each other and
against hand computations: accuracy by position against the overall accuracy, the k/N statements
against a recount of metrics.json, the parameter budget against the cells' formulas, the lag and span
helpers by hand; bad settings as one line `error: ...`."""

import contextlib
import io
import json

import numpy as np
import pytest

from experiments import which_words, which_words_plots
from rnnjax.command import cli as _cli
from rnnjax.command import plots as _plots
from rnnjax.data import opinions


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick run `q` in a fresh folder: (folder, what main returned, what it printed)."""
    folder = tmp_path_factory.mktemp("which_words")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setattr(_plots, "STRICT", True)  # a figure with legibility problems fails the run
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            got = which_words.main(_cli.parse(which_words.Config, ["--quick", "--run", "q", "--no-progress"]))
    return folder, got, printed.getvalue()


def test_quick_run_writes_its_files_and_leads_with_its_findings(quick_run):
    folder, got, printed = quick_run
    out = folder / "results" / "which_words" / "q"
    for name in ("config.json", "metrics.json", "summary.md", "positions.png", "tutorial.png", "lag.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["cell"] for r in metrics["runs"]] == ["simple", "lstm"] and metrics["seeds"] == 1
    lines = printed.splitlines()
    assert lines[:2] == which_words_plots.findings(metrics)  # the findings come first
    assert lines[0].startswith("simple: accuracy start/middle/end ")
    assert (out / "summary.md").read_text().splitlines()[2] == lines[0]
    assert [c["verbatim"] for c in metrics["tutorial"]] == [True] + [False] * 5


def test_accuracy_by_position_recombines_to_the_test_accuracy(quick_run):
    _, got, _ = quick_run
    counts = np.bincount(np.arange(256) % 3)  # balanced: the remainder goes to the first position
    for r in got["runs"]:
        by_position = [r["accuracy_by_position"][p] for p in opinions.POSITIONS]
        assert abs(np.dot(counts, by_position) / 256 - r["test_accuracy"]) < 1e-12
        assert r["ig"]["texts"] == 24 and 0 <= r["ig"]["complete"] <= 24
        assert len(r["lag"]["ig_share"]) == len(r["lag"]["log10_grad_carry"]) == 28
        for comment, measured in zip(got["tutorial"], r["tutorial"]):
            assert measured["correct"] == (measured["prediction"] == comment["label"])
            assert len(measured["tokens"]) == len(measured["integrated_gradients"])


def test_k_of_n_statements_match_a_recount(quick_run):
    _, got, _ = quick_run
    for cell in got["cells"]:
        (r,) = [r for r in got["runs"] if r["cell"] == cell]
        c = which_words_plots.claims(got, cell)
        assert c["n"] == 1
        assert c["fails_at_start"] == int(r["accuracy_by_position"]["start"] <= which_words.FAIL_ACCURACY)
        assert c["tutorial_all_correct"] == int(all(x["correct"] for x in r["tutorial"]))


def test_the_parameter_budget_follows_the_cells_formulas():
    # simple: I·H + H² + H; LSTM: 4 blocks of it; GRU (reset after): 3 blocks and b_hn <[H]>
    formulas = {
        "simple": lambda h, i: i * h + h * h + h,
        "lstm": lambda h, i: 4 * (i * h + h * h + h),
        "gru": lambda h, i: 3 * (i * h + h * h + h) + h,
    }
    budget = formulas["lstm"](24, 32)
    for kind, count in formulas.items():
        hidden, params = which_words.hidden_for_budget(kind, 24, 32)
        assert params == count(hidden, 32)
        assert abs(params - budget) == min(abs(count(h, 32) - budget) for h in range(1, 400))


def test_helpers_by_hand():
    mask = which_words.spans_mask(np.array([[1, 3], [0, 1]]), (2, 4))
    assert mask.tolist() == [[False, True, True, False], [True, False, False, False]]
    values = np.array([[1.0, 2.0, 3.0, 0.0], [4.0, 5.0, 6.0, 7.0]])  # lengths 3 and 4
    assert which_words.per_lag(values, [3, 4], 4, np.mean) == [5.0, 4.0, 3.0, 4.0]
    assert which_words.by_group([1, 0, 1, np.nan], ["a", "a", "b", "b"], ("a", "b", "c")) == dict(
        a=0.5, b=1.0, c=None
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--min-len", "10"], "error: min_len, max_len: expected 25 <= min_len <= max_len, got 10 and 60"),
        (["--cells", "lstm", "transformer"], "error: cells: expected cell kinds from"),
        (["--n-attribute", "700"], "error: n_attribute: expected at most n_test=600, got 700"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        _cli.run(which_words.Config, which_words.main, argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith(message) and "\n" not in err, err
