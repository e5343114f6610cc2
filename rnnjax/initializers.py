"""Initialisers for recurrent cells, and presets that reproduce other libraries' defaults.

Every initialiser has the `jax.nn.initializers` signature `init(key, shape, dtype) -> array`. The cells
call them with the *fused* shape, e.g. `(H, 4H)` for an LSTM's recurrent kernel; wrap an initialiser in
`blockwise` to apply it to each `(in, H)` gate block separately instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax import _checks

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]

__all__ = [
    "Initializer",
    "Preset",
    "PRESETS",
    "blockwise",
    "glorot_uniform",
    "identity",
    "lecun_normal",
    "orthogonal",
    "preset",
    "rescale_recurrent",
    "spectral_radius",
    "summed",
    "uniform",
    "zeros",
]


def glorot_uniform() -> Initializer:
    """U(±sqrt(6 / (fan_in + fan_out))) (Glorot & Bengio, 2010); Keras' default kernel initialiser."""
    return jax.nn.initializers.glorot_uniform()


def lecun_normal() -> Initializer:
    """Truncated normal with variance 1/fan_in (LeCun et al., 1998); Flax's default kernel initialiser."""
    return jax.nn.initializers.lecun_normal()


def _host_qr_q(a: jax.Array) -> jax.Array:
    """Q of the QR decomposition of a tall matrix, signs fixed so diag(R) > 0, computed by NumPy on the
    host (`pure_callback`, any backend, under `jit`/`vmap`).

    Why not `jnp.linalg.qr`: on CPU, jaxlib's batched LAPACK QR kernel splits its batch over XLA's thread
    pool and blocks until the parts finish; when XLA runs as many independent QR kernels concurrently as
    the pool has threads (two on a 2-core machine, e.g. a jitted LSTM init with one QR per gate), every
    thread waits and the program hangs (seen with jaxlib 0.10.2). Host QR never enters that pool.
    """

    def host(m):
        m = np.asarray(m)
        q, r = np.linalg.qr(m.astype(np.float64))
        signs = np.where(np.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0)
        return (q * signs[..., None, :]).astype(m.dtype)

    return jax.pure_callback(host, jax.ShapeDtypeStruct(a.shape, a.dtype), a, vmap_method="expand_dims")


