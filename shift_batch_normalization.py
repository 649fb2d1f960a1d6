"""BinaryNet's shift-based Batch Normalizing Transform (Courbariaux et al.,
"Binarized Neural Networks", arXiv:1602.02830, Sec. 1.4 and its algorithm
"Shift based Batch Normalizing Transform"), as the authors' Torch7 code
computes it (itayhubara/BinaryNet, Models/BatchNormalizationShiftPow2.lua):
the function and its link.

AP2(x) = sign(x) 2^round(log2 |x|) is the power of two nearest x in the log
domain, so that its products are shifts. Where the code departs from the
paper's algorithm, which has neither beta, running statistics nor a backward
rule: it adds beta, keeps running averages of mu and of the unrounded
inverse standard deviation, normalises the exact centred x (not its AP2) and
back-propagates by the approximate rule in ShiftBatchNormalizationFunction.
"""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer import backend
import chainer.functions as F
from chainer import link
from chainer.utils import type_check

# The cut between 2^(k-1) and 2^k, on a mantissa in [0.5, 1): no float
# lies on it, so the comparison in float64 rounds every float32 exactly.
SQRT_HALF = numpy.sqrt(0.5)


def ap2(x):
    """AP2(x) = sign(x) 2^round(log2 |x|), AP2(0) = 0, in x's dtype (an
    infinity or a NaN stays as it is)."""
    xp = backend.get_array_module(x)
    mantissa, exponent = xp.frexp(x)
    magnitude = xp.abs(mantissa).astype(numpy.float64)
    unit = xp.where(magnitude < SQRT_HALF, 0.5, 1.)
    unit = xp.where(mantissa == 0, 0., unit).astype(x.dtype)
    with numpy.errstate(over='ignore'):
        rounded = xp.ldexp(xp.copysign(unit, x), exponent).astype(x.dtype)
    return xp.where(xp.isfinite(x), rounded, x)


class ShiftBatchNormalizationFunction(chainer.function_node.FunctionNode):

    """Training, per unit over a batch of m:

        mu = mean(x); c = x - mu; C = AP2(c)
        inv_std = 1 / sqrt(mean(C c) + eps); s = AP2(inv_std)
        y = (c s) AP2(gamma) + beta

    and the running averages mean <- decay mean + (1 - decay) mu, inv_std
    likewise from the unrounded inv_std. Backward, as the code computes it
    (not the derivative of the forward), for the output's gradient g:

        g_x = AP2(gamma) s (g - mean(g) - s^2 C mean(C g))
        g_gamma = sum(AP2(c s) g); g_beta = sum(g)

    ``kernels``: fast/shift_batch_norm_cpu.py, which the fast path sets on
    the CPU, computing the same bits where the batch is float32 rows of at
    least 2 units (elsewhere NumPy runs); or None.
    """

    def __init__(self, eps, running_mean=None, running_inv_std=None,
                 decay=0.875, kernels=None):
        self.eps = eps
        self.running_mean = running_mean
        self.running_inv_std = running_inv_std
        self.decay = decay
        self.kernels = kernels

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('x', 'gamma', 'beta'))
        x_type, gamma_type, beta_type = in_types
        type_check.expect(
            x_type.dtype.kind == 'f',
            x_type.ndim == 2,
            gamma_type.dtype == x_type.dtype,
            beta_type.dtype == x_type.dtype,
            gamma_type.shape == x_type.shape[1:],
            beta_type.shape == x_type.shape[1:],
        )

    def forward(self, inputs):
        x, gamma, beta = inputs
        dtype = x.dtype.type
        if self._compiles(x, gamma):
            y, mu, inv_std = self._forward_compiled(x, gamma, beta)
        else:
            xp = backend.get_array_module(x)
            mu = x.mean(axis=0)
            centred = x - mu
            self.rounded = ap2(centred)
            inv_std = dtype(1) / xp.sqrt(
                (self.rounded * centred).mean(axis=0) + dtype(self.eps))
            self.scale = ap2(inv_std)
            self.gamma = ap2(gamma)
            self.x_hat = centred * self.scale
            y = self.x_hat * self.gamma + beta
        if self.running_mean is not None:
            for running, batch in ((self.running_mean, mu),
                                   (self.running_inv_std, inv_std)):
                running *= self.decay
                running += (1 - self.decay) * batch
        return y,

    def _compiles(self, x, gamma):
        # NumPy sums a single column pairwise, not row after row.
        return (self.kernels is not None and isinstance(x, numpy.ndarray)
                and x.ndim == 2 and x.flags.c_contiguous and
                x.dtype == gamma.dtype == numpy.float32 and x.shape[1] >= 2)

    def _forward_compiled(self, x, gamma, beta):
        mu, inv_std, self.scale, self.gamma = (
            numpy.empty_like(gamma) for _ in range(4))
        self.rounded, self.x_hat, y = (numpy.empty_like(x) for _ in range(3))
        self.kernels.forward(x, gamma, beta, x.dtype.type(self.eps), mu,
                             inv_std, self.scale, self.gamma, self.rounded,
                             self.x_hat, y)
        return y, mu, inv_std

    def backward(self, indexes, grad_outputs):
        g = grad_outputs[0].array
        if self._compiles(g, self.gamma):
            g_x = numpy.empty_like(g)
            g_gamma, g_beta = (numpy.empty_like(self.gamma) for _ in range(2))
            self.kernels.backward(g, self.scale, self.gamma, self.rounded,
                                  self.x_hat, g_x, g_gamma, g_beta)
            return (chainer.Variable(g_x), chainer.Variable(g_gamma),
                    chainer.Variable(g_beta))
        rounded, scale = self.rounded, self.scale
        g_x = g - g.mean(axis=0)
        g_x -= scale * scale * rounded * (rounded * g).mean(axis=0)
        g_x *= self.gamma * scale
        g_gamma = (ap2(self.x_hat) * g).sum(axis=0)
        return (chainer.Variable(g_x), chainer.Variable(g_gamma),
                chainer.Variable(g.sum(axis=0)))


