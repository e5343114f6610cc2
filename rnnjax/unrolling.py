"""One unroller for every cell (`unroll`, with lengths, reverse, remat and all carries), plus stacked and
bidirectional helpers built on it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, backend, cells
from rnnjax.cell_types import check_carry
from rnnjax.cells import Cell, check_cell, check_params

__all__ = ["BidirectionalCarry", "BidirectionalParams", "unroll", "unroll_bidirectional", "unroll_stack"]


def _time_axis(ndim: int, time_major: bool) -> int:
    return 0 if time_major else ndim - 2


def _check_xs(xs) -> jax.Array:
    xs = jnp.asarray(xs)
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise TypeError(
            f"xs: expected a floating-point array, got dtype {xs.dtype}; "
            "embed or one-hot integer tokens first"
        )
    if xs.ndim < 2:
        raise ValueError(
            f"xs: expected shape [*batch, T, features] (or [T, *batch, features] with "
            f"time_major=True), got {xs.shape}"
        )
    return xs


def _check_carry(cell: Cell, carry, batch_shape: tuple[int, ...]) -> None:
    carry_type = type(cell.initial_carry())
    want = (*batch_shape, cell.hidden_size)
    check_carry(carry, carry_type, want, kind=cell.kind, why=" (batch shape of xs + hidden_size)")


def _check_options(time_major, reverse, unroll, return_carries, remat) -> None:
    """The flags of `unroll`: booleans only (a truthy "no" must not act as True), and scan's unroll."""
    for name, value in (
        ("time_major", time_major), ("reverse", reverse), ("return_carries", return_carries), ("remat", remat)
    ):  # fmt: skip
        _checks.check_bool(name, value)
    backend.scan_unroll(unroll)


def _use_fast(fast, cell: Cell, lengths, return_carries: bool, remat: bool) -> bool:
    """Resolve `unroll`'s `fast` option (see its docstring)."""
    if fast not in (None, True, False):
        raise ValueError(f"fast: expected None, True or False, got {fast!r}")
    if fast is False:
        return False
    blockers = [
        reason
        for reason, present in (
            (f"the {cell.kind} cell has no whole-sequence kernel (cell.sequence)", cell.sequence is None),
            ("lengths is given", lengths is not None),
            ("return_carries=True", return_carries),
            ("remat=True", remat),
        )
        if present
    ]
    if fast is True and blockers:
        raise ValueError(f"fast: True needs the whole-sequence kernel, which cannot be used here: {blockers}")
    return not blockers


def _check_chunking(checkpoint_every, lengths, return_carries: bool, remat: bool) -> None:
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every: expected None or a positive int, got {checkpoint_every!r}")
    for name, present in (
        ("lengths", lengths is not None),
        ("return_carries", return_carries),
        ("remat", remat),
    ):
        if present:
            raise ValueError(f"checkpoint_every: cannot be combined with {name} (given checkpoint_every="
                             f"{checkpoint_every} and {name})")  # fmt: skip


def _chunked(cell: Cell, params, xs, carry, size: int, reverse: bool, scan_unroll, fast):
    """`unroll` over chunks of `size` steps, each under `jax.checkpoint`; xs <[T, *batch, I]> (time-major)
    and carry already checked and cast. Returns (final carry, ys <[T, *batch, H]>)."""
    T = xs.shape[0]
    size = min(size, T)
    n, rest = divmod(T, size)

    @jax.checkpoint
    def run_chunk(params, carry, x_chunk):  # x_chunk (c, *batch, I)
        return unroll(
            cell, params, x_chunk, carry, time_major=True, reverse=reverse, unroll=scan_unroll, fast=fast
        )

    def chunk_step(carry, x_chunk):
        return run_chunk(params, carry, x_chunk)

    whole = xs[: n * size].reshape(n, size, *xs.shape[1:])  # (n, c, *batch, I)
    ys_rest = None
    if rest and reverse:  # a reverse run reads the last (partial) chunk first
        carry, ys_rest = run_chunk(params, carry, xs[n * size :])
    carry, ys = jax.lax.scan(chunk_step, carry, whole, reverse=reverse)
    ys = ys.reshape(n * size, *ys.shape[2:])
    if rest and not reverse:
        carry, ys_rest = run_chunk(params, carry, xs[n * size :])
    if ys_rest is not None:
        ys = jnp.concatenate([ys, ys_rest], axis=0)
    return carry, ys