def orthogonal(scale: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix times `scale` (Saxe et al., 2014): the Q factor, with signs fixed so
    that diag(R) > 0, of a Gaussian matrix, which makes it uniform (Haar) on the orthogonal matrices
    (Mezzadri, 2007). For a non-square `(rows, cols)` shape the rows (rows < cols) or columns are
    orthonormal, as in `jax.nn.initializers.orthogonal`."""
    _checks.check_number("scale", scale)

    def init(key, shape, dtype=jnp.float32):
        rows, cols = _matrix_shape("orthogonal", shape)
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
        q = _host_qr_q(a)  # (max, min), orthonormal columns
        return scale * (q.T if rows < cols else q)

    return init


def _matrix_shape(what: str, shape) -> tuple[int, int]:
    """(rows, cols) of a 2-D shape; anything else raises naming `shape`."""
    if len(shape) != 2:
        raise ValueError(f"shape: {what} expects a 2-D (rows, cols) shape, got {shape}")
    return shape


def uniform(limit: float) -> Initializer:
    """U(-limit, limit). PyTorch initialises every RNN weight and bias with limit = 1/sqrt(hidden_size)."""
    _checks.check_number("limit", limit, positive=True)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def zeros() -> Initializer:
    """All zeros."""
    return jax.nn.initializers.zeros


def identity(scale: float = 1.0) -> Initializer:
    """`scale` times the identity in every square gate block (IRNN: Le, Jaitly & Hinton, 2015)."""
    _checks.check_number("scale", scale)

    def init(key, shape, dtype=jnp.float32):
        del key
        rows, cols = _matrix_shape("identity", shape)
        if cols % rows:
            raise ValueError(f"shape: identity needs (H, k*H) blocks, got {shape}")
        return scale * jnp.tile(jnp.eye(rows, dtype=dtype), (1, cols // rows))

    return init


def summed(*inits: Initializer) -> Initializer:
    """The sum of independent draws from several initialisers.

    PyTorch keeps two biases (`b_ih + b_hh`) that always appear summed; our cells keep one, whose
    distribution is therefore the sum of two uniforms (a triangular distribution), not one uniform.
    """
    if not inits:
        raise ValueError("inits: expected at least one initialiser to sum, got none")
    for i, inner in enumerate(inits):
        _checks.check_callable(f"inits[{i}]", inner, "an initialiser (key, shape, dtype) -> array")

    def init(key, shape, dtype=jnp.float32):
        keys = jax.random.split(key, len(inits))
        return sum(f(k, shape, dtype) for f, k in zip(inits, keys))

    return init


def blockwise(inner: Initializer, num_blocks: int) -> Initializer:
    """Apply `inner` to each of `num_blocks` equal blocks along the last axis and concatenate.

    `blockwise(orthogonal(), 4)` on an LSTM's `(H, 4H)` recurrent kernel makes each gate's `(H, H)`
    matrix orthogonal, as Flax does (one Dense per gate); plain `orthogonal()` makes the fused
    `(H, 4H)` matrix semi-orthogonal instead, as Keras does.
    """
    _checks.check_callable("inner", inner, "an initialiser (key, shape, dtype) -> array")
    _checks.check_int("num_blocks", num_blocks)

    def init(key, shape, dtype=jnp.float32):
        *lead, cols = shape
        if cols % num_blocks:
            raise ValueError(f"shape: last axis {cols} is not divisible into {num_blocks} blocks")
        keys = jax.random.split(key, num_blocks)
        block_shape = (*lead, cols // num_blocks)
        blocks = jax.vmap(lambda k: inner(k, block_shape, dtype))(keys)  # (num_blocks, *lead, H), one call
        return jnp.concatenate(list(blocks), axis=-1)

    return init


def spectral_radius(matrix: jax.Array) -> jax.Array:
    """Largest |eigenvalue| of a square matrix (host NumPy through `pure_callback`, so it runs on any backend
    and under `jit`/`vmap`).

    Args:
      matrix: <float>[H, H].
    Returns:
      <float>[] the spectral radius, in the matrix's dtype.
    """
    shape = jnp.shape(matrix)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"matrix: expected a square matrix [H, H], got shape {shape}")

    def host(m):
        m = np.asarray(m)
        return np.asarray(np.max(np.abs(np.linalg.eigvals(m.astype(np.float64)))), m.dtype)

    out = jax.ShapeDtypeStruct((), matrix.dtype)
    return jax.pure_callback(host, out, matrix, vmap_method="sequential")


def rescale_recurrent(
    w_hh: jax.Array, num_blocks: int, *, gain: float = 1.0, radius: float | None = None
) -> jax.Array:
    """Scale each `(H, H)` gate block of a recurrent kernel by `gain`, or to spectral radius `radius`.

    Args:
      w_hh: <float>[H, num_blocks * H] fused recurrent kernel.
      num_blocks: number of gate blocks (1 simple, 4 LSTM, 3 GRU).
      gain: multiplies every block (ignored when `radius` is given).
      radius: target spectral radius of every block; a zero block is left at zero.
    Returns:
      <float>[H, num_blocks * H].
    """
    _checks.check_int("num_blocks", num_blocks)
    _checks.check_number("gain", gain, minimum=0)
    _checks.check_number("spectral_radius", radius, minimum=0, optional=True)
    shape = jnp.shape(w_hh)
    if len(shape) != 2 or shape[1] != num_blocks * shape[0]:
        raise ValueError(
            f"w_hh: expected shape [H, {num_blocks}·H] ({num_blocks} square gate blocks), got {shape}"
        )
    if radius is None:
        return w_hh if gain == 1.0 else w_hh * jnp.asarray(gain, w_hh.dtype)
    blocks = jnp.split(w_hh, num_blocks, axis=-1)
    scaled = []
    for block in blocks:
        rho = spectral_radius(block)
        scaled.append(jnp.where(rho > 0, block * (radius / jnp.where(rho > 0, rho, 1)), block))
    return jnp.concatenate(scaled, axis=-1)


class Preset(NamedTuple):
    """Default initialisers of one library, as functions of (hidden_size, num_gate_blocks)."""

    kernel: Callable[[int, int], Initializer]  # input kernel, <[I, G*H]>
    recurrent: Callable[[int, int], Initializer]  # recurrent kernel, <[H, G*H]>
    bias: Callable[[int, int], Initializer]  # fused bias, <[G*H]>
    bias_hn: Callable[[int], Initializer]  # GRU reset-after recurrent candidate bias, <[H]>
    forget_bias: float  # added to the LSTM forget-gate bias


def _torch_uniform(h: int) -> Initializer:
    return uniform(1.0 / math.sqrt(h))


def _torch_bias(h: int, g: int) -> Initializer:
    # PyTorch's b_ih + b_hh: two uniforms summed. For the GRU the candidate block n only has b_in
    # (b_hn sits inside the reset product and is kept separately), so it is a single uniform.
    both = summed(_torch_uniform(h), _torch_uniform(h))
    if g != 3:
        return both
    return _concat_blocks([both, both, _torch_uniform(h)])


def _concat_blocks(parts: list[Initializer]) -> Initializer:
    def init(key, shape, dtype=jnp.float32):
        (n,) = shape
        keys = jax.random.split(key, len(parts))
        size = n // len(parts)
        return jnp.concatenate([f(k, (size,), dtype) for f, k in zip(parts, keys)])

    return init


PRESETS: dict[str, Preset] = {
    # rnnjax: Glorot input kernel, orthogonal recurrent matrix per gate, zero bias, forget bias 1
    # (Jozefowicz, Zaremba & Sutskever, 2015).
    "default": Preset(
        kernel=lambda h, g: glorot_uniform(),
        recurrent=lambda h, g: blockwise(orthogonal(), g),
        bias=lambda h, g: zeros(),
        bias_hn=lambda h: zeros(),
        forget_bias=1.0,
    ),
    # Keras 3 SimpleRNN/LSTM/GRU: glorot_uniform and orthogonal on the *fused* matrices,
    # zero biases, unit_forget_bias=True.
    "keras": Preset(
        kernel=lambda h, g: glorot_uniform(),
        recurrent=lambda h, g: orthogonal(),
        bias=lambda h, g: zeros(),
        bias_hn=lambda h: zeros(),
        forget_bias=1.0,
    ),
    # PyTorch nn.RNN/LSTM/GRU: every weight and bias U(±1/sqrt(H)), two summed biases, no forget bias.
    "pytorch": Preset(
        kernel=lambda h, g: _torch_uniform(h),
        recurrent=lambda h, g: _torch_uniform(h),
        bias=_torch_bias,
        bias_hn=_torch_uniform,
        forget_bias=0.0,
    ),
    # Flax linen SimpleCell/LSTMCell/OptimizedLSTMCell/GRUCell: lecun_normal input kernels and an
    # orthogonal recurrent kernel per gate (one Dense per gate), zero biases.
    "flax": Preset(
        kernel=lambda h, g: lecun_normal(),
        recurrent=lambda h, g: blockwise(orthogonal(), g),
        bias=lambda h, g: zeros(),
        bias_hn=lambda h: zeros(),
        forget_bias=0.0,
    ),
}


def preset(name: str) -> Preset:
    """Look up an initialisation preset: "default", "keras", "pytorch" or "flax"."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]
