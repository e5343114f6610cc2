"""Weight conversion between rnnjax cells and PyTorch `nn.RNN` (tanh or relu), `nn.LSTM` and `nn.GRU`, of
any `num_layers`, `bidirectional`, `batch_first` and `bias`; `unroll_converted` runs a converted stack
exactly as the torch module's `forward` does.

    import numpy as np, torch
    from rnnjax import interop

    net = torch.nn.LSTM(input_size=5, hidden_size=8, num_layers=2, bidirectional=True, batch_first=True)
    cells, params = interop.from_torch(net)                # one Cell and one params value per layer
    xs = np.random.default_rng(0).standard_normal((3, 7, 5), dtype=np.float32)   # (B, T, I)
    ys, (h_n, c_n) = interop.unroll_converted(cells, params, xs, batch_first=True)  # like net(xs)
    expected, _ = net(torch.from_numpy(xs))
    assert np.allclose(ys, expected.detach().numpy(), atol=1e-5)
    back = interop.to_torch(cells, params, batch_first=True)   # an nn.LSTM with the weights loaded

How torch's parameters map onto rnnjax's. Wi, Wh, bi, bh are torch's weight_ih_l{k}, weight_hh_l{k},
bias_ih_l{k}, bias_hh_l{k} (`_reverse` for the backward direction); ᵀ transposes; [n] selects the
candidate block; G = len(cell.gates) gate blocks (1, 4, 3 for simple, LSTM and GRU cells); "–" means the
field does not exist.

| torch layer | Gates   | w_ih [I,G·H] | w_hh [H,G·H] | b [G·H]             | b_hn [H] |
|-------------|---------|--------------|--------------|---------------------|----------|
| RNN, LSTM   | i,f,g,o | Wiᵀ          | Whᵀ          | bi + bh             | –        |
| GRU         | r,z,n   | Wiᵀ          | Whᵀ          | r,z: bi + bh; n: bi | bh[n]    |

Writing back (`to_torch`): a bias the function sees only as a sum cannot be split again, so the sum goes
to bias_ih and bias_hh holds zeros, except for the GRU's b_hn: bi = b, bh = 0 (GRU: bh = 0‖0‖b_hn).

Carries: torch h_n / c_n are [L·D, B, H] with layer k, direction d at index k·D + d (see
`unroll_converted`). torch is imported only inside the functions that need it; this module's name does
not shadow it, since imports are absolute.

`SUPPORTED` lists the kinds converted here (the rows above); any other kind is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from rnnjax import _checks
from rnnjax.cells import Cell, LSTMCarry, RNNCarry
from rnnjax.interop._common import (
    RESET_BEFORE_WHY,
    as_array,
    check_cell_params,
    check_shape,
    either,
    gate_names,
    gru_recurrent_bias,
    kind_with_blocks,
    make_cell,
    make_params,
    sum_gru_biases,
    supported,
)
from rnnjax.unrolling import BidirectionalCarry, BidirectionalParams, unroll_stack

__all__ = ["from_torch", "to_torch", "unroll_converted"]


class TorchLayer(NamedTuple):
    """How torch lays out the cells of one rnnjax kind (a row of the module docstring's table)."""

    module: str  # its class in torch.nn
    nonlinearities: tuple[str, ...]  # values of the module's `nonlinearity` option; () if it has none (tanh)
    carry: type  # the rnnjax carry; its fields (h[, c]) are torch's states (h_0[, c_0]), in order
    # (bias_ih, bias_hh) <[G·H]> each -> rnnjax's (b <[G·H]>, b_hn <[H]> or None)
    read_biases: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    # (params, b as NumPy) -> the bias_hh <[G·H]> written back beside bias_ih = b
    recurrent_bias: Callable[[Any, np.ndarray], np.ndarray]


def _summed_biases(b_ih: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, None]:
    return b_ih + b_hh, None  # the function sees only the sum


def _zero_recurrent_bias(params, b: np.ndarray) -> np.ndarray:
    return np.zeros_like(b)  # the whole sum went to bias_ih


def _gru_recurrent_bias(params, b: np.ndarray) -> np.ndarray:
    return gru_recurrent_bias(params.b_hn, b.dtype)  # 0‖0‖b_hn: b_hn sits inside r ⊙ (·), as in rnnjax


# The kinds this module converts: rnnjax kind -> its torch layout.
SUPPORTED: dict[str, TorchLayer] = {
    "simple": TorchLayer("RNN", ("tanh", "relu"), RNNCarry, _summed_biases, _zero_recurrent_bias),
    "lstm": TorchLayer("LSTM", (), LSTMCarry, _summed_biases, _zero_recurrent_bias),
    "gru": TorchLayer("GRU", (), RNNCarry, sum_gru_biases, _gru_recurrent_bias),
}

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_TORCH_MODES = {  # torch's RNNBase.mode: (rnnjax cell kind, nonlinearity)
    "RNN_TANH": ("simple", "tanh"),
    "RNN_RELU": ("simple", "relu"),
    "LSTM": ("lstm", None),
    "GRU": ("gru", None),
}
_SIMPLE_NAMES = ("rnn", "simplernn")  # what torch and Keras call the simple cell


def _kind(name: str, kind) -> str:
    """A kind of `SUPPORTED` from a kind or a library's name for it ("rnn", "lstm", "gru"...)."""
    lower = kind.lower() if isinstance(kind, str) else None
    if lower in _SIMPLE_NAMES:
        return "simple"
    if lower not in SUPPORTED:
        supported(name, kind, SUPPORTED, __name__)  # raises, naming the kinds converted here
    return lower


def _either(names: tuple[str, ...]) -> str:
    """The names quoted and joined, e.g. "'tanh' or 'relu'"."""
    return either(map(repr, names))


def _blocks_hint() -> str:
    """'1 (nn.RNN), 3 (nn.GRU) or 4 (nn.LSTM)': the gate blocks of each supported torch module."""
    return either(sorted(f"{len(gate_names(kind))} (nn.{spec.module})" for kind, spec in SUPPORTED.items()))


_DIRECTION_NAMES = {1: ("",), 2: (".forward", ".backward")}  # by number of directions D


def _suffix(layer: int, direction: int) -> str:
    """The state_dict key suffix of a layer and direction (1: backward)."""
    return f"_l{layer}{'_reverse' if direction else ''}"


def _directions(layer) -> tuple:
    """(forward,) or (forward, backward): the params or carries of one layer."""
    if isinstance(layer, (BidirectionalParams, BidirectionalCarry)):
        return layer.forward, layer.backward
    return (layer,)


def _torch_state(module_or_state_dict, kind, nonlinearity):
    """(state dict as NumPy arrays, kind, nonlinearity or None) from a torch module or a mapping."""
    if isinstance(module_or_state_dict, Mapping):
        state = {k: as_array(f"module_or_state_dict[{k!r}]", v) for k, v in module_or_state_dict.items()}
        return state, (None if kind is None else _kind("kind", kind)), nonlinearity
    try:
        import torch
    except ImportError:
        raise TypeError(
            "module_or_state_dict: expected a state_dict mapping (torch is not installed), got "
            f"{type(module_or_state_dict).__name__}"
        ) from None
    module = module_or_state_dict
    if not isinstance(module, torch.nn.RNNBase) or module.mode not in _TORCH_MODES:
        raise TypeError(
            "module_or_state_dict: expected torch.nn.RNN, LSTM or GRU (or a state_dict mapping), got "
            f"{type(module).__name__}"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"module_or_state_dict: LSTM with proj_size={module.proj_size} is not supported: rnnjax's LSTM "
            "feeds back h itself, not a projection of it (its h has the size of c)"
        )
    module_kind, module_nl = _TORCH_MODES[module.mode]
    if kind is not None and _kind("kind", kind) != module_kind:
        raise ValueError(
            f"kind: given {kind!r} but the module is a torch {type(module).__name__} ({module_kind})"
        )
    if nonlinearity is not None and module_nl is not None and nonlinearity != module_nl:
        raise ValueError(f"nonlinearity: given {nonlinearity!r} but the module uses {module_nl!r}")
    state = {k: as_array(f"module.{k}", v) for k, v in module.state_dict().items()}
    return state, module_kind, module_nl


def from_torch(
    module_or_state_dict,
    *,
    kind: str | None = None,
    nonlinearity: str | None = None,
    reset_after: bool = True,
    prefix: str = "",
) -> tuple[tuple[Cell, ...], tuple[Any, ...]]:
    """Convert a PyTorch `nn.RNN` (tanh or relu), `nn.LSTM` or `nn.GRU` into rnnjax cells and params.

    Any `num_layers`, `bidirectional`, `batch_first` (a property of the call, see `unroll_converted`) and
    `bias` are supported. Biases: rnnjax stores b_ih + b_hh (GRU: b_ih + b_hh for r and z, b_in alone for
    n, and b_hn separately); with `bias=False` the biases are zeros. Dropout between layers (training
    only) is not part of the weights and is not converted.

    Args:
      module_or_state_dict: a torch module, or its `state_dict()` (tensors or NumPy arrays) with keys
        `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}[_reverse]` and optionally `bias_ih_l{k}[_reverse]`,
        `bias_hh_l{k}[_reverse]`; weight_ih <[G·H, I_k]>, weight_hh <[G·H, H]>, biases <[G·H]>.
      kind: "rnn" (or "simple"), "lstm" or "gru" (the keys of `SUPPORTED`). For a state_dict it is inferred
        from weight_hh's G (1, 4 or 3 gate blocks; only these kinds are considered); for a module it is
        read from the module (if given it must agree).
      nonlinearity: "tanh" or "relu", needed for a state_dict of an nn.RNN (which does not record it).
      reset_after: must be True: torch's GRU is the reset-after form, which a reset_after=False rnnjax
        cell cannot represent (raises ValueError).
      prefix: for a state_dict, only keys starting with it are used, with it removed (e.g. "encoder.rnn.").
    Returns:
      `(cells, params)`: tuples with one entry per layer. A unidirectional layer's params are
      `SimpleParams`, `LSTMParams` or `GRUParams` (w_ih <[I_k, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, GRU b_hn
      <[H]>) in the state_dict's dtype; a bidirectional layer's are `BidirectionalParams(forward, backward)`.
      Run them like the torch module with `unroll_converted`.
    """
    _checks.check_bool("reset_after", reset_after)
    if reset_after is not True:
        raise ValueError(f"reset_after: {RESET_BEFORE_WHY.format(lib='torch.nn.GRU')}; got {reset_after!r}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix: expected a str, got {type(prefix).__name__}")
    if prefix and not isinstance(module_or_state_dict, Mapping):
        raise TypeError(f"prefix: only applies to a state_dict, got {prefix!r} with a module")
    if prefix:
        module_or_state_dict = {
            k[len(prefix) :]: v for k, v in module_or_state_dict.items() if k.startswith(prefix)
        }
    state, kind, nonlinearity = _torch_state(module_or_state_dict, kind, nonlinearity)

    # Parse the keys: which layers, directions and tensors are there.
    entries: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for key, value in state.items():
        m = _TORCH_KEY.match(key)
        if m is None:
            raise ValueError(
                f"module_or_state_dict: unexpected key {key!r}; expected weight_ih_l{{k}}, weight_hh_l{{k}}, "
                "bias_ih_l{k}, bias_hh_l{k} (optionally with _reverse); use prefix= to select a sub-module"
            )
        if m.group(1) == "weight_hr":
            raise ValueError(
                f"module_or_state_dict: {key!r} belongs to an LSTM with proj_size != 0, which is not "
                "supported: rnnjax's LSTM feeds back h itself, not a projection of it"
            )
        entries.setdefault((int(m.group(2)), 1 if m.group(3) else 0), {})[m.group(1)] = value
    if not entries:
        raise ValueError("module_or_state_dict: no weight_ih_l0 / weight_hh_l0 found (empty state_dict?)")
    num_layers = max(k for k, _ in entries) + 1
    D = 2 if any(d for _, d in entries) else 1
    has_bias = "bias_ih" in entries.get((0, 0), {})
    needed = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
    for k in range(num_layers):
        for d in range(D):
            got = entries.get((k, d), {})
            missing = [n + _suffix(k, d) for n in needed if n not in got]
            extra = [n + _suffix(k, d) for n in got if n not in needed]
            if missing or extra:
                raise ValueError(
                    f"module_or_state_dict: inconsistent keys for a {num_layers}-layer "
                    f"{'bidirectional ' if D == 2 else ''}{'biased' if has_bias else 'bias-free'} RNN: "
                    f"missing {missing}, unexpected {extra}"
                )

    w_hh0 = entries[(0, 0)]["weight_hh"]
    if w_hh0.ndim != 2 or w_hh0.shape[1] < 1 or w_hh0.shape[0] % w_hh0.shape[1]:
        raise ValueError(
            f"module_or_state_dict['weight_hh_l0']: expected shape [G·H, H] with G one of {_blocks_hint()}, "
            f"got {w_hh0.shape}"
        )
    H = w_hh0.shape[1]
    G = w_hh0.shape[0] // H
    if kind is None:
        kind = kind_with_blocks(G, SUPPORTED)
        if kind is None:
            raise ValueError(
                f"module_or_state_dict['weight_hh_l0']: shape {w_hh0.shape} has {G} gate blocks of H={H}; "
                f"expected {_blocks_hint()}"
            )
    elif len(gate_names(kind)) != G:
        raise ValueError(
            f"kind: given {kind!r} ({len(gate_names(kind))} gate blocks) but weight_hh_l0 of shape "
            f"{w_hh0.shape} has {G} gate blocks of hidden size {H}"
        )
    spec = SUPPORTED[kind]
    activation = "tanh"
    if spec.nonlinearities:
        if nonlinearity is None:
            raise ValueError(
                f"nonlinearity: a state_dict of an nn.{spec.module} does not record its nonlinearity; pass "
                f"nonlinearity={_either(spec.nonlinearities)}"
            )
        if nonlinearity not in spec.nonlinearities:
            raise ValueError(f"nonlinearity: expected {_either(spec.nonlinearities)}, got {nonlinearity!r}")
        activation = nonlinearity
    elif nonlinearity not in (None, "tanh"):
        raise ValueError(
            f"nonlinearity: nn.{spec.module} has no nonlinearity option (it uses tanh), got {nonlinearity!r}"
        )

    dtype = w_hh0.dtype
    cells, params = [], []
    w_ih0 = entries[(0, 0)]["weight_ih"]
    if w_ih0.ndim != 2:
        raise ValueError(
            f"module_or_state_dict['weight_ih_l0']: expected shape [{G * H}, input_size], got {w_ih0.shape}"
        )
    input_size = w_ih0.shape[1]
    for k in range(num_layers):
        I_k = input_size if k == 0 else D * H
        directions = []
        for d in range(D):
            sfx = _suffix(k, d)
            e = entries[(k, d)]
            for n in needed:
                name = f"module_or_state_dict['{n}{sfx}']"
                if e[n].dtype != dtype:
                    raise TypeError(f"{name}: expected dtype {dtype}, got {e[n].dtype}")
                want = {"weight_ih": (G * H, I_k), "weight_hh": (G * H, H)}.get(n, (G * H,))
                why = f", input size {I_k}" if n == "weight_ih" else ""
                check_shape(name, e[n], want, f" ({G} gate blocks, H={H}{why})")
            zeros = np.zeros(G * H, dtype)
            b_ih, b_hh = (e["bias_ih"], e["bias_hh"]) if has_bias else (zeros, zeros)
            b, b_hn = spec.read_biases(b_ih, b_hh)
            directions.append(make_params(kind, e["weight_ih"].T, e["weight_hh"].T, b, b_hn))
        cells.append(make_cell(kind, H, dtype, activation=activation))
        params.append(directions[0] if D == 1 else BidirectionalParams(*directions))
    return tuple(cells), tuple(params)


def _check_stack(cells, params) -> tuple[tuple[Cell, ...], tuple[Any, ...], TorchLayer, int, int, int]:
    """Validate a torch-like stack; returns (cells, params, its kind's TorchLayer, H, D, input_size)."""
    if isinstance(cells, Cell):
        cells, params = (cells,), (params,)
    if not isinstance(cells, Sequence) or not cells:
        raise TypeError(
            f"cells: expected a Cell or a non-empty sequence of Cells, got {type(cells).__name__}"
        )
    if not isinstance(params, Sequence) or hasattr(params, "_fields"):  # one params value is a NamedTuple
        raise TypeError(
            f"params: expected a sequence with one params value per layer, got {type(params).__name__}"
        )
    cells, params = tuple(cells), tuple(params)
    if len(cells) != len(params):
        raise ValueError(
            f"params: expected one params value per cell ({len(cells)} cells), got {len(params)}"
        )
    first = cells[0]  # checked to be a Cell first, at k = 0 below
    if isinstance(first, Cell):  # every layer must have its kind (checked below), so check it once here
        supported("cells", first.kind, SUPPORTED, __name__)
    D = 2 if isinstance(params[0], BidirectionalParams) else 1
    input_size = None
    for k, (cell, p) in enumerate(zip(cells, params)):
        if not isinstance(cell, Cell):
            raise TypeError(f"cells[{k}]: expected an rnnjax.cells.Cell, got {type(cell).__name__}")
        for attr in ("kind", "hidden_size", "activation", "reset_after"):
            if getattr(cell, attr) != getattr(first, attr):
                raise ValueError(
                    f"cells[{k}]: every layer of a torch-style stack needs the same {attr}; layer 0 has "
                    f"{getattr(first, attr)!r}, layer {k} has {getattr(cell, attr)!r}"
                )
        if isinstance(p, BidirectionalParams) != (D == 2):
            raise ValueError(
                f"params[{k}]: layer 0 is {'bi' if D == 2 else 'uni'}directional, so every layer must be; "
                f"got {type(p).__name__}"
            )
        sizes = [
            check_cell_params(
                f"cells[{k}]", f"params[{k}]{_DIRECTION_NAMES[D][d]}", cell, q, SUPPORTED, __name__
            )[0]
            for d, q in enumerate(_directions(p))
        ]
        if len(set(sizes)) != 1:
            raise ValueError(f"params[{k}]: forward and backward input sizes differ: {sizes}")
        if k == 0:
            input_size = sizes[0]
        elif sizes[0] != D * first.hidden_size:
            raise ValueError(
                f"params[{k}]: layer {k} must read layer {k - 1}'s output of size {D}·H = "
                f"{D * first.hidden_size}, but its w_ih has input size {sizes[0]}"
            )
    return cells, params, SUPPORTED[first.kind], first.hidden_size, D, input_size


def unroll_converted(cells, params, xs, hx=None, *, batch_first: bool = False):
    """Run a stack of layers exactly as `torch.nn.RNN`/`LSTM`/`GRU.forward` does (in eval mode).

    Layer k reads layer k-1's output; a bidirectional layer's output is [forward | backward] on the
    feature axis, as in torch. Works for any stack whose layers share kind and hidden size (e.g. the
    output of `from_torch`, or cells built in rnnjax for `to_torch`).

    Args:
      cells: a Cell or a sequence of L Cells (one per layer).
      params: one params value per layer; `BidirectionalParams(forward, backward)` for bidirectional
        stacks (D = 2), plain params otherwise (D = 1).
      xs: <float>[T, B, I] (or [B, T, I] if `batch_first`), or unbatched <float>[T, I].
      hx: None (zeros), or as torch takes it: h_0 <float>[L·D, B, H] for RNN/GRU, `(h_0, c_0)` for
        LSTM ([L·D, H] each for unbatched xs); entry k·D + d is layer k, direction d (1 = backward).
      batch_first: layout of xs and of the returned output, as torch's `batch_first`.
    Returns:
      `(output, h_n)` for RNN/GRU or `(output, (h_n, c_n))` for LSTM, like torch: output
      <float>[T, B, D·H] (or [B, T, D·H]; [T, D·H] unbatched) and h_n, c_n <float>[L·D, B, H]
      ([L·D, H] unbatched).
    """
    cells, params, spec, H, D, input_size = _check_stack(cells, params)
    _checks.check_bool("batch_first", batch_first)
    L = len(cells)
    xs = _checks.check_float_array("xs", xs)
    if xs.ndim not in (2, 3) or xs.shape[-1] != input_size:
        raise ValueError(
            f"xs: expected [T, B, {input_size}] ([B, T, {input_size}] if batch_first) or unbatched "
            f"[T, {input_size}] (input_size of layer 0), got shape {xs.shape}"
        )
    unbatched = xs.ndim == 2
    time_major = unbatched or not batch_first
    batch_shape = () if unbatched else (xs.shape[1] if time_major else xs.shape[0],)
    want = (L * D, *batch_shape, H)

    carries = None if hx is None else _initial_carries(hx, spec, cells[0].kind, D, want)
    layers = [cell if D == 1 else (cell, cell) for cell in cells]
    finals, ys = unroll_stack(layers, params, xs, carries, time_major=time_major)
    # One stacked array per carry field, entry k·D + d for layer k, direction d: h_n (and c_n); torch
    # returns a lone h_n as an array and several states as a tuple.
    stacked = [jnp.stack(field) for field in zip(*(c for final in finals for c in _directions(final)))]
    return ys, (tuple(stacked) if len(stacked) > 1 else stacked[0])


def _initial_carries(hx, spec: TorchLayer, kind: str, D: int, want: tuple[int, ...]) -> list:
    """torch's hx (h_0, or (h_0, c_0) for an LSTM, each of shape `want` = (L·D, *batch, H), entry k·D + d
    for layer k, direction d) as one initial carry per layer."""
    names = tuple(f"{field}_0" for field in spec.carry._fields)  # torch's names: (h_0,) or (h_0, c_0)
    if len(names) == 1:
        if isinstance(hx, (tuple, list)):
            raise TypeError(
                f"hx: a {kind} stack expected one array h_0 of shape {want}, got a {type(hx).__name__}"
            )
        hx = (hx,)
    elif not isinstance(hx, (tuple, list)) or len(hx) != len(names):
        raise TypeError(
            f"hx: an {spec.module} stack expected a pair ({', '.join(names)}), got {type(hx).__name__}"
        )
    states = [jnp.asarray(a) for a in hx]
    for name, a in zip(names, states):
        if a.shape != want:
            raise ValueError(
                f"hx ({name}): expected shape {want} (num_layers·directions, *batch, H), got {a.shape}"
            )
    per_direction = [spec.carry(*(s[i] for s in states)) for i in range(want[0])]
    if D == 1:
        return per_direction
    return [BidirectionalCarry(*per_direction[i : i + 2]) for i in range(0, want[0], 2)]


_TORCH_DTYPES = ("float16", "float32", "float64")


def to_torch(cells, params, *, batch_first: bool = False, bias: bool = True):
    """Build a PyTorch `nn.RNN`, `nn.LSTM` or `nn.GRU` holding rnnjax weights.

    rnnjax's single bias goes into bias_ih and bias_hh is zero (GRU: bias_hh = [0, 0, b_hn]), since the
    original torch split of a summed bias is not recoverable; the function is the same.

    Args:
      cells: a Cell or a sequence of L Cells sharing kind, hidden size H and activation (simple cells
        need "tanh" or "relu"; GRUs need reset_after=True).
      params: matching params (one per layer; `BidirectionalParams` for a bidirectional stack); layer
        k ≥ 1 must take D·H inputs. Float16/32/64.
      batch_first: the module's `batch_first`.
      bias: the module's `bias`; with False every rnnjax bias must be exactly zero.
    Returns:
      A torch module (in the params' dtype, training mode as torch creates it) with the weights loaded;
      its `state_dict()` has weight_ih_l{k} <[G·H, I_k]>, weight_hh_l{k} <[G·H, H]>, bias_ih_l{k},
      bias_hh_l{k} <[G·H]> (and `_reverse` twins).
    """
    cells, params, spec, H, D, input_size = _check_stack(cells, params)
    cell = cells[0]
    lib = f"torch.nn.{spec.module}"
    if cell.reset_after is False:  # None for kinds without the option
        raise ValueError(f"cells: cannot convert to {lib}: {RESET_BEFORE_WHY.format(lib=lib)}")
    if cell.activation not in (spec.nonlinearities or ("tanh",)):
        raise ValueError(
            f"cells: {lib} supports nonlinearity {_either(spec.nonlinearities or ('tanh',))}, got "
            f"activation {cell.activation!r}"
        )
    _checks.check_bool("bias", bias)
    _checks.check_bool("batch_first", batch_first)
    dtype = np.asarray(_directions(params[0])[0].w_ih).dtype
    if dtype.name not in _TORCH_DTYPES:
        raise TypeError(f"params: expected one of {_TORCH_DTYPES} for torch, got {dtype}")

    state = {}
    for k, p in enumerate(params):
        for d, q in enumerate(_directions(p)):
            sfx = _suffix(k, d)
            where = f"params[{k}]{_DIRECTION_NAMES[D][d]}"
            arrays = [np.asarray(a) for a in q if a is not None]
            if any(a.dtype != dtype for a in arrays):
                raise TypeError(
                    f"{where}: expected every array in dtype {dtype}, got {[str(a.dtype) for a in arrays]}"
                )
            w_ih, w_hh, b = (np.asarray(a) for a in q[:3])
            b_hh = spec.recurrent_bias(q, b)
            state["weight_ih" + sfx] = w_ih.T
            state["weight_hh" + sfx] = w_hh.T
            if bias:
                state["bias_ih" + sfx], state["bias_hh" + sfx] = b, b_hh
            elif np.any(b) or np.any(b_hh):
                raise ValueError(f"bias: False, but {where} has non-zero biases (b or b_hn); pass bias=True")
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"to_torch needs PyTorch (pip install -e '.[compare]'): {e}") from e
    cls = getattr(torch.nn, spec.module)
    options = {"nonlinearity": cell.activation} if spec.nonlinearities else {}
    module = cls(
        input_size,
        H,
        num_layers=len(cells),
        bias=bias,
        batch_first=batch_first,
        bidirectional=D == 2,
        dtype=getattr(torch, dtype.name),
        **options,
    )
    module.load_state_dict(
        {k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()}, strict=True
    )
    return module
