"""Bad input to the library's public functions is refused at once, with a message that names the argument,
what was given and what was expected (issue 12): one row of `BAD_INPUTS` per input.

Each row is (id, call, exception type, pattern). `call` takes the shared objects `f` (small cells, params
and models built once) and makes one bad call; the pattern must match the start of the message, which is
the name of the argument. Rows whose id starts with "silent-" are inputs that used to be accepted and give
a wrong result (a truthy "no" acting as True, a simple cell given LSTM params returning width 4H, labels
out of range clamped by `take_along_axis`, a second layer's params ignored by a one-layer model); they
must now raise. The rest used to fail with a JAX, Flax or NumPy internal message that named no argument
(or already named it: they stay here so that it stays so).
"""

import functools
import re
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax
from rnnjax import cells, diagnostics, fused, interop, models, readout, tasks
from rnnjax import generate as gen
from rnnjax import initializers as rinit
from rnnjax.data.text import Vocabulary, char_tokens

NAN, INF = float("nan"), float("inf")
H, I, B, T = 4, 3, 2, 5  # hidden size, input size, batch, steps of the shared objects


def _params_of(init, *args):
    """Arrays of ones in the shapes and dtypes that `init(*args)` returns, found by `jax.eval_shape` (no
    initialiser is compiled): every row is refused on shapes, types or options, never on these values."""
    return jax.tree.map(lambda a: jnp.asarray(np.ones(a.shape, a.dtype)), jax.eval_shape(init, *args))


@functools.cache
def shared() -> SimpleNamespace:
    """Small cells, params, inputs and models, built once for every row."""
    key = jax.random.key(0)
    f = SimpleNamespace(key=key, simple=cells.simple(H), lstm=cells.lstm(H), gru=cells.gru(H))
    f.gru_before = cells.gru(H, reset_after=False)
    f.ps, f.pl, f.pg, f.pg_before = (
        _params_of(lambda k, c=c: c.init(k, I), key) for c in (f.simple, f.lstm, f.gru, f.gru_before)
    )
    f.ps8 = _params_of(lambda k: cells.simple(2 * H).init(k, I), key)  # params of another hidden size
    f.x, f.xs, f.xs_tm = jnp.ones((B, I)), jnp.ones((B, T, I)), jnp.ones((T, B, I))
    f.traj = jnp.ones((T, I))  # one unbatched trajectory for the Jacobian diagnostics
    f.sum_loss = lambda ys: jnp.sum(ys)
    f.head = readout.dense_init(key, H, 3)
    f.ys = jnp.ones((B, T, H))

    f.tokens, f.prompt = jnp.zeros((1, 3), jnp.int32), jnp.array([[1, 2]])
    f.vocab = Vocabulary.build(char_tokens("hello world"), unk=None)

    def lm(hidden_size=8, num_layers=1, embed_size=4):
        model = models.language_model(len(f.vocab), cells.lstm(hidden_size), num_layers=num_layers,
                                      embed_size=embed_size)  # fmt: skip
        return model, _params_of(model.init, key, f.tokens)["params"]

    f.lm, f.lm_params = lm()
    f.lm_2layers, f.lm2_params = lm(num_layers=2)  # a second layer
    f.lm16_params = lm(hidden_size=16)[1]  # another hidden size
    f.lm_e6_params = lm(embed_size=6)[1]  # another embedding size
    f.seq = models.sequence_model(cells.gru(H), 2)
    f.seq_params = _params_of(f.seq.init, key, f.xs)["params"]
    seq3 = models.sequence_model(cells.gru(H), 3)  # another output size
    f.seq3_params = _params_of(seq3.init, key, f.xs)["params"]
    f.bidir = rnnjax.BidirectionalParams(f.ps, f.ps)
    f.adding, f.copy, f.order = (tasks.make(*a) for a in (("adding", T), ("copy", 2), ("temporal_order", 10)))
    f.w_dense = [np.ones((H, 2), np.float32), np.zeros(2, np.float32)]
    f.w_lstm = [np.ones(shape, np.float32) for shape in ((I, 4 * H), (H, 4 * H), (4 * H,))]
    f.torch_state = {
        "weight_ih_l0": np.ones((3 * H, I), np.float32),
        "weight_hh_l0": np.ones((3 * H, H), np.float32),
    }
    return f


def _with(params, **arrays):
    return params._replace(**arrays)