def unroll(
    cell: Cell,
    params,
    xs,
    carry=None,
    *,
    time_major: bool = False,
    reverse: bool = False,
    lengths=None,
    unroll: int | bool | None = None,
    return_carries: bool = False,
    remat: bool = False,
    fast: bool | None = None,
    checkpoint_every: int | None = None,
    precision: str | None = None,
):
    """Run `cell.step` over a sequence with `jax.lax.scan`.

    Args:
      cell: a `Cell` from `rnnjax.cells`.
      params: the cell's params.
      xs: <float>[*batch, T, I], or <float>[T, *batch, I] if `time_major`; `*batch` may be empty.
      carry: initial carry with fields <float>[*batch, H]; None means `cell.initial_carry` (zeros).
      time_major: layout of `xs` and of the returned sequences.
      reverse: run from the last valid step to the first. Outputs stay aligned with their inputs
        (`ys[t]` is the output produced on reading `xs[t]`), so reversing equals flipping the input,
        running forward, and flipping the outputs back; with `lengths`, each example is reversed
        within its own length.
      lengths: optional <int>[*batch] valid lengths of right-padded examples, each in [1, T]. Padded
        steps leave the carry unchanged and output zeros, so the final carry is each example's carry
        at its last valid step (forward) or first step (reverse). Out-of-range lengths raise a
        ValueError when concrete; under `jit` (where they cannot be inspected) they turn every output
        into NaN rather than a silently wrong answer.
      unroll: passed to `lax.scan` (steps per loop iteration; True unrolls fully). None (the default):
        the backend's measured default, `rnnjax.backend.SCAN_UNROLL` (1 on CPU, 16 on GPU).
      return_carries: also return the carry after every step.
      remat: checkpoint the scan body (`jax.checkpoint`), so the backward pass stores only the carries
        and recomputes each step's internals: less memory for long sequences, one extra forward.
      fast: whether to run the cell's whole-sequence kernel (`cell.sequence`, see `rnnjax.fused`): the
        same equations with a hand-written backward pass whose weight gradients are single large
        matmuls after the loop. None (the default) uses
        it whenever it applies: the cell has one (simple and LSTM cells do), no
        `lengths`, `return_carries` or `remat`, and JAX does not refuse it for forward-mode autodiff
        (`jax.jvp`, `jacfwd`, which cannot go through a `custom_vjp`); otherwise it falls back to plain
        autodiff of the `cell.step` scan.
        Reverse mode of any order works on both paths. A `custom_vjp` cannot be differentiated in
        forward mode, and forward mode applied *outside* a `jit` that calls `unroll` is invisible
        here: pass `fast=False` for `jax.jacfwd(jax.jit(f))`. True requires the kernel (raises if
        it cannot be used); False always scans `cell.step`.
      precision: matmul precision of every step, forward and backward ("highest", "high", "default" or
        their dtype names "float32", "tensorfloat32", "bfloat16"); None keeps the cell's own
        (`cells.with_precision`, or `precision=` of its constructor), else JAX's default. On NVIDIA GPUs
        JAX's default float32 matmul is TF32 (about 1e-3 relative error; see the README).
      checkpoint_every: if given, run the sequence as consecutive chunks of this many steps (the last
        one shorter when it does not divide T), each chunk an `unroll` under `jax.checkpoint`. The
        backward pass then keeps only the carries between chunks (and the outputs ys) and rebuilds
        one chunk's internals at a time: with chunks of about √T steps, the memory besides ys grows
        as √T instead of T, for one extra forward pass (Chen et al. 2016, "Training deep nets with
        sublinear memory cost"). Each chunk takes the fast kernel when it applies. Not combinable
        with `lengths`, `return_carries` or `remat`.
    Returns:
      `(final_carry, ys)` with ys <float>[*batch, T, H] (or [T, *batch, H]); with `return_carries`,
      `(carries, ys)` where every field of `carries` is <float>[*batch, T, H] (same layout as ys) and
      holds the carry after reading step t (for reverse runs the final carry is at t = 0).
    Raises:
      TypeError or ValueError naming the argument, before anything runs: a `cell` that is not a `Cell`,
      params of another cell kind or size, xs whose features the params do not read, a carry of the wrong
      type or shape, a flag that is not a bool (a truthy "no" never acts as True), bad `lengths`. Only
      static shapes, dtypes and Python values are read, so under `jit` the checks run once, at trace time.
    """
    check_cell(cell)
    _check_options(time_major, reverse, unroll, return_carries, remat)
    unroll = backend.scan_unroll(unroll)
    input_size = check_params(cell, params)
    if precision is not None:
        cell = cells.with_precision(cell, precision)  # the step and the kernel's backward pass alike
    xs = _check_xs(xs)
    t_axis = _time_axis(xs.ndim, time_major)
    T = xs.shape[t_axis]
    if T < 1:
        raise ValueError(f"xs: expected at least one time step, got shape {xs.shape}")
    if input_size is not None and xs.shape[-1] != input_size:
        raise ValueError(
            f"xs: expected {input_size} features per step (input_size={input_size}, what the params read; "
            f"each step's x: [*batch, {input_size}]), got shape {xs.shape}"
        )
    batch_shape = xs.shape[:t_axis] + xs.shape[t_axis + 1 : -1]

    # Compute in the widest dtype of inputs and params so the scan carry keeps one dtype.
    dtype = jnp.result_type(xs.dtype, *jax.tree_util.tree_leaves(params))
    xs = jnp.moveaxis(xs.astype(dtype), t_axis, 0)  # (T, *batch, I)
    if carry is None:
        carry = cell.initial_carry(batch_shape, dtype)
    else:
        _check_carry(cell, carry, batch_shape)
        carry = jax.tree_util.tree_map(lambda c: jnp.asarray(c, dtype), carry)

    if checkpoint_every is not None:
        _check_chunking(checkpoint_every, lengths, return_carries, remat)
        try:
            final, out = _chunked(cell, params, xs, carry, checkpoint_every, reverse, unroll, fast)
        except TypeError:  # e.g. forward mode reached a chunk kernel's custom_vjp through jax.checkpoint
            if fast is not None:
                raise
            final, out = _chunked(cell, params, xs, carry, checkpoint_every, reverse, unroll, False)
        return final, (out if time_major else jnp.moveaxis(out, 0, -2))

    if _use_fast(fast, cell, lengths, return_carries, remat):
        jax.eval_shape(cell.step, params, carry, xs[0])  # the step's argument checks, at trace time only
        cast = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
        try:
            final, out = cell.sequence(cast, carry, xs, reverse=reverse, unroll=unroll)
            return final, (out if time_major else jnp.moveaxis(out, 0, -2))
        except TypeError as error:
            # The step's checks passed above, so the kernel itself refused these inputs at trace time: a
            # kernel with a hand-written backward pass (custom_vjp) has no forward mode (jvp, jacfwd). The
            # step scan supports every transformation, so it takes over (decided by what the kernel
            # raises, not by the wording of JAX's message).
            if fast is True:
                raise ValueError(
                    "fast: True needs the whole-sequence kernel, which cannot be used here: "
                    f"[the {cell.kind} kernel refused these inputs: {error}] (forward-mode differentiation "
                    "needs fast=None or False)"
                ) from error

    if lengths is None:

        def body(c, x):
            c, y = cell.step(params, c, x)
            return c, ((y, c) if return_carries else y)

        scanned = xs
    else:
        lengths = _checks.check_lengths(lengths, batch_shape, T)

        def body(c, inputs):
            x, t = inputs
            valid = (t < lengths)[..., None]  # (*batch, 1)
            # Zeroing padded inputs keeps garbage (even inf/NaN) out of the backward pass too.
            new_c, y = cell.step(params, c, jnp.where(valid, x, 0))
            c = jax.tree_util.tree_map(lambda new, old: jnp.where(valid, new, old), new_c, c)
            y = jnp.where(valid, y, 0)
            return c, ((y, c) if return_carries else y)

        scanned = (xs, jnp.arange(T))

    if remat:
        body = jax.checkpoint(body)
    final, out = jax.lax.scan(body, carry, scanned, reverse=reverse, unroll=unroll)

    if lengths is not None and _checks.is_traced(lengths):
        poison = jnp.any((lengths < 1) | (lengths > T))
        final, out = jax.tree_util.tree_map(lambda a: jnp.where(poison, jnp.nan, a), (final, out))

    def to_layout(a):  # (T, *batch, F) -> caller's layout
        return a if time_major else jnp.moveaxis(a, 0, -2)

    if return_carries:
        ys, carries = out
        return jax.tree_util.tree_map(to_layout, carries), to_layout(ys)
    return final, to_layout(out)


