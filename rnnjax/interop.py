"""Weight conversion between rnnjax cells and PyTorch (`nn.RNN`, `nn.LSTM`, `nn.GRU`), Keras 3
(`SimpleRNN`, `LSTM`, `GRU`, `Dense`) and Flax linen (`SimpleCell`, `LSTMCell`, `OptimizedLSTMCell`,
`GRUCell`), so a model trained in one library can be run, checked or studied in another.

    import numpy as np, torch
    from rnnjax import interop

    net = torch.nn.LSTM(input_size=5, hidden_size=8, num_layers=2, bidirectional=True, batch_first=True)
    cells, params = interop.from_torch(net)                # one Cell and one params value per layer
    xs = np.random.default_rng(0).standard_normal((3, 7, 5), dtype=np.float32)   # (B, T, I)
    ys, (h_n, c_n) = interop.unroll_converted(cells, params, xs, batch_first=True)  # like net(xs)
    expected, _ = net(torch.from_numpy(xs))
    assert np.allclose(ys, expected.detach().numpy(), atol=1e-5)
    back = interop.to_torch(cells, params, batch_first=True)   # an nn.LSTM with the weights loaded

Every conversion is exact: weights are transposed, split or reordered, never recomputed, except that a
pair of biases the function only sees as a sum is stored as that sum (rounded once). Conversions that
cannot reproduce the same function (a reset-before GRU into a reset-after library, Flax's residual
`SimpleCell`, an LSTM with `proj_size`, activations other than the ones listed) raise a ValueError
that says why. torch and keras are imported only inside the functions that need them.

How each library's parameters map onto rnnjax's. Wi, Wh, bi, bh are torch's weight_ih_l{k},
weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (`_reverse` for the backward direction); K, R, B are Keras'
kernel, recurrent_kernel, bias, and B0, B1 the rows (input; recurrent) of a reset_after=True GRU's bias;
i*.kernel are Flax's per-gate input Dense kernels concatenated in gate order (ii‖if‖ig‖io, ir‖iz‖in), h*
likewise; ᵀ transposes; P(·) reorders Keras GRU blocks z,r,h into r,z,n (it swaps the first two H-wide
blocks and is its own inverse); [n] and [h] select the candidate block; G = 1, 4, 3 gate blocks for
simple, LSTM and GRU cells; "–" means the field does not exist, "None" that it is None.

| Library layer                | Gates   | w_ih [I,G·H] | w_hh [H,G·H] | b [G·H]                 | b_hn [H] |
|------------------------------|---------|--------------|--------------|-------------------------|----------|
| torch RNN, LSTM              | i,f,g,o | Wiᵀ          | Whᵀ          | bi + bh                 | –        |
| torch GRU                    | r,z,n   | Wiᵀ          | Whᵀ          | r,z: bi + bh; n: bi     | bh[n]    |
| Keras SimpleRNN, LSTM        | i,f,c,o | K            | R            | B                       | –        |
| Keras GRU, reset_after=True  | z,r,h   | P(K)         | P(R)         | r,z: P(B0+B1); n: B0[h] | B1[h]    |
| Keras GRU, reset_after=False | z,r,h   | P(K)         | P(R)         | P(B)                    | None     |
| Keras Dense → DenseParams    |         | w = K        |              | b = B                   |          |
| Flax SimpleCell              |         | i.kernel     | h.kernel     | i.bias                  | –        |
| Flax (Optimized)LSTMCell     | i,f,g,o | i*.kernel    | h*.kernel    | h*.bias                 | –        |
| Flax GRUCell                 | r,z,n   | i*.kernel    | h*.kernel    | i*.bias                 | hn.bias  |

Writing back (`to_torch`, `to_keras`): a bias the function sees only as a sum cannot be split again, so
the sum goes to the input-side bias and the recurrent side holds zeros, except for the GRU's b_hn:
torch bi = b, bh = 0 (GRU: bh = 0‖0‖b_hn); Keras reset_after=True B0 = P(b), B1 = P(0‖0‖b_hn). The
other layers hold no sums and map back one to one. Hence rnnjax → library → rnnjax is bit-exact, while
library → rnnjax → library is bit-exact for every weight and for the summed biases, and the function
agrees to float32 rounding (~1e-7), since the library adds the two biases at run time and rnnjax once.

Carries: torch h_n / c_n are [L·D, B, H] with layer k, direction d at index k·D + d (see
`unroll_converted`); Keras LSTM states are [h, c] like `LSTMCarry(h, c)`; Flax's LSTM carry is (c, h),
converted by `carry_from_flax` / `carry_to_flax`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from rnnjax import cells as rnn_cells
from rnnjax.cells import Cell, GRUParams, LSTMCarry, LSTMParams, RNNCarry, SimpleParams
from rnnjax.readout import DenseParams
from rnnjax.unrolling import BidirectionalCarry, BidirectionalParams, unroll, unroll_bidirectional

__all__ = [
    "carry_from_flax",
    "carry_to_flax",
    "from_flax",
    "from_keras",
    "from_keras_dense",
    "from_torch",
    "to_flax",
    "to_keras",
    "to_keras_dense",
    "to_torch",
    "unroll_converted",
]

_NUM_BLOCKS = {"simple": 1, "lstm": 4, "gru": 3}
_PARAMS_TYPE = {"simple": SimpleParams, "lstm": LSTMParams, "gru": GRUParams}
_PERM_GRU = (1, 0, 2)  # Keras z, r, h <-> rnnjax r, z, n (its own inverse)

_RESET_BEFORE_WHY = (
    "a reset_after=False GRU computes the candidate as tanh(x W_in + b_in + (r ⊙ h) W_hn), while "
    "{lib} computes tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn)); these are different functions of the same "
    "weights and no weights of one form reproduce the other"
)


# --------------------------------------------------------------------------------------------
# Shared helpers


def _array(name: str, value) -> np.ndarray:
    """A floating-point NumPy array (torch tensors are detached and moved to the CPU first)."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - report any conversion failure with the argument's name
        raise TypeError(f"{name}: expected an array, got {type(value).__name__} ({e})") from None
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")
    return a


