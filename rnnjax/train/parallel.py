"""Data parallelism with `jax.sharding`: a one-axis mesh over local devices, the batch split along it and
the parameters replicated, so `jax.jit` runs each device's share of the batch and all-reduces the
gradients. On one device this is an ordinary jit.

    mesh = parallel.data_mesh()                        # every local device
    batch = parallel.shard_batch(mesh, (x, y))         # rows split across devices
    params = parallel.replicate(mesh, params)

To try several devices on a CPU-only machine, start Python with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "batch_sharding",
    "check_batch_size",
    "data_mesh",
    "replicate",
    "replicated",
    "shard_batch",
]

AXIS = "data"  # the mesh axis the batch is split along


def data_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh named `AXIS` over the first `devices` local devices (None: all of them).

    Args:
      devices: how many local devices to use, 1 <= devices <= jax.local_device_count(); None for all.
    Returns:
      A `jax.sharding.Mesh` of shape (devices,).
    """
    available = jax.local_devices()
    if devices is None:
        devices = len(available)
    if (
        isinstance(devices, bool)
        or not isinstance(devices, int | np.integer)
        or not 1 <= devices <= len(available)
    ):
        raise ValueError(
            f"devices: expected None or an int in [1, {len(available)}] (the local devices: "
            f"{len(available)} x {available[0].platform}), got {devices!r}"
        )
    return Mesh(np.array(available[: int(devices)]), (AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split across the mesh, other axes whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(mesh: Mesh, batch_size: int, name: str = "batch_size") -> int:
    """`batch_size` if it divides evenly across the mesh's devices, else a ValueError naming `name`."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"{name}: expected a multiple of the {n} devices the batch is split across, got {batch_size} "
            f"(use a multiple of {n}, or fewer devices)"
        )
    return batch_size


def shard_batch(mesh: Mesh, tree):
    """Place every array of `tree` (leading axis = batch) split along the mesh."""
    return jax.device_put(tree, batch_sharding(mesh))


def replicate(mesh: Mesh, tree):
    """Place every array of `tree` whole on each device of the mesh."""
    return jax.device_put(tree, replicated(mesh))
