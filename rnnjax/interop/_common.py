"""What every library's conversion shares: argument checks, NumPy/JAX array handling, and building
rnnjax cells and params from arrays already in rnnjax's layout.

Nothing here knows a library. The facts about a cell kind (its gate blocks, its params type) are read
from the registry `rnnjax.cells.make`, never kept in a table here. Each library's module declares the
kinds it converts in one table, `SUPPORTED` (kind -> how that library lays the kind out); the helpers
here take that table, so a kind no library has (the LRU, say) is refused by name and never inferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import cells
from rnnjax.cells import Cell

Spec = TypeVar("Spec")

RESET_BEFORE_WHY = (
    "a reset_after=False GRU computes the candidate as tanh(x W_in + b_in + (r ⊙ h) W_hn), while "
    "{lib} computes tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn)); these are different functions of the same "
    "weights and no weights of one form reproduce the other"
)


def as_array(name: str, value) -> np.ndarray:
    """`value` as a floating-point NumPy array (torch tensors are detached and moved to the CPU first)."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - report any conversion failure with the argument's name
        raise TypeError(f"{name}: expected an array, got {type(value).__name__} ({e})") from None
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")
    return a


def check_shape(name: str, a: np.ndarray, want: tuple[int, ...], why: str = "") -> None:
    """Raise a ValueError naming `name` unless `a` has shape `want` (`why` explains the expectation)."""
    if a.shape != tuple(want):
        raise ValueError(f"{name}: expected shape {tuple(want)}{why}, got {a.shape}")


def either(words) -> str:
    """Words joined for a message: "a", "a or b", "a, b or c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def to_jnp(a: np.ndarray) -> jax.Array:
    """A NumPy array as a JAX array of the same dtype."""
    return jnp.asarray(a, dtype=a.dtype)


def gate_names(kind: str) -> tuple[str, ...]:
    """The gate blocks of a cell of `kind`, in the order of its fused kernels (G = their number)."""
    return cells.make(kind, 1).gates


def kind_with_blocks(num_blocks: int, kinds) -> str | None:
    """The kind among `kinds` (those one converter supports, never all of `cells.KINDS`, where several
    kinds share a block count) whose fused kernels hold `num_blocks` gate blocks, or None."""
    return next((kind for kind in kinds if len(gate_names(kind)) == num_blocks), None)


def supported(name: str, kind, table: Mapping[str, Spec], converter: str) -> Spec:
    """`table[kind]`: how the converter `converter` (e.g. "rnnjax.interop.torch") lays out a cell of
    `kind`. Any other kind raises a ValueError naming the argument `name`, the kind given and the kinds
    the converter supports."""
    if not isinstance(kind, str) or kind not in table:
        raise ValueError(f"{name}: {converter} converts kinds {tuple(table)}, got kind {kind!r}")
    return table[kind]


def params_type(kind: str) -> type:
    """The params NamedTuple of a cell of `kind`, from the registry's cell."""
    return cells.make(kind, 1).params_type


def make_cell(
    kind: str, hidden_size: int, dtype, *, activation: str = "tanh", reset_after: bool = True
) -> Cell:
    """The registry's cell of `kind`. Only the simple cell takes an activation and only the GRU a
    reset_after option, so each is passed on only where it differs from the default every cell shares
    (tanh, reset-after); the caller has checked that `kind` supports it."""
    options = {"dtype": dtype}
    if activation != "tanh":
        options["activation"] = activation
    if not reset_after:
        options["reset_after"] = reset_after
    return cells.make(kind, hidden_size, **options)


def make_params(kind: str, w_ih, w_hh, b, b_hn=None):
    """rnnjax params of `kind` from NumPy arrays already in rnnjax layout and gate order: w_ih <[I, G·H]>,
    w_hh <[H, G·H]>, b <[G·H]> and, for a reset-after GRU, b_hn <[H]> (None otherwise)."""
    arrays = {
        "w_ih": to_jnp(np.ascontiguousarray(w_ih)),
        "w_hh": to_jnp(np.ascontiguousarray(w_hh)),
        "b": to_jnp(b),
        "b_hn": None if b_hn is None else to_jnp(b_hn),
    }
    kind_type = params_type(kind)
    return kind_type(**{field: arrays[field] for field in kind_type._fields})


def sum_gru_biases(b_input: np.ndarray, b_recurrent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A reset-after GRU's input-side and recurrent biases (each <[3H]>, blocks r, z, n) as rnnjax's
    `(b, b_hn)`: the function sees the r and z biases only as sums, and b_hn apart, inside r ⊙ (·)."""
    H = b_input.shape[-1] // 3
    b = np.concatenate([b_input[: 2 * H] + b_recurrent[: 2 * H], b_input[2 * H :]])
    return b, b_recurrent[2 * H :].copy()


def gru_recurrent_bias(b_hn: np.ndarray, dtype) -> np.ndarray:
    """The recurrent bias <[3H]> written back for rnnjax's b_hn <[H]>: 0‖0‖b_hn, since the sums in b
    cannot be split again (they all go to the input side)."""
    H = b_hn.shape[-1]
    return np.concatenate([np.zeros(2 * H, dtype), np.asarray(b_hn, dtype)])


def check_cell_params(
    cell_name: str, params_name: str, cell, params, table: Mapping[str, Spec], converter: str
) -> tuple[int, int, Spec]:
    """Validate one (cell, params) pair for the converter `converter`, whose kinds are the keys of `table`
    (see `supported` and `rnnjax.cells.check_params`).

    Returns:
      (input_size, hidden_size, table[cell.kind]).
    """
    cells.check_cell(cell, cell_name)
    spec = supported(cell_name, cell.kind, table, converter)
    if cell.kind not in cells.KINDS:
        raise ValueError(
            f"{cell_name}: unknown cell kind {cell.kind!r}; expected one of {sorted(cells.KINDS)}"
        )
    cell = cell._replace(params_type=params_type(cell.kind))  # the registry's type, whatever the cell holds
    return cells.check_params(cell, params, name=params_name, owner=cell_name), cell.hidden_size, spec
