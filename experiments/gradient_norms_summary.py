"""The text of an `experiments.gradient_norms` run, from its saved metrics.json only: `headline` (the
finding, printed by the command and heading summary.md) and `summary_text` (the protocol, the float limits,
the decay-rate tables of the classic cells, and the long-memory kinds' rates against their predictions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.gradient_norms_plots import BASIS, OWN, classic, drive, reference, window_text
from rnnjax.command.plots import nan_if_none

# The cells in the words of the headline, in its order.
PLAIN_NAMES = {
    "simple-tanh": "tanh RNN",
    "simple-sigmoid": "sigmoid RNN",
    "lstm-fb0": "LSTM, forget bias 0",
    "lstm-fb1": "LSTM, forget bias 1",
    "gru": "GRU",
    "simple-linear": "linear RNN",
    "orthogonal-linear": "orthogonal, b = 0",
    "orthogonal": "orthogonal (modReLU)",
    "lru": "LRU",
    "mingru": "minGRU",
    "minlstm": "minLSTM",
}
# The variants whose rate is exact by construction: left out of "keeps the signal longest".
EXACT = ("simple-linear", "orthogonal-linear")


def _rate(d: dict) -> str:
    """A summary-table entry: mean ± sd of the decay rate, the lags fitted, and the seeds that reached
    exactly zero or overflowed."""
    text = "n/a" if d["slope_mean"] is None else f"{d['slope_mean']:.4f} ± {d['slope_std']:.4f}"
    if d["fit_lags"] is not None:
        lo, hi = d["fit_lags"]
        text += f" [0–{hi}]" if lo == hi else f" [0–{lo}…{hi}]"
    if d["seeds_with_underflow"]:
        text += f" (zero in {d['seeds_with_underflow']} seeds from lag {d['first_underflow_lag']})"
    if d["seeds_nonfinite"]:
        text += f" ({d['seeds_nonfinite']} seeds overflowed)"
    return text


def _protocol(m: dict) -> str:
    return (
        f"{m['seeds']} seeds (key {m['seed']}), H={m['hidden_size']}, I={m['input_size']}, "
        f"preset {m['preset']}, "
        f"loss {'<u, h_T>' if m['loss'] == 'linear' else 'cross-entropy of a readout of h_T'}, inputs "
        f"x_t = s·z_t, z_t ~ N(0, I) i.i.d.; backend {m['backend']['platform']} "
        f"({m['backend']['device_kind']}), {m['dtype']}."
    )


def _underflow_lines(m: dict) -> list[str]:
    b = m["backend"]
    lines = [
        f"Fit window: {window_text(m)} (`diagnostics.fit_bounds`, the same on every backend); the lags "
        "fitted are in brackets [0–min…max over seeds].",
        "",
    ]
    if b["flushes_subnormals"]:
        why = (
            f"this backend flushes float32 subnormals to zero (jit(x·0.5) at the smallest normal "
            f"{b['float32_smallest_normal']:.3g} gives 0.0), so a gradient entry that falls below "
            f"{b['float32_smallest_normal']:.3g} becomes exactly 0 and the norm reaches 0 soon after it "
            "falls below ~1e-38"
        )
    else:
        why = (
            "this backend keeps float32 subnormals (jit(x·0.5) at the smallest normal gives "
            f"{b['smallest_normal_times_half']:.3g}: gradual underflow), so the norm reaches 0 only below "
            "the smallest subnormal, ~1.4e-45"
        )
    lines.append(f"Exact zeros ('zero in k seeds from lag N' below): {why}.")
    if m["dtype"] == "float32" and "simple-linear" in m["decay"]:
        T, s = str(m["T_max"]), reference(m)
        for init, gains in m["decay"]["simple-linear"].items():
            for g, d in gains[s].items():
                if d[T]["first_underflow_lag"] is not None:
                    lines.append(_zero_line(m, init, g, d[T], m["curves"]["simple-linear"][init][s][g]))
    return [*lines, ""]


def _zero_line(m: dict, init: str, g: str, d: dict, c: dict) -> str:
    """Where the linear cell's float32 norm reached exactly zero, its fit, and the float64 run beside it."""
    rho = np.mean(np.log10(m["spectral_radius"]["simple-linear"][init][g]))
    return (
        f"- linear cell, {init}, g={g}: float32 exactly zero from lag {d['first_underflow_lag']} (earliest "
        f"seed; smallest nonzero norm 10^{c['smallest_finite']:.2f}); fitted lags 0–{d['fit_lags'][0]}…"
        f"{d['fit_lags'][1]}, slope "
        f"{d['slope_mean']:.6f} (mean log10 ρ(W_hh) = {rho:.6f})" + _float64_note(m, init, g)
    )


