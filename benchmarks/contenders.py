"""The contenders of `benchmarks.throughput`: for each, its forward and forward+backward call built on
the same rnnjax weights (`build_contenders`), the mapping of those weights into it and of its gradients
back to rnnjax's layout, and the cross-check of its results against rnnjax's (`cross_check`).

Contenders (same cell equations, the same weights copied into each, float32, inputs <float32>[B, T, I]
batch-major for everyone, I = --input-size = 128 by default):
  - rnnjax:  `rnnjax.unroll(cell, params, xs, precision=P)` with `cells.make(kind, H)` (the simple cell's
             default activation is tanh): the default path (the backend's default scan unroll), the
             whole-sequence kernels of `rnnjax.fused` (hand-written backward pass);
  - rnnjax@uK (with --unrolls K ...): the same with `unroll=K` (lax.scan steps per loop iteration), one
             contender per value, so the per-backend default unroll can be re-measured by one command;
  - rnnjax-plain: the same with `fast=False`, autodiff of the `cell.step` scan (what the kernels replace);
  - flax:    `flax.linen.RNN` of `SimpleCell` / `OptimizedLSTMCell` / `GRUCell`;
  - flax-nnx: `flax.nnx.RNN` of `nnx.SimpleCell` / `nnx.OptimizedLSTMCell` / `nnx.GRUCell`, called through
             `nnx.jit` (the module is an argument of every call, as in an NNX training loop); NNX's
             GRUCell has no b_hn, so its recurrent `dense_h` is given a bias 0‖0‖b_hn (the same add as
             linen's `hn` bias) to compute the benchmark's GRU;
  - torch:   `torch.nn.RNN(tanh)` / `LSTM` / `GRU` on the CPU with `batch_first=True` and
             `torch.set_num_threads(--torch-threads or os.cpu_count())`;
  - torch-cuda: the same modules on CUDA (cuDNN), each call ended by `torch.cuda.synchronize()`;
  - jax-cudnn: `jax.experimental.rnn.lstm` (cuDNN through JAX; LSTM only): one flat weight vector,
             `cudnn_lstm_weights`;
  - scan:    a naive `lax.scan` over a per-step cell written here (x @ W_ih + h @ W_hh + b, gates), sharing
             no code with rnnjax.
Modes: "fwd" returns ys <[B, T, H]> (torch under `inference_mode`); "fwd+bwd" returns the gradient of
loss = sum(ys) w.r.t. all params (`jax.grad`; torch `torch.autograd.grad`, so there are no .grad buffers
to zero). JAX functions are jitted. The matched matmul precision of each side: `benchmarks.throughput`.

Cross-check (`benchmarks.throughput` runs it before timing and aborts on a mismatch): the rnnjax weights
(biases perturbed by N(0, 0.1^2), as they start at zero) are copied into the naive scan, Flax
(param dict built from them), Flax NNX (dense_i.kernel = W_ih, dense_h.kernel = W_hh, b on dense_i for
the simple cell and the GRU and on dense_h for the LSTM), torch (weight_ih = W_ih^T, weight_hh = W_hh^T,
bias_ih = b, bias_hh = 0 except the GRU's candidate block, which holds b_hn) and jax-cudnn (the same four
arrays, flattened in cuDNN's order). Outputs must agree with rnnjax to SCAN_TOL (scan, rnnjax-plain,
rnnjax@uK) or PEER_TOL (the others) in max abs difference, and gradients (mapped back to rnnjax's layout)
to GRAD_RTOL relative to the largest rnnjax gradient entry. With --precision default on a GPU, where both
sides round matmul inputs to TF32, every tolerance is TF32_TOL instead (the mappings are checked tightly
by the "highest" run of the same grid).

Kinds: the rnnjax contenders run any kind of `rnnjax.cells.KINDS`; the peers (flax, flax-nnx, torch,
torch-cuda, jax-cudnn, scan) are built from `PEERS`, one row per kind they have (simple, LSTM, GRU), and
refuse any other kind by name (`peer`), so a new kind is benchmarked with the rnnjax contenders only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rnnjax

Contender = Literal["rnnjax", "rnnjax-plain", "flax", "flax-nnx", "torch", "scan", "torch-cuda", "jax-cudnn"]

GPU_CONTENDERS = ("torch-cuda", "jax-cudnn")
SWEEP = "rnnjax@u"  # prefix of the unroll sweep's contenders: rnnjax@u1, rnnjax@u4, ...
RNNJAX_CONTENDERS = ("rnnjax", "rnnjax-plain")  # and rnnjax@uK: these run every kind

# Cross-check tolerances (float32). The scan and rnnjax-plain run nearly the same ops as rnnjax; Flax and
# torch differ in the order of additions (torch adds two biases, Flax splits the matmuls per gate) and in
# kernels.
SCAN_TOL = 1e-5  # max |ys_scan - ys_rnnjax|
PEER_TOL = 1e-4  # max |ys_peer - ys_rnnjax|
GRAD_RTOL = 1e-4  # max |g_peer - g_rnnjax| / max |g_rnnjax|, per parameter
# --precision default on a GPU: both sides round every matmul input to TF32 (10-bit mantissa, unit
# roundoff 2^-11 = 4.9e-4) in their own order; the issue measured 1e-4 to 1.6e-3 between TF32 and float32
# results. A wrong mapping (a swapped gate block, a lost N(0, 0.1^2) bias) moves outputs by more.
TF32_TOL = 1e-2
# What jax-cudnn is given at each --precision (see `cudnn_lstm_apply`).
JAX_CUDNN_PRECISION = {
    "highest": "HIGHEST (cudnn_allow_tf32 False)",
    "default": "HIGH (cudnn_allow_tf32 True)",
}


# --------------------------------------------------------------------------------------------
# Naive lax.scan: the cell equations written out again, independently of rnnjax.cells.


def _simple_step(p):
    def step(carry, x):  # carry (h,), h (B, H); x (B, I)
        (h,) = carry
        h = jnp.tanh(x @ p.w_ih + h @ p.w_hh + p.b)
        return (h,), h

    return step


def _lstm_step(p):
    def step(carry, x):  # carry (h, c)
        h, c = carry
        H = h.shape[-1]
        z = x @ p.w_ih + h @ p.w_hh + p.b  # (B, 4H)
        i = jax.nn.sigmoid(z[:, :H])
        f = jax.nn.sigmoid(z[:, H : 2 * H])
        g = jnp.tanh(z[:, 2 * H : 3 * H])
        o = jax.nn.sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    return step


def _gru_step(p):
    def step(carry, x):  # carry (h,)
        (h,) = carry
        H = h.shape[-1]
        a = x @ p.w_ih + p.b  # (B, 3H)
        u = h @ p.w_hh  # (B, 3H)
        r = jax.nn.sigmoid(a[:, :H] + u[:, :H])
        z = jax.nn.sigmoid(a[:, H : 2 * H] + u[:, H : 2 * H])
        n = jnp.tanh(a[:, 2 * H :] + r * (u[:, 2 * H :] + p.b_hn))
        h = (1 - z) * n + z * h
        return (h,), h

    return step


class Peer(NamedTuple):
    """How the peers build the cells of one rnnjax kind: the same equations, each in its own layout."""

    naive_step: Callable[[Any], Callable]  # params -> step(carry, x) -> (carry, h) of the naive scan
    carry_fields: int  # arrays in that step's carry: 1 (h) or 2 (h, c)
    flax_cell: str  # its cell class in flax.linen
    flax_per_gate: bool  # one Dense per gate block, i{gate} / h{gate} (rnnjax's gate letters); else i, h
    flax_biased: str  # the side whose Flax Denses hold b: "i" (input) or "h" (recurrent)
    torch_module: str  # its class in torch.nn
    torch_options: dict  # further torch constructor options
    b_hn: bool  # has the GRU's b_hn: Flax's candidate recurrent Dense (hn) bias, torch's last bias_hh block
    cudnn: bool  # jax.experimental.rnn (cuDNN through JAX) has this cell


# The kinds the peer contenders build: rnnjax kind -> how.
PEERS: dict[str, Peer] = {
    "simple": Peer(
        naive_step=_simple_step, carry_fields=1, flax_cell="SimpleCell", flax_per_gate=False,
        flax_biased="i", torch_module="RNN", torch_options={"nonlinearity": "tanh"}, b_hn=False, cudnn=False,
    ),
    "lstm": Peer(
        naive_step=_lstm_step, carry_fields=2, flax_cell="OptimizedLSTMCell", flax_per_gate=True,
        flax_biased="h", torch_module="LSTM", torch_options={}, b_hn=False, cudnn=True,
    ),
    "gru": Peer(
        naive_step=_gru_step, carry_fields=1, flax_cell="GRUCell", flax_per_gate=True,
        flax_biased="i", torch_module="GRU", torch_options={}, b_hn=True, cudnn=False,
    ),
}  # fmt: skip


def peer(kind: str, contenders=("flax", "flax-nnx", "torch", "torch-cuda", "jax-cudnn", "scan")) -> Peer:
    """`PEERS[kind]`; any other kind raises a ValueError naming the kinds the peer `contenders` build."""
    if kind not in PEERS:
        raise ValueError(
            f"kind: the peer contenders ({', '.join(contenders)}) build kinds {tuple(PEERS)}, got kind "
            f"{kind!r}; benchmark it with the rnnjax contenders only ({', '.join(RNNJAX_CONTENDERS)}, "
            f"{SWEEP}K)"
        )
    return PEERS[kind]


def naive_unroll(kind: str, params, xs: jax.Array) -> jax.Array:
    """ys <[B, T, H]> of a per-step cell in a `lax.scan`; params in rnnjax's layout (w_ih <[I, G*H]>,
    w_hh <[H, G*H]>, b <[G*H]>, and b_hn <[H]> for the GRU, gate order i,f,g,o / r,z,n)."""
    spec = peer(kind, ("scan",))
    B, H = xs.shape[0], params.w_hh.shape[0]
    carry = tuple(jnp.zeros((B, H), xs.dtype) for _ in range(spec.carry_fields))
    _, ys = jax.lax.scan(spec.naive_step(params), carry, jnp.swapaxes(xs, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1)


# --------------------------------------------------------------------------------------------
# Flax linen: params built from rnnjax's (no Flax init, so no orthogonal QR is run at all).


def flax_module(kind: str, H: int):
    import flax.linen as nn

    return nn.RNN(getattr(nn, peer(kind, ("flax",)).flax_cell)(H))


def _flax_blocks(kind: str, spec: Peer, H: int) -> tuple[str, ...]:
    """What follows "i" / "h" in the names of Flax's Denses: rnnjax's gate letters, or "" (one per side)."""
    return rnnjax.cells.make(kind, H).gates if spec.flax_per_gate else ("",)


def flax_variables(kind: str, params) -> dict:
    """rnnjax params -> `{"params": {"cell": ...}}` of `nn.RNN(SimpleCell/OptimizedLSTMCell/GRUCell)`.

    Flax names its per-gate dense layers after the gates (`ii`, `hf`, `hn`, ...), the same letters as
    rnnjax's `cell.gates`, which name the blocks of the fused kernels in order (the simple cell has one
    Dense per side, `i` and `h`). The bias sits on the hidden side for the LSTM and on the input side for
    the simple cell and the GRU (whose `hn` holds b_hn)."""
    spec = peer(kind, ("flax",))
    blocks = _flax_blocks(kind, spec, params.w_hh.shape[0])
    wi, wh, b = (jnp.split(a, len(blocks), axis=-1) for a in (params.w_ih, params.w_hh, params.b))
    cell = {}
    for k, gate in enumerate(blocks):
        cell[f"i{gate}"] = {"kernel": wi[k]}
        cell[f"h{gate}"] = {"kernel": wh[k]}
        cell[f"{spec.flax_biased}{gate}"]["bias"] = b[k]
    if spec.b_hn:
        cell[f"h{blocks[-1]}"]["bias"] = params.b_hn  # hn: the candidate's recurrent Dense
    return {"params": {"cell": cell}}


def params_from_flax(kind: str, variables: dict, like):
    """Inverse of `flax_variables` (used on gradients); `like` is an rnnjax params value of the kind."""
    spec = peer(kind, ("flax",))
    cell = variables["params"]["cell"]
    blocks = _flax_blocks(kind, spec, like.w_hh.shape[0])
    cat = lambda name, key: jnp.concatenate([cell[f"{name}{g}"][key] for g in blocks], axis=-1)  # noqa: E731
    rest = (cell[f"h{blocks[-1]}"]["bias"],) if spec.b_hn else ()
    return type(like)(cat("i", "kernel"), cat("h", "kernel"), cat(spec.flax_biased, "bias"), *rest)


# --------------------------------------------------------------------------------------------
# Flax NNX: the cell named like linen's (all three hold fused dense_i / dense_h Linears), params set from
# rnnjax's without running NNX's initialisers.


def nnx_module(kind: str, params):
    """`nnx.RNN` of the NNX cell of `kind` holding the rnnjax params (see the module docstring)."""
    from flax import nnx

    spec = peer(kind, ("flax-nnx",))
    (I, GH), H = params.w_ih.shape, params.w_hh.shape[0]
    cell = nnx.eval_shape(lambda: getattr(nnx, spec.flax_cell)(I, H, rngs=nnx.Rngs(0)))
    if spec.b_hn:  # NNX's GRUCell has no candidate recurrent bias: give its dense_h one, 0‖0‖b_hn
        cell.dense_h = nnx.eval_shape(lambda: nnx.Linear(H, GH, use_bias=True, rngs=nnx.Rngs(0)))
    values = {"dense_i": {"kernel": params.w_ih}, "dense_h": {"kernel": params.w_hh}}
    values[f"dense_{spec.flax_biased}"]["bias"] = params.b
    if spec.b_hn:
        values["dense_h"]["bias"] = jnp.concatenate([jnp.zeros(GH - H, params.b_hn.dtype), params.b_hn])
    want = jax.tree.map(lambda a: (a.shape, a.dtype), nnx.to_pure_dict(nnx.state(cell, nnx.Param)))
    got = jax.tree.map(lambda a: (a.shape, a.dtype), values)
    if want != got:
        raise RuntimeError(f"flax-nnx {kind}: param layout changed: expected {want}, built {got}")
    state = nnx.state(cell, nnx.Param)
    nnx.replace_by_pure_dict(state, values)
    nnx.update(cell, state)
    return nnx.RNN(cell)


def params_from_nnx(kind: str, grads, like):
    """NNX gradients (an `nnx.State` of `nnx_module`'s params) -> rnnjax layout."""
    from flax import nnx

    spec = peer(kind, ("flax-nnx",))
    cell = nnx.to_pure_dict(grads)["cell"]
    rest = (cell["dense_h"]["bias"][-like.w_hh.shape[0] :],) if spec.b_hn else ()
    b = cell[f"dense_{spec.flax_biased}"]["bias"]
    return type(like)(cell["dense_i"]["kernel"], cell["dense_h"]["kernel"], b, *rest)


def nnx_contender(kind: str, params, xs) -> dict:
    """{"fwd": (fn, args), "fwd+bwd": (fn, args), "to_rnnjax": {...}} of `nnx_module` under `nnx.jit`."""
    from flax import nnx

    module = nnx_module(kind, params)
    fwd = nnx.jit(lambda m, x: m(x))
    grad = nnx.jit(lambda m, x: nnx.grad(lambda m: jnp.sum(m(x)))(m))
    return {
        "fwd": (fwd, (module, xs)),
        "fwd+bwd": (grad, (module, xs)),
        "to_rnnjax": {"fwd": lambda y: y, "fwd+bwd": lambda g: params_from_nnx(kind, g, params)},
    }


# --------------------------------------------------------------------------------------------
# PyTorch: optional; on the CPU and, where CUDA is available, on the GPU (cuDNN).


def import_torch():
    """The torch module, or None (with a printed message) when the `bench` extra is not installed."""
    try:
        import torch
    except ImportError:
        print(
            "torch is not installed: skipping the torch contenders "
            '(install the optional extra: pip install -e ".[bench]", torch==2.13.0 CPU)',
            file=sys.stderr,
        )
        return None
    return torch


def torch_module(torch, kind: str, params, device: str = "cpu"):
    """A torch nn.RNN/LSTM/GRU (batch_first) holding the rnnjax params (see the module docstring), on
    `device`."""
    spec = peer(kind, ("torch", "torch-cuda"))
    I, GH = params.w_ih.shape
    H = params.w_hh.shape[0]
    module = getattr(torch.nn, spec.torch_module)(I, H, batch_first=True, **spec.torch_options)
    as_torch = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731 (a copy, contiguous)
    bias_hh = np.zeros(GH, np.float32)
    if spec.b_hn:
        bias_hh[-H:] = np.asarray(params.b_hn)  # torch's b_hn sits inside r * (W_hn h + b_hn), as ours
    with torch.no_grad():
        module.weight_ih_l0.copy_(as_torch(np.asarray(params.w_ih).T))
        module.weight_hh_l0.copy_(as_torch(np.asarray(params.w_hh).T))
        module.bias_ih_l0.copy_(as_torch(params.b))
        module.bias_hh_l0.copy_(torch.from_numpy(bias_hh))
    return module.to(device)  # moves the parameters in place (cuDNN's flat weight buffer on CUDA)


def params_from_torch(kind: str, grads: dict, like):
    """Torch gradients by parameter name -> rnnjax layout (bias_ih carries b; the GRU's b_hn is the
    candidate block of bias_hh)."""
    spec = peer(kind, ("torch", "torch-cuda"))
    g = {k: np.asarray(v.detach().cpu().numpy()) for k, v in grads.items()}
    w_ih, w_hh, b = g["weight_ih_l0"].T, g["weight_hh_l0"].T, g["bias_ih_l0"]
    rest = (g["bias_hh_l0"][-w_hh.shape[0] :],) if spec.b_hn else ()
    return type(like)(w_ih, w_hh, b, *rest)


def torch_contender(torch, kind: str, params, xs, device: str = "cpu") -> dict:
    """{"fwd": (fn, args), "fwd+bwd": (fn, args), "to_rnnjax": {...}} of the torch module on `device`
    ("cpu" or "cuda"; on CUDA each call waits for the GPU, so a call's wall time is its run time)."""
    module = torch_module(torch, kind, params, device)
    named = dict(module.named_parameters())
    x_t = torch.from_numpy(np.array(xs, np.float32)).to(device)
    wait = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def fwd(x):
        with torch.inference_mode():
            ys = module(x)[0]
        wait()
        return ys

    def fwd_bwd(x):
        ys, _ = module(x)
        grads = dict(zip(named, torch.autograd.grad(ys.sum(), list(named.values()))))
        wait()
        return grads

    return {
        "fwd": (fwd, (x_t,)),
        "fwd+bwd": (fwd_bwd, (x_t,)),
        "to_rnnjax": {
            "fwd": lambda y: np.asarray(y.cpu().numpy()),
            "fwd+bwd": lambda g: params_from_torch(kind, g, params),
        },
    }


def torch_precision(torch, precision: str) -> dict:
    """Set torch's TF32 switches for `precision` ("highest": off, "default": on) and return what torch
    reports afterwards (plus the earlier values under "before", to restore them with
    `restore_torch_precision`)."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = precision != "highest"
    torch.backends.cudnn.allow_tf32 = precision != "highest"
    out = dict(
        cuda_matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
        before=before,
    )
    rnn = getattr(torch.backends.cudnn, "rnn", None)  # torch >= 2.9 also reports the newer setting
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        out["cudnn_rnn_fp32_precision"] = str(rnn.fp32_precision)
    return out


def torch_info(torch) -> dict:
    return dict(
        version=torch.__version__,
        threads=torch.get_num_threads(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
    )


def restore_torch_precision(torch, state: dict) -> None:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = state["before"]


# --------------------------------------------------------------------------------------------
# jax.experimental.rnn: cuDNN's LSTM through JAX (GPU only; its `lstm_ref` is a CPU path, used by the tests
# to check the weight mapping).


def cudnn_lstm_weights(params) -> jax.Array:
    """rnnjax LSTM params -> the flat weight vector <[4H*I + 4H*H + 8H]> of `jax.experimental.rnn.lstm`
    with one layer and one direction: W_ih <[4H, I]>, W_hh <[4H, H]>, b_ih <[4H]>, b_hh <[4H]>, each
    flattened row-major, in that order. cuDNN's gate order is PyTorch's, i, f, g, o, which is rnnjax's;
    b_ih holds b and b_hh zeros (cuDNN adds both)."""
    return jnp.concatenate(
        [params.w_ih.T.reshape(-1), params.w_hh.T.reshape(-1), params.b, jnp.zeros_like(params.b)]
    )


def params_from_cudnn(flat, like):
    """Inverse of `cudnn_lstm_weights` (used on gradients), read with jax's own `unpack_lstm_weights`;
    the gradient of b is that of b_ih (the same as b_hh's: both add to the same pre-activation)."""
    from jax.experimental import rnn

    I, H = like.w_ih.shape[0], like.w_hh.shape[0]
    w_ih, w_hh, b_ih, _ = rnn.unpack_lstm_weights(jnp.asarray(flat), I, H, 1, False)
    return type(like)(w_ih[0].T, w_hh[0].T, b_ih[0])


def cudnn_lstm_apply(input_size: int, hidden_size: int, precision: str | None, reference: bool = False):
    """`apply(flat_weights, xs <[B, T, I]>) -> ys <[B, T, H]>` of `jax.experimental.rnn.lstm` (cuDNN,
    GPU only) from zero carries, every sequence full length; with `reference`, its pure-JAX twin
    `lstm_ref` on weights unpacked by `unpack_lstm_weights` (runs anywhere)."""
    from jax.experimental import rnn

    I, H = input_size, hidden_size
    # jax gives cuDNN one switch (`rnn._lstm_cudnn_allow_tf32`): HIGHEST -> no TF32, HIGH -> TF32 allowed;
    # None follows JAX's default precision, and DEFAULT (bfloat16 to jax) is refused for this op.
    lax_precision = {"highest": jax.lax.Precision.HIGHEST, "default": jax.lax.Precision.HIGH}.get(precision)

    def apply(flat, xs):
        B, T = xs.shape[:2]
        zeros = jnp.zeros((1, B, H), xs.dtype)  # (layers * directions, B, H)
        lengths = jnp.full((B,), T, jnp.int32)
        if reference:
            w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, I, H, 1, False)
            return rnn.lstm_ref(xs, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, I, H, 1, 0.0, False)[0]
        ys, _, _ = rnn.lstm(
            xs, zeros, zeros, flat, lengths, input_size=I, hidden_size=H, num_layers=1, dropout=0.0,
            bidirectional=False, precision=lax_precision,
        )  # fmt: skip
        return ys

    return apply


def gpu_skips(names, torch) -> dict[str, str]:
    """{GPU contender among `names`: why it cannot run here} (empty on a GPU machine with both)."""
    backend = jax.default_backend()
    cuda = torch is not None and bool(torch.cuda.is_available())
    why_torch = "torch not installed" if torch is None else f"torch.cuda.is_available() {cuda}"
    skips = {}
    if "torch-cuda" in names and not cuda:
        skips["torch-cuda"] = why_torch
    if "jax-cudnn" in names and backend != "gpu":
        skips["jax-cudnn"] = f"jax backend {backend}"
    return skips


def skip_message(skips: dict[str, str]) -> str:
    """One line naming every skipped GPU contender and why, e.g. "torch-cuda, jax-cudnn: skipped (no GPU:
    jax backend cpu, torch.cuda.is_available() False)"."""
    reasons = ", ".join(dict.fromkeys(skips[n] for n in ("jax-cudnn", "torch-cuda") if n in skips))
    no_gpu = "no GPU: " if all(r != "torch not installed" for r in skips.values()) else ""
    return f"{', '.join(skips)}: skipped ({no_gpu}{reasons})"


# --------------------------------------------------------------------------------------------
# All contenders at one point, and the cross-check.


def build_contenders(
    kind, params, xs, names, modes, torch=None, precision: str | None = None
) -> dict[str, dict[str, tuple]]:
    """{contender: {mode: (fn, args)}}, plus a converter of each contender's result to rnnjax's layout
    under the key "to_rnnjax" ({mode: fn(result) -> ys or params-shaped grads}). `names` may hold
    rnnjax@uK (unroll K) and GPU contenders; jax-cudnn is left out for cells other than the LSTM. The
    rnnjax contenders run any kind; a peer (any other name) asked for a kind not in `PEERS` raises a
    ValueError naming the kinds the peers build. `precision` goes to rnnjax's `unroll` and jax-cudnn
    (None: JAX's default); the caller sets the JAX default for Flax and the scan, and torch's switches
    (`throughput.run`)."""
    cell = rnnjax.cells.make(kind, params.w_hh.shape[0])
    peers = [n for n in names if n not in RNNJAX_CONTENDERS and not n.startswith(SWEEP)]
    spec = peer(kind, peers) if peers else None
    same = lambda r: r  # noqa: E731
    out: dict[str, dict] = {}

    def jax_pair(apply, args, to_grads=same):
        fwd = jax.jit(apply)
        grad = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x))))
        return {"fwd": (fwd, args), "fwd+bwd": (grad, args), "to_rnnjax": {"fwd": same, "fwd+bwd": to_grads}}

    def rnnjax_apply(**options):
        return lambda p, x: rnnjax.unroll(cell, p, x, precision=precision, **options)[1]

    for name in names:
        if name == "rnnjax":
            out[name] = jax_pair(rnnjax_apply(), (params, xs))
        elif name.startswith(SWEEP):
            out[name] = jax_pair(rnnjax_apply(unroll=int(name[len(SWEEP) :])), (params, xs))
        elif name == "rnnjax-plain":  # the same cell without its whole-sequence kernel: autodiff of step
            out[name] = jax_pair(rnnjax_apply(fast=False), (params, xs))
        elif name == "scan":
            out[name] = jax_pair(lambda p, x: naive_unroll(kind, p, x), (params, xs))
        elif name == "flax":
            module = flax_module(kind, params.w_hh.shape[0])
            variables = flax_variables(kind, params)
            want = jax.eval_shape(module.init, jax.random.key(0), xs)  # shapes only: no QR is run
            got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
            same_layout = jax.tree.structure(want) == jax.tree.structure(got)
            if not same_layout or jax.tree.leaves(want) != jax.tree.leaves(got):
                raise RuntimeError(f"flax {kind}: param layout changed: expected {want}, built {got}")
            out[name] = jax_pair(module.apply, (variables, xs), lambda g: params_from_flax(kind, g, params))
        elif name == "flax-nnx":
            out[name] = nnx_contender(kind, params, xs)
        elif name in ("torch", "torch-cuda"):
            out[name] = torch_contender(torch, kind, params, xs, "cuda" if name == "torch-cuda" else "cpu")
        elif name == "jax-cudnn" and spec.cudnn:
            apply = cudnn_lstm_apply(xs.shape[-1], params.w_hh.shape[0], precision)
            flat = cudnn_lstm_weights(params)
            out[name] = jax_pair(apply, (flat, xs), lambda g: params_from_cudnn(g, params))
    return {name: {m: c[m] for m in (*modes, "to_rnnjax")} for name, c in out.items()}


