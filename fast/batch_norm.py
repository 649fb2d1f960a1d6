"""BatchNormalization in training (BinaryNet's Algorithm 1, Courbariaux et
al., arXiv:1602.02830) compiled on the CPU: Chainer's BatchNormalization
function, its graph and its statistics, running fast/batch_norm_cpu.py's
forward and backward where the input is a float32 batch of rows; bit for
bit what Chainer's NumPy code computes. The shift-based one runs
fast/shift_batch_norm_cpu.py's, bit for bit its own NumPy code's.
"""
import functools

import compat  # noqa: F401  (must precede chainer)

import numpy

from chainer.functions.normalization import batch_normalization as chainer_bn

import batch_normalization
import shift_batch_normalization
from utils import numba_kernels


@functools.lru_cache(maxsize=None)
def compiled():
    """The module fast.batch_norm_cpu, or None where Numba does not import:
    Chainer's NumPy code then runs (numba_kernels.load says so)."""
    return numba_kernels.load('fast.batch_norm_cpu')


def _compiles(x, gamma, axis):
    # NumPy sums a single column pairwise, not row after row; other layouts
    # and dtypes stay with NumPy too, and an empty batch is Chainer's to
    # refuse.
    return (isinstance(x, numpy.ndarray) and x.ndim == 2 and
            x.flags.c_contiguous and x.dtype == gamma.dtype == numpy.float32
            and tuple(axis) == (0,) and len(x) >= 1 and x.shape[1] >= 2)


class CompiledImpl(chainer_bn.GeneralBatchNormalizationImpl):

    """Chainer's general implementation, its forward and backward compiled
    where _compiles allows, with its running statistics' updates:
    mean <- d mean + (1 - d) mu_B, var <- d var + (1 - d) M / (M - 1)
    sigma_B^2."""

    def forward(self, axis, gamma, x, x_layout, xp, expander, beta, eps,
                decay, running_mean, running_var):
        if not _compiles(x, gamma, axis):
            return super().forward(axis, gamma, x, x_layout, xp, expander,
                                   beta, eps, decay, running_mean,
                                   running_var)
        mean, var, inv_std = (numpy.empty_like(gamma) for _ in range(3))
        y = numpy.empty_like(x)
        compiled().forward(x, gamma, beta, gamma.dtype.type(eps), mean, var,
                           inv_std, y)
        if running_mean is not None:
            m = len(x)
            adjust = m / max(m - 1., 1.)
            # Chainer's expressions as it writes them, so that NumPy casts
            # the Python floats to float32 as it does there.
            running_mean *= decay
            running_mean += (1 - decay) * mean
            running_var *= decay
            running_var += (1 - decay) * adjust * var
        return y, x_layout, running_mean, running_var, mean, var, inv_std, None

    def backward(self, axis, gamma, gy, x, x_layout, xp, expander, mean,
                 inv_std, eps, var, forward_data):
        if not (_compiles(x, gamma, axis) and _compiles(gy, gamma, axis)):
            return super().backward(axis, gamma, gy, x, x_layout, xp,
                                    expander, mean, inv_std, eps, var,
                                    forward_data)
        gx = numpy.empty_like(x)
        ggamma, gbeta = numpy.empty_like(gamma), numpy.empty_like(gamma)
        compiled().backward(x, gamma, gy, mean, inv_std, gx, ggamma, gbeta)
        return gx, None, ggamma, gbeta


_IMPL = CompiledImpl()


def select(node, inputs):
    """The impl_selector of Chainer's BatchNormalization function that
    batch_normalization.BatchNormalization takes: CompiledImpl."""
    return _IMPL


@functools.lru_cache(maxsize=None)
def compiled_shift():
    """The module fast.shift_batch_norm_cpu, or None where Numba does not
    import."""
    return numba_kernels.load('fast.shift_batch_norm_cpu')


def use_compiled(net):
    """Has each batch_normalization.BatchNormalization link of ``net`` (an
    MnistMLP, already on its device) train through CompiledImpl, and each
    shift-based one through fast/shift_batch_norm_cpu.py, where ``net`` is
    on the CPU and Numba runs."""
    if net.xp is not numpy or compiled() is None:
        return
    for _, bn in net.layers():
        if isinstance(bn, batch_normalization.BatchNormalization):
            bn.impl_selector = select
        elif isinstance(bn, shift_batch_normalization.ShiftBatchNormalization):
            bn.kernels = compiled_shift()