def _float64_note(m: dict, init: str, g: str) -> str:
    ref = (m.get("float64_linear") or {}).get(init, {}).get(g)
    if ref is None:
        return ""
    zero = (
        "no exact zero"
        if ref["first_underflow_lag"] is None
        else f"zero from lag {ref['first_underflow_lag']}"
    )
    return (
        f"; float64 on the same matrices: slope {ref['slope_mean']:.6f}, {zero} within {m['T_max']} lags "
        f"(smallest norm 10^{ref['smallest_finite']:.1f})"
    )


def _radius_lines(m: dict) -> list[str]:
    """How closely each seed's linear-cell rate follows log10 ρ of its W_hh, per init and gain (reference
    scale; the float32 fit window, and the float64 rerun's full T where it ran)."""
    if "simple-linear" not in m["decay"]:
        return []
    T, s = str(m["T_max"]), reference(m)
    lines = ["Spectral radius ρ (largest |eigenvalue|, per gate block, max over blocks), linear cell:"]
    for init, gains in m["decay"]["simple-linear"].items():
        parts, ratio = [], []
        for g, d in gains[s].items():
            log_rho = np.log10(m["spectral_radius"]["simple-linear"][init][g])
            dev = np.nanmax(np.abs(nan_if_none(d[T]["slopes"]) - log_rho))
            ratio += list(10**log_rho / float(g))
            part = f"g={g}: {dev:.2g} (lags 0–{d[T]['fit_lags'][0]}…{d[T]['fit_lags'][1]}"
            ref = (m.get("float64_linear") or {}).get(init, {}).get(g)
            if ref is not None and ref["slope_mean"] is not None:
                dev64 = np.nanmax(np.abs(nan_if_none(ref["slopes"]) - log_rho))
                part += f"; float64, lags 0–{ref['fit_lags'][1]}: {dev64:.2g}"
            parts.append(part + ")")
        lines.append(
            f"- {init} W: ρ/g median {np.median(ratio):.3f} (range {min(ratio):.3f}–{max(ratio):.3f}); "
            f"max over {m['seeds']} seeds of |rate − log10 ρ(W_hh)|: " + ", ".join(parts)
        )
    return [*lines, ""]


def _number(x: float) -> str:
    """A rate per step: 5 decimals, or 3 significant digits below 1e-3 (an exact 0 to float rounding)."""
    return f"{x:.5f}" if abs(x) >= 1e-3 else f"{x:.2e}"


def _mean_sd(values) -> str:
    v = nan_if_none(values)
    return "n/a" if not np.isfinite(v).any() else f"{_number(np.nanmean(v))} ± {_number(np.nanstd(v))}"


