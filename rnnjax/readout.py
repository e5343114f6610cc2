"""Dense readout on top of an RNN and softmax cross-entropy, many-to-many (every step) or many-to-one
(last valid step)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import initializers
from rnnjax._checks import check_indices

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
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    kernel_init = kernel_init or initializers.lecun_normal()
    return DenseParams(kernel_init(key, (in_features, out_features), dtype), jnp.zeros(out_features, dtype))


def dense(params: DenseParams, h: jax.Array) -> jax.Array:
    """logits = h W + b for h <float>[..., in]; returns <float>[..., out]."""
    return h @ params.w + params.b


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy −log softmax(logits)[label], computed with log-sum-exp.

    Args:
      logits: <float>[..., V].
      labels: <int>[...] in [0, V).
    Returns:
      <float>[...] per-element loss.
    """
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
    if time_major:
        ys = jnp.moveaxis(ys, 0, -2)
    if lengths is None:
        return ys[..., -1, :]
    index = (jnp.asarray(lengths) - 1)[..., None, None]  # (*batch, 1, 1)
    return jnp.take_along_axis(ys, index, axis=-2)[..., 0, :]


def _check_labels(labels, want_shape: tuple[int, ...], num_classes: int, mode: str) -> jax.Array:
    labels = check_indices("labels", labels, num_classes, "class indices")
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
    ys = jnp.asarray(ys)
    if time_major:
        ys = jnp.moveaxis(ys, 0, -2)
    num_classes = readout.w.shape[-1]
    if mode == "many_to_one":
        labels = _check_labels(labels, ys.shape[:-2], num_classes, mode)
        logits = dense(readout, last_valid(ys, lengths))  # (*batch, V)
        return jnp.mean(cross_entropy(logits, labels))
    labels = _check_labels(labels, ys.shape[:-1], num_classes, mode)
    per_step = cross_entropy(dense(readout, ys), labels)  # (*batch, T)
    if lengths is None:
        return jnp.mean(per_step)
    valid = jnp.arange(ys.shape[-2]) < jnp.asarray(lengths)[..., None]  # (*batch, T)
    return jnp.sum(jnp.where(valid, per_step, 0)) / jnp.sum(valid)