def unroll_stack(
    cells: Sequence[Cell | tuple[Cell, Cell]],
    params: Sequence[Any],
    xs,
    carries=None,
    *,
    between: Callable[[int, jax.Array], jax.Array] | None = None,
    **unroll_kwargs,
):
    """Unroll a stack of layers, each layer's outputs being the next layer's inputs.

    Each layer is one `unroll` over the whole sequence (not one step of every layer at a time),
    which keeps every layer's input projection a single large matmul.

    Args:
      cells: one layer each: a `Cell`, or a pair `(forward_cell, backward_cell)` for a bidirectional layer
        (`unroll_bidirectional`, outputs concatenated; its params are `BidirectionalParams`).
      params: one params value per layer (layer k's input size is layer k-1's output size).
      xs: <float>[*batch, T, I] (or time-major, see `unroll`).
      carries: None, or one initial carry (or None) per layer.
      between: optional `(k, ys) -> ys` applied to the input of every layer k (k = 0 is xs), e.g.
        dropout between layers (`rnnjax.models`).
      **unroll_kwargs: passed to every layer's `unroll` (time_major, reverse, lengths, unroll,
        return_carries, remat).
    Returns:
      `(tuple of per-layer final carries (or all carries with return_carries), ys of the last layer)`.
    """
    cells, params = _sequence("cells", cells), _sequence("params", params)
    if not cells:
        raise ValueError("cells: expected at least one layer, got an empty sequence")
    for k, layer in enumerate(cells):
        if isinstance(layer, tuple) and len(layer) == 2:
            check_cell(layer[0], f"cells[{k}][0]")
            check_cell(layer[1], f"cells[{k}][1]")
        elif not isinstance(layer, Cell):
            raise TypeError(
                f"cells[{k}]: expected an rnnjax.cells.Cell or a (forward, backward) pair of them, "
                f"got {type(layer).__name__}"
            )
    if len(cells) != len(params):
        raise ValueError(
            f"params: expected one params value per cell ({len(cells)} cells), got {len(params)}"
        )
    if carries is None:
        carries = (None,) * len(cells)
    elif len(_sequence("carries", carries)) != len(cells):
        raise ValueError(f"carries: expected {len(cells)} carries (one per layer), got {len(carries)}")
    _checks.check_callable("between", between, "a function (k, ys) -> ys", optional=True)
    finals = []
    ys = xs
    for k, (layer, p, c) in enumerate(zip(cells, params, carries)):
        if between is not None:
            ys = between(k, ys)
        try:
            if k > 0:  # its inputs are the outputs of layer k - 1: a mismatch is params[k]'s, not xs's
                _check_layer_input(k, layer, p, ys)
            if isinstance(layer, Cell):
                final, ys = unroll(layer, p, ys, c, **unroll_kwargs)
            else:  # (forward_cell, backward_cell)
                final, ys = unroll_bidirectional(*layer, p, ys, c, **unroll_kwargs)
        except (TypeError, ValueError) as error:
            raise _of_layer(error, k) from None
        finals.append(final)
    return tuple(finals), ys