def _prediction_lines(m: dict) -> list[str]:
    """The long-memory kinds' rates against what each predicts for itself, one row per kind and input
    scale (means ± sd and worst cases over seeds), and the orthogonal linear cell's float64 rerun."""
    preds = m.get("predictions") or {}
    if not preds:
        return []
    T = m["T_max"]
    lines = [
        f"## Long-memory kinds at their own initialisation: measured against predicted (T={T})",
        "",
        f"Predicted: {BASIS['radius'][0]} (ρ the largest |eigenvalue| of `cell.recurrent_matrices`, from "
        "`diagnostics.recurrent_spectrum`) for the kinds with a fixed recurrent matrix, the exact long-lag "
        "rate of a cell linear in its carry with a normal W (orthogonal with b = 0, LRU: the slowest unit "
        "dominates; earlier lags decay faster, so every window's rate is at most log10 ρ), and an upper "
        "bound with modReLU (units at |z| < −b pass no gradient); compared with the "
        f"{BASIS['radius'][1]}. For the min cells (∂h_t/∂h_{{t−1}} = diag(keep_t), keep = 1 − z or f'): "
        f"{BASIS['gates'][0]} over the steps of the fit window, from `cell.gate_values` on the same "
        "inputs (the gradient of unit j at lag k is Π keep_j, so its rate is the mean of log10 keep_j: a "
        "geometric mean, and the slowest unit dominates); compared with the "
        f"{BASIS['gates'][1]}. log10 E[keep] (the arithmetic mean over units and steps, E[1 − z]) is shown "
        "for contrast: it overestimates the rate (Jensen) and ignores the spread over units.",
        "",
        "| cell | drive | fitted lags | rate, whole window | rate, last half | predicted | "
        "max over seeds \\|compared − predicted\\| | log10 E[keep] | max over seeds of rate − log10 γσ_max |",
        "|---" * 9 + "|",
    ]
    for name, p in preds.items():
        for s, e in p["scales"].items():
            dev = np.nanmax(np.abs(nan_if_none(e[p["compared"]]) - nan_if_none(e["predicted"])))
            keep = _mean_sd(e["log10_mean_keep"]) if "log10_mean_keep" in e else "—"
            bound = "—"
            if p.get("log10_sigma_max") is not None and p["gamma"] is not None:
                worst = nan_if_none(e["rate"]) - np.log10(p["gamma"]) - nan_if_none(p["log10_sigma_max"])
                bound = f"{np.nanmax(worst):.2e}"
            rates = " | ".join(_mean_sd(e[k]) for k in ("rate", "long_lag_rate", "predicted"))
            lags = f"0–{min(e['last_lag'])}…{max(e['last_lag'])}"
            label = name if p.get("linear", True) else f"{name} (bound)"
            lines.append(f"| {label} | {drive(m, s)} | {lags} | {rates} | {dev:.2e} | {keep} | {bound} |")
    exact = preds.get("orthogonal-linear", {}).get("float64")
    if exact is not None and exact["slope_mean"] is not None:
        lines += [
            "",
            f"orthogonal-linear rerun in float64 on the same draws (T={T}, drive 1, lags 0–"
            f"{exact['fit_lags'][1]}): rate {exact['slope_mean']:.2e} ± {exact['slope_std']:.2e}, max |rate| "
            f"{np.nanmax(np.abs(nan_if_none(exact['slopes']))):.2e} (exactly 0: WᵀW = I, modReLU(z, 0) = z).",
        ]
    return [*lines, ""]


def summary_text(m: dict) -> str:
    """The summary: protocol, float limits and backend, ρ, then the decay rates at the longest T as one
    Markdown table per init and input scale (classic cells by gains), then the long-memory kinds against
    their predictions."""
    T = str(m["T_max"])
    lines = [f"Protocol: {_protocol(m)}", "", *_underflow_lines(m), *_radius_lines(m)]
    gammas = [f"{n} γ = {g:g}" for n, g in m["gamma"].items() if g is not None]
    if gammas:
        lines += [
            f"Pascanu bound rate ≤ log10(γ σ_max), γ = max|φ'| measured on the cell: {', '.join(gammas)}.",
            "",
        ]
    lines += [
        f"Decay rate of ‖∂L_T/∂h_t‖ per step of lag, log10 units (mean ± sd over seeds), T={T}.",
        "Negative: vanishing; positive: exploding; 'n/a': no point inside the window.",
        "",
    ]
    names = classic(m)
    for init, per_scale in (m["decay"][names[0]] if names else {}).items():
        for s, gains in per_scale.items():
            lines += [
                f"### {init} W_hh, {drive(m, s)}",
                "",
                "| cell | " + " | ".join(f"g={g}" for g in gains) + " |",
            ]
            lines.append("|---" * (len(gains) + 1) + "|")
            for name in names:
                row = " | ".join(_rate(m["decay"][name][init][s][g][T]) for g in gains)
                lines.append(f"| {name} | {row} |")
            lines.append("")
    return "\n".join([*lines, *_prediction_lines(m)])


def _closest(values, target: float) -> str:
    """The key of `values` (numbers as strings) closest to `target`."""
    return min(values, key=lambda v: abs(float(v) - target))


def _power(exponent: float, fine: bool = False) -> str:
    """x10^e in plain text, e rounded to what a reader needs (the factor it stands for); `fine`: a rate per
    step below 0.01 in magnitude to 5 decimals (the slow kinds' rates, which 2 decimals round to zero)."""
    if abs(exponent) >= 10:
        return f"x10^{exponent:+.0f}"
    if abs(exponent) >= 1:
        return f"x10^{exponent:+.1f}"
    return f"x10^{exponent:+.5f}" if fine and abs(exponent) < 0.01 else f"x10^{exponent:+.2f}"


