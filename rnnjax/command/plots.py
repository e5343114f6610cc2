"""Plot helpers shared by the experiments and benchmarks: matplotlib on its Agg backend (files only, no
display) with one house style, panels, a colour ramp for a swept parameter, a median line with its quartile
band, an annotated diverging heatmap, a title with a caption, a legend under the panels, and saving a
figure atomically (`rnnjax.results.save_figure`) before closing it; `legibility_problems` checks a figure
against the style.

The style (`STYLE`, set once when this module is imported, so every figure a command draws after importing
it follows it): text of `MIN_FONT_PT` = 8 pt and more at the saved size; a constrained layout, so the panels
fill the canvas; tick labels that never collide (`save` hides numeric tick labels that would, keeping the
major ones first); heatmap annotations in black or white, whichever contrasts more with the cell's colour;
a title in plain words saying what to see, with the protocol in a caption (`title_and_caption`) or in
summary.md.

Every helper draws from plain values, as read back from a run's saved metrics.json.
"""

from __future__ import annotations

import os
import textwrap

import matplotlib
import numpy as np

from rnnjax import results

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import image as mimage  # noqa: E402
from matplotlib import text as mtext  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.category import StrCategoryFormatter  # noqa: E402

__all__ = [
    "MIN_CONTRAST",
    "MIN_FONT_PT",
    "STRICT",
    "STYLE",
    "colors",
    "heatmap",
    "legend_below",
    "legibility_problems",
    "log_ticks",
    "nan_if_none",
    "panel_grid",
    "panels",
    "plt",
    "quartile_band",
    "save",
    "text_color_on",
    "tidy",
    "title_and_caption",
]

MIN_FONT_PT = 8.0  # the smallest text at the saved size (a README shows a figure at about its saved size)
# Contrast ratio (WCAG 2: (L_light + 0.05) / (L_dark + 0.05)) an annotation needs against its cell: 4.5:1,
# the "AA" level for ordinary text; black or white, whichever is higher, always reaches it (>= 4.58).
MIN_CONTRAST = 4.5

STYLE = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 11.0,
    "figure.labelsize": 9.0,
    "figure.constrained_layout.use": True,  # panels fill the canvas; titles, labels and legends get room
}
matplotlib.rcParams.update(STYLE)

# `save` checks every figure and refuses one with problems (after writing it, so it can be looked at) when
# this is true: set RNNJAX_STRICT_FIGURES=1, or `_plots.STRICT = True` in a test.
STRICT = os.environ.get("RNNJAX_STRICT_FIGURES", "") not in ("", "0")


def panels(rows: int, cols: int, width: float, height: float, **subplots_kw):
    """`(fig, axes)` with `axes` <Axes>[rows, cols] (always 2-D), each panel `width` x `height` inches, in
    a constrained layout; `subplots_kw` (e.g. sharex, sharey) go to `plt.subplots`."""
    return plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained", **subplots_kw
    )