def _check_shape(name: str, a: np.ndarray, want: tuple[int, ...], why: str = "") -> None:
    if a.shape != tuple(want):
        raise ValueError(f"{name}: expected shape {tuple(want)}{why}, got {a.shape}")


def _blocks(a: np.ndarray, n: int) -> list[np.ndarray]:
    return np.split(a, n, axis=-1)


def _perm_gru(a: np.ndarray) -> np.ndarray:
    """Swap the first two of three H-wide blocks on the last axis (Keras z,r,h <-> rnnjax r,z,n)."""
    blocks = _blocks(a, 3)
    return np.concatenate([blocks[i] for i in _PERM_GRU], axis=-1)


def _jnp(a: np.ndarray):
    return jnp.asarray(a, dtype=a.dtype)


def _make_cell(kind: str, hidden_size: int, activation: str, dtype, reset_after: bool = True) -> Cell:
    if kind == "simple":
        return rnn_cells.simple(hidden_size, activation, dtype=dtype)
    if kind == "lstm":
        return rnn_cells.lstm(hidden_size, dtype=dtype)
    return rnn_cells.gru(hidden_size, reset_after=reset_after, dtype=dtype)


def _make_params(kind: str, w_ih, w_hh, b, b_hn=None):
    """rnnjax params from NumPy arrays already in rnnjax layout and gate order."""
    arrays = [_jnp(np.ascontiguousarray(w_ih)), _jnp(np.ascontiguousarray(w_hh)), _jnp(b)]
    if kind == "gru":
        return GRUParams(*arrays, None if b_hn is None else _jnp(b_hn))
    return _PARAMS_TYPE[kind](*arrays)


def _check_cell_params(cell_name: str, params_name: str, cell, params) -> tuple[int, int]:
    """Validate one (cell, params) pair; returns (input_size, hidden_size)."""
    if not isinstance(cell, Cell):
        raise TypeError(f"{cell_name}: expected an rnnjax.cells.Cell, got {type(cell).__name__}")
    kind, H = cell.kind, cell.hidden_size
    want_type = _PARAMS_TYPE.get(kind)
    if want_type is None:
        raise ValueError(f"{cell_name}: unknown cell kind {kind!r}; expected one of {sorted(_PARAMS_TYPE)}")
    if not isinstance(params, want_type):
        raise TypeError(
            f"{params_name}: a {kind} cell expected {want_type.__name__}, got {type(params).__name__}"
        )
    G = _NUM_BLOCKS[kind]
    w_ih, w_hh, b = (np.asarray(a) for a in params[:3])
    why = f" ({cell_name} has hidden_size={H}, {G} gate blocks)"
    if w_ih.ndim != 2:
        raise ValueError(f"{params_name}.w_ih: expected shape [input_size, {G * H}]{why}, got {w_ih.shape}")
    _check_shape(f"{params_name}.w_ih", w_ih, (w_ih.shape[0], G * H), why)
    _check_shape(f"{params_name}.w_hh", w_hh, (H, G * H), why)
    _check_shape(f"{params_name}.b", b, (G * H,), why)
    if kind == "gru":
        if cell.reset_after and params.b_hn is None:
            raise ValueError(
                f"{params_name}.b_hn: a reset_after=True GRU needs b_hn of shape ({H},), got None"
            )
        if cell.reset_after:
            _check_shape(f"{params_name}.b_hn", np.asarray(params.b_hn), (H,), f" (hidden_size={H})")
        elif params.b_hn is not None:
            raise ValueError(f"{params_name}.b_hn: a reset_after=False GRU has no b_hn, got an array")
    return w_ih.shape[0], H


# --------------------------------------------------------------------------------------------
# PyTorch

_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_TORCH_MODES = {
    "RNN_TANH": ("simple", "tanh"),
    "RNN_RELU": ("simple", "relu"),
    "LSTM": ("lstm", None),
    "GRU": ("gru", None),
}
_KIND_NAMES = {"rnn": "simple", "simple": "simple", "simplernn": "simple", "lstm": "lstm", "gru": "gru"}


def _kind(name: str, kind) -> str:
    if not isinstance(kind, str) or kind.lower() not in _KIND_NAMES:
        raise ValueError(f"{name}: expected one of 'rnn', 'lstm', 'gru', got {kind!r}")
    return _KIND_NAMES[kind.lower()]


