"""Shift-based BatchNormalization over a batch's rows (Courbariaux et al.,
arXiv:1602.02830, Sec. 1.4), training's forward and backward compiled by
Numba: the bits of shift_batch_normalization.py's NumPy operations, in a
few passes over the batch instead of a dozen.

The sums run over the rows one after another from +0, as NumPy's (see
fast/batch_norm_cpu.py); a mean divides by M in float32, which rounds as
NumPy's float64 division does (double rounding is exact for a quotient of
floats when 53 >= 2 x 24 + 2); AP2 is fast/adam_cpu.py's, on the bits.
"""
import math

import numba
import numpy

from fast.adam_cpu import ap2_positive
from fast.batch_norm_cpu import column_means

_JIT = {'cache': True, 'nogil': True, 'boundscheck': False,
        'error_model': 'numpy'}


@numba.njit(**_JIT)
def _ap2(x):
    """AP2(x) of a float32 of either sign, -0 kept."""
    return numpy.float32(math.copysign(ap2_positive(abs(x)), x))


@numba.njit(**_JIT)
def forward(x, gamma, beta, eps, mean, inv_std, scale, gamma_ap2, rounded,
            x_hat, y):
    """mu = mean(x); C = AP2(x - mu); inv_std = 1 / sqrt(mean(C (x - mu))
    + eps); s = AP2(inv_std); x_hat = (x - mu) s; y = x_hat AP2(gamma) +
    beta: into mean, inv_std, scale (s), gamma_ap2, rounded (C), x_hat and
    y. eps is float32, as NumPy casts it."""
    m, n = x.shape
    rows = numpy.float32(m)
    column_means(x, mean)
    for j in range(n):
        gamma_ap2[j] = _ap2(gamma[j])
    inv_std[:] = 0
    for i in range(m):
        for j in range(n):
            c = x[i, j] - mean[j]
            rounded[i, j] = _ap2(c)
            inv_std[j] += rounded[i, j] * c
    for j in range(n):
        inv_std[j] = numpy.float32(1.) / numpy.sqrt(inv_std[j] / rows + eps)
        scale[j] = _ap2(inv_std[j])
    for i in range(m):
        for j in range(n):
            x_hat[i, j] = (x[i, j] - mean[j]) * scale[j]
            y[i, j] = x_hat[i, j] * gamma_ap2[j] + beta[j]


@numba.njit(**_JIT)
def backward(g, scale, gamma_ap2, rounded, x_hat, gx, ggamma, gbeta):
    """g_x = ((g - mean(g)) - ((s s) C) mean(C g)) (AP2(gamma) s);
    g_gamma = sum(AP2(x_hat) g); g_beta = sum(g): into gx, ggamma and
    gbeta."""
    m, n = g.shape
    rows = numpy.float32(m)
    gbeta[:] = 0
    ggamma[:] = 0
    mean_cg = numpy.zeros_like(gbeta)
    for i in range(m):
        for j in range(n):
            gbeta[j] += g[i, j]
            mean_cg[j] += rounded[i, j] * g[i, j]
            ggamma[j] += _ap2(x_hat[i, j]) * g[i, j]
    for j in range(n):
        mean_cg[j] = mean_cg[j] / rows
    for i in range(m):
        for j in range(n):
            gx[i, j] = ((g[i, j] - gbeta[j] / rows) -
                        ((scale[j] * scale[j]) * rounded[i, j]) *
                        mean_cg[j]) * (gamma_ap2[j] * scale[j])
