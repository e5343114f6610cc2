"""`rnnjax.train.distributed`: a `jax.distributed` run of 2 processes x 2 CPU devices on localhost (gloo
collectives) trains the language model to the parameters one process computes with 4 devices and with 1,
resumes from process 0's checkpoint on both processes, and `parallel.sweep_map` splits a sweep over the
4 devices of the 2 processes to the values of a plain `jax.vmap`; bad settings are refused with messages
naming them. The processes run `tests/train/distributed_worker.py`; a run that hangs (e.g. a collective
that one process never joins) is killed after `TIMEOUT` seconds and fails the test."""

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import text_generation
from rnnjax.train import distributed, lm, parallel

WORKER = Path(__file__).with_name("distributed_worker.py")
sys.path.insert(0, str(WORKER.parent))
import distributed_worker as worker  # noqa: E402

# Seconds the four worker processes may take together before they are killed and the test fails: the
# file needs about 48 s of CPU (37 s wall on 2 cores at a load of 3-5 from other jobs; 170 s at a load of
# 10-15); a hung collective would otherwise wait for gloo's or the coordination service's minutes-long
# timeouts.
TIMEOUT = 300
# 2 processes x 2 devices (or 1 x 4) vs 1 device: the gradient all-reduce adds the shards' partial sums in
# another order (float32), and 6 SGD steps at learning rate 0.5 carry that round-off into the params
# (measured: 5e-8 vs 1 x 4, 1e-7 vs 1 x 1). A real fault moves them far more: half of the batch rows wrong
# (as if one process fed other rows) changed them by 1.2e-2 relative over the same 6 steps
# (docs/distributed.md).
DP_RTOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(root: Path, shapes: dict[str, tuple[int, int, tuple[str, ...]]]) -> None:
    """Run the worker once per entry `name: (processes, devices, flags)` of `shapes`, all at once, each into
    `root/name` with `processes` processes of `devices` CPU devices; kill every process and fail if any
    fails or they take more than TIMEOUT seconds together."""
    procs, logs = [], []
    try:
        for name, (processes, devices, flags) in shapes.items():
            out = root / name
            out.mkdir(parents=True)
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
            env.update(JAX_PLATFORMS="cpu")
            env.pop("JAX_CPU_COLLECTIVES_IMPLEMENTATION", None)
            port = str(_free_port())
            for k in range(processes):
                logs.append(open(out / f"log{k}.txt", "w"))  # a file: no pipe fills up and blocks it
                command = [sys.executable, str(WORKER), str(out), "--processes", str(processes),
                           "--process-id", str(k), "--port", port, *flags]  # fmt: skip
                proc = subprocess.Popen(command, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
                procs.append((f"{name} process {k}", out / f"log{k}.txt", k, proc))
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for *_, p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for *_, p in procs):
                break  # one failed: the others of its run would wait for it in a collective
            time.sleep(0.2)
    finally:
        for *_, p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in logs:
            f.close()
    for what, log, k, p in procs:
        text = log.read_text()
        assert p.returncode == 0, (
            f"{what}: exit status {p.returncode} (killed after {TIMEOUT} s if -9)\n{text[-3000:]}"
        )
        assert f"done {k}" in text, text[-3000:]


