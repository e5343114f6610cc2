"""Dense readout on top of an RNN and softmax cross-entropy, many-to-many (every step) or many-to-one
(last valid step)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, initializers

__all__ = ["DenseParams", "MODES", "cross_entropy", "dense", "dense_init", "last_valid", "sequence_loss"]

MODES = ("many_to_many", "many_to_one")


class DenseParams(NamedTuple):
    w: jax.Array  # [H, V]
    b: jax.Array  # [V]


def dense_init(
    key: jax.Array,
    in_features: int,
    out_features: int,
    *,
    kernel_init: initializers.Initializer | None = None,
    dtype=jnp.float32,
) -> DenseParams:
    """Readout params: W <[in, out]> (default `lecun_normal`) and zero bias b <[out]>."""
    _checks.check_key("key", key)
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    _checks.check_callable(
        "kernel_init", kernel_init, "an initialiser (key, shape, dtype) -> array", optional=True
    )
    dtype = _checks.check_float_dtype("dtype", dtype)
    kernel_init = kernel_init or initializers.lecun_normal()
    return DenseParams(kernel_init(key, (in_features, out_features), dtype), jnp.zeros(out_features, dtype))


def _check_dense(params, name: str = "params") -> tuple[int, int]:
    """(in, out) of `DenseParams` with w <[in, out]> and b <[out]>; anything else raises naming `name`."""
    if not isinstance(params, DenseParams):
        raise TypeError(f"{name}: expected rnnjax.readout.DenseParams(w, b), got {type(params).__name__}")
    w_shape, b_shape = jnp.shape(params.w), jnp.shape(params.b)
    if len(w_shape) != 2 or b_shape != w_shape[1:]:
        raise ValueError(
            f"{name}: expected w of shape [in, out] and b of shape [out], got {w_shape} and {b_shape}"
        )
    return w_shape


def _check_features(name: str, value, width: int, what: str) -> jax.Array:
    """A floating-point array <[..., width]>: `width` features on its last axis."""
    value = _checks.check_float_array(name, value)
    if value.ndim < 1 or value.shape[-1] != width:
        raise ValueError(f"{name}: expected shape [..., {width}] ({what}), got {value.shape}")
    return value


def dense(params: DenseParams, h: jax.Array, *, precision: str | None = None) -> jax.Array:
    """logits = h W + b for h <float>[..., in]; returns <float>[..., out]. `precision`: the matmul's
    precision (see `rnnjax.unroll`); None follows JAX's default."""
    in_features, _ = _check_dense(params)
    h = _check_features("h", h, in_features, "the readout's in_features, params.w.shape[0]")
    with _checks.matmul_precision(precision):
        return h @ params.w + params.b


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy −log softmax(logits)[label], computed with log-sum-exp.

    Args:
      logits: <float>[..., V].
      labels: <int>[...] in [0, V).
    Returns:
      <float>[...] per-element loss.
    """
    logits = _checks.check_float_array("logits", logits, "array [..., V]")
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits: expected shape [..., V] with V >= 1, got {logits.shape}")
    labels = _checks.check_indices("labels", labels, logits.shape[-1], "class indices")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels: expected shape {logits.shape[:-1]} (logits without its class axis), got {labels.shape}"
        )
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def last_valid(ys: jax.Array, lengths: jax.Array | None = None, *, time_major: bool = False) -> jax.Array:
    """The output at each example's last valid step.

    Args:
      ys: <float>[*batch, T, H] (or [T, *batch, H] if `time_major`).
      lengths: optional <int>[*batch] in [1, T]; None means T for every example.
    Returns:
      <float>[*batch, H].
    """
    ys = _check_outputs(ys, time_major)
    if lengths is None:
        return ys[..., -1, :]
    lengths = _checks.check_lengths(lengths, ys.shape[:-2], ys.shape[-2], "ys")
    index = (lengths - 1)[..., None, None]  # (*batch, 1, 1)
    return jnp.take_along_axis(ys, index, axis=-2)[..., 0, :]


def _check_outputs(ys, time_major) -> jax.Array:
    """RNN outputs as <float>[*batch, T, H] (moved from time-major if `time_major`)."""
    _checks.check_bool("time_major", time_major)
    ys = _checks.check_float_array("ys", ys, "array of RNN outputs")
    if ys.ndim < 2 or ys.shape[-2] < 1:
        layout = "[T, *batch, H]" if time_major else "[*batch, T, H]"
        raise ValueError(f"ys: expected RNN outputs of shape {layout} with T >= 1, got {ys.shape}")
    return jnp.moveaxis(ys, 0, -2) if time_major else ys


def _check_labels(labels, want_shape: tuple[int, ...], num_classes: int, mode: str) -> jax.Array:
    labels = _checks.check_indices("labels", labels, num_classes, "class indices")
    if labels.shape != want_shape:
        raise ValueError(f"labels: {mode} expected shape {want_shape}, got {labels.shape}")
    return labels


def sequence_loss(
    readout: DenseParams,
    ys: jax.Array,
    labels: jax.Array,
    *,
    lengths: jax.Array | None = None,
    mode: str = "many_to_many",
    time_major: bool = False,
) -> jax.Array:
    """Mean softmax cross-entropy of a dense readout over an RNN's outputs.

    Args:
      readout: `DenseParams` with W <[H, V]>.
      ys: RNN outputs <float>[*batch, T, H] (or [T, *batch, H] if `time_major`).
      labels: many_to_many: <int>[*batch, T] (batch-major even when `time_major`), a target per step;
        many_to_one: <int>[*batch], one target per sequence.
      lengths: optional <int>[*batch] valid lengths.
      mode: "many_to_many" averages over every valid (example, step); "many_to_one" reads out the last
        valid step of each example and averages over examples.
    Returns:
      <float>[] the loss.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    in_features, num_classes = _check_dense(readout, "readout")
    ys = _check_outputs(ys, time_major)
    _check_features("ys", ys, in_features, "the readout's in_features, readout.w.shape[0]")
    if lengths is not None:
        lengths = _checks.check_lengths(lengths, ys.shape[:-2], ys.shape[-2], "ys")
    if mode == "many_to_one":
        labels = _check_labels(labels, ys.shape[:-2], num_classes, mode)
        logits = dense(readout, last_valid(ys, lengths))  # (*batch, V)
        return jnp.mean(cross_entropy(logits, labels))
    labels = _check_labels(labels, ys.shape[:-1], num_classes, mode)
    per_step = cross_entropy(dense(readout, ys), labels)  # (*batch, T)
    if lengths is None:
        return jnp.mean(per_step)
    valid = jnp.arange(ys.shape[-2]) < lengths[..., None]  # (*batch, T)
    return jnp.sum(jnp.where(valid, per_step, 0)) / jnp.sum(valid)