def tolerances(precision: str | None = "highest") -> dict[str, float]:
    """The cross-check tolerances of a run at `precision` on this backend (module docstring)."""
    if precision == "default" and jax.default_backend() == "gpu":
        return dict(scan=TF32_TOL, peer=TF32_TOL, grad_rtol=TF32_TOL)
    return dict(scan=SCAN_TOL, peer=PEER_TOL, grad_rtol=GRAD_RTOL)


def cross_check(kind: str, mode: str, results_by_name: dict, tol: dict | None = None) -> dict[str, float]:
    """Compare each contender's (already converted) result with rnnjax's; raise on mismatch.

    `tol`: `tolerances(...)` (default: those of precision "highest"). Returns {contender: max abs output
    difference (fwd) or max relative gradient difference (fwd+bwd)}.
    """
    tol = tolerances() if tol is None else tol
    ref = results_by_name["rnnjax"]
    diffs = {}
    for name, value in results_by_name.items():
        if name == "rnnjax":
            continue
        if mode == "fwd":
            diff = float(np.max(np.abs(np.asarray(value, np.float64) - np.asarray(ref, np.float64))))
            same_ops = name in ("scan", "rnnjax-plain") or name.startswith(SWEEP)
            limit = tol["scan"] if same_ops else tol["peer"]
        else:
            diff = 0.0
            for a, b in zip(jax.tree.leaves(value), jax.tree.leaves(ref), strict=True):
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                if a.shape != b.shape:
                    raise RuntimeError(
                        f"cross-check {kind} {mode} {name}: gradient shape {a.shape} != {b.shape}"
                    )
                diff = max(diff, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)))
            limit = tol["grad_rtol"]
        diffs[name] = diff
        if not diff <= limit:  # also catches NaN
            raise RuntimeError(
                f"cross-check failed: {kind} {mode}: {name} differs from rnnjax by {diff:.3g} "
                f"(tolerance {limit:g})"
            )
    return diffs


def with_random_biases(params, key, scale: float = 0.1):
    """Add N(0, scale^2) noise to the biases (zero at init), so the cross-check sees the bias mapping."""
    b = params.b + scale * jax.random.normal(key, params.b.shape, params.b.dtype)
    params = params._replace(b=b)
    if getattr(params, "b_hn", None) is not None:
        k = jax.random.fold_in(key, 1)
        params = params._replace(
            b_hn=params.b_hn + scale * jax.random.normal(k, params.b_hn.shape, params.b_hn.dtype)
        )
    return params
