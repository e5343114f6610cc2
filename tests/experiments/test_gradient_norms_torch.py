"""`gradient_norms --preset pytorch` against PyTorch itself: the decay rates of ‖∂L_T/∂h_t‖ at PyTorch's
default initialisation, computed once by the experiment (JAX, the `pytorch` preset's initialisers) and once
with `torch.nn.RNN/GRU/LSTM` modules at their own default init and `torch.autograd`, under the same protocol
(x_t ~ scale·N(0, I), L_T = ⟨u, h_T⟩ with u a random unit vector, float32, the same fit window). The draws
differ (two random generators), so the two means must agree within the seed spread. Skipped without torch.
"""

import json

import numpy as np
import pytest

from experiments import gradient_norms
from rnnjax import diagnostics

INSTALL = "install the compare extra: pip install -e '.[compare]'"
# Two means of independent draws agree within this many standard errors of their difference.
SEED_SPREAD_SE = 3.0


def torch_rates(torch, name: str, hidden: int, inputs: int, length: int, seeds: int, scale: float):
    """Per seed, the decay rate of ‖∂L_T/∂h_t‖ (log10 per step of lag) of a PyTorch module at its default
    initialisation: `nn.RNN` (tanh), `nn.GRU` or `nn.LSTM` (forget-gate bias +1 for "lstm-fb1"), stepped
    one input at a time so that every h_t keeps its gradient; fitted on `fit_bounds(float32)`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            if name == "simple-tanh":
                module = torch.nn.RNN(inputs, hidden, nonlinearity="tanh")
            elif name == "gru":
                module = torch.nn.GRU(inputs, hidden)
            else:
                module = torch.nn.LSTM(inputs, hidden)
                if name == "lstm-fb1":
                    with torch.no_grad():
                        module.bias_ih_l0[hidden : 2 * hidden] += 1.0  # gates i, f, g, o
            xs = scale * torch.randn(length, 1, inputs)
            u = torch.randn(hidden)
            u = u / u.norm()
            zero = torch.zeros(1, 1, hidden)
            state = (zero, zero) if name.startswith("lstm") else zero
            hs = []
            for t in range(length):
                _, state = module(xs[t : t + 1], state)
                h = state[0] if name.startswith("lstm") else state
                h.retain_grad()  # ∂L/∂h_t, the cell state c_t held fixed (as the experiment measures)
                hs.append(h)
            (hs[-1].reshape(-1) @ u).backward()
            grads = np.stack([h.grad.reshape(-1).numpy() for h in reversed(hs)])  # lag 0 first
            fit = diagnostics.decay_rate(
                np.arange(length), diagnostics.log10_norm(grads), bounds=diagnostics.fit_bounds(np.float32)
            )
            rates.append(fit.slope)
        return np.asarray(rates)
    finally:
        torch.set_num_threads(threads)


def test_preset_pytorch_rates_match_torch_modules(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch", reason=f"torch is not installed; {INSTALL}")
    monkeypatch.chdir(tmp_path)
    names = ("simple-tanh", "gru", "lstm-fb0", "lstm-fb1")
    hidden, inputs, length, seeds, scale = 16, 4, 60, 8, 1.0
    cfg = gradient_norms.Config(
        cells=names,
        gains=(1.0,),
        input_scales=(scale,),
        lengths=(length,),
        seeds=seeds,
        hidden_size=hidden,
        input_size=inputs,
        preset="pytorch",
        linear_float64=False,
        progress=False,
        run="pt",
    )
    run = gradient_norms.main(cfg)
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["decay"][names[0]]) == ["pytorch"]  # the init axis is the preset's own W_hh
    for name in names:
        ours = np.asarray(m["decay"][name]["pytorch"][str(scale)]["1.0"][str(length)]["slopes"])
        theirs = torch_rates(torch, name, hidden, inputs, length, seeds, scale)
        assert np.isfinite(ours).all() and np.isfinite(theirs).all()
        se = np.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs))
        assert abs(ours.mean() - theirs.mean()) <= SEED_SPREAD_SE * se, (name, ours.mean(), theirs.mean(), se)