def panel_grid(n: int, width: float, height: float, max_cols: int = 3, **subplots_kw):
    """`(fig, axes)` with `axes` a list of `n` panels, `width` x `height` inches each, in rows of at most
    `max_cols` (a wide row of small panels shrinks when shown at README width); the unused places of the
    last row are hidden."""
    cols = max(1, min(max_cols, n))
    fig, axes = panels(-(-n // cols), cols, width, height, **subplots_kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def colors(n: int) -> np.ndarray:
    """`n` colours <[n, 4]> (RGBA) along viridis, dark to light-green, for the values of a swept parameter
    (the yellow end is left out: it is hard to see on white)."""
    return plt.cm.viridis(np.linspace(0.0, 0.9, n))


def nan_if_none(values) -> np.ndarray:
    """<float64>[n] with None (how metrics.json stores NaN and ±inf) as NaN, which matplotlib leaves out."""
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


def quartile_band(ax, x, stats: dict, color, label: str | None = None, alpha: float = 0.25) -> None:
    """Draw `stats["median"]` against `x` as a line and the band from `stats["q25"]` to `stats["q75"]`
    behind it, in one colour (e.g. the output of `rnnjax.diagnostics.log_norm_quartiles`)."""
    ax.plot(x, nan_if_none(stats["median"]), color=color, label=label)
    ax.fill_between(x, nan_if_none(stats["q25"]), nan_if_none(stats["q75"]), color=color, alpha=alpha)


def _luminance(rgba) -> float:
    """Relative luminance (WCAG 2, sRGB) of a colour, 0 (black) to 1 (white)."""
    c = np.asarray(matplotlib.colors.to_rgb(rgba), np.float64)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def _contrast(a, b) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (same) to 21 (black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def text_color_on(background) -> str:
    """Black or white: whichever contrasts more with `background` (a matplotlib colour)."""
    return "black" if _contrast("black", background) >= _contrast("white", background) else "white"


def heatmap(ax, grid, xticks, yticks, *, fmt: str = "{:.3f}", cmap: str = "RdBu_r"):
    """Show `grid` <[rows, cols]> (NaN allowed) with a colour scale symmetric about zero, each cell
    annotated with its value (`fmt`) or "n/a" for NaN, in black or white by the cell's luminance; returns
    the image, for `fig.colorbar`."""
    grid = np.asarray(grid, np.float64)
    lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    for (r, c), v in np.ndenumerate(grid):
        color = "black" if np.isnan(v) else text_color_on(image.to_rgba(v))
        ax.text(c, r, "n/a" if np.isnan(v) else fmt.format(v), ha="center", va="center", color=color)
    ax.set_xticks(range(len(xticks)), xticks)
    ax.set_yticks(range(len(yticks)), yticks)
    return image


def log_ticks(axis, values) -> None:
    """Put `axis` (e.g. `ax.xaxis`) on a log scale with its ticks at `values` (e.g. the sequence lengths
    swept), labelled as plain numbers (10, 30, 100), and no labels on minor ticks."""
    getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
    axis.set_major_locator(ticker.FixedLocator(sorted(set(values))))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _wrap(fig, text: str, size: float) -> str:
    """`text` wrapped to the figure's width at `size` pt (paragraphs kept)."""
    chars = max(30, int(fig.get_figwidth() * 72 / (0.6 * size)))  # a character is about 0.6 em wide
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def title_and_caption(fig, headline: str, caption: str | None = None) -> None:
    """The figure's title, `headline` (plain words: what the reader should see), and optionally a caption
    under the panels at `MIN_FONT_PT` (what the marks mean, the protocol), both wrapped to the figure's
    width so that neither widens the saved canvas."""
    fig.suptitle(_wrap(fig, headline, STYLE["figure.titlesize"]))
    if caption:
        fig.supxlabel(_wrap(fig, caption, MIN_FONT_PT), fontsize=MIN_FONT_PT, color="0.25")


def legend_below(fig, axes, caption: str | None = None, **legend_kw):
    """One legend for the whole figure, under the panels (outside them, so it hides no data), from the
    labelled artists of `axes` (a label seen twice is listed once), in as many columns as fit the width;
    `caption` (what the marks mean, the protocol) heads it at `MIN_FONT_PT`, in place of a caption from
    `title_and_caption` (constrained layout would put the two in the same place)."""
    entries = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        if caption:
            fig.supxlabel(_wrap(fig, caption, MIN_FONT_PT), fontsize=MIN_FONT_PT, color="0.25")
        return None
    longest = max(len(label) for label in entries)
    per_column = (longest * 0.6 + 4) * MIN_FONT_PT  # pt: the text and the handle beside it
    ncol = max(1, min(len(entries), int(fig.get_figwidth() * 72 // per_column)))
    legend_kw = dict(loc="outside lower center", ncol=ncol, frameon=False) | legend_kw
    if caption:
        legend_kw |= dict(title=_wrap(fig, caption, MIN_FONT_PT), title_fontsize=MIN_FONT_PT)
    legend = fig.legend(list(entries.values()), list(entries), **legend_kw)
    if caption:
        legend.get_title().set_color("0.25")
    return legend


# ---------------------------------------------------------------------------------------------
# Tick labels that never collide


class _Thinned(ticker.Formatter):
    """A formatter that labels only the ticks at `keep` (their values) and leaves the others blank."""

    def __init__(self, inner: ticker.Formatter, keep: list[float]):
        self.inner, self.keep = inner, np.asarray(keep, np.float64)

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def _kept(self, value) -> bool:
        return bool(np.isclose(self.keep, value, rtol=1e-9, atol=1e-300).any())

    def set_locs(self, locs):
        self.inner.set_locs(locs)

    def format_ticks(self, values):
        labels = self.inner.format_ticks(values)
        return [label if self._kept(v) else "" for v, label in zip(values, labels)]

    def __call__(self, x, pos=None):
        return self.inner(x, pos) if self._kept(x) else ""

    def get_offset(self):
        return self.inner.get_offset()

    def format_data_short(self, value):
        return self.inner.format_data_short(value)


def _drawn_texts(fig) -> list:
    """Every text artist of `fig` that drawing it puts on the canvas (visible, in view, not empty), after
    the layout has settled; a text drawn twice (e.g. a tick label re-used) is listed once."""
    renderer = fig.canvas.get_renderer()  # the one `fig.canvas.draw` draws with
    drawing, drawn = [], {}
    original_draw = mtext.Text.draw

    def draw(self, r):
        drawing.append(self)
        try:
            return original_draw(self, r)
        finally:
            drawing.pop()

    def draw_text(gc, x, y, s, *args, **kwargs):  # a line of text reaching the canvas
        if drawing and s.strip():
            drawn.setdefault(id(drawing[-1]), drawing[-1])
        return type(renderer).draw_text(renderer, gc, x, y, s, *args, **kwargs)

    mtext.Text.draw, renderer.draw_text = draw, draw_text
    try:
        fig.canvas.draw()  # the layout settles first, then everything is drawn
    finally:
        mtext.Text.draw = original_draw
        del renderer.draw_text
    return list(drawn.values())


def _corners(text, renderer) -> np.ndarray:
    """<float64>[4, 2] the corners (pixels) of the rectangle `text` covers, rotated with it."""
    box = text.get_window_extent(renderer)
    angle = text.get_rotation() % 90.0
    if np.isclose(angle, 0.0):
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    rotation = text.get_rotation()
    text.set_rotation(0.0)
    try:
        flat = text.get_window_extent(renderer)
    finally:
        text.set_rotation(rotation)
    theta = np.deg2rad(rotation)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [flat.width / 2, flat.height / 2]
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return half @ turn.T + [box.x0 + box.width / 2, box.y0 + box.height / 2]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """How far (pixels) two convex polygons <[k, 2]> interpenetrate; <= 0 when they do not (the
    separating-axis test over the edge normals of both)."""
    depth = np.inf
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for nx, ny in np.stack([-edges[:, 1], edges[:, 0]], axis=1):
            norm = np.hypot(nx, ny)
            if norm == 0:
                continue
            pa, pb = a @ [nx / norm, ny / norm], b @ [nx / norm, ny / norm]
            depth = min(depth, min(pa.max(), pb.max()) - max(pa.min(), pb.min()))
    return float(depth)


def _close_pairs(boxes: list, gap: float) -> list[tuple[int, int]]:
    """The pairs (i < j) of polygons <[k, 2]> whose upright bounding boxes come closer than `gap` pixels
    (negative: overlap by more than -gap); the candidates for `_overlap`, found at once."""
    if len(boxes) < 2:
        return []
    lo = np.array([b.min(axis=0) for b in boxes])  # [n, 2]
    hi = np.array([b.max(axis=0) for b in boxes])
    depth = np.minimum(hi[:, None], hi[None]) - np.maximum(lo[:, None], lo[None])  # [n, n, 2]
    i, j = np.nonzero(np.triu((depth > -gap).all(axis=-1), k=1))
    return list(zip(i.tolist(), j.tolist()))


def _tick_labels(fig) -> dict:
    """{id(tick label text): (axis, value, is_major)} for every tick of every axes of `fig`."""
    labels = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for major, ticks in ((True, axis.majorTicks), (False, axis.minorTicks)):
                for tick in ticks:
                    for label in (tick.label1, tick.label2):
                        labels[id(label)] = (axis, tick.get_loc(), major)
    return labels


def tidy(fig) -> None:
    """Hide the numeric tick labels that would collide with a neighbour on the same axis, keeping major
    ticks before minor ones and, among each, the lower values first (e.g. the "2×10¹ 3×10¹ 4×10¹" a log
    axis spanning less than a decade labels); category labels are left alone (the checker reports them)."""
    drawn = _drawn_texts(fig)
    renderer, ticks = fig.canvas.get_renderer(), _tick_labels(fig)  # the ticks exist once drawn
    by_axis: dict = {}
    for text in drawn:
        if id(text) in ticks:
            axis, value, major = ticks[id(text)]
            by_axis.setdefault(id(axis.major), (axis, []))[1].append((not major, value, text))
    categories = (ticker.FixedFormatter, StrCategoryFormatter, _Thinned)
    for axis, labels in by_axis.values():
        boxes = [_corners(text, renderer) for _, _, text in labels]
        gap = 0.3 * labels[0][2].get_fontsize()  # pixels at the figure's dpi; about a third of a character
        crowded = any(_overlap(boxes[i], boxes[j]) > -gap for i, j in _close_pairs(boxes, gap))
        if not crowded or isinstance(axis.get_major_formatter(), categories):
            continue
        kept = []
        for (_, value, _), box in sorted(zip(labels, boxes), key=lambda item: item[0][:2]):
            if all(_overlap(box, other) <= -gap for _, other in kept):
                kept.append((value, box))
        keep = [value for value, _ in kept]
        axis.set_major_formatter(_Thinned(axis.get_major_formatter(), keep))
        axis.set_minor_formatter(_Thinned(axis.get_minor_formatter(), keep))


# ---------------------------------------------------------------------------------------------
# The checker


def _roles(fig) -> dict:
    """{id(text): what the text is, in words} for the texts whose role a reader would name."""
    roles = {}
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                roles[id(tick.label1)] = roles[id(tick.label2)] = f"{name} tick label"
            roles[id(axis.label)] = f"{name} label"
            roles[id(axis.offsetText)] = f"{name} offset"
        for t in (ax.title, ax._left_title, ax._right_title):
            roles[id(t)] = "axes title"
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            roles[id(legend.get_title())] = "legend title"
            roles.update({id(t): "legend text" for t in legend.get_texts()})
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        if getattr(fig, name, None) is not None:
            roles[id(getattr(fig, name))] = name.strip("_")
    return roles


def _describe(text, roles: dict) -> str:
    s = " ".join(text.get_text().split())
    return f"{roles.get(id(text), 'text')} {s[:40] + '…' if len(s) > 40 else s!r}"


def _background(text):
    """The colour behind `text` where it sits on an image (a heatmap's cell), else None."""
    ax = text.axes
    if ax is None or text.get_transform() is not ax.transData:
        return None
    x, y = text.get_position()
    for image in ax.get_images():
        if not isinstance(image, mimage.AxesImage):
            continue
        data = image.get_array()
        left, right, bottom, top = image.get_extent()
        rows, cols = data.shape[:2]
        first, last = (top, bottom) if image.origin == "upper" else (bottom, top)  # rows 0 and -1's edges
        c = int(np.floor((x - left) / (right - left) * cols))
        r = int(np.floor((y - first) / (last - first) * rows))
        if 0 <= r < rows and 0 <= c < cols:
            if np.ma.is_masked(data[r, c]) or not np.isfinite(data[r, c]):
                return ax.get_facecolor()
            return image.to_rgba(data[r, c])
    return None


def legibility_problems(fig, min_size: float = MIN_FONT_PT) -> list[str]:
    """What makes `fig` hard to read, one line each (empty: none): a text drawn below `min_size` pt, two
    texts that overlap, a text that reaches beyond the figure (saving it widens the canvas and shrinks the
    panels), an annotation on a heatmap cell with less than `MIN_CONTRAST` contrast. Only texts that
    drawing puts on the canvas count (hidden ticks, ticks outside the view, hidden axes and empty strings do
    not); a rotated text is its rotated rectangle."""
    texts = _drawn_texts(fig)
    renderer, roles = fig.canvas.get_renderer(), _roles(fig)
    problems = []
    small: dict = {}
    for t in texts:
        if t.get_fontsize() < min_size - 1e-9:
            small.setdefault((roles.get(id(t), "text"), t.get_fontsize()), []).append(t)
    for (_, size), group in small.items():
        more = f" and {len(group) - 1} more" if len(group) > 1 else ""
        problems.append(f"{_describe(group[0], roles)}{more}: {size:g} pt, below {min_size:g} pt")
    boxes = [_corners(t, renderer) for t in texts]
    for i, j in _close_pairs(boxes, -0.5):
        if _overlap(boxes[i], boxes[j]) > 0.5:  # pixels: more than rounding
            problems.append(f"{_describe(texts[i], roles)} overlaps {_describe(texts[j], roles)}")
    (x0, y0), (x1, y1) = fig.bbox.get_points()
    for t, box in zip(texts, boxes):
        beyond = max(x0 - box[:, 0].min(), y0 - box[:, 1].min(), box[:, 0].max() - x1, box[:, 1].max() - y1)
        if beyond > 0.5:
            problems.append(
                f"{_describe(t, roles)} reaches {beyond / fig.dpi:.2f} in beyond the figure (the saved "
                "canvas widens and the panels shrink)"
            )
    for t in texts:
        behind = _background(t)
        if behind is not None and _contrast(t.get_color(), behind) < MIN_CONTRAST:
            problems.append(
                f"{_describe(t, roles)}: contrast {_contrast(t.get_color(), behind):.1f}:1 with its cell, "
                f"below {MIN_CONTRAST:g}:1"
            )
    return problems


def save(fig, path: str | os.PathLike) -> None:
    """`tidy` `fig`, save it as a PNG at `path` atomically, then close it (figures are not kept open between
    plots); with `STRICT`, raise ValueError naming the file and its `legibility_problems`."""
    tidy(fig)
    problems = legibility_problems(fig) if STRICT else []
    results.save_figure(fig, path)
    plt.close(fig)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
