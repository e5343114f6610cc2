"""Data parallelism with `jax.sharding`: a one-axis mesh over local devices, the batch split along it and
the parameters replicated, so `jax.jit` runs each device's share of the batch and all-reduces the
gradients. On one device this is an ordinary jit.

    mesh = parallel.data_mesh()                        # every local device
    batch = parallel.shard_batch(mesh, (x, y))         # rows split across devices
    params = parallel.replicate(mesh, params)

To try several devices on a CPU-only machine, start Python with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`.

In a `jax.distributed` run (`rnnjax.train.distributed.initialize`), `run_mesh` and `sweep_mesh` span the
devices of every process; each process holds the same whole host arrays and `shard_batch` / `sweep_map`
place its own devices' shares of them, so the same program runs unchanged on one process or many.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "batch_sharding",
    "check_batch_size",
    "check_memory",
    "check_recurrent_size",
    "data_mesh",
    "replicate",
    "replicated",
    "run_mesh",
    "shard_batch",
    "sweep_map",
    "sweep_mesh",
]

AXIS = "data"  # the mesh axis the batch is split along
# A setting whose arrays need more than this fraction of the machine's memory is refused before anything
# is allocated (a too-large allocation aborts the process instead of raising).
MEMORY_FRACTION = 0.5
# Float32 copies of every parameter during training: the parameters, their gradient and Adam's two moments.
TRAINING_COPIES = 4


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


def run_mesh(devices: int | None = None) -> Mesh:
    """The mesh a training run splits its batch across: in one process `data_mesh(devices)`; in a
    `jax.distributed` run of P processes, `devices` devices of the whole run (None: all of them), the first
    devices / P local devices of each process, in process order.

    Args:
      devices: None, or (one process) as in `data_mesh`; (P processes) a multiple of P, at most P times
        the smallest local device count.
    Returns:
      A one-axis `jax.sharding.Mesh` named `AXIS`.
    """
    processes = jax.process_count()
    if processes == 1:
        return data_mesh(devices)
    everything = jax.devices()
    owned = [[d for d in everything if d.process_index == p] for p in range(processes)]
    most = processes * min(len(o) for o in owned)
    if devices is None:
        devices = most
    if isinstance(devices, bool) or not isinstance(devices, int | np.integer) or devices < 1 or (
        devices % processes or devices > most
    ):
        raise ValueError(
            f"devices: expected None or a multiple of the {processes} processes up to {most} (the devices of "
            f"this distributed run: {len(everything)} x {everything[0].platform}), got {devices!r}"
        )
    per = int(devices) // processes
    return Mesh(np.array([d for o in owned for d in o[:per]]), (AXIS,))


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


def sweep_mesh() -> Mesh:
    """A one-axis mesh named `AXIS` over every device of the run: all local devices, and in a
    `jax.distributed` run the devices of every process."""
    return Mesh(np.array(jax.devices()), (AXIS,))


def _global_array(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A `jax.Array` with `sharding` whose value is `host`; every process holds the same whole `host` and
    contributes the shards of its own devices (so this works in a multi-process run too)."""
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def sweep_map(fn, tree, *, mesh: Mesh | None = None):
    """`jax.vmap(fn)` over the leading axis of every array of `tree` (the sweep points: seeds, gains, ...),
    the points split across the devices of `mesh` (default `sweep_mesh()`: every device of the run), and
    the results gathered whole onto the host of every process as NumPy arrays.

    The number of points need not divide the device count: the last point is repeated to fill the last
    device and the copies are dropped from the result. Every process must call it with the same `tree`
    (tested over 2 processes x 2 devices against a plain vmap: tests/train/test_distributed.py).

    Args:
      fn: a function of one point (a pytree of arrays without the leading axis), traceable by JAX.
      tree: a pytree of arrays sharing a leading axis of length N >= 1.
      mesh: a one-axis mesh named `AXIS`.
    Returns:
      The pytree `jax.vmap(fn)(tree)` would give, as NumPy arrays with leading axis N.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if not leaves:
        raise ValueError("tree: expected at least one array of sweep points, got an empty tree")
    host = [np.asarray(leaf) for leaf in leaves]
    sizes = {a.shape[0] if a.ndim else None for a in host}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        shapes = [a.shape for a in host]
        raise ValueError(f"tree: expected arrays sharing a leading axis of length >= 1, got shapes {shapes}")
    n = sizes.pop()
    mesh = sweep_mesh() if mesh is None else mesh
    pad = -n % mesh.devices.size
    host = [np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a for a in host]
    sharding = batch_sharding(mesh)
    points = jax.tree_util.tree_unflatten(treedef, [_global_array(a, sharding) for a in host])
    out = jax.jit(jax.vmap(fn), out_shardings=sharding)(points)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        out = multihost_utils.process_allgather(out, tiled=True)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[:n], out)


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(name: str, value, nbytes: float, what: str) -> None:
    """Refuse `value` of the setting `name` (ValueError) if the arrays it asks for, `nbytes` bytes
    (`what` says which), exceed `MEMORY_FRACTION` of the machine's physical memory."""
    total = physical_memory()
    if total is None or nbytes <= MEMORY_FRACTION * total:
        return
    raise ValueError(
        f"{name}: expected a size whose arrays fit in half of this machine's {total / 2**30:.1f} GiB of "
        f"memory, got {value!r}: {what} alone need about {nbytes / 2**30:.3g} GiB; choose a smaller value"
    )


def check_recurrent_size(
    name: str,
    value,
    *,
    gates: int,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    directions: int = 1,
) -> None:
    """`check_memory` for the recurrent kernels of a stack of `num_layers` layers of `directions` cells
    with `gates` gate blocks each: G (I H + H H + H) float32 parameters per cell (I = `input_size` for the
    first layer, `directions` x H after it), `TRAINING_COPIES` times over while training."""
    H = int(hidden_size)
    count = sum(
        directions * gates * ((input_size if k == 0 else directions * H) * H + H * H + H)
        for k in range(num_layers)
    )
    cells = f"{num_layers * directions} recurrent cell(s) with {gates} gate block(s) and {H} units"
    check_memory(
        name,
        value,
        4.0 * TRAINING_COPIES * count,
        f"the float32 weights, gradients and Adam moments of {cells}",
    )
