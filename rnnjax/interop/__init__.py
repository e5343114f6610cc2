"""Weight conversion between rnnjax cells and other libraries' recurrent layers, so a model trained in one
library can be run, checked or studied in another. One module per library, each with the table of how
that library's parameters map onto rnnjax's:

- `rnnjax.interop.torch`: PyTorch `nn.RNN`, `nn.LSTM`, `nn.GRU` stacks (`from_torch`, `to_torch`,
  `unroll_converted`);
- `rnnjax.interop.keras`: Keras 3 `SimpleRNN`, `LSTM`, `GRU` and `Dense` (`from_keras`, `to_keras`,
  `from_keras_dense`, `to_keras_dense`);
- `rnnjax.interop.flax`: Flax linen `SimpleCell`, `LSTMCell`, `OptimizedLSTMCell`, `GRUCell` (`from_flax`,
  `to_flax`, `carry_from_flax`, `carry_to_flax`);
- `rnnjax.interop.flax_nnx`: Flax NNX `SimpleCell`, `LSTMCell`, `OptimizedLSTMCell`, `GRUCell`, alone or in
  `nnx.RNN` (`from_nnx`, which also reads NNX gradients, and `to_nnx`; carries as for linen). NNX's GRUCell
  has no b_hn: it converts as b_hn = 0, and only a GRU with b_hn = 0 converts to it.

Every conversion is exact: weights are transposed, split or reordered, never recomputed, except that a
pair of biases the function only sees as a sum is stored as that sum (rounded once). Written back, the sum
goes to the input-side bias and the recurrent side holds zeros (except the GRU's b_hn). Hence
rnnjax → library → rnnjax is bit-exact, while library → rnnjax → library is bit-exact for every weight and
for the summed biases, and the function agrees to float32 rounding (~1e-7), since the library adds the two
biases at run time and rnnjax once. Conversions that cannot reproduce the same function (a reset-before
GRU into a reset-after library, Flax's residual `SimpleCell`, an LSTM with `proj_size`, activations other
than the ones listed) raise a ValueError that says why. torch, keras and flax are imported only inside the
functions that need them.
"""

from rnnjax.interop.flax import carry_from_flax, carry_to_flax, from_flax, to_flax
from rnnjax.interop.flax_nnx import from_nnx, to_nnx
from rnnjax.interop.keras import from_keras, from_keras_dense, to_keras, to_keras_dense
from rnnjax.interop.torch import from_torch, to_torch, unroll_converted

__all__ = [
    "carry_from_flax",
    "carry_to_flax",
    "from_flax",
    "from_keras",
    "from_keras_dense",
    "from_nnx",
    "from_torch",
    "to_flax",
    "to_keras",
    "to_keras_dense",
    "to_nnx",
    "to_torch",
    "unroll_converted",
]
