"""Every figure the `--quick` runs write reads at the size it is saved: drawn by each command's own plot
function from the saved metrics of a `--quick` run (tests/experiments/quick_runs/, see below) and checked
by `_plots.legibility_problems` (no text under 8 pt, no two texts overlapping, nothing reaching beyond the
canvas, heatmap annotations that contrast with their cells); and the checker itself, on figures made bad
on purpose, finds each problem, which the shared style removes. About 10-20 s.

quick_runs/ holds, per command, the files its plots read from `python -m experiments.NAME --quick
--no-progress --run q` (RNNJAX_DATA=/work/shared/data for walkthrough_alice and text_generation, which runs
`train --quick`): metrics.json (walkthrough_alice's without "from_scratch", which no figure reads), plus
long_range's and quickstart's config.json, classify's per-cell metrics.jsonl and confusion.json, and
text_generation's metrics.jsonl; and the records of `python -m benchmarks.throughput --quick` (without
the per-repetition "times_ms") and `python -m benchmarks.memory --quick`. Refresh them from a new run when a
metrics layout changes.
"""

import json
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from benchmarks import memory, throughput
from experiments import (
    classify,
    gradient_norms_plots,
    gradient_norms_training,
    long_range,
    lyapunov_plots,
    quickstart,
    text_generation,
    walkthrough_alice,
)
from rnnjax import results
from rnnjax.command import plots as _plots

QUICK_RUNS = Path(__file__).parent / "quick_runs"


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _quickstart(run: Path) -> None:
    cfg = quickstart.Config(**json.loads((run / "config.json").read_text()))
    quickstart.plot(_metrics(run), cfg, run / "loss.png")


def _benchmark(module, name: str):
    def draw(run: Path) -> None:
        module.plot(json.loads((run / f"{name}.json").read_text()), run / f"{name}.png")

    return draw


# command: (how it draws its figures from its run folder, the figures it writes)
FIGURES = {
    "gradient_norms": (
        gradient_norms_plots.plot_all,
        {
            "norm_vs_lag_orthogonal.png",
            "grad_whh_vs_T.png",
            "decay_vs_gain.png",
            "decay_heatmap.png",
            "decay_vs_input_scale.png",
            "rate_vs_radius.png",
        },
    ),  # fmt: skip
    "lyapunov": (
        lyapunov_plots.plot_all,
        {"lyapunov_vs_gradient.png", "lyapunov_vs_gain.png", "lyapunov_spectrum.png"},
    ),
    "long_range": (long_range.report, {"loss.png", "grad_norm.png", "final_loss.png"}),
    "gradient_norms_training": (gradient_norms_training.report, {"profiles.png"}),
    "quickstart": (_quickstart, {"loss.png"}),
    "walkthrough_alice": (lambda run: walkthrough_alice.plot(_metrics(run), run / "loss.png"), {"loss.png"}),
    "classify": (classify.plot_all, {"curves.png", "confusion.png"}),
    "text_generation": (text_generation.plot, {"loss.png"}),
    "throughput": (_benchmark(throughput, "throughput"), {"throughput.png"}),
    "memory": (_benchmark(memory, "memory"), {"memory.png"}),
}


@pytest.fixture
def checked(monkeypatch):
    """{figure file name: its legibility problems} for every figure saved while the test runs (each is
    checked as it is saved, after `_plots.save` tidied it; nothing is written)."""
    found: dict[str, list[str]] = {}

    def check(fig, path, dpi=120):
        found.setdefault(Path(path).name, []).extend(_plots.legibility_problems(fig))

    monkeypatch.setattr(results, "save_figure", check)
    monkeypatch.setattr(_plots, "STRICT", False)
    return found


# Problems of figures drawn by modules this test's change could not edit, as (command, figure, a phrase of
# the problem): tolerated, and required, so that the entry goes with the fix.
KNOWN: set[tuple[str, str, str]] = set()
CASES = [(name, "house") for name in FIGURES]


@pytest.mark.parametrize("name, style", CASES)
def test_every_quick_run_figure_reads_at_its_saved_size(name, style, checked, tmp_path, capsys):
    run = shutil.copytree(QUICK_RUNS / name, tmp_path / name)  # the plots write beside the metrics
    draw, expected = FIGURES[name]
    with matplotlib.style.context("default" if style == "default" else _plots.STYLE):
        draw(run)
    capsys.readouterr()  # the tables some reports print
    assert set(checked) == expected
    known = [(figure, phrase) for command, figure, phrase in KNOWN if command == name]
    problems = [
        f"{figure}: {p}"
        for figure, found in sorted(checked.items())
        for p in found
        if not any(figure == f and phrase in p for f, phrase in known)
    ]
    assert not problems, "\n".join(problems)
    for figure, phrase in known:
        assert any(phrase in p for p in checked[figure]), f"{name} {figure}: fixed, remove it from KNOWN"