def headline(m: dict, out: Path) -> str:
    """The finding of a run in a dozen lines and one per cell, from its saved metrics: per cell, the decay
    rate of the gradient norm with lag at gain 1 and input drive 1 (the closest swept values; the
    long-memory kinds at their own initialisation, beside the rate they predict), what it means after 100
    and 1,000 steps, and the linear cells' rates against their exact values; then where the figures and
    the full tables are."""
    T = str(m["T_max"])
    cells = [c for c in PLAIN_NAMES if c in m["decay"]]
    names = classic(m) or cells
    init = "orthogonal" if "orthogonal" in m["decay"][names[0]] else next(iter(m["decay"][names[0]]))
    s = _closest(m["decay"][names[0]][init], 1.0)
    g = _closest(m["decay"][names[0]][init][s], 1.0)
    preds = m.get("predictions") or {}
    if init == OWN:
        at = f"At each kind's own initialisation, input drive s = {s}"
    else:
        own = " (long-memory kinds: their own init, g = 1)" if preds else ""
        at = f"At initialisation, gain g = {g}, input drive s = {s}, {init} W_hh{own}"
    lines = [
        "Why plain RNNs forget: the gradient reaching t from the loss at T shrinks (or grows) by a fixed "
        "factor per step of lag T - t (extrapolated at this rate).",
        f"{at}; mean of {m['seeds']} seeds, H = {m['hidden_size']}, T = {T}, {m['backend']['platform']} "
        f"{m['dtype']}:",
        "",
        f"  {'cell':<21} {'per step':>13} {'after 100 steps':>16} {'after 1,000 steps':>18}"
        + ("   measured vs predicted rate" if preds else ""),
    ]
    rated = {}
    for c in cells:
        d = (m["decay"][c][OWN][s]["1.0"] if c in preds else m["decay"][c][init][s][g])[T]
        if d["slope_mean"] is None:
            lines.append(f"  {PLAIN_NAMES[c]:<21} {'n/a (no finite norm to fit)':>49}")
            continue
        r = rated[c] = d["slope_mean"]
        row = f"  {PLAIN_NAMES[c]:<21} {_power(r, True):>13} {_power(100 * r):>16} {_power(1000 * r):>18}"
        if c in preds:  # the rate each prediction is compared with (summary.md), and the prediction
            e = preds[c]["scales"][s]
            pair = (np.nanmean(nan_if_none(e[k])) for k in (preds[c]["compared"], "predicted"))
            row += "   {} vs {}".format(*map(_number, pair))
        lines.append(row)
    if "simple-linear" in cells and init == "orthogonal" and m["preset"] == "default":
        by_gain = m["decay"]["simple-linear"][init][s]
        exact = [
            f"g = {gain}: {d[T]['slope_mean']:+.5f} (log10 g = {np.log10(float(gain)):+.5f})"
            for gain, d in by_gain.items()
            if d[T]["slope_mean"] is not None
        ]
        lines += ["", "Linear RNN, orthogonal W_hh = g Q: exactly log10 g per step; measured:"]
        lines += ["  " + "; ".join(exact[i : i + 2]) for i in range(0, len(exact), 2)]
    if "orthogonal-linear" in rated:
        f64 = preds["orthogonal-linear"].get("float64") or {}
        rerun = "" if f64.get("slope_mean") is None else f", float64 rerun {f64['slope_mean']:+.1e}"
        lines.append(
            f"Orthogonal W, b = 0 (modReLU = identity): exactly 0 per step; measured "
            f"{rated['orthogonal-linear']:+.1e} ({m['dtype']}){rerun}"
        )
    rated = {c: r for c, r in rated.items() if c not in EXACT}
    if len(rated) > 1:
        slow, fast = max(rated, key=rated.get), min(rated, key=rated.get)
        lines += ["", f"Keeps the signal longest: {PLAIN_NAMES[slow]}; loses it fastest: {PLAIN_NAMES[fast]}"]
    lines += ["", f"Figures: {out}/*.png; every rate, window and seed count: {out / 'summary.md'}"]
    return "\n".join(lines)


def summary(m: dict, out: Path) -> str:
    """summary.md: the headline, then every table (`summary_text`)."""
    return f"```\n{headline(m, out)}\n```\n\n{summary_text(m)}"