BAD_INPUTS = [
    # ---- cells: constructors
    ("hidden_size-0", lambda f: cells.simple(0), ValueError, r"hidden_size: expected a positive int, got 0"),
    ("hidden_size-bool", lambda f: cells.simple(True), ValueError, r"hidden_size: .*got True"),
    ("hidden_size-str", lambda f: cells.lstm("8"), ValueError, r"hidden_size: .*got '8'"),
    ("activation-name", lambda f: cells.simple(H, "softplus"),
     ValueError, r"activation: expected one of .*'softplus'"),
    ("activation-list", lambda f: cells.simple(H, ["tanh"]),
     ValueError, r"activation: expected one of .*\['tanh'\]"),
    ("silent-reset_after-str", lambda f: cells.gru(H, reset_after="no"),
     ValueError, r"reset_after: expected True or False, got 'no'"),
    ("reset_after-int", lambda f: cells.gru(H, reset_after=1),
     ValueError, r"reset_after: expected True or False, got 1"),
    ("preset-name", lambda f: cells.lstm(H, preset="torch"),
     ValueError, r"preset: expected one of .*'torch'"),
    ("preset-list", lambda f: cells.lstm(H, preset=["keras"]),
     ValueError, r"preset: expected one of .*\['keras'\]"),
    ("silent-forget_bias-nan", lambda f: cells.lstm(H, forget_bias=NAN),
     ValueError, r"forget_bias: expected a number \(finite\), got nan"),
    ("silent-forget_bias-inf", lambda f: cells.lstm(H, forget_bias=INF),
     ValueError, r"forget_bias: .*got inf"),
    ("forget_bias-str", lambda f: cells.lstm(H, forget_bias="1"),
     ValueError, r"forget_bias: expected a number"),
    ("gain-nan", lambda f: cells.simple(H, gain=NAN),
     ValueError, r"gain: expected a non-negative number \(finite\), got nan"),
    ("silent-gain-inf", lambda f: cells.lstm(H, gain=INF), ValueError, r"gain: .*got inf"),
    ("gain-negative", lambda f: cells.gru(H, gain=-1.0),
     ValueError, r"gain: expected a non-negative number.*got -1.0"),
    ("gain-str", lambda f: cells.simple(H, gain="2"),
     TypeError, r"gain: expected a non-negative number.*got '2'"),
    ("gain-bool", lambda f: cells.simple(H, gain=True), TypeError, r"gain: .*got True"),
    ("spectral_radius-nan", lambda f: cells.simple(H, spectral_radius=NAN),
     ValueError, r"spectral_radius: expected None or a non-negative number"),
    ("silent-spectral_radius-inf", lambda f: cells.lstm(H, spectral_radius=INF),
     ValueError, r"spectral_radius: .*got inf"),
    ("spectral_radius-negative", lambda f: cells.gru(H, spectral_radius=-0.1),
     ValueError, r"spectral_radius: .*got -0.1"),
    ("kernel_init-str", lambda f: cells.simple(H, kernel_init="glorot"),
     TypeError, r"kernel_init: expected None or an initialiser.*got 'glorot'"),
    ("recurrent_init-number", lambda f: cells.lstm(H, recurrent_init=0.5),
     TypeError, r"recurrent_init: .*got 0.5"),
    ("bias_init-int", lambda f: cells.gru(H, bias_init=1), TypeError, r"bias_init: .*got 1"),
    ("dtype-int", lambda f: cells.simple(H, dtype=jnp.int32),
     TypeError, r"dtype: expected a floating-point dtype"),
    ("dtype-name", lambda f: cells.lstm(H, dtype="banana"), TypeError, r"dtype: .*got 'banana'"),
    ("kind-name", lambda f: cells.make("mgu", H),
     ValueError,
     r"kind: expected one of \('simple', 'lstm', 'gru', 'orthogonal', 'lru', 'mingru', 'minlstm'\), "
     r"got 'mgu'"),
    ("kind-list", lambda f: cells.make(["lstm"], H), ValueError, r"kind: expected one of .*got \['lstm'\]"),
    ("with_kernel", lambda f: f.gru.with_kernel("fused"), TypeError,
     r"sequence: expected None or a whole-sequence kernel \(see rnnjax.fused\), got 'fused'"),
    # ---- cells: init, initial_carry, step
    ("key-int", lambda f: f.simple.init(42, I),
     TypeError, r"key: expected one JAX PRNG key, e.g. jax.random.key\(0\), got 42"),
    ("key-str", lambda f: f.lstm.init("seed", I), TypeError, r"key: .*got 'seed'"),
    ("key-batch", lambda f: f.lstm.init(jax.random.split(f.key, 2), I), TypeError, r"key: .*shape \(2,\)"),
    ("key-gru", lambda f: f.gru.init(42, I), TypeError, r"key: expected one JAX PRNG key"),
    ("input_size-0", lambda f: f.simple.init(f.key, 0),
     ValueError, r"input_size: expected a positive int, got 0"),
    ("input_size-float", lambda f: f.gru.init(f.key, 2.0), ValueError, r"input_size: .*got 2.0"),
    ("batch_shape-negative", lambda f: f.simple.initial_carry(-1),
     ValueError, r"batch_shape: expected an int >= 0 or a tuple of them, got -1"),
    ("batch_shape-str", lambda f: f.lstm.initial_carry("a"), TypeError, r"batch_shape: .*got 'a'"),
    ("batch_shape-float", lambda f: f.gru.initial_carry((2, 1.5)),
     TypeError, r"batch_shape: .*got \(2, 1.5\)"),
    ("initial_carry-dtype", lambda f: f.lstm.initial_carry(2, jnp.int32),
     TypeError, r"dtype: expected a floating-point dtype"),
    ("params-gru-to-lstm", lambda f: f.lstm.step(f.pg, f.lstm.initial_carry(B), f.x),
     TypeError,
     r"params: a lstm cell expected LSTMParams, got GRUParams of shapes w_ih \(3, 12\).*"
     r"expected w_ih \[I, 16\]"),
    ("silent-params-lstm-to-simple", lambda f: f.simple.step(f.pl, f.simple.initial_carry(B), f.x),
     TypeError, r"params: a simple cell expected SimpleParams, got LSTMParams"),
    ("params-other-size", lambda f: f.simple.step(f.ps8, f.simple.initial_carry(B), f.x),
     ValueError,
     r"params\.w_ih: expected shape \(3, 4\) \(the simple cell has hidden_size=4, 1 gate block\), "
     r"got \(3, 8\)"),
    ("params-b_hn-extra", lambda f: f.gru_before.step(f.pg, f.gru_before.initial_carry(B), f.x),
     ValueError, r"params\.b_hn: a reset_after=False GRU has no b_hn"),
    ("params-b_hn-missing", lambda f: f.gru.step(f.pg_before, f.gru.initial_carry(B), f.x),
     ValueError, r"params\.b_hn: a reset_after=True GRU needs b_hn of shape \(4,\), got None"),
    ("params-dict", lambda f: f.simple.step(f.ps._asdict(), f.simple.initial_carry(B), f.x),
     TypeError, r"params: a simple cell expected SimpleParams, got dict"),
    ("params-w_hh-shape",
     lambda f: f.lstm.step(_with(f.pl, w_hh=f.pl.w_hh[:, :8]), f.lstm.initial_carry(B), f.x),
     ValueError, r"params\.w_hh: expected shape \(4, 16\).*got \(4, 8\)"),
    ("params-b-shape",
     lambda f: f.simple.step(_with(f.ps, b=jnp.zeros((1, H))), f.simple.initial_carry(B), f.x),
     ValueError, r"params\.b: expected shape \(4,\).*got \(1, 4\)"),
    ("params-int",
     lambda f: f.simple.step(_with(f.ps, w_ih=jnp.ones((I, H), jnp.int32)), f.simple.initial_carry(B), f.x),
     TypeError, r"params\.w_ih: expected a floating-point array, got dtype int32"),
    ("x-int", lambda f: f.simple.step(f.ps, f.simple.initial_carry(B), jnp.ones((B, I), jnp.int32)),
     TypeError, r"x: simple cell expected a floating-point input, got dtype int32"),
    ("x-features", lambda f: f.lstm.step(f.pl, f.lstm.initial_carry(B), jnp.ones((B, I + 1))),
     ValueError, r"x: lstm cell expected shape \[\*batch, 3\].*got \(2, 4\)"),
    ("carry-type", lambda f: f.lstm.step(f.pl, f.simple.initial_carry(B), f.x),
     TypeError, r"carry: lstm cell expected a LSTMCarry\('h', 'c'\), got RNNCarry"),
    ("carry-shape", lambda f: f.gru.step(f.pg, f.gru.initial_carry(B + 1), f.x),
     ValueError, r"carry\.h: expected shape \(2, 4\) for x of shape \(2, 3\), got \(3, 4\)"),
    ("carry-c-shape",
     lambda f: f.lstm.step(f.pl, rnnjax.LSTMCarry(jnp.zeros((B, H)), jnp.zeros((B, H + 1))), f.x),
     ValueError, r"carry\.c: expected shape \(2, 4\).*got \(2, 5\)"),
    # ---- unroll and its helpers
    ("silent-time_major-str", lambda f: rnnjax.unroll(f.simple, f.ps, f.xs, time_major="no"),
     TypeError, r"time_major: expected True or False, got 'no'"),
    ("silent-reverse-str", lambda f: rnnjax.unroll(f.simple, f.ps, f.xs, reverse="no"),
     TypeError, r"reverse: expected True or False, got 'no'"),
    ("silent-return_carries-str", lambda f: rnnjax.unroll(f.lstm, f.pl, f.xs, return_carries="no"),
     TypeError, r"return_carries: expected True or False, got 'no'"),
    ("silent-remat-int", lambda f: rnnjax.unroll(f.gru, f.pg, f.xs, remat=1),
     TypeError, r"remat: expected True or False, got 1"),
    ("unroll-str", lambda f: rnnjax.unroll(f.simple, f.ps, f.xs, unroll="2"),
     TypeError, r"unroll: expected an int >= 1, got '2'"),
    ("unroll-0", lambda f: rnnjax.unroll(f.simple, f.ps, f.xs, unroll=0),
     ValueError, r"unroll: expected an int >= 1, got 0"),
    ("fast-str", lambda f: rnnjax.unroll(f.lstm, f.pl, f.xs, fast="yes"),
     ValueError, r"fast: expected None, True or False, got 'yes'"),
    ("checkpoint_every-0", lambda f: rnnjax.unroll(f.lstm, f.pl, f.xs, checkpoint_every=0),
     ValueError, r"checkpoint_every: expected None or a positive int, got 0"),
    ("checkpoint_every-lengths",
     lambda f: rnnjax.unroll(f.lstm, f.pl, f.xs, lengths=jnp.array([5, 3]), checkpoint_every=2),
     ValueError, r"checkpoint_every: cannot be combined with lengths"),
    ("unroll-cell", lambda f: rnnjax.unroll("lstm", f.pl, f.xs),
     TypeError, r"cell: expected an rnnjax.cells.Cell, got str"),
    ("unroll-params-kind", lambda f: rnnjax.unroll(f.simple, f.pl, f.xs),
     TypeError, r"params: a simple cell expected SimpleParams, got LSTMParams"),
    ("unroll-params-size", lambda f: rnnjax.unroll(f.simple, f.ps8, f.xs),
     ValueError, r"params\.w_ih: expected shape \(3, 4\)"),
    ("unroll-params-none", lambda f: rnnjax.unroll(f.gru, None, f.xs),
     TypeError, r"params: a gru cell expected GRUParams, got NoneType"),
    ("xs-features", lambda f: rnnjax.unroll(f.gru, f.pg, jnp.ones((B, T, I + 2))),
     ValueError, r"xs: expected 3 features per step.*got shape \(2, 5, 5\)"),
    ("xs-int", lambda f: rnnjax.unroll(f.gru, f.pg, jnp.ones((B, T, I), jnp.int32)),
     TypeError, r"xs: expected a floating-point array, got dtype int32"),
    ("xs-rank", lambda f: rnnjax.unroll(f.gru, f.pg, jnp.ones(I)),
     ValueError, r"xs: expected shape \[\*batch, T, features\]"),
    ("xs-empty", lambda f: rnnjax.unroll(f.gru, f.pg, jnp.ones((B, 0, I))),
     ValueError, r"xs: expected at least one time step, got shape \(2, 0, 3\)"),
    ("lengths-float", lambda f: rnnjax.unroll(f.gru, f.pg, f.xs, lengths=jnp.array([5.0, 3.0])),
     TypeError, r"lengths: expected an integer array, got dtype float"),
    ("lengths-range", lambda f: rnnjax.unroll(f.gru, f.pg, f.xs, lengths=jnp.array([6, 3])),
     ValueError, r"lengths: expected every length in \[1, T=5\], got \[6\]"),
    ("lengths-shape", lambda f: rnnjax.unroll(f.gru, f.pg, f.xs, lengths=jnp.array([5])),
     ValueError, r"lengths: expected shape \(2,\).*got \(1,\)"),
    ("unroll-carry-type", lambda f: rnnjax.unroll(f.lstm, f.pl, f.xs, f.gru.initial_carry(B)),
     TypeError, r"carry: lstm cell expected a LSTMCarry"),
    ("unroll-carry-shape", lambda f: rnnjax.unroll(f.gru, f.pg, f.xs, f.gru.initial_carry(B + 1)),
     ValueError, r"carry\.h: expected shape \(2, 4\) \(batch shape of xs \+ hidden_size\), got \(3, 4\)"),
    ("stack-params-one", lambda f: rnnjax.unroll_stack([f.simple], f.ps, f.xs),
     TypeError, r"params: expected a list or tuple with one entry per layer, got SimpleParams"),
    ("stack-cells-entry", lambda f: rnnjax.unroll_stack([f.simple, "gru"], [f.ps, f.ps], f.xs),
     TypeError, r"cells\[1\]: expected an rnnjax.cells.Cell or a \(forward, backward\) pair"),
    ("stack-cells-pair", lambda f: rnnjax.unroll_stack([(f.simple, None)], [f.bidir], f.xs),
     TypeError, r"cells\[0\]\[1\]: expected an rnnjax.cells.Cell, got NoneType"),
    ("stack-between", lambda f: rnnjax.unroll_stack([f.simple], [f.ps], f.xs, between="dropout"),
     TypeError, r"between: expected None or a function \(k, ys\) -> ys, got 'dropout'"),
    ("stack-carries", lambda f: rnnjax.unroll_stack([f.simple], [f.ps], f.xs, carries=[None, None]),
     ValueError, r"carries: expected 1 carries \(one per layer\), got 2"),
    ("stack-empty", lambda f: rnnjax.unroll_stack([], [], f.xs),
     ValueError, r"cells: expected at least one layer"),
    ("stack-params-count", lambda f: rnnjax.unroll_stack([f.simple, f.simple], [f.ps], f.xs),
     ValueError, r"params: expected one params value per cell \(2 cells\), got 1"),
    # a second layer that reads another input size than the first layer's output: the params are wrong,
    # not xs (which named xs, the stack's input, as if xs had the wrong width)
    ("stack-layer-input", lambda f: rnnjax.unroll_stack([f.simple, f.simple], [f.ps, f.ps], f.xs),
     ValueError, r"params\[1\]: expected the params of a layer reading 4 features per step \(the outputs of "
                 r"layer 0\), got params whose input size is 3"),
    ("stack-layer-kind", lambda f: rnnjax.unroll_stack([f.simple, f.simple], [f.ps, f.pl], f.xs),
     TypeError, r"params\[1\]: a simple cell expected SimpleParams, got LSTMParams"),
    ("stack-layer-carry",
     lambda f: rnnjax.unroll_stack([f.gru, f.gru], [f.pg, f.gru.init(f.key, H)], f.xs,
                                   carries=[None, f.gru.initial_carry(B + 1)]),
     ValueError, r"carries\[1\]\.h: expected shape \(2, 4\)"),
    ("bidir-merge", lambda f: rnnjax.unroll_bidirectional(f.simple, f.simple, f.bidir, f.xs, merge="mean"),
     ValueError, r"merge: expected 'concat' or 'sum', got 'mean'"),
    ("bidir-params", lambda f: rnnjax.unroll_bidirectional(f.simple, f.simple, (f.ps, f.ps), f.xs),
     TypeError, r"params: expected BidirectionalParams\(forward, backward\), got tuple"),
    ("bidir-carry", lambda f: rnnjax.unroll_bidirectional(f.simple, f.simple, f.bidir, f.xs, (None, None)),
     TypeError, r"carry: expected None or BidirectionalCarry\(forward, backward\), got tuple"),
    ("bidir-reverse", lambda f: rnnjax.unroll_bidirectional(f.simple, f.simple, f.bidir, f.xs, reverse=True),
     TypeError, r"reverse: not an option of unroll_bidirectional"),
    ("bidir-cell", lambda f: rnnjax.unroll_bidirectional("simple", f.simple, f.bidir, f.xs),
     TypeError, r"forward_cell: expected an rnnjax.cells.Cell, got str"),
    ("bidir-time_major",
     lambda f: rnnjax.unroll_bidirectional(f.simple, f.simple, f.bidir, f.xs, time_major="no"),
     TypeError, r"time_major: expected True or False"),
    # ---- fused kernels
    ("fused-activation",
     lambda f: fused.simple_sequence(f.ps, f.simple.initial_carry(B), f.xs_tm, activation="softplus"),
     ValueError, r"activation: expected 'tanh', 'relu', 'linear' or 'sigmoid', got 'softplus'"),
    ("fused-params", lambda f: fused.lstm_sequence(f.pg, f.lstm.initial_carry(B), f.xs_tm),
     TypeError, r"params: a lstm cell expected LSTMParams, got GRUParams"),
    ("fused-carry", lambda f: fused.simple_sequence(f.ps, f.lstm.initial_carry(B), f.xs_tm),
     TypeError, r"carry: simple cell expected a RNNCarry"),
    ("silent-fused-reverse",
     lambda f: fused.lstm_sequence(f.pl, f.lstm.initial_carry(B), f.xs_tm, reverse="no"),
     TypeError, r"reverse: expected True or False, got 'no'"),
    ("fused-xs", lambda f: fused.gru_sequence(f.pg, f.gru.initial_carry(B), jnp.ones((T, B, I + 1))),
     ValueError, r"xs: expected 3 features.*got shape \(5, 2, 4\)"),
    ("fused-unroll",
     lambda f: fused.simple_sequence(f.ps, f.simple.initial_carry(B), f.xs_tm, unroll=0),
     ValueError, r"unroll: expected an int >= 1, got 0"),
    ("fused-batch", lambda f: fused.gru_sequence(f.pg, f.gru.initial_carry(B + 1), f.xs_tm),
     ValueError, r"carry\.h: expected shape \(2, 4\)"),
    # ---- diagnostics
    ("grads-loss-vector",
     lambda f: diagnostics.hidden_state_grads(f.simple, f.ps, f.xs, lambda ys: ys.sum(-1)),
     ValueError, r"loss_fn: expected a scalar loss \(e.g. a mean\), got an output of shape \(2, 5\)"),
    ("grads-loss-none", lambda f: diagnostics.hidden_state_grads(f.simple, f.ps, f.xs, None),
     TypeError, r"loss_fn: expected a function ys -> scalar loss, got None"),
    ("grads-params", lambda f: diagnostics.hidden_state_grads(f.lstm, f.pg, f.xs, f.sum_loss),
     TypeError, r"params: a lstm cell expected LSTMParams, got GRUParams"),
    ("grads-dtype", lambda f: diagnostics.hidden_state_grads(f.gru, f.pg, f.xs, f.sum_loss, dtype=jnp.int32),
     TypeError, r"dtype: expected a floating-point dtype"),
    ("silent-grads-time_major",
     lambda f: diagnostics.hidden_state_grads(f.gru, f.pg, f.xs, f.sum_loss, time_major="no"),
     TypeError, r"time_major: expected True or False, got 'no'"),
    ("grads-xs-int",
     lambda f: diagnostics.hidden_state_grads(f.gru, f.pg, jnp.ones((B, T, I), int), f.sum_loss),
     TypeError, r"xs: expected a floating-point array"),
    ("loss-and-grads-vector",
     lambda f: diagnostics.loss_and_hidden_state_grads(f.lstm, f.pl, f.xs, lambda ys: ys),
     ValueError, r"loss_fn: expected a scalar loss.*shape \(2, 5, 4\)"),
    ("log10_norm-empty", lambda f: diagnostics.log10_norm(np.zeros((0,))),
     ValueError, r"g: expected at least one entry along axis 0 to take a norm of, got shape \(0,\)"),
    ("log10_norm-empty-axis", lambda f: diagnostics.log10_norm(np.zeros((3, 0))),
     ValueError, r"g: expected at least one entry along axis 1.*\(3, 0\)"),
    ("log10_norm-axis", lambda f: diagnostics.log10_norm(np.ones((2, 3)), axis=2),
     ValueError, r"axis: expected an axis of an array of shape \(2, 3\), got 2"),
    ("log10_norm-axis-float", lambda f: diagnostics.log10_norm(np.ones((2, 3)), axis=1.0),
     TypeError, r"axis: expected an int, got 1.0"),
    ("quartiles-empty", lambda f: diagnostics.log_norm_quartiles(np.zeros((0, 3))),
     ValueError, r"log10_norms: expected at least one value along axis 0"),
    ("spectrum-params", lambda f: diagnostics.recurrent_spectrum(f.lstm, f.ps),
     TypeError, r"params: a lstm cell expected LSTMParams, got SimpleParams"),
    ("spectrum-size", lambda f: diagnostics.recurrent_spectrum(f.simple, f.ps8),
     ValueError, r"params\.w_ih: expected shape \(3, 4\)"),
    ("spectrum-nan",
     lambda f: diagnostics.recurrent_spectrum(f.simple, _with(f.ps, w_hh=f.ps.w_hh.at[0, 0].set(NAN))),
     ValueError, r"params: the simple cell's recurrent matrix 'h' has 1 NaN or inf entries of 16"),
    ("spectrum-cell", lambda f: diagnostics.recurrent_spectrum("lstm", f.pl),
     TypeError, r"cell: expected an rnnjax.cells.Cell, got str"),
    ("lyapunov-k-bool", lambda f: diagnostics.lyapunov(f.simple, f.ps, f.traj, k=True),
     ValueError, r"k: expected an int in \[1, 4\] \(the state size\), got True"),
    ("lyapunov-k-0", lambda f: diagnostics.lyapunov(f.simple, f.ps, f.traj, k=0),
     ValueError, r"k: expected an int in \[1, 4\].*got 0"),
    ("lyapunov-key", lambda f: diagnostics.lyapunov(f.simple, f.ps, f.traj, key=3),
     TypeError, r"key: expected one JAX PRNG key.*got 3"),
    ("jacobian-batched", lambda f: diagnostics.jacobian_norms(f.gru, f.pg, f.xs),
     ValueError, r"xs: Jacobian diagnostics take one unbatched trajectory <\[T, I\]>, got shape \(2, 5, 3\)"),
    ("jacobian-int", lambda f: diagnostics.step_jacobians(f.gru, f.pg, jnp.ones((T, I), int)),
     TypeError, r"xs: expected a floating-point trajectory"),
    ("jacobian-params", lambda f: diagnostics.step_jacobians(f.gru, f.pl, f.traj),
     TypeError, r"params: a gru cell expected GRUParams, got LSTMParams"),
    ("gates-simple", lambda f: diagnostics.gate_statistics(f.simple, f.ps, f.xs),
     ValueError, r"cell: gate statistics need an LSTM or GRU cell, got kind 'simple'"),
    ("gates-saturation-str", lambda f: diagnostics.gate_statistics(f.lstm, f.pl, f.xs, saturation="a"),
     TypeError, r"saturation: expected a number \(finite\), got 'a'"),
    ("gates-saturation-range", lambda f: diagnostics.gate_statistics(f.lstm, f.pl, f.xs, saturation=0.7),
     ValueError, r"saturation: expected a number in \(0, 0.5\), got 0.7"),
    ("gates-params", lambda f: diagnostics.gate_statistics(f.lstm, f.pg, f.xs),
     TypeError, r"params: a lstm cell expected LSTMParams"),
    ("decay_rate-shape", lambda f: diagnostics.decay_rate(np.arange(3), np.zeros(4)),
     ValueError, r"log10_norms: expected shape \(3,\) \(like lags\), got \(4,\)"),
    ("decay_stats-rank", lambda f: diagnostics.decay_stats(np.zeros(4)),
     ValueError, r"log10_norms: expected shape \[n, T\], got \(4,\)"),
    ("perturbed-cell", lambda f: diagnostics.perturbed("lstm"),
     TypeError, r"cell: expected an rnnjax.cells.Cell, got str"),
    ("model-grads-model",
     lambda f: diagnostics.model_hidden_state_grads("lm", f.lm_params, f.tokens, f.sum_loss),
     TypeError, r"model: expected an rnnjax.models.RNNModel, got str"),
    ("model-grads-loss",
     lambda f: diagnostics.model_hidden_state_grads(f.lm, f.lm_params, f.tokens, lambda out: out),
     ValueError, r"loss_fn: expected a scalar loss.*shape \(1, 3, 8\)"),
    ("model-grads-params",
     lambda f: diagnostics.model_hidden_state_grads(f.lm, f.lm16_params, f.tokens, f.sum_loss),
     ValueError, r"params\['rnn'\]\['layer_0'\]\.w_ih: expected shape \(4, 32\)"),
    ("model-grads-inputs",
     lambda f: diagnostics.model_hidden_state_grads(f.lm, f.lm_params, jnp.zeros(3, int), f.sum_loss),
     ValueError, r"inputs: expected token ids \[B, T\] or features \[B, T, I\], got shape \(3,\)"),
    # ---- initializers
    ("orthogonal-nan", lambda f: rinit.orthogonal(NAN),
     ValueError, r"scale: expected a number \(finite\), got nan"),
    ("orthogonal-str", lambda f: rinit.orthogonal("1"), TypeError, r"scale: .*got '1'"),
    ("identity-inf", lambda f: rinit.identity(INF), ValueError, r"scale: .*got inf"),
    ("uniform-0", lambda f: rinit.uniform(0.0),
     ValueError, r"limit: expected a positive number \(finite\), got 0.0"),
    ("uniform-str", lambda f: rinit.uniform("a"), TypeError, r"limit: .*got 'a'"),
    ("uniform-inf", lambda f: rinit.uniform(INF), ValueError, r"limit: .*got inf"),
    ("blockwise-inner", lambda f: rinit.blockwise("orthogonal", 4),
     TypeError, r"inner: expected an initialiser.*got 'orthogonal'"),
    ("blockwise-blocks", lambda f: rinit.blockwise(rinit.orthogonal(), 0),
     ValueError, r"num_blocks: expected an int >= 1, got 0"),
    ("summed-none", lambda f: rinit.summed(), ValueError, r"inits: expected at least one initialiser"),
    ("summed-entry", lambda f: rinit.summed(rinit.zeros(), 3),
     TypeError, r"inits\[1\]: expected an initialiser.*got 3"),
    ("rescale-gain", lambda f: rinit.rescale_recurrent(jnp.eye(3), 1, gain=NAN),
     ValueError, r"gain: expected a non-negative number \(finite\), got nan"),
    ("rescale-radius", lambda f: rinit.rescale_recurrent(jnp.eye(3), 1, radius=INF),
     ValueError, r"spectral_radius: .*got inf"),
    ("rescale-shape", lambda f: rinit.rescale_recurrent(jnp.eye(3), 2),
     ValueError, r"w_hh: expected shape \[H, 2·H\] \(2 square gate blocks\), got \(3, 3\)"),
    ("rescale-blocks", lambda f: rinit.rescale_recurrent(jnp.eye(3), 1.5),
     TypeError, r"num_blocks: expected an int >= 1, got 1.5"),
    ("spectral_radius-matrix", lambda f: rinit.spectral_radius(jnp.ones((2, 3))),
     ValueError, r"matrix: expected a square matrix \[H, H\], got shape \(2, 3\)"),
    ("preset-case", lambda f: rinit.preset("Keras"), ValueError, r"preset: expected one of .*got 'Keras'"),
    ("orthogonal-shape", lambda f: rinit.orthogonal()(f.key, (2, 3, 4)),
     ValueError, r"shape: orthogonal expects a 2-D \(rows, cols\) shape, got \(2, 3, 4\)"),
    ("identity-shape", lambda f: rinit.identity()(f.key, (3,)), ValueError, r"shape: identity expects a 2-D"),
    # ---- readout
    ("dense_init-key", lambda f: readout.dense_init(1, H, 3),
     TypeError, r"key: expected one JAX PRNG key.*got 1"),
    ("dense_init-in", lambda f: readout.dense_init(f.key, 0, 3),
     ValueError, r"in_features: expected a positive int, got 0"),
    ("dense_init-out", lambda f: readout.dense_init(f.key, H, 0),
     ValueError, r"out_features: expected a positive int, got 0"),
    ("dense_init-kernel_init", lambda f: readout.dense_init(f.key, H, 3, kernel_init="lecun"),
     TypeError, r"kernel_init: .*got 'lecun'"),
    ("dense_init-dtype", lambda f: readout.dense_init(f.key, H, 3, dtype=jnp.int32),
     TypeError, r"dtype: expected a floating-point dtype"),
    ("dense-h", lambda f: readout.dense(f.head, jnp.ones((B, H + 1))),
     ValueError,
     r"h: expected shape \[\.\.\., 4\] \(the readout's in_features, params\.w\.shape\[0\]\), got \(2, 5\)"),
    ("dense-params", lambda f: readout.dense((f.head.w, f.head.b), jnp.ones((B, H))),
     TypeError, r"params: expected rnnjax.readout.DenseParams\(w, b\), got tuple"),
    ("dense-params-shape",
     lambda f: readout.dense(readout.DenseParams(f.head.w, jnp.zeros(5)), jnp.ones((B, H))),
     ValueError, r"params: expected w of shape \[in, out\] and b of shape \[out\], got \(4, 3\) and \(5,\)"),
    ("cross_entropy-float", lambda f: readout.cross_entropy(jnp.zeros((B, 3)), jnp.zeros(B)),
     TypeError, r"labels: expected integer class indices, got dtype float"),
    ("silent-cross_entropy-range", lambda f: readout.cross_entropy(jnp.zeros((B, 3)), jnp.array([0, 3])),
     ValueError, r"labels: expected class indices in \[0, 3\), got values in \[0, 3\]"),
    ("silent-cross_entropy-shape", lambda f: readout.cross_entropy(jnp.zeros((B, 3)), jnp.zeros((B, 1), int)),
     ValueError, r"labels: expected shape \(2,\) \(logits without its class axis\), got \(2, 1\)"),
    ("cross_entropy-logits", lambda f: readout.cross_entropy(jnp.zeros((B, 3), int), jnp.zeros(B, int)),
     TypeError, r"logits: expected a floating-point array"),
    ("silent-last_valid-time_major", lambda f: readout.last_valid(f.ys, time_major="no"),
     TypeError, r"time_major: expected True or False, got 'no'"),
    ("silent-last_valid-lengths", lambda f: readout.last_valid(f.ys, jnp.array([0, 2])),
     ValueError, r"lengths: expected every length in \[1, T=5\], got \[0\]"),
    ("last_valid-lengths-shape", lambda f: readout.last_valid(f.ys, jnp.array([1, 2, 3])),
     ValueError, r"lengths: expected shape \(2,\) \(the batch shape of ys\), got \(3,\)"),
    ("last_valid-ys", lambda f: readout.last_valid(jnp.ones(H)),
     ValueError, r"ys: expected RNN outputs of shape \[\*batch, T, H\]"),
    ("loss-mode", lambda f: readout.sequence_loss(f.head, f.ys, jnp.zeros((B, T), int), mode="one_to_many"),
     ValueError, r"mode: expected one of .*'one_to_many'"),
    ("loss-readout", lambda f: readout.sequence_loss(f.ps, f.ys, jnp.zeros((B, T), int)),
     TypeError, r"readout: expected rnnjax.readout.DenseParams\(w, b\), got SimpleParams"),
    ("loss-ys-width",
     lambda f: readout.sequence_loss(f.head, jnp.ones((B, T, H + 1)), jnp.zeros((B, T), int)),
     ValueError, r"ys: expected shape \[\.\.\., 4\]"),
    ("loss-lengths",
     lambda f: readout.sequence_loss(f.head, f.ys, jnp.zeros((B, T), int), lengths=jnp.array([6, 1])),
     ValueError, r"lengths: expected every length in \[1, T=5\], got \[6\]"),
    ("silent-loss-time_major",
     lambda f: readout.sequence_loss(f.head, f.ys, jnp.zeros((B, T), int), time_major="yes"),
     TypeError, r"time_major: expected True or False, got 'yes'"),
    ("loss-labels-shape", lambda f: readout.sequence_loss(f.head, f.ys, jnp.zeros((B,), int)),
     ValueError, r"labels: many_to_many expected shape \(2, 5\), got \(2,\)"),
    # ---- models
    ("lm-vocab_size", lambda f: models.language_model(0, f.lstm),
     ValueError, r"vocab_size: expected an int >= 1, got 0"),
    ("lm-cell", lambda f: models.language_model(10, "lstm"),
     TypeError, r"cell: expected an rnnjax.cells.Cell, got str"),
    ("classifier-classes", lambda f: models.classifier(10, 0, f.lstm),
     ValueError, r"num_classes: expected an int >= 1, got 0"),
    ("classifier-pooling", lambda f: models.classifier(10, 3, f.lstm, pooling=None),
     ValueError, r"pooling: expected 'last' or 'mean', got None"),
    ("silent-classifier-bidirectional", lambda f: models.classifier(10, 3, f.lstm, bidirectional="no"),
     TypeError, r"bidirectional: expected True or False, got 'no'"),
    ("model-dropout-1", lambda f: models.RNNModel(f.lstm, 3, dropout=1.0),
     ValueError, r"dropout: expected a rate in \[0, 1\), got 1.0"),
    ("model-dropout-str", lambda f: models.RNNModel(f.lstm, 3, dropout="0.1"),
     TypeError, r"dropout: expected a number \(finite\), got '0.1'"),
    ("model-dropout-nan", lambda f: models.RNNModel(f.lstm, 3, dropout=NAN),
     ValueError, r"dropout: .*got nan"),
    ("model-num_layers", lambda f: models.RNNModel(f.lstm, 3, num_layers=0),
     ValueError, r"num_layers: expected an int >= 1, got 0"),
    ("model-embed_size", lambda f: models.RNNModel(f.lstm, 3, vocab_size=5, embed_size=0),
     ValueError, r"embed_size: expected None or an int >= 1, got 0"),
    ("model-output_size", lambda f: models.sequence_model(f.gru, 0),
     ValueError, r"output_size: expected an int >= 1, got 0"),
    ("model-pooling", lambda f: models.sequence_model(f.gru, 3, pooling="max"),
     ValueError, r"pooling: expected one of \(None, 'last', 'mean'\), got 'max'"),
    ("apply-other-size", lambda f: f.lm.apply({"params": f.lm16_params}, f.tokens),
     ValueError,
     r"params\['rnn'\]\['layer_0'\]\.w_ih: expected shape \(4, 32\) "
     r"\(the model's lstm cell has hidden_size=8, 4 gate blocks\), got \(4, 64\)"),
    ("silent-apply-extra-layer", lambda f: f.lm.apply({"params": f.lm2_params}, f.tokens),
     ValueError,
     r"params\['rnn'\]: expected the entries \['layer_0'\] of this model's params, "
     r"got \['layer_0', 'layer_1'\]"),
    ("apply-missing-layer",
     lambda f: f.lm_2layers.apply({"params": f.lm_params}, f.tokens),
     ValueError, r"params\['rnn'\]: expected the entries \['layer_0', 'layer_1'\].*got \['layer_0'\]"),
    ("apply-unwrapped", lambda f: f.lm.apply(f.lm_params, f.tokens),
     ValueError, r"variables: expected \{'params': params\}.*got the entries \['embed', 'readout', 'rnn'\]"),
    ("silent-apply-train", lambda f: f.lm.apply({"params": f.lm_params}, f.tokens, train="no"),
     TypeError, r"train: expected True or False, got 'no'"),
    ("apply-readout", lambda f: f.seq.apply({"params": f.seq3_params}, f.xs),
     ValueError,
     r"params\['readout'\]\.w: expected shape \(4, 2\) \(from the model's stack width and output_size\), "
     r"got \(4, 3\)"),
    ("apply-embed", lambda f: f.lm.apply({"params": f.lm_e6_params}, f.tokens),
     ValueError, r"params\['embed'\]\['embedding'\]: expected shape \(8, 4\).*got \(8, 6\)"),
    ("apply-layer-kind", lambda f: f.seq.apply({"params": {**f.seq_params, "rnn": {"layer_0": f.pl}}}, f.xs),
     TypeError, r"params\['rnn'\]\['layer_0'\]: a gru cell expected GRUParams, got LSTMParams"),
    ("apply-tokens", lambda f: f.lm.apply({"params": f.lm_params}, jnp.full((1, 2), 99)),
     ValueError, r"tokens: expected token ids in \[0, 8\), got values in \[99, 99\]"),
    ("apply-features", lambda f: f.seq.apply({"params": f.seq_params}, jnp.ones((B, T, I + 1))),
     ValueError,
     r"params\['rnn'\]\['layer_0'\]: expected params that read 4 input features \(this layer reads 4 "
     r"features\), got params of a gru cell with input_size=3"),
    ("zero_carries", lambda f: f.lm.zero_carries(0), ValueError, r"batch_size: expected an int >= 1, got 0"),
    # ---- generate
    ("generate-params-size", lambda f: gen.generate(f.lm, f.lm16_params, f.prompt, 3, greedy=True),
     ValueError, r"params\['rnn'\]\['layer_0'\]\.w_ih: expected shape \(4, 32\)"),
    ("generate-params-layers", lambda f: gen.generate(f.lm, f.lm2_params, f.prompt, 3, greedy=True),
     ValueError, r"params\['rnn'\]: expected the entries \['layer_0'\]"),
    ("generate-params-list", lambda f: gen.generate(f.lm, [f.lm_params], f.prompt, 3, greedy=True),
     TypeError, r"params: expected the model's params dict.*got list"),
    ("generate-greedy", lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 3, greedy="no", key=f.key),
     TypeError, r"greedy: expected True or False, got 'no'"),
    ("generate-key", lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 3, key=42),
     TypeError, r"key: expected one JAX PRNG key.*got 42"),
    ("generate-length", lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 0, greedy=True),
     ValueError, r"length: expected an int >= 1 \(tokens to generate\), got 0"),
    ("generate-temperature",
     lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 3, key=f.key, temperature=NAN),
     ValueError, r"temperature: expected a finite number > 0, got nan"),
    ("generate-top_k", lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 3, key=f.key, top_k=0),
     ValueError, r"top_k: expected None or an int in \[1, 8\]"),
    ("generate-top_p", lambda f: gen.generate(f.lm, f.lm_params, f.prompt, 3, key=f.key, top_p=1.5),
     ValueError, r"top_p: expected None or a number in \(0, 1\], got 1.5"),
    ("generate-prompt", lambda f: gen.generate(f.lm, f.lm_params, [[1, 99]], 3, greedy=True),
     ValueError, r"prompt: expected token ids in \[0, 8\), got values in \[1, 99\]"),
    ("silent-sample_text-include_prompt",
     lambda f: gen.sample_text(f.lm, f.lm_params, f.vocab, "he", 2, seed=0, include_prompt="no"),
     TypeError, r"include_prompt: expected True or False, got 'no'"),
    ("silent-sample_text-lowercase",
     lambda f: gen.sample_text(f.lm, f.lm_params, f.vocab, "he", 2, seed=0, lowercase="no"),
     TypeError, r"lowercase: expected True or False, got 'no'"),
    ("sample_text-params", lambda f: gen.sample_text(f.lm, f.lm16_params, f.vocab, "he", 2, seed=0),
     ValueError, r"params\['rnn'\]\['layer_0'\]"),
    ("detokenize-ints", lambda f: gen.detokenize([1, 2], "char"),
     TypeError, r"tokens: expected a sequence of str, got int at index 0"),
    ("detokenize-str", lambda f: gen.detokenize("abc", "word"),
     TypeError, r"tokens: expected a sequence of str tokens, got 'abc'"),
    ("filtered-logits", lambda f: gen.filtered_log_probs(jnp.zeros(4, int)),
     TypeError, r"logits: expected a floating-point array"),
    # ---- tasks
    ("task-name", lambda f: tasks.make("addding", 10),
     ValueError, r"name: expected one of \['adding', 'copy', 'temporal_order'\], got 'addding'"),
    ("task-name-list", lambda f: tasks.make(["adding"], 10),
     ValueError, r"name: expected one of .*got \['adding'\]"),
    ("task-seq_len-bool", lambda f: tasks.make("adding", True),
     TypeError, r"seq_len: adding expected an int >= 2, got True"),
    ("task-seq_len-1", lambda f: tasks.adding(1), ValueError, r"seq_len: adding expected an int >= 2, got 1"),
    ("task-key", lambda f: f.adding.sample(42, 4), TypeError, r"key: expected one JAX PRNG key.*got 42"),
    ("task-batch_size-0", lambda f: f.copy.sample(f.key, 0),
     ValueError, r"batch_size: expected a positive Python int, got 0"),
    ("task-batch_size-float", lambda f: f.order.sample(f.key, 2.0), ValueError, r"batch_size: .*got 2.0"),
    ("silent-task-targets-shape", lambda f: f.adding.loss(jnp.zeros((B, T, 1)), jnp.zeros(1)),
     ValueError, r"targets: adding expected shape \(2,\) \(one target per example of outputs\), got \(1,\)"),
    ("task-targets-float", lambda f: f.copy.loss(jnp.zeros((B, 22, 9)), jnp.zeros((B, 22))),
     TypeError, r"targets: expected integer class ids, got dtype float"),
    ("silent-task-targets-range", lambda f: f.order.loss(jnp.zeros((B, 10, 4)), jnp.array([0, 4])),
     ValueError, r"targets: expected class ids in \[0, 4\), got values in \[0, 4\]"),
    ("task-outputs", lambda f: f.adding.loss(jnp.zeros((B, T, 2)), jnp.zeros(B)),
     ValueError, r"outputs: adding expected shape \[batch, 5, 1\]"),
    ("task-outputs-int", lambda f: f.adding.loss(jnp.zeros((B, T, 1), int), jnp.zeros(B)),
     TypeError, r"outputs: expected a floating-point array"),
    ("task-success", lambda f: f.adding.success("0.01"),
     TypeError, r"loss: expected a scalar number \(the task's loss\), got '0.01'"),
    # ---- interop
    ("silent-to_keras-use_bias", lambda f: interop.to_keras(f.lstm, f.pl, use_bias="no"),
     TypeError, r"use_bias: expected True or False, got 'no'"),
    ("silent-to_keras_dense-use_bias", lambda f: interop.to_keras_dense(f.head, use_bias=1),
     TypeError, r"use_bias: expected True or False, got 1"),
    ("silent-from_keras_dense-use_bias", lambda f: interop.from_keras_dense(f.w_dense, use_bias="no"),
     TypeError, r"use_bias: expected True or False, got 'no'"),
    ("from_keras-use_bias", lambda f: interop.from_keras("LSTM", f.w_lstm, use_bias="yes"),
     TypeError, r"use_bias: expected True or False, got 'yes'"),
    ("to_keras-params", lambda f: interop.to_keras(f.lstm, f.ps8),
     TypeError, r"params: a lstm cell expected LSTMParams, got SimpleParams"),
    ("to_keras-size", lambda f: interop.to_keras(cells.lstm(2 * H), f.pl),
     ValueError,
     r"params\.w_ih: expected shape \(3, 32\) \(cell has hidden_size=8, 4 gate blocks\), got \(3, 16\)"),
    ("silent-to_torch-batch_first", lambda f: interop.to_torch(f.lstm, f.pl, batch_first="no"),
     TypeError, r"batch_first: expected True or False, got 'no'"),
    ("silent-unroll_converted-batch_first",
     lambda f: interop.unroll_converted(f.lstm, f.pl, f.xs_tm, batch_first="no"),
     TypeError, r"batch_first: expected True or False, got 'no'"),
    ("unroll_converted-xs", lambda f: interop.unroll_converted(f.lstm, f.pl, jnp.ones((T, B, I), int)),
     TypeError, r"xs: expected a floating-point array"),
    ("from_torch-reset_after", lambda f: interop.from_torch(f.torch_state, reset_after="no"),
     TypeError, r"reset_after: expected True or False, got 'no'"),
    ("from_flax-residual", lambda f: interop.from_flax("SimpleCell", {}, residual="no"),
     TypeError, r"residual: expected True or False, got 'no'"),
    ("from_flax-activation", lambda f: interop.from_flax("SimpleCell", {}, activation=0),
     TypeError, r"activation: expected None or an activation name"),
    ("to_flax-params", lambda f: interop.to_flax(f.gru, f.pl),
     TypeError, r"params: a gru cell expected GRUParams, got LSTMParams"),
    ("carry_from_flax-str", lambda f: interop.carry_from_flax("abc"),
     TypeError, r"carry: expected a floating-point array h or Flax's LSTM carry \(c, h\)"),
    ("carry_from_flax-int", lambda f: interop.carry_from_flax((jnp.zeros(H, int), jnp.zeros(H))),
     TypeError, r"carry\[0\]: expected a floating-point array, got dtype int"),
]  # fmt: skip