# ---------------------------------------------------------------------------------------------
# The checker, on figures made bad on purpose (and the same figures made right)


def _figure(width=4.0, height=3.0):
    return _plots.plt.subplots(figsize=(width, height), layout="constrained")


def test_checker_finds_a_small_legend():
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], label="data")
    ax.legend(fontsize=5)
    problems = _plots.legibility_problems(fig)
    assert problems == ["legend text 'data': 5 pt, below 8 pt"]
    ax.legend()  # the style's size
    assert _plots.legibility_problems(fig) == []
    _plots.plt.close(fig)


def test_checker_finds_two_overlapping_labels_but_not_apart_or_hidden_ones():
    fig, ax = _figure()
    ax.text(0.3, 0.5, "first label", transform=ax.transAxes)
    second = ax.text(0.35, 0.52, "second label", transform=ax.transAxes)
    assert _plots.legibility_problems(fig) == ["text 'first label' overlaps text 'second label'"]
    second.set_visible(False)  # not drawn: no problem
    assert _plots.legibility_problems(fig) == []
    second.set(visible=True, y=0.2)  # apart
    assert _plots.legibility_problems(fig) == []
    _plots.plt.close(fig)


def test_checker_measures_a_rotated_label_by_its_rotated_rectangle():
    # Two long labels at 45°: their upright bounding boxes overlap, the text itself does not.
    fig, ax = _figure()
    for x in (0.3, 0.5):
        ax.text(x, 0.3, "a long rotated label", rotation=45, transform=ax.transAxes)
    assert _plots.legibility_problems(fig) == []
    ax.text(0.33, 0.33, "across", rotation=-45, transform=ax.transAxes, fontsize=12)
    assert len(_plots.legibility_problems(fig)) == 1
    _plots.plt.close(fig)


def test_colliding_log_tick_labels_are_found_and_tidy_removes_them():
    # A log axis spanning less than a decade labels its minor ticks: 2×10¹ 3×10¹ 4×10¹ collide.
    fig, ax = _figure(width=2.4)
    ax.plot([10, 50], [1, 2])
    ax.set_xscale("log")
    assert any("x tick label" in p and "overlaps x tick label" in p for p in _plots.legibility_problems(fig))
    _plots.tidy(fig)
    assert _plots.legibility_problems(fig) == []
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and labels[0] == "$\\mathdefault{10^{1}}$"  # the major label is the one kept
    _plots.plt.close(fig)


def test_title_wider_than_the_figure_is_found_and_title_and_caption_wraps_it():
    long = "A title in plain words that goes on for much longer than this small figure is wide " * 2
    fig, ax = _figure()
    fig.suptitle(long)
    (problem,) = _plots.legibility_problems(fig)
    assert problem.startswith("suptitle 'A title") and "beyond the figure" in problem
    _plots.title_and_caption(fig, long, caption="what the marks mean and the protocol, " * 4)
    assert _plots.legibility_problems(fig) == []
    _plots.plt.close(fig)


def test_heatmap_annotation_contrast_is_checked_and_chosen_per_cell():
    grid = [[-1.0, -0.3, 0.0], [0.3, 0.7, 1.0]]
    fig, ax = _figure()
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1)
    for (r, c), v in np.ndenumerate(image.get_array()):
        ax.text(c, r, f"{v:.1f}", ha="center", va="center", color="black")
    problems = _plots.legibility_problems(fig)
    # black on dark blue (-1.0), on red (0.7: contrast 4.0:1) and on dark red (1.0), and only there
    assert sorted(p.split(":")[0] for p in problems) == ["text '-1.0'", "text '0.7'", "text '1.0'"]
    _plots.plt.close(fig)
    fig, ax = _figure()
    _plots.heatmap(ax, grid, ["a", "b", "c"], ["x", "y"], fmt="{:.1f}")
    assert _plots.legibility_problems(fig) == []
    assert [t.get_color() for t in ax.texts] == ["white", "black", "black", "black", "white", "white"]
    _plots.plt.close(fig)


def test_strict_save_refuses_a_bad_figure_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_plots, "STRICT", True)
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], label="data")
    ax.legend(fontsize=5)
    with pytest.raises(ValueError, match=r"bad\.png: legend text 'data': 5 pt, below 8 pt"):
        _plots.save(fig, tmp_path / "bad.png")
    assert (tmp_path / "bad.png").is_file()  # written all the same, to be looked at