def _check_layer_input(k: int, layer, params, ys) -> None:
    """Refuse (ValueError naming `params[k]`) params of layer k >= 1 that read another number of features
    than layer k - 1 outputs (`ys`)."""
    if isinstance(layer, Cell):
        parts = [(layer, params, "params")]
    elif isinstance(params, BidirectionalParams):
        parts = [(layer[0], params.forward, "params.forward"), (layer[1], params.backward, "params.backward")]
    else:
        return  # unroll_bidirectional refuses them
    features = jnp.shape(ys)[-1]
    for cell, p, name in parts:
        size = check_params(cell, p, name=name)
        if size is not None and size != features:
            raise ValueError(
                f"{name}: expected the params of a layer reading {features} features per step (the outputs "
                f"of layer {k - 1}), got params whose input size is {size}"
            )


def _of_layer(error: Exception, k: int) -> Exception:
    """`error` of layer k's unroll, its argument renamed as unroll_stack's: params -> params[k], carry ->
    carries[k] (xs stays xs: it is the input of layer 0 only)."""
    message = str(error)
    for name, renamed in (("params", f"params[{k}]"), ("carry", f"carries[{k}]")):
        if message.startswith(name) and message[len(name) : len(name) + 1] in (":", ".", " "):
            try:
                return type(error)(renamed + message[len(name) :])
            except TypeError:  # an exception type that takes more than a message
                return ValueError(renamed + message[len(name) :])
    return error


