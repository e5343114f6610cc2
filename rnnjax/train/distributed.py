"""Multi-process runs on JAX's own distributed runtime (`jax.distributed`): one process per host (or per
GPU), every process running the same program, the devices of all processes forming one mesh
(`parallel.run_mesh`). Process 0 is the writer: it alone writes files and shows progress, and
`on_main` runs a piece of code there and hands its result (or its error) to every process, `together`
runs one on every process and raises everywhere if it failed anywhere, and `check_same` refuses processes
given different settings, so all processes take the same branch and none waits forever on a collective
that another one skipped.

    from rnnjax.train import distributed
    distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)  # before any JAX computation
    distributed.is_main()                                  # True on process 0 only
    run = distributed.on_main(lambda: make_folder())        # made by process 0, its value everywhere
    host = distributed.to_host(state)                      # whole NumPy arrays on every process

In a single process (no `initialize`) every function here is the plain single-process operation: `is_main`
is True, `on_main(fn)` is `fn()`, `to_host` is `jax.device_get`.

On CPU, processes exchange data through gloo (TCP) collectives (`jax_cpu_collectives_implementation`),
which `initialize` selects unless the environment chose another implementation. Tested: 2 CPU processes on
one machine (tests/train/test_distributed.py); see docs/distributed.md for GPU nodes and several hosts.

The coordination service that process 0 starts has no authentication: `initialize` binds it to the host of
the coordinator address only (JAX's own default is every interface), so give the address of the cluster's
private interface, or localhost when every process runs on one machine (docs/distributed.md).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
import threading
import warnings

import jax
import numpy as np

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV",
    "broadcast",
    "check_same",
    "describe",
    "initialize",
    "is_main",
    "on_main",
    "process_count",
    "settings",
    "to_host",
    "together",
]

# The environment variables `initialize` reads for the arguments it is not given.
ENV = {
    "coordinator": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}
# Seconds `initialize` waits, by default, for every process to join (a real cluster's processes may start
# minutes apart: a batch scheduler, a slow shared file system).
DEFAULT_TIMEOUT_S = 300
# JAX aborts the process (from C++, with a stack trace) when its own join timeout passes; `initialize` gives
# it this many seconds more than the caller's timeout, so that its own one-line error comes first.
_JAX_EXTRA_S = 15
# The exit status of a process whose run did not start within the timeout (a failed run, as `cli.run` says).
EXIT_NOT_JOINED = 1
# Exceptions passed from process 0 to the others under their own type (so a bad input is still a bad input
# for the command line's exit status); anything else arrives as a RuntimeError.
_PASSED = {e.__name__: e for e in (ValueError, TypeError, LookupError, KeyError, FileNotFoundError,
                                   FileExistsError, NotADirectoryError, OSError, RuntimeError)}  # fmt: skip


def _from_env(name: str, value):
    if value is not None:
        return value, name
    raw = os.environ.get(ENV[name])
    return (raw if raw not in (None, "") else None), ENV[name]


def _as_int(value, name: str, minimum: int):
    """`value` (an int, or its text as in the environment) as an int >= minimum, else ValueError."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _check_address(value, name: str) -> str:
    host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"{name}: expected HOST:PORT, the address of process 0 and a free port on it (e.g. "
            f"'10.0.0.1:1234' or 'localhost:1234'), got {value!r}"
        )
    return value


