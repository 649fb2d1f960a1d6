"""BatchNormalization over a batch's rows (BinaryNet's Algorithm 1,
Courbariaux et al., arXiv:1602.02830), training's forward and backward
compiled by Numba: the bits of Chainer's NumPy operations, in two or three
passes over the batch instead of a dozen.

NumPy sums a C-ordered (M, N) matrix over its rows, for N >= 2, one row
after another into a row of accumulators, from +0 (a column of -0s sums to
+0); these loops sum in that order. Without fastmath LLVM neither contracts a
product and a sum into an FMA nor reorders them, and its sqrt and / are
IEEE's, correctly rounded.
"""
import numba
import numpy

_JIT = {'cache': True, 'nogil': True, 'boundscheck': False,
        'error_model': 'numpy'}


@numba.njit(**_JIT)
def column_means(x, mean):
    """mean[j] = the sum of x[:, j] over the rows, in NumPy's order, / M."""
    m, n = x.shape
    mean[:] = 0
    for i in range(m):
        for j in range(n):
            mean[j] += x[i, j]
    for j in range(n):
        mean[j] = mean[j] / numpy.float32(m)


@numba.njit(**_JIT)
def forward(x, gamma, beta, eps, mean, var, inv_std, y):
    """mu = mean(x), sigma^2 = mean((x - mu)^2) over the rows, inv_std =
    1 / sqrt(sigma^2 + eps) and y = ((x - mu) inv_std) gamma + beta, into
    mean, var, inv_std and y; eps is float32, as NumPy casts it."""
    m, n = x.shape
    rows = numpy.float32(m)
    column_means(x, mean)
    var[:] = 0
    for i in range(m):
        for j in range(n):
            d = x[i, j] - mean[j]
            var[j] += d * d
    for j in range(n):
        var[j] = var[j] / rows
        inv_std[j] = numpy.float32(1.) / numpy.sqrt(var[j] + eps)
    for i in range(m):
        for j in range(n):
            y[i, j] = (x[i, j] - mean[j]) * inv_std[j] * gamma[j] + beta[j]


@numba.njit(**_JIT)
def backward(x, gamma, gy, mean, inv_std, gx, ggamma, gbeta):
    """With x_hat = (x - mu) inv_std: g_beta = sum(gy), g_gamma = sum(gy
    x_hat) over the rows, and g_x = (gamma inv_std) (gy - (x_hat g_gamma +
    g_beta) / M), into gx, ggamma and gbeta."""
    m, n = x.shape
    inv_m = numpy.float32(1. / m)
    gbeta[:] = 0
    ggamma[:] = 0
    for i in range(m):
        for j in range(n):
            x_hat = (x[i, j] - mean[j]) * inv_std[j]
            gbeta[j] += gy[i, j]
            ggamma[j] += gy[i, j] * x_hat
    for i in range(m):
        for j in range(n):
            x_hat = (x[i, j] - mean[j]) * inv_std[j]
            gx[i, j] = (gamma[j] * inv_std[j]) * (
                gy[i, j] - (x_hat * ggamma[j] + gbeta[j]) * inv_m)