def _sequence(name: str, value) -> tuple:
    """`value` as a tuple, if it is a list or tuple (one entry per layer) and not a single NamedTuple."""
    if not isinstance(value, list | tuple) or hasattr(value, "_fields"):
        raise TypeError(
            f"{name}: expected a list or tuple with one entry per layer, got {type(value).__name__}"
        )
    return tuple(value)


class BidirectionalParams(NamedTuple):
    forward: Any  # params of the forward cell
    backward: Any  # params of the backward cell


class BidirectionalCarry(NamedTuple):
    forward: Any  # carry of the forward cell
    backward: Any  # carry of the backward cell


def unroll_bidirectional(
    forward_cell: Cell,
    backward_cell: Cell,
    params: BidirectionalParams,
    xs,
    carry: BidirectionalCarry | None = None,
    *,
    merge: str = "concat",
    **unroll_kwargs,
):
    """Run one cell forward and another in reverse over the same sequence and merge their outputs.

    Both directions' outputs are aligned with the input positions (see `unroll(reverse=True)`), and with
    `lengths` the backward cell starts at each example's last valid step.

    Args:
      forward_cell, backward_cell: cells of the two directions.
      params: `BidirectionalParams(forward, backward)`.
      xs: <float>[*batch, T, I] (or time-major).
      carry: None or `BidirectionalCarry(forward, backward)` of initial carries.
      merge: "concat" (outputs <[..., H_f + H_b]>) or "sum" (needs H_f == H_b).
      **unroll_kwargs: passed to both unrolls (time_major, lengths, unroll, return_carries, remat).
    Returns:
      `(BidirectionalCarry(forward_final, backward_final), merged ys)`.
    """
    check_cell(forward_cell, "forward_cell")
    check_cell(backward_cell, "backward_cell")
    if merge not in ("concat", "sum"):
        raise ValueError(f"merge: expected 'concat' or 'sum', got {merge!r}")
    if merge == "sum" and forward_cell.hidden_size != backward_cell.hidden_size:
        raise ValueError(
            "merge: 'sum' needs equal hidden sizes, got forward "
            f"{forward_cell.hidden_size} and backward {backward_cell.hidden_size}"
        )
    if "reverse" in unroll_kwargs:
        raise TypeError("reverse: not an option of unroll_bidirectional (it runs both directions)")
    if not isinstance(params, BidirectionalParams):
        raise TypeError(
            f"params: expected BidirectionalParams(forward, backward), got {type(params).__name__}"
        )
    if carry is not None and not isinstance(carry, BidirectionalCarry):
        raise TypeError(
            f"carry: expected None or BidirectionalCarry(forward, backward), got {type(carry).__name__}"
        )
    carry = carry if carry is not None else BidirectionalCarry(None, None)
    c_f, ys_f = unroll(forward_cell, params.forward, xs, carry.forward, **unroll_kwargs)
    c_b, ys_b = unroll(backward_cell, params.backward, xs, carry.backward, reverse=True, **unroll_kwargs)
    ys = jnp.concatenate([ys_f, ys_b], axis=-1) if merge == "concat" else ys_f + ys_b
    return BidirectionalCarry(c_f, c_b), ys