def settings(coordinator: str | None = None, num_processes=None, process_id=None) -> tuple | None:
    """The checked (coordinator, num_processes, process_id) of a multi-process run, each argument not
    given read from its `ENV` variable; None if none of the three is given either way (then `initialize`
    leaves them to JAX's detection of a cluster launcher). Touches no device, so a command can check its
    options before anything starts.

    Raises ValueError naming the argument (or its environment variable) for a missing or bad value.
    """
    coordinator, c_name = _from_env("coordinator", coordinator)
    num_processes, n_name = _from_env("num_processes", num_processes)
    process_id, p_name = _from_env("process_id", process_id)
    given = {c_name: coordinator, n_name: num_processes, p_name: process_id}
    if all(v is None for v in given.values()):
        return None
    if coordinator is not None:
        coordinator = _check_address(coordinator, c_name)
    if num_processes is not None:
        num_processes = _as_int(num_processes, n_name, 1)
    if process_id is not None:
        process_id = _as_int(process_id, p_name, 0)
    missing = [f"{name} (or {ENV[name]})" for name, v in
               (("coordinator", coordinator), ("num_processes", num_processes), ("process_id", process_id))
               if v is None]  # fmt: skip
    if missing:
        raise ValueError(
            f"{', '.join(missing)}: expected a value (a multi-process run needs the coordinator's HOST:PORT, "
            f"the number of processes and this process's id), got none"
        )
    if process_id >= num_processes:
        raise ValueError(
            f"{p_name}: expected an int in [0, {num_processes}) ({n_name} = {num_processes}), "
            f"got {process_id}"
        )
    return coordinator, num_processes, process_id


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: list[int] | None = None,
    timeout: int = DEFAULT_TIMEOUT_S,
) -> None:
    """Join a `jax.distributed` run of `num_processes` processes; call it in every process, before any JAX
    computation.

    Arguments not given are read from the environment (`ENV`: `JAX_COORDINATOR_ADDRESS`,
    `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`); if none of the three is given either way, JAX detects them from
    a cluster launcher (Slurm, Open MPI, Kubernetes, Cloud TPU). On CPU, gloo collectives are selected
    (`jax_cpu_collectives_implementation`) unless `JAX_CPU_COLLECTIVES_IMPLEMENTATION` names another.

    Before JAX starts anything, the coordinator's host must resolve, and on process 0 its port must be free
    on this machine. Process 0 binds JAX's coordination service, which has no authentication, to the host
    of `coordinator` only (`JAX_COORDINATOR_BIND_ADDRESS` chooses another address), not to every interface
    as JAX would. If the processes have not all joined after `timeout` seconds, this process prints one line
    `error: coordinator: ...` on stderr and exits with status `EXIT_NOT_JOINED` (JAX would otherwise abort
    it from C++ a little later, with a stack trace; there is no exception to catch).

    Args:
      coordinator: "HOST:PORT" of process 0, where it starts the coordination service (every process gives
        the same value; "localhost:PORT" only when all processes run on one machine).
      num_processes: the number of processes, >= 1.
      process_id: this process's index, 0 <= process_id < num_processes (0 is the writer).
      local_device_ids: the local accelerators this process uses (None: all, or the launcher's choice).
      timeout: seconds to wait for every process to join, an int >= 1.
    Raises:
      ValueError naming the argument (or its environment variable) for a bad or missing value, a host that
      does not resolve, a port in use or an address not of this machine (process 0), or when this process
      already runs with other settings or has already used JAX; RuntimeError naming `coordinator` when JAX
      fails to start the run in another way.
    """
    timeout = _as_int(timeout, "timeout", 1)
    coordinator, num_processes, process_id = settings(coordinator, num_processes, process_id) or (None,) * 3
    wanted = (coordinator, num_processes, process_id)
    if jax.distributed.is_initialized():
        from jax._src import distributed as _state  # the running run's settings (not exported by JAX)

        state = _state.global_state
        running = (state.coordinator_address, state.num_processes, state.process_id)
        if coordinator is None or running == wanted:
            return
        raise ValueError(
            f"coordinator, num_processes, process_id: this process already runs in a distributed run "
            f"{running}, got {wanted}"
        )
    bind = None
    if coordinator is not None:
        host, port = _split(coordinator)
        infos = _resolve(coordinator, host, port, timeout)
        if process_id == 0:
            bind = os.environ.get("JAX_COORDINATOR_BIND_ADDRESS") or coordinator
            if bind != coordinator:
                bind_host, bind_port = _split(bind)
                infos = _resolve(bind, bind_host, bind_port, timeout, name="JAX_COORDINATOR_BIND_ADDRESS")
            _check_free(bind, infos, "coordinator" if bind == coordinator else "JAX_COORDINATOR_BIND_ADDRESS")
            if num_processes > 1 and bind == coordinator:
                _warn_if_loopback_only(coordinator, host, infos)
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    joined = threading.Event()
    watchdog = threading.Thread(
        target=_exit_unless_joined,
        args=(joined, timeout, coordinator, num_processes, process_id),
        name="rnnjax-distributed-watchdog",
        daemon=True,
    )
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=timeout + _JAX_EXTRA_S,
            coordinator_bind_address=bind,
        )
    except RuntimeError as error:
        if "must be called before" in str(error):
            raise ValueError(
                "initialize: expected to be called before any JAX computation in this process, got a "
                f"process that already used JAX ({error})"
            ) from None
        raise RuntimeError(
            f"coordinator: JAX could not start the run at {coordinator!r}: {_one_line(error)}"
        ) from error
    except ValueError as error:  # JAX found no launcher to take the missing values from
        if coordinator is not None:
            raise
        raise ValueError(
            f"coordinator, num_processes, process_id: expected values (arguments, or the environment "
            f"variables {', '.join(ENV.values())}) or a cluster launcher JAX detects, got neither ({error})"
        ) from None
    finally:
        joined.set()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _split(address: str) -> tuple[str, int]:
    """(host, port) of a checked "HOST:PORT" ("[::1]:PORT" gives "::1")."""
    host, _, port = address.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _resolve(address: str, host: str, port: int, timeout: float, name: str = "coordinator") -> list:
    """`socket.getaddrinfo` of the address's host, waited for at most `timeout` seconds; ValueError naming
    `name` when it does not resolve (a typo, a name of another network) instead of JAX retrying it until
    its timeout."""
    found: dict = {}

    def look_up():
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:  # socket.gaierror, UnicodeError's OSError cousins
            found["error"] = error

    thread = threading.Thread(target=look_up, name="rnnjax-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if "infos" in found and found["infos"]:
        return found["infos"]
    why = (
        f"looking it up took more than {timeout} s"
        if thread.is_alive()
        else f"{getattr(found.get('error'), 'strerror', None) or found.get('error') or 'no address'}"
    )
    raise ValueError(
        f"{name}: expected HOST:PORT whose host resolves to an address of process 0's machine, got "
        f"{address!r}: {host!r} does not resolve ({why})"
    )


def _check_free(address: str, infos: list, name: str) -> None:
    """Refuse (ValueError naming `name`) an address where process 0 cannot start the coordination service:
    its port in use on any of the host's addresses, or none of them an address of this machine. (JAX would
    crash in C++ on a port in use, and never start on an address of another machine.)"""
    errors = []
    bound = False
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle
                probe.bind(sockaddr)
                bound = True
        except OSError as error:
            errors.append((sockaddr[0], error))
    port = infos[0][4][1]
    busy = [ip for ip, error in errors if error.errno == errno.EADDRINUSE]
    if busy:
        raise ValueError(
            f"{name}: expected a free port for process 0's coordination service, got {address!r}: port "
            f"{port} is in use on {', '.join(busy)} (another program, or an earlier run still ending); "
            f"choose another port"
        )
    if bound:
        return
    ips = ", ".join(ip for ip, _ in errors)
    if all(error.errno == errno.EADDRNOTAVAIL for _, error in errors):
        raise ValueError(
            f"{name}: expected an address of this machine, where process 0 starts the coordination service, "
            f"got {address!r} ({ips}), which is not this machine's; run process 0 on the coordinator's "
            f"machine, or give its own address"
        )
    raise ValueError(
        f"{name}: expected an address where process 0 can listen, got {address!r}: "
        + "; ".join(f"{ip}: {error.strerror or error}" for ip, error in errors)
    )


def _warn_if_loopback_only(coordinator: str, host: str, infos: list) -> None:
    """Warn when the coordinator's host is a name that resolves, on process 0, to loopback addresses only
    (e.g. Debian's 127.0.1.1 for the machine's own name): processes on other machines cannot reach it."""
    ips = {info[4][0] for info in infos}
    try:
        ipaddress.ip_address(host)
        return  # an address given as such is the user's explicit choice
    except ValueError:
        pass
    if host != "localhost" and all(ipaddress.ip_address(ip.split("%")[0]).is_loopback for ip in ips):
        warnings.warn(
            f"coordinator: {host!r} resolves to {', '.join(sorted(ips))} on this machine, a loopback address "
            f"that processes on other machines cannot reach; if they run elsewhere, give process 0's private "
            f"network address instead (e.g. --coordinator 10.0.0.1:{_split(coordinator)[1]})",
            stacklevel=3,
        )


def _answers(address: str | None) -> bool:
    """Whether something accepts a TCP connection at `address` within 2 seconds."""
    if address is None:
        return False
    try:
        with socket.create_connection(_split(address), timeout=2):
            return True
    except OSError:
        return False


def _exit_unless_joined(joined: threading.Event, timeout: int, coordinator, num_processes, process_id):
    """Unless `joined` is set within `timeout` seconds: one line `error: coordinator: ...` on stderr, then
    `os._exit(EXIT_NOT_JOINED)`. (JAX's own end, a C++ abort, comes `_JAX_EXTRA_S` later; the main thread
    is inside it and cannot be interrupted.)"""
    if joined.wait(timeout):
        return
    where = f"at {coordinator!r}" if coordinator is not None else "(the cluster launcher's coordinator)"
    if process_id == 0:
        got = "fewer: the others never reached process 0"
        hint = "start every process with the same --coordinator and --num-processes"
    elif _answers(coordinator):
        got = "an answer from process 0, but not every process joined"
        hint = "start every process with the same --coordinator and --num-processes and its own --process-id"
    else:
        got = "no answer from process 0 there"
        hint = (
            "start process 0 on the coordinator's machine with the same --coordinator, and check that this "
            "machine can reach that port"
        )
    sys.stdout.flush()
    sys.stderr.write(
        f"error: coordinator: expected all {num_processes or ''} processes of the run to join {where} "
        f"within {timeout} s (--coordinator-timeout), got {got}; {hint}, or allow longer with "
        f"--coordinator-timeout\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_NOT_JOINED)


def process_count() -> int:
    """The number of processes of the run (1 without `initialize`)."""
    return jax.process_count()


def is_main() -> bool:
    """Whether this is process 0, the one that writes files and shows progress."""
    return jax.process_index() == 0


def describe() -> str:
    """One line: this process, the processes and the devices of the run."""
    d = jax.devices()
    return (
        f"process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local and "
        f"{len(d)} devices in all ({d[0].platform})"
    )


def _broadcast_bytes(data: bytes) -> bytes:
    """Process 0's `data` on every process (two collectives: the length, then the bytes)."""
    from jax.experimental import multihost_utils

    size = multihost_utils.broadcast_one_to_all(np.array([len(data)], np.int32))
    buffer = np.zeros(int(size[0]), np.uint8)
    if is_main():
        buffer[:] = np.frombuffer(data, np.uint8)
    return np.asarray(multihost_utils.broadcast_one_to_all(buffer), np.uint8).tobytes()


def _allgather_bytes(data: bytes) -> list[bytes]:
    """Every process's `data`, in process order, on every process (two collectives)."""
    from jax.experimental import multihost_utils

    sizes = np.asarray(multihost_utils.process_allgather(np.array([len(data)], np.int32))).reshape(-1)
    buffer = np.zeros(int(sizes.max()), np.uint8)
    buffer[: len(data)] = np.frombuffer(data, np.uint8)
    every = np.asarray(multihost_utils.process_allgather(buffer), np.uint8).reshape(len(sizes), -1)
    return [every[p, : int(n)].tobytes() for p, n in enumerate(sizes)]


def _outcome(fn) -> tuple[dict, object, Exception | None]:
    """(JSON-able outcome, value, error) of calling `fn`."""
    try:
        value = fn()
    except Exception as e:  # reported to the other processes, then raised here
        kind = next((c.__name__ for c in type(e).__mro__ if c.__name__ in _PASSED), "RuntimeError")
        return {"error": kind, "message": str(e)}, None, e
    return {"value": None}, value, None


def together(fn, what: str):
    """`fn()` run on every process; if it raises on any, every process raises: that one its own error, the
    others the same type (ValueError, OSError, ...; others as RuntimeError) with the message "`what` failed
    on process K: ...". So a process whose local work fails (a missing file, a bad value) never leaves the
    others waiting for it in a collective. Every process must call it at the same point. In a single
    process: `fn()`."""
    if jax.process_count() == 1:
        return fn()
    outcome, value, error = _outcome(fn)
    outcomes = [json.loads(b.decode()) for b in _allgather_bytes(json.dumps(outcome).encode())]
    if error is not None:
        raise error
    for k, other in enumerate(outcomes):
        if "error" in other:
            raise _PASSED[other["error"]](f"{what} failed on process {k}: {other['message']}")
    return value


def check_same(value, name: str) -> None:
    """Raise ValueError on every process unless every process holds the same JSON-able `value` (e.g. its
    settings, or a digest of its data) as process 0; the message names `name` and the processes that
    differ. In a single process: nothing."""
    if jax.process_count() == 1:
        return
    every = _allgather_bytes(json.dumps(value, sort_keys=True).encode())
    differ = [k for k, b in enumerate(every) if b != every[0]]
    if differ:
        raise ValueError(
            f"{name}: expected the same on every process, got values on process(es) {differ} that differ "
            f"from process 0's; give every process the same flags and the same files"
        )


def on_main(fn, what: str = "process 0"):
    """`fn()` run on process 0 only, its JSON-able result returned on every process.

    If `fn` raises on process 0, it raises there as it is, and on every other process as the same type
    (ValueError, OSError, ...; others as RuntimeError) with the message "`what` failed: ...". Every process
    must call `on_main` at the same point (it is a collective). In a single process: `fn()`.
    """
    if jax.process_count() == 1:
        return fn()
    payload, error = b"", None
    if is_main():  # the value is sent as JSON: one that is not JSON-able fails here, on every process
        outcome, text, error = _outcome(lambda: json.dumps({"value": fn()}))
        payload = (text if error is None else json.dumps(outcome)).encode()
    shared = json.loads(_broadcast_bytes(payload).decode())
    if error is not None:
        raise error
    if "error" in shared:
        raise _PASSED[shared["error"]](f"{what} failed: {shared['message']}")
    return shared["value"]


def to_host(tree):
    """Every array of `tree` whole, as NumPy, on every process (a collective for arrays split over the
    devices of several processes; `jax.device_get` otherwise)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def whole(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(whole, tree)


def broadcast(tree):
    """Process 0's `tree` of arrays (same structure, shapes and dtypes on every process) on every process,
    as NumPy arrays. In a single process: `tree` on the host."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(jax.device_get(tree)))
