"""The packed engine: BinaryNet at run time, XNOR and popcount on sign bits
(Courbariaux et al., arXiv:1602.02830, Sec. 3).

One module per backend, as Larq Compute Engine keeps its kernels:

- reference.py: the math in NumPy, the oracle of the others;
- cpu.py: the CPU kernels, compiled by Numba;
- cuda.py: the __popcll kernel, for GPUs before sm_80;
- mma.py: the 1-bit tensor cores of sm_80 and later GPUs;
- mlp.py: PackedMLP, a trained MnistMLP folded, and the choice among them.

Nothing here imports Chainer.
"""
from packed.mlp import (  # noqa: F401
    PackedError, PackedMLP, compiled, xnor_popcount)