def _npz(path: Path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _params(out: dict, name: str) -> list[np.ndarray]:
    keys = sorted((k for k in out if k.startswith(f"{name}/params/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    return [out[k] for k in keys]


def _worst(a: list, b: list) -> float:
    """max over leaves of max|a - b| / max|b|."""
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(a, b))


def _check_parameters(launches: Path) -> None:
    """2 x 2 vs 1 x 4 and 1 x 1: the same parameters, validation loss and logged training losses."""
    two, four, one = (_npz(launches / n / "p0.npz") for n in ("2x2", "1x4", "1x1"))
    vs_four = _worst(_params(two, "whole"), _params(four, "whole"))
    vs_one = _worst(_params(two, "whole"), _params(one, "whole"))
    print(f"max relative params difference: 2x2 vs 1x4 {vs_four:.3g}, 2x2 vs 1x1 {vs_one:.3g}")
    assert vs_four < DP_RTOL and vs_one < DP_RTOL, (vs_four, vs_one)
    # Not vacuous: training moved every parameter array by far more than the tolerance.
    moved = min(_worst([a], [b]) for a, b in zip(_params(one, "init"), _params(one, "whole")))
    assert moved > 100 * DP_RTOL, moved
    assert float(two["whole/valid_loss"]) == pytest.approx(float(one["whole/valid_loss"]), rel=DP_RTOL)
    # The training losses process 0 logged, step by step, against the one-device run's (same batches).
    losses = {}
    for name in ("2x2", "1x1"):
        records = [json.loads(line) for line in (launches / name / "run" / "metrics.jsonl").open()]
        losses[name] = [(r["step"], r["loss"]) for r in records if r["split"] == "train"]
    assert [s for s, _ in losses["2x2"]] == list(range(1, worker.CONFIG["steps"] + 1))
    np.testing.assert_allclose([v for _, v in losses["2x2"]], [v for _, v in losses["1x1"]], rtol=DP_RTOL)


def _check_writer(launches: Path) -> None:
    """Every process holds the state process 0 saved, and only process 0 wrote files."""
    out = launches / "2x2"
    p0, p1 = _npz(out / "p0.npz"), _npz(out / "p1.npz")
    for name in ("whole", "resumed"):
        for a, b in zip(_params(p0, name), _params(p1, name)):
            np.testing.assert_array_equal(a, b)  # replicated params: one value on every device
        assert p0[f"{name}/valid_loss"] == p1[f"{name}/valid_loss"]
        assert p0[f"{name}/best_step"] == p1[f"{name}/best_step"] >= 1
    # What process 0 saved, read back from disk here (one process, no jax.distributed).
    _, saved, _, config, step = lm.load(out / "run", "latest")
    assert step == config.steps
    for a, b in zip(jax.tree.leaves(saved), _params(p0, "whole")):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert sorted(p.name for p in (out / "run" / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]
    assert {"config.json", "vocab.json", "metrics.jsonl"} <= {p.name for p in (out / "run").iterdir()}
    # Process 1 was handed folders of its own to write into: it must not have created them.
    assert not (out / "run-p1").exists() and not (out / "resumed-p1").exists()


def _check_resume(launches: Path) -> None:
    """A run stopped and resumed on 2 processes equals the uninterrupted one, bit for bit."""
    out = launches / "2x2"
    p0, p1 = _npz(out / "p0.npz"), _npz(out / "p1.npz")
    for p in (p0, p1):  # both processes continued from process 0's checkpoint of step STOP
        for a, b in zip(_params(p, "resumed"), _params(p0, "whole")):
            np.testing.assert_array_equal(a, b)
    _, resumed, _, _, _ = lm.load(out / "resumed", "latest")
    _, whole, _, _, _ = lm.load(out / "run", "latest")
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _check_sweep(launches: Path) -> None:
    """`parallel.sweep_map` over the 4 devices of 2 processes vs a plain `jax.vmap` in another process."""
    reference = _npz(launches / "1x1" / "p0.npz")  # a plain jax.vmap in another, single-device process
    for k in (0, 1):
        out = _npz(launches / "2x2" / f"p{k}.npz")
        for key in ("h", "norm"):
            got, want = out[f"sweep/{key}"], reference[f"plain/{key}"]
            assert got.shape[0] == worker.SWEEP_POINTS and got.dtype == np.float64
            # The same float64 operations per point, whichever device computes it: equal bits.
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(out[f"plain/{key}"], want)


def _check_failure(launches: Path) -> None:
    """A failure on one process reaches every process as the same kind of error."""
    # The worker's last run trains into a folder that holds checkpoints without resume: process 0 refuses
    # it; process 1 must raise the same kind of error instead of waiting for process 0 in a collective.
    p0, p1 = (_npz(launches / "2x2" / f"p{k}.npz") for k in (0, 1))
    refused0, refused1 = str(p0["refused"]), str(p1["refused"])
    assert refused0.startswith("ValueError: run: ") and "already holds checkpoints" in refused0
    prefix = "ValueError: lstm char-level: opening the run folder failed: "
    assert refused1 == prefix + refused0.removeprefix("ValueError: ")
    # A failure of one process's own work (here: process 1's) reaches every process too.
    assert str(p1["caught/together"]) == "FileNotFoundError: corpus: not on this host"
    assert (
        str(p0["caught/together"])
        == "FileNotFoundError: reading failed on process 1: corpus: not on this host"
    )
    for p in (p0, p1):  # each process holds its own id: not the same on every process
        assert str(p["caught/check_same"]).startswith(
            "ValueError: settings: expected the same on every process"
        )
    one = _npz(launches / "1x1" / "p0.npz")  # in one process: the plain call
    assert (
        str(one["caught/together"]) == "returned 'read'" and str(one["caught/check_same"]) == "returned None"
    )


def _check_mesh(launches: Path) -> None:
    """`parallel.run_mesh(2)` takes one device of each process; a count it cannot split is refused."""
    p0 = _npz(launches / "2x2" / "p0.npz")
    assert p0["mesh_of_2"].tolist() == [0, 1]
    assert str(p0["bad_mesh"]).startswith("devices: expected None or a multiple of the 2 processes up to 4")
    one = _npz(launches / "1x1" / "p0.npz")
    assert str(one["bad_mesh"]).startswith("devices: expected None or an int in [1, 1]")


def test_two_processes_of_two_devices_against_one_process(tmp_path):
    """One launch (2 processes x 2 devices, and the references 1 x 4 and 1 x 1 without the resumed run,
    all at once), then every check of its outputs: one test, so that parallel test workers never launch
    it twice."""
    _launch(tmp_path, {"2x2": (2, 2, ()), "1x4": (1, 4, ("--no-resume",)), "1x1": (1, 1, ("--no-resume",))})
    _check_parameters(tmp_path)
    _check_writer(tmp_path)
    _check_resume(tmp_path)
    _check_sweep(tmp_path)
    _check_failure(tmp_path)
    _check_mesh(tmp_path)


@pytest.mark.parametrize(
    "kwargs, env, match",
    [
        (dict(coordinator="localhost"), {}, r"coordinator: expected HOST:PORT.*got 'localhost'"),
        (dict(coordinator="h:99999", num_processes=2, process_id=0), {}, r"coordinator: expected HOST:PORT"),
        (dict(coordinator="h:1", num_processes=0, process_id=0), {}, r"num_processes: expected an int >= 1"),
        (dict(coordinator="h:1", num_processes=2, process_id=2), {}, r"process_id: expected an int in \[0,"),
        (dict(coordinator="h:1", num_processes=2, process_id=True), {}, r"process_id: expected an int >= 0"),
        (dict(coordinator="h:1"), {},
         r"num_processes \(or JAX_NUM_PROCESSES\), process_id \(or JAX_PROCESS_ID\): expected a value"),
        (dict(coordinator="h:1", process_id=0), {"JAX_NUM_PROCESSES": "two"},
         r"JAX_NUM_PROCESSES: expected an int >= 1, got 'two'"),
        ({}, {"JAX_PROCESS_ID": "1"},
         r"^coordinator \(or JAX_COORDINATOR_ADDRESS\), num_processes \(or JAX_NUM_PROCESSES\): expected"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_anything_starts(monkeypatch, kwargs, env, match):
    for name in distributed.ENV.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        distributed.settings(**kwargs)
    with pytest.raises(ValueError, match=match):
        distributed.initialize(**kwargs)
    assert not jax.distributed.is_initialized()
    if not any(isinstance(v, bool) for v in kwargs.values()):  # (a flag's text is never a bool)
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in kwargs.items()]
        with pytest.raises(ValueError, match=match):  # the command checks the same when parsing its flags
            text_generation.parse(["train", *flags])


def test_settings_read_the_environment_and_one_process_is_the_plain_run(monkeypatch):
    for name in distributed.ENV.values():
        monkeypatch.delenv(name, raising=False)
    assert distributed.settings() is None
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
    monkeypatch.setenv("JAX_PROCESS_ID", "3")
    assert distributed.settings() == ("10.0.0.1:1234", 4, 3)
    assert distributed.settings(process_id=0) == ("10.0.0.1:1234", 4, 0)  # an argument wins
    # Without jax.distributed everything is the single-process operation.
    assert distributed.is_main() and distributed.process_count() == 1
    assert distributed.on_main(lambda: {"a": 1}) == {"a": 1}
    assert parallel.run_mesh().devices.tolist() == parallel.data_mesh().devices.tolist()
    tree = {"x": jax.numpy.arange(3.0)}
    assert isinstance(distributed.to_host(tree)["x"], np.ndarray)


@pytest.fixture
def no_jax_distributed(monkeypatch):
    """jax.distributed.initialize replaced by a recorder of its keyword arguments (nothing starts), and the
    environment variables `initialize` reads cleared."""
    for name in (*distributed.ENV.values(), "JAX_COORDINATOR_BIND_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    return calls


def test_coordinators_that_cannot_work_are_refused_before_jax_starts(no_jax_distributed):
    with socket.socket() as listener:  # a port in use: JAX's coordination service crashed on it (SIGSEGV)
        listener.bind(("localhost", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ValueError, match=rf"coordinator: expected a free port .* port {port} is in use"):
            distributed.initialize(f"localhost:{port}", 1, 0)
    # a host that does not resolve: JAX retried it silently until its timeout
    with pytest.raises(ValueError, match=r"coordinator: expected HOST:PORT whose host resolves .* does not"):
        distributed.initialize("no.such.host.invalid:1234", 2, 1)
    # process 0 on a machine that does not have the coordinator's address (192.0.2.1: for documentation)
    with pytest.raises(ValueError, match=r"coordinator: expected an address of this machine, .*192\.0\.2\.1"):
        distributed.initialize("192.0.2.1:1234", 2, 0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"timeout: expected an int >= 1, got {bad!r}"):
            distributed.initialize(f"localhost:{_free_port()}", 1, 0, timeout=bad)
    assert no_jax_distributed == [] and not jax.distributed.is_initialized()


def test_the_coordination_service_binds_to_the_coordinators_host_only(no_jax_distributed, monkeypatch):
    port = _free_port()
    distributed.initialize(f"localhost:{port}", 2, 0, timeout=7)
    distributed.initialize(f"localhost:{port}", 2, 1, timeout=7)
    monkeypatch.setenv("JAX_COORDINATOR_BIND_ADDRESS", f"127.0.0.1:{port}")
    distributed.initialize(f"localhost:{port}", 2, 0, timeout=7)
    binds = [call["coordinator_bind_address"] for call in no_jax_distributed]
    # process 0: the coordinator's own address (JAX's default would be every interface, [::]:PORT), or the
    # one the environment chose; other processes bind nothing. JAX's own timeout comes after the watchdog's.
    assert binds == [f"localhost:{port}", None, f"127.0.0.1:{port}"]
    assert {call["initialization_timeout"] for call in no_jax_distributed} == {7 + distributed._JAX_EXTRA_S}


def test_a_host_name_that_is_loopback_on_process_0_is_warned_about(no_jax_distributed, monkeypatch):
    port = _free_port()
    real = socket.getaddrinfo
    loopback = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: loopback if host == "node0" else real(host, *a, **k)
    )
    with pytest.warns(
        UserWarning, match=r"coordinator: 'node0' resolves to 127\.0\.0\.1 on this machine, a "
    ):
        distributed.initialize(f"node0:{port}", 2, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distributed.initialize(f"localhost:{port}", 2, 0)  # all processes on one machine: said so
        distributed.initialize(f"node0:{port}", 1, 0)  # one process: nobody else needs to reach it