def shift_batch_normalization(x, gamma, beta, eps=1e-5, running_mean=None,
                              running_inv_std=None, decay=0.875,
                              kernels=None):
    """Shift-based batch normalization of ``x`` (batch, units) by the
    batch's statistics (ShiftBatchNormalizationFunction), updating
    ``running_mean`` and ``running_inv_std`` in place where given."""
    y, = ShiftBatchNormalizationFunction(
        eps, running_mean, running_inv_std, decay, kernels).apply(
            (x, gamma, beta))
    return y


def fixed_shift_batch_normalization(x, gamma, beta, mean, inv_std):
    """Inference: y = (x - mean) AP2(inv_std) AP2(gamma) + beta."""
    xp = backend.get_array_module(mean)
    centred = x - xp.broadcast_to(mean, x.shape)
    gamma = gamma.array if isinstance(gamma, chainer.Variable) else gamma
    return F.bias(F.scale(centred, ap2(inv_std) * ap2(gamma), axis=1), beta,
                  axis=1)


class ShiftBatchNormalization(link.Link):

    """The shift-based BatchNormalization of the authors' Torch7 code:
    gamma 1, beta 0, running mean 0 and running inverse std 1 at the start;
    momentum 0.125 (``decay`` = 1 - momentum), eps 1e-5.

    Args:
        size (int): Number of units.
        decay (float): The running averages' weight on their past.
        eps (float): Added to the batch's shift-based variance.

    ``kernels``: None, or the compiled forward and backward that
    fast.batch_norm.use_compiled sets on the CPU.
    """

    kernels = None

    def __init__(self, size, decay=0.875, eps=1e-5):
        super().__init__()
        self.decay = decay
        self.eps = eps
        dtype = chainer.get_dtype()
        with self.init_scope():
            self.gamma = chainer.Parameter(1., size)
            self.beta = chainer.Parameter(0., size)
        self.avg_mean = self.xp.zeros(size, dtype)
        self.register_persistent('avg_mean')
        self.avg_inv_std = self.xp.ones(size, dtype)
        self.register_persistent('avg_inv_std')

    def forward(self, x):
        if chainer.config.train:
            return shift_batch_normalization(
                x, self.gamma, self.beta, self.eps, self.avg_mean,
                self.avg_inv_std, self.decay, self.kernels)
        return fixed_shift_batch_normalization(
            x, self.gamma, self.beta, self.avg_mean, self.avg_inv_std)

    def population_terms(self):
        """(gamma, beta, mean, std) in float64 with y = gamma (x - mean) /
        std + beta at inference: AP2(gamma), and 1 / AP2(inv_std); for the
        packed engine's folds (packed.reference.bn_arrays)."""
        gamma, beta, mean, inv_std = (
            numpy.asarray(chainer.backend.CpuDevice().send(a), numpy.float64)
            for a in (ap2(self.gamma.array), self.beta.array, self.avg_mean,
                      ap2(self.avg_inv_std)))
        return gamma, beta, mean, 1 / inv_std
