"""The packed engine: BinaryNet at run time, XNOR and popcount on sign bits
(Courbariaux et al., arXiv:1602.02830, Sec. 3).

One module per backend, as Larq Compute Engine keeps its kernels:

- reference.py: the math in NumPy, the oracle of the others;
- cpu.py: the CPU kernels, compiled by Numba;
- cuda.py: the __popcll kernel, for GPUs before sm_80;
- mma.py: the 1-bit tensor cores of sm_80 and later GPUs;
- mlp.py: PackedMLP, a trained MnistMLP folded, and the choice among them.

sign(W) is stored one bit a weight, 64 to a uint64, rows padded with 0 bits
in weights and activations alike. A hidden layer's bias, BatchNormalization
(population statistics) and sign fold into an integer threshold t and a flag
f per unit: the unit is +1 iff (S >= t) XOR f, S the popcount. The first
layer's 8-bit pixels times +-1 weights are exact integer sums: on the CPU by
vpdpbusd where it has AVX512-VNNI, else through 8 bit planes,
p . w = 255 popcount(w) - sum_b 2^b popcount(plane_b XOR w). On sm_80 and
later GPUs the binary layers run on the 1-bit tensor cores (mma.sync .b1
.and.popc, with popcount(a XOR w) = popcount(a) + popcount(w)
- 2 popcount(a AND w)), a hidden layer in one kernel that also thresholds
and packs; older GPUs use a __popcll kernel.

Nothing here imports Chainer.
"""
from packed.mlp import (  # noqa: F401
    PackedError, PackedMLP, compiled, xnor_popcount)