def _torch_state(module_or_state_dict, kind, nonlinearity):
    """(state dict as NumPy arrays, kind, nonlinearity or None) from a torch module or a mapping."""
    if isinstance(module_or_state_dict, Mapping):
        state = {k: _array(f"module_or_state_dict[{k!r}]", v) for k, v in module_or_state_dict.items()}
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
    state = {k: _array(f"module.{k}", v) for k, v in module.state_dict().items()}
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
      kind: "rnn", "lstm" or "gru". For a state_dict it is inferred from weight_hh's G (1, 4 or 3 gate
        blocks); for a module it is read from the module (if given it must agree).
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
    if reset_after is not True:
        raise ValueError(f"reset_after: {_RESET_BEFORE_WHY.format(lib='torch.nn.GRU')}; got {reset_after!r}")
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
            missing = [f"{n}_l{k}{'_reverse' if d else ''}" for n in needed if n not in got]
            extra = [f"{n}_l{k}{'_reverse' if d else ''}" for n in got if n not in needed]
            if missing or extra:
                raise ValueError(
                    f"module_or_state_dict: inconsistent keys for a {num_layers}-layer "
                    f"{'bidirectional ' if D == 2 else ''}{'biased' if has_bias else 'bias-free'} RNN: "
                    f"missing {missing}, unexpected {extra}"
                )

    w_hh0 = entries[(0, 0)]["weight_hh"]
    if w_hh0.ndim != 2 or w_hh0.shape[1] < 1 or w_hh0.shape[0] % w_hh0.shape[1]:
        raise ValueError(
            "module_or_state_dict['weight_hh_l0']: expected shape [G·H, H] with G in (1, 3, 4), "
            f"got {w_hh0.shape}"
        )
    H = w_hh0.shape[1]
    G = w_hh0.shape[0] // H
    inferred = {1: "simple", 4: "lstm", 3: "gru"}.get(G)
    if inferred is None:
        raise ValueError(
            f"module_or_state_dict['weight_hh_l0']: shape {w_hh0.shape} has {G} gate blocks of H={H}; "
            "expected 1 (nn.RNN), 3 (nn.GRU) or 4 (nn.LSTM)"
        )
    if kind is None:
        kind = inferred
    elif kind != inferred:
        raise ValueError(
            f"kind: given {kind!r} ({_NUM_BLOCKS[kind]} gate blocks) but weight_hh_l0 of shape {w_hh0.shape} "
            f"has {G} gate blocks of hidden size {H}"
        )
    activation = "tanh"
    if kind == "simple":
        if nonlinearity is None:
            raise ValueError(
                "nonlinearity: a state_dict of an nn.RNN does not record its nonlinearity; pass "
                "nonlinearity='tanh' or 'relu'"
            )
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        activation = nonlinearity
    elif nonlinearity not in (None, "tanh"):
        raise ValueError(
            f"nonlinearity: only nn.RNN has a nonlinearity option, got {nonlinearity!r} for {kind}"
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
            sfx = f"_l{k}{'_reverse' if d else ''}"
            e = entries[(k, d)]
            for n, a in e.items():
                if a.dtype != dtype:
                    raise TypeError(
                        f"module_or_state_dict['{n}{sfx}']: expected dtype {dtype}, got {a.dtype}"
                    )
            _check_shape(
                f"module_or_state_dict['weight_ih{sfx}']",
                e["weight_ih"],
                (G * H, I_k),
                f" ({G} gate blocks, H={H}, input size {I_k})",
            )
            _check_shape(
                f"module_or_state_dict['weight_hh{sfx}']",
                e["weight_hh"],
                (G * H, H),
                f" ({G} gate blocks, H={H})",
            )
            if has_bias:
                for n in ("bias_ih", "bias_hh"):
                    _check_shape(
                        f"module_or_state_dict['{n}{sfx}']", e[n], (G * H,), f" ({G} gate blocks, H={H})"
                    )
                b_ih, b_hh = e["bias_ih"], e["bias_hh"]
            else:
                b_ih = b_hh = np.zeros(G * H, dtype)
            if kind == "gru":
                b = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
                directions.append(
                    _make_params(kind, e["weight_ih"].T, e["weight_hh"].T, b, b_hh[2 * H :].copy())
                )
            else:
                directions.append(_make_params(kind, e["weight_ih"].T, e["weight_hh"].T, b_ih + b_hh))
        cells.append(_make_cell(kind, H, activation, dtype))
        params.append(directions[0] if D == 1 else BidirectionalParams(*directions))
    return tuple(cells), tuple(params)


def _check_stack(cells, params) -> tuple[tuple[Cell, ...], tuple[Any, ...], str, int, int, int]:
    """Validate a torch-like stack; returns (cells, params, kind, H, D, input_size)."""
    if isinstance(cells, Cell):
        cells, params = (cells,), (params,)
    if not isinstance(cells, Sequence) or not cells:
        raise TypeError(
            f"cells: expected a Cell or a non-empty sequence of Cells, got {type(cells).__name__}"
        )
    if isinstance(params, (SimpleParams, LSTMParams, GRUParams, BidirectionalParams)) or not isinstance(
        params, Sequence
    ):
        raise TypeError(
            f"params: expected a sequence with one params value per layer, got {type(params).__name__}"
        )
    cells, params = tuple(cells), tuple(params)
    if len(cells) != len(params):
        raise ValueError(
            f"params: expected one params value per cell ({len(cells)} cells), got {len(params)}"
        )
    first = cells[0]
    if not isinstance(first, Cell):
        raise TypeError(f"cells[0]: expected an rnnjax.cells.Cell, got {type(first).__name__}")
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
        directions = (p.forward, p.backward) if D == 2 else (p,)
        sizes = [
            _check_cell_params(f"cells[{k}]", f"params[{k}]{suffix}", cell, q)[0]
            for suffix, q in zip((".forward", ".backward") if D == 2 else ("",), directions)
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
    return cells, params, first.kind, first.hidden_size, D, input_size


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
    cells, params, kind, H, D, input_size = _check_stack(cells, params)
    L = len(cells)
    xs = jnp.asarray(xs)
    if xs.ndim not in (2, 3) or xs.shape[-1] != input_size:
        raise ValueError(
            f"xs: expected [T, B, {input_size}] ([B, T, {input_size}] if batch_first) or unbatched "
            f"[T, {input_size}] (input_size of layer 0), got shape {xs.shape}"
        )
    unbatched = xs.ndim == 2
    time_major = unbatched or not batch_first
    batch_shape = () if unbatched else (xs.shape[1] if time_major else xs.shape[0],)
    want = (L * D, *batch_shape, H)

    if hx is None:
        states = None
    else:
        parts = ("h_0", "c_0") if kind == "lstm" else ("h_0",)
        if kind == "lstm":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: an LSTM stack expected a pair (h_0, c_0), got {type(hx).__name__}")
            arrays = [jnp.asarray(a) for a in hx]
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(
                    f"hx: a {kind} stack expected one array h_0 of shape {want}, got a {type(hx).__name__}"
                )
            arrays = [jnp.asarray(hx)]
        for name, a in zip(parts, arrays):
            if a.shape != want:
                raise ValueError(
                    f"hx ({name}): expected shape {want} (num_layers·directions, *batch, H), got {a.shape}"
                )
        states = arrays

    def initial(k, d):
        if states is None:
            return None
        i = k * D + d
        return LSTMCarry(states[0][i], states[1][i]) if kind == "lstm" else RNNCarry(states[0][i])

    finals = []
    ys = xs
    for k, (cell, p) in enumerate(zip(cells, params)):
        if D == 1:
            final, ys = unroll(cell, p, ys, initial(k, 0), time_major=time_major)
            finals.append(final)
        else:
            carry = None if states is None else BidirectionalCarry(initial(k, 0), initial(k, 1))
            final, ys = unroll_bidirectional(cell, cell, p, ys, carry, time_major=time_major)
            finals.extend([final.forward, final.backward])
    h_n = jnp.stack([c.h for c in finals])
    if kind == "lstm":
        return ys, (h_n, jnp.stack([c.c for c in finals]))
    return ys, h_n


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
    cells, params, kind, H, D, input_size = _check_stack(cells, params)
    cell = cells[0]
    if kind == "gru" and not cell.reset_after:
        raise ValueError(
            f"cells: cannot convert to torch.nn.GRU: {_RESET_BEFORE_WHY.format(lib='torch.nn.GRU')}"
        )
    if kind == "simple" and cell.activation not in ("tanh", "relu"):
        raise ValueError(
            f"cells: torch.nn.RNN supports nonlinearity 'tanh' or 'relu', got activation {cell.activation!r}"
        )
    if not isinstance(bias, bool):
        raise TypeError(f"bias: expected True or False, got {bias!r}")
    dtype = np.asarray(params[0].forward.w_ih if D == 2 else params[0].w_ih).dtype
    if dtype.name not in _TORCH_DTYPES:
        raise TypeError(f"params: expected one of {_TORCH_DTYPES} for torch, got {dtype}")

    state = {}
    for k, p in enumerate(params):
        for d, q in enumerate((p.forward, p.backward) if D == 2 else (p,)):
            sfx = f"_l{k}{'_reverse' if d else ''}"
            where = f"params[{k}]{('.forward', '.backward')[d] if D == 2 else ''}"
            arrays = [np.asarray(a) for a in q if a is not None]
            if any(a.dtype != dtype for a in arrays):
                raise TypeError(
                    f"{where}: expected every array in dtype {dtype}, got {[str(a.dtype) for a in arrays]}"
                )
            w_ih, w_hh, b = (np.asarray(a) for a in q[:3])
            b_hh = np.zeros_like(b)
            if kind == "gru":
                b_hh[2 * H :] = np.asarray(q.b_hn)
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
    cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    options = {"nonlinearity": cell.activation} if kind == "simple" else {}
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


# --------------------------------------------------------------------------------------------
# Keras 3

_KERAS_KINDS = {"simplernn": "simple", "lstm": "lstm", "gru": "gru"}
_KERAS_LAYER_NAMES = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
# Layer options that do not change the cell's equations or weights (training-time dropout, initialisers,
# regularisers, and how the layer iterates: go_backwards matches rnnjax's unroll(reverse=True) with the
# outputs flipped back).
_KERAS_RNN_IGNORED = frozenset(
    """name trainable dtype return_sequences return_state go_backwards stateful unroll dropout
    recurrent_dropout seed zero_output_for_mask kernel_initializer recurrent_initializer bias_initializer
    kernel_regularizer recurrent_regularizer bias_regularizer activity_regularizer kernel_constraint
    recurrent_constraint bias_constraint unit_forget_bias use_cudnn""".split()
)
_KERAS_DENSE_IGNORED = frozenset(
    """name trainable dtype kernel_initializer bias_initializer kernel_regularizer bias_regularizer
    activity_regularizer kernel_constraint bias_constraint lora_alpha""".split()
)


def _keras_activation(name: str, value) -> str:
    if value is None:
        return "linear"
    if isinstance(value, Mapping):  # a serialised custom function
        value = value.get("config", value)
    if callable(value):
        value = getattr(value, "__name__", repr(value))
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected an activation name or function, got {type(value).__name__}")
    return value.lower()


def _keras_layer(layer_kind, weights, layer_config):
    """Accept a Keras layer instance in place of (layer_kind, weights, config)."""
    if isinstance(layer_kind, str):
        return layer_kind, weights, layer_config
    if hasattr(layer_kind, "get_weights") and hasattr(layer_kind, "get_config"):
        if weights is not None or layer_config:
            raise TypeError(
                "weights: pass either a Keras layer alone or (layer_kind name, weights, **config), not both"
            )
        return type(layer_kind).__name__, layer_kind.get_weights(), layer_kind.get_config()
    raise TypeError(f"layer_kind: expected 'SimpleRNN', 'LSTM', 'GRU' or a Keras layer, got {layer_kind!r}")


def _check_config(config: Mapping, allowed: set, ignored: frozenset, layer: str) -> None:
    unknown = sorted(set(config) - allowed - ignored)
    if unknown:
        raise ValueError(
            f"layer_config: unknown option(s) {unknown} for Keras {layer}; rnnjax checks {sorted(allowed)} "
            "and ignores options that do not change the equations (initialisers, regularisers, dropout, ...)"
        )


def from_keras(layer_kind, weights=None, **layer_config) -> tuple[Cell, Any]:
    """Convert a Keras 3 `SimpleRNN`, `LSTM` or `GRU` layer's weights into an rnnjax cell and params.

    Keras GRU gate blocks are z, r, h (update gate first); they are reordered to rnnjax's r, z, n.
    Options that change the equations are checked: SimpleRNN `activation` in tanh / relu / linear (None);
    LSTM and GRU need `activation="tanh"` and `recurrent_activation="sigmoid"`; `use_bias` (False gives
    zero biases) and GRU `reset_after` (both forms are exact). `go_backwards=True` is accepted: run the
    cell with `unroll(..., reverse=True)` (rnnjax keeps outputs aligned with inputs; Keras returns them in
    reversed order).

    Args:
      layer_kind: "SimpleRNN", "LSTM" or "GRU" (case-insensitive), or a built Keras layer (then leave
        `weights` and `layer_config` out: they are read from it).
      weights: `layer.get_weights()`: [kernel <[I, G·H]>, recurrent_kernel <[H, G·H]>, bias] with bias
        <[G·H]>, or <[2, 3H]> (input bias; recurrent bias) for GRU reset_after=True; no bias when
        `use_bias=False`.
      **layer_config: the layer's options, e.g. `**layer.get_config()` (`units` is checked against the
        weights).
    Returns:
      `(cell, params)`: a `Cell` of hidden size H and its `SimpleParams`/`LSTMParams`/`GRUParams` in the
      weights' dtype (GRU reset_after=False gives a reset_after=False cell with b_hn None).
    """
    layer_kind, weights, layer_config = _keras_layer(layer_kind, weights, layer_config)
    kind = _KERAS_KINDS.get(layer_kind.lower()) if isinstance(layer_kind, str) else None
    if kind is None:
        raise ValueError(f"layer_kind: expected 'SimpleRNN', 'LSTM' or 'GRU', got {layer_kind!r}")
    layer = _KERAS_LAYER_NAMES[kind]
    allowed = {"units", "activation", "use_bias"} | ({"recurrent_activation"} if kind != "simple" else set())
    allowed |= {"reset_after"} if kind == "gru" else set()
    _check_config(layer_config, allowed, _KERAS_RNN_IGNORED, layer)

    activation = _keras_activation("activation", layer_config.get("activation", "tanh"))
    if kind == "simple":
        if activation not in ("tanh", "relu", "linear"):
            raise ValueError(
                f"activation: rnnjax's simple cell supports tanh, relu or linear, got {activation!r}"
            )
    elif activation != "tanh":
        raise ValueError(f"activation: rnnjax's {kind} cell uses tanh, got {activation!r}")
    if kind != "simple":
        recurrent = _keras_activation(
            "recurrent_activation", layer_config.get("recurrent_activation", "sigmoid")
        )
        if recurrent != "sigmoid":
            raise ValueError(f"recurrent_activation: rnnjax's {kind} gates use sigmoid, got {recurrent!r}")
    use_bias = layer_config.get("use_bias", True)
    reset_after = layer_config.get("reset_after", True)
    for name, value in (("use_bias", use_bias), ("reset_after", reset_after)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected True or False, got {value!r}")

    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected the list from layer.get_weights(), got {type(weights).__name__}")
    names = ["kernel", "recurrent_kernel"] + (["bias"] if use_bias else [])
    if len(weights) != len(names):
        hint = " (an unbuilt layer has none: build or call it first)" if not weights else ""
        raise ValueError(
            f"weights: Keras {layer} with use_bias={use_bias} has {len(names)} arrays {names}, "
            f"got {len(weights)}{hint}"
        )
    arrays = [_array(f"weights[{i}] ({n})", w) for i, (n, w) in enumerate(zip(names, weights))]
    kernel, recurrent_kernel = arrays[:2]
    G = _NUM_BLOCKS[kind]
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != G * recurrent_kernel.shape[0]:
        raise ValueError(
            f"weights[1] (recurrent_kernel): expected shape [H, {G}·H] for Keras {layer}, "
            f"got {recurrent_kernel.shape}"
        )
    H = recurrent_kernel.shape[0]
    units = layer_config.get("units", H)
    if units != H:
        raise ValueError(
            f"units: given {units!r} but weights[1] (recurrent_kernel) of shape "
            f"{recurrent_kernel.shape} has H={H}"
        )
    if kernel.ndim != 2:
        raise ValueError(f"weights[0] (kernel): expected shape [input_size, {G * H}], got {kernel.shape}")
    _check_shape("weights[0] (kernel)", kernel, (kernel.shape[0], G * H), f" (units={H}, {G} gate blocks)")
    dtype = kernel.dtype
    for i, a in enumerate(arrays):
        if a.dtype != dtype:
            raise TypeError(
                f"weights[{i}] ({names[i]}): expected dtype {dtype} like the kernel, got {a.dtype}"
            )
    two_biases = kind == "gru" and reset_after
    if use_bias:
        bias = arrays[2]
        _check_shape(
            "weights[2] (bias)",
            bias,
            (2, G * H) if two_biases else (G * H,),
            f" (units={H}{', reset_after=True: [input; recurrent]' if two_biases else ''})",
        )
    else:
        bias = np.zeros((2, G * H) if two_biases else (G * H,), dtype)

    if kind != "gru":
        return _make_cell(kind, H, activation, dtype), _make_params(kind, kernel, recurrent_kernel, bias)
    w_ih, w_hh = _perm_gru(kernel), _perm_gru(recurrent_kernel)
    cell = _make_cell(kind, H, activation, dtype, reset_after)
    if not reset_after:
        return cell, _make_params(kind, w_ih, w_hh, _perm_gru(bias))
    b_in, b_rec = _perm_gru(bias[0]), _perm_gru(bias[1])
    b = np.concatenate([b_in[: 2 * H] + b_rec[: 2 * H], b_in[2 * H :]])
    return cell, _make_params(kind, w_ih, w_hh, b, b_rec[2 * H :].copy())


def to_keras(cell: Cell, params, *, use_bias: bool = True) -> list[np.ndarray]:
    """rnnjax weights as the list `layer.set_weights` takes for Keras 3 `SimpleRNN`, `LSTM` or `GRU`.

    Build the layer with `units=cell.hidden_size`, the cell's activation (SimpleRNN) and, for a GRU,
    `reset_after=cell.reset_after`. A reset_after=True GRU's recurrent bias row is [0, 0, b_hn] (in Keras
    order z, r, h): the original input/recurrent split of the r and z biases is not recoverable.

    Args:
      cell: an rnnjax `Cell`.
      params: its params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, GRU b_hn <[H]>).
      use_bias: the layer's `use_bias`; with False every rnnjax bias must be exactly zero.
    Returns:
      [kernel <[I, G·H]>, recurrent_kernel <[H, G·H]>, bias] as NumPy arrays, with bias <[G·H]> or
      <[2, 3H]> for GRU reset_after=True, and no bias when `use_bias=False`.
    """
    _check_cell_params("cell", "params", cell, params)
    if not isinstance(use_bias, bool):
        raise TypeError(f"use_bias: expected True or False, got {use_bias!r}")
    H = cell.hidden_size
    w_ih, w_hh, b = (np.array(a) for a in params[:3])
    if cell.kind == "gru":
        w_ih, w_hh, b = _perm_gru(w_ih), _perm_gru(w_hh), _perm_gru(b)
        if cell.reset_after:
            b_rec = np.zeros_like(b)
            b_rec[2 * H :] = np.asarray(params.b_hn)
            b = np.stack([b, b_rec])
    if use_bias:
        return [w_ih, w_hh, b]
    if np.any(b):
        raise ValueError("use_bias: False, but params has non-zero biases (b or b_hn); pass use_bias=True")
    return [w_ih, w_hh]


def from_keras_dense(weights, **layer_config) -> DenseParams:
    """Convert a Keras `Dense` readout's weights into `rnnjax.readout.DenseParams`.

    Args:
      weights: `layer.get_weights()`: [kernel <[in, out]>, bias <[out]>], or [kernel] with use_bias=False.
      **layer_config: the layer's options (e.g. `**layer.get_config()`); `activation` must be linear
        (None), since `rnnjax.readout.dense` is h W + b; `units` is checked against the kernel.
    Returns:
      `DenseParams(w <[in, out]>, b <[out]>)` (b zeros without a bias).
    """
    _check_config(
        layer_config,
        {"units", "activation", "use_bias", "quantization_config", "lora_rank"},
        _KERAS_DENSE_IGNORED,
        "Dense",
    )
    activation = _keras_activation("activation", layer_config.get("activation"))
    if activation != "linear":
        raise ValueError(f"activation: rnnjax.readout.dense is linear (h W + b), got {activation!r}")
    for name in ("quantization_config", "lora_rank"):
        if layer_config.get(name):
            raise ValueError(
                f"{name}: quantised or LoRA Dense layers are not supported, got {layer_config[name]!r}"
            )
    use_bias = layer_config.get("use_bias", True)
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected the list from layer.get_weights(), got {type(weights).__name__}")
    n = 2 if use_bias else 1
    if len(weights) != n:
        raise ValueError(f"weights: Keras Dense with use_bias={use_bias} has {n} arrays, got {len(weights)}")
    kernel = _array("weights[0] (kernel)", weights[0])
    if kernel.ndim != 2:
        raise ValueError(f"weights[0] (kernel): expected shape [in, out], got {kernel.shape}")
    units = layer_config.get("units", kernel.shape[1])
    if units != kernel.shape[1]:
        raise ValueError(
            f"units: given {units!r} but weights[0] (kernel) of shape {kernel.shape} has {kernel.shape[1]}"
        )
    if use_bias:
        bias = _array("weights[1] (bias)", weights[1])
        _check_shape("weights[1] (bias)", bias, (kernel.shape[1],))
        if bias.dtype != kernel.dtype:
            raise TypeError(
                f"weights[1] (bias): expected dtype {kernel.dtype} like the kernel, got {bias.dtype}"
            )
    else:
        bias = np.zeros(kernel.shape[1], kernel.dtype)
    return DenseParams(_jnp(kernel), _jnp(bias))


def to_keras_dense(params: DenseParams, *, use_bias: bool = True) -> list[np.ndarray]:
    """`rnnjax.readout.DenseParams` as the list Keras `Dense.set_weights` takes.

    Args:
      params: `DenseParams(w <[in, out]>, b <[out]>)`.
      use_bias: the layer's `use_bias`; with False, b must be exactly zero.
    Returns:
      [kernel <[in, out]>, bias <[out]>] ([kernel] with use_bias=False) as NumPy arrays.
    """
    if not isinstance(params, DenseParams):
        raise TypeError(f"params: expected rnnjax.readout.DenseParams, got {type(params).__name__}")
    w, b = np.array(params.w), np.array(params.b)
    if w.ndim != 2:
        raise ValueError(f"params.w: expected shape [in, out], got {w.shape}")
    _check_shape("params.b", b, (w.shape[1],))
    if use_bias:
        return [w, b]
    if np.any(b):
        raise ValueError("use_bias: False, but params.b is non-zero; pass use_bias=True")
    return [w]


# --------------------------------------------------------------------------------------------
# Flax linen

_FLAX_KINDS = {"SimpleCell": "simple", "LSTMCell": "lstm", "OptimizedLSTMCell": "lstm", "GRUCell": "gru"}
_FLAX_GATES = {"lstm": "ifgo", "gru": "rzn"}


def _flax_function_name(fn) -> str:
    import jax

    names = {id(jnp.tanh): "tanh", id(jax.nn.relu): "relu", id(jax.nn.sigmoid): "sigmoid"}
    return names.get(id(fn), getattr(fn, "__name__", repr(fn)))


def _flax_settings(cell_type, activation, residual) -> tuple[str, str, int | None]:
    """(kind, activation, features or None) from a Flax cell instance, class or name."""
    import flax.linen as nn

    if isinstance(cell_type, str):
        name, module = cell_type, None
    elif isinstance(cell_type, type) and issubclass(cell_type, nn.Module):
        name, module = cell_type.__name__, None
    elif isinstance(cell_type, nn.Module):
        name, module = type(cell_type).__name__, cell_type
    else:
        raise TypeError(
            f"cell_type: expected a Flax cell, its class or its name, got {type(cell_type).__name__}"
        )
    kind = _FLAX_KINDS.get(name)
    if kind is None:
        raise ValueError(f"cell_type: expected one of {sorted(_FLAX_KINDS)}, got {name!r}")
    if module is None:
        act = "tanh" if activation is None else activation
        features = None
    else:
        if activation is not None or residual is not None:
            raise TypeError(
                "activation/residual: read from the Flax module; pass them only with a class or name"
            )
        act = _flax_function_name(module.activation_fn)
        residual = getattr(module, "residual", False)
        features = module.features
        if kind != "simple" and _flax_function_name(module.gate_fn) != "sigmoid":
            raise ValueError(
                f"cell_type.gate_fn: rnnjax's {kind} gates use sigmoid, "
                f"got {_flax_function_name(module.gate_fn)}"
            )
    if residual:
        raise ValueError(
            "cell_type: SimpleCell(residual=True) computes φ(x W_i + b + h W_h + h); rnnjax's simple cell "
            "has "
            "no residual term, and folding it into W_h + I would change the rounding, so it is not exact"
        )
    allowed = ("tanh", "relu", "linear") if kind == "simple" else ("tanh",)
    if act not in allowed:
        raise ValueError(
            f"activation: rnnjax's {kind} cell supports {allowed}, got {act!r} (for an identity "
            "activation_fn "
            "pass cell_type='SimpleCell', activation='linear')"
        )
    return kind, act, features


def _flax_dense(variables: Mapping, name: str, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    sub = variables.get(name)
    if not isinstance(sub, Mapping):
        raise ValueError(
            f"variables: expected a sub-dict {name!r} (a Dense's params), got keys {sorted(variables)}"
        )
    want = {"kernel", "bias"} if bias else {"kernel"}
    if set(sub) != want:
        raise ValueError(f"variables[{name!r}]: expected keys {sorted(want)}, got {sorted(sub)}")
    kernel = _array(f"variables[{name!r}]['kernel']", sub["kernel"])
    if kernel.ndim != 2:
        raise ValueError(f"variables[{name!r}]['kernel']: expected shape [in, H], got {kernel.shape}")
    b = _array(f"variables[{name!r}]['bias']", sub["bias"]) if bias else None
    return kernel, b


def from_flax(
    cell_type,
    variables,
    *,
    activation: str | None = None,
    residual: bool | None = None,
    reset_after: bool = True,
) -> tuple[Cell, Any]:
    """Convert Flax linen `SimpleCell`, `LSTMCell`, `OptimizedLSTMCell` or `GRUCell` params into rnnjax.

    All four are exact: Flax's LSTM puts the bias on the recurrent Dense (hi, hf, hg, ho) and its GRU is
    the reset-after form with the r, z, n biases on the input Denses and b_hn on `hn`: exactly rnnjax's
    GRUParams, with no sums.

    Args:
      cell_type: a Flax cell instance (its `activation_fn`, `gate_fn`, `residual` and `features` are
        checked), its class, or its name ("SimpleCell", "LSTMCell", "OptimizedLSTMCell", "GRUCell");
        classes and names assume Flax's default functions.
      variables: `{"params": {...}}` from `module.init`, or the inner params dict, with per-gate Dense
        kernels <[I, H]> (input side) and <[H, H]> (recurrent side) and biases <[H]> (see the table).
      activation: only with a class or name: the SimpleCell's activation, "tanh" (default), "relu" or
        "linear".
      residual: only with a class or name: must be falsy (SimpleCell(residual=True) is not representable).
      reset_after: must be True (Flax's GRUCell is reset-after; False raises ValueError).
    Returns:
      `(cell, params)`: an rnnjax `Cell` of hidden size H and its params in the variables' dtype.
    """
    if reset_after is not True:
        raise ValueError(
            f"reset_after: {_RESET_BEFORE_WHY.format(lib='flax.linen.GRUCell')}; got {reset_after!r}"
        )
    kind, act, features = _flax_settings(cell_type, activation, residual)
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a params dict, got {type(variables).__name__}")
    if "params" in variables:  # full variables; a cell's own params never has a sub-module "params"
        variables = variables["params"]
        if not isinstance(variables, Mapping):
            raise TypeError(f"variables['params']: expected a dict, got {type(variables).__name__}")
    if kind == "simple":
        (w_ih, b), (w_hh, _) = _flax_dense(variables, "i", True), _flax_dense(variables, "h", False)
        b_hn = None
        expected = {"i", "h"}
    else:
        gates = _FLAX_GATES[kind]
        has_input_bias = kind == "gru"
        ins = [_flax_dense(variables, "i" + g, has_input_bias) for g in gates]
        hs = [_flax_dense(variables, "h" + g, kind == "lstm" or g == "n") for g in gates]
        expected = {"i" + g for g in gates} | {"h" + g for g in gates}
        for group, side in ((ins, "i"), (hs, "h")):
            shapes = {k.shape for k, _ in group}
            if len(shapes) != 1:
                raise ValueError(
                    f"variables: the {side}* kernels differ in shape: {[k.shape for k, _ in group]}"
                )
        w_ih = np.concatenate([k for k, _ in ins], axis=-1)
        w_hh = np.concatenate([k for k, _ in hs], axis=-1)
        if kind == "lstm":
            b, b_hn = np.concatenate([bb for _, bb in hs]), None
        else:
            b, b_hn = np.concatenate([bb for _, bb in ins]), hs[2][1]
    extra = sorted(set(variables) - expected)
    if extra:
        raise ValueError(
            f"variables: unexpected entries {extra} for a Flax {kind} cell (expected {sorted(expected)})"
        )
    G = _NUM_BLOCKS[kind]
    H = w_hh.shape[0]
    _check_shape("variables (recurrent kernels)", w_hh, (H, G * H), " (H×H per gate)")
    if features is not None and features != H:
        raise ValueError(f"cell_type: features={features} but the variables hold hidden size {H}")
    _check_shape("variables (input kernels)", w_ih, (w_ih.shape[0], G * H), f" (I×{H} per gate)")
    _check_shape("variables (biases)", b, (G * H,), f" ({H} per gate)")
    if b_hn is not None:
        _check_shape("variables['hn']['bias']", b_hn, (H,))
    dtype = w_hh.dtype
    for name, a in (("input kernels", w_ih), ("biases", b), ("hn bias", b_hn)):
        if a is not None and a.dtype != dtype:
            raise TypeError(
                f"variables ({name}): expected dtype {dtype} like the recurrent kernels, got {a.dtype}"
            )
    return _make_cell(kind, H, act, dtype), _make_params(kind, w_ih, w_hh, b, b_hn)


def to_flax(cell: Cell, params) -> dict:
    """rnnjax params as Flax linen variables for `SimpleCell`, `LSTMCell`/`OptimizedLSTMCell` or `GRUCell`.

    Build the Flax cell with `features=cell.hidden_size` (and, for a simple cell, an `activation_fn` of
    the same function: `nn.tanh`, `nn.relu` or `lambda a: a` for "linear"); both Flax LSTM cells take the
    same variables.

    Args:
      cell: an rnnjax `Cell` (GRUs need reset_after=True: Flax's GRUCell is the reset-after form).
      params: its params (w_ih <[I, G·H]>, w_hh <[H, G·H]>, b <[G·H]>, GRU b_hn <[H]>).
    Returns:
      `{"params": {...}}` for `module.apply`, with per-gate kernels <[I, H]> / <[H, H]> and biases <[H]>.
    """
    _check_cell_params("cell", "params", cell, params)
    if cell.kind == "gru" and not cell.reset_after:
        raise ValueError(
            f"cell: cannot convert to flax.linen.GRUCell: {_RESET_BEFORE_WHY.format(lib='Flax')}"
        )
    w_ih, w_hh, b = (jnp.asarray(a) for a in params[:3])
    if cell.kind == "simple":
        return {"params": {"i": {"kernel": w_ih, "bias": b}, "h": {"kernel": w_hh}}}
    gates = _FLAX_GATES[cell.kind]
    G = len(gates)
    ins, hs, bs = jnp.split(w_ih, G, axis=-1), jnp.split(w_hh, G, axis=-1), jnp.split(b, G)
    out = {}
    for g, k_i, k_h, bias in zip(gates, ins, hs, bs):
        if cell.kind == "lstm":
            out["i" + g] = {"kernel": k_i}
            out["h" + g] = {"kernel": k_h, "bias": bias}
        else:
            out["i" + g] = {"kernel": k_i, "bias": bias}
            out["h" + g] = {"kernel": k_h}
    if cell.kind == "gru":
        out["hn"]["bias"] = jnp.asarray(params.b_hn)
    return {"params": out}


def carry_from_flax(carry):
    """A Flax cell carry as an rnnjax carry.

    Args:
      carry: Flax LSTM carry `(c, h)` (each <float>[*batch, H]), or a SimpleCell/GRUCell carry h
        <float>[*batch, H].
    Returns:
      `LSTMCarry(h, c)` or `RNNCarry(h)`.
    """
    if isinstance(carry, (LSTMCarry, RNNCarry)):
        raise TypeError(
            f"carry: already an rnnjax {type(carry).__name__}; carry_from_flax takes Flax's (c, h) or h"
        )
    if isinstance(carry, (tuple, list)):
        if len(carry) != 2:
            raise ValueError(f"carry: expected Flax's LSTM carry (c, h), got a sequence of {len(carry)}")
        c, h = (jnp.asarray(a) for a in carry)
        if c.shape != h.shape:
            raise ValueError(f"carry: c and h must have the same shape, got {c.shape} and {h.shape}")
        return LSTMCarry(h, c)
    return RNNCarry(jnp.asarray(carry))


def carry_to_flax(carry):
    """An rnnjax carry as a Flax cell carry.

    Args:
      carry: `LSTMCarry(h, c)` or `RNNCarry(h)`, fields <float>[*batch, H].
    Returns:
      `(c, h)` for Flax's LSTM cells, or the array h for SimpleCell/GRUCell.
    """
    if isinstance(carry, LSTMCarry):
        return (carry.c, carry.h)
    if isinstance(carry, RNNCarry):
        return carry.h
    raise TypeError(f"carry: expected LSTMCarry or RNNCarry, got {type(carry).__name__}")