INTERNALS = re.compile(
    r"ScopeParam|Traced<|jaxlib|scan body|broadcast_in_dim|PRNG key data|Incompatible shapes"
)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case[0])
def test_bad_input_is_refused_naming_the_argument(case):
    _, call, error, pattern = case
    with pytest.raises(error) as caught:
        call(shared())
    message = str(caught.value)
    # The pattern is anchored at the start of the message, which names the argument before anything else.
    assert re.match(pattern, message), f"message {message!r} does not match {pattern!r}"
    assert "\n" not in message and not INTERNALS.search(message), f"not one plain sentence: {message!r}"


def test_the_table_is_large_and_each_row_names_an_argument():
    ids = [case[0] for case in BAD_INPUTS]
    assert len(ids) == len(set(ids)) >= 110
    for _, _, _, pattern in BAD_INPUTS:
        assert re.match(r"^[A-Za-z_\\]", pattern), pattern  # starts with the argument's name


def test_checks_cost_nothing_in_the_compiled_loop():
    """The checks read static shapes only: a jitted unroll traces once and runs again without re-tracing,
    and its compiled program is the same whether or not the (Python-side) checks ran."""
    f = shared()
    traces = []

    def run(params, xs):
        traces.append(1)
        return rnnjax.unroll(f.lstm, params, xs)[1]

    jitted = jax.jit(run)
    jitted(f.pl, f.xs).block_until_ready()
    jitted(f.pl, f.xs + 1).block_until_ready()
    assert len(traces) == 1
    hlo = jax.jit(run).lower(f.pl, f.xs).as_text()
    assert "assert" not in hlo.lower() and "callback" not in hlo.lower()
