"""The fast path's update on the CPU, compiled by Numba: Adam (or the
paper's shift-based AdaMax, Sec. 1.5), BinaryNet's clip (Courbariaux et al.,
arXiv:1602.02830, Sec. 1.2) and the binarized weights W_b = sign(W)
(Sec. 1.1) in one pass over the flat parameters.

Per element, in float32 and in Chainer's AdamRule.update_core_cpu order:

    m += (1 - beta1) (g - m);  v += (1 - beta2) (g g - v)
    W += (-eta) ((alpha_t / (sqrt(v) + eps)) m)

with W clipped to [-1, 1] before or after. Without fastmath LLVM neither
contracts a product and a sum into an FMA nor reorders them, and its
vectorised sqrt and / are IEEE's, correctly rounded: the bits of NumPy's
passes, in one.
"""
from llvmlite import ir
import numba
from numba import types
from numba.extending import intrinsic
import numpy

_JIT = {'cache': True, 'nogil': True, 'boundscheck': False,
        'error_model': 'numpy'}


@numba.njit(**_JIT)
def _run(param, grad, m, v, signs, signed, one_minus_beta1,
         one_minus_beta2, alpha_t, eps, neg_eta, clip_before, clip_after):
    """The step of each element; ``signed``: signs[i] = sign(W[i]) after it.

    One flat loop whose flags LLVM hoists out of it, so that it vectorises.
    """
    low, high = numpy.float32(-1.), numpy.float32(1.)
    for i in range(len(param)):
        p = param[i]
        if clip_before:
            p = low if p < low else (high if p > high else p)
        g = grad[i]
        m_i = m[i] + one_minus_beta1 * (g - m[i])
        v_i = v[i] + one_minus_beta2 * (g * g - v[i])
        m[i] = m_i
        v[i] = v_i
        p += neg_eta * ((alpha_t / (numpy.sqrt(v_i) + eps)) * m_i)
        if clip_after:
            p = low if p < low else (high if p > high else p)
        param[i] = p
        if signed:
            signs[i] = high if p >= 0 else low


# One thread: the pass is bound by memory, and a parallel one, its threads
# contending with OpenBLAS's that spin between the products, made a port
# epoch slower (11.2-11.6 s against 7.96 s on one thread, 2 cores).
@numba.njit(**_JIT)
def adam(param, grad, m, v, signs, one_minus_beta1, one_minus_beta2,
         alpha_t, eps, neg_eta, clip_before, clip_after):
    """One step of every element in place; signs[i] = sign(W[i]) after it
    (+1 where W >= 0, else -1) for i < len(signs). The scalars are float32,
    as NumPy casts Python's floats beside a float32 array."""
    n_signed = len(signs)
    _run(param[:n_signed], grad[:n_signed], m[:n_signed], v[:n_signed],
         signs, True, one_minus_beta1, one_minus_beta2, alpha_t, eps,
         neg_eta, clip_before, clip_after)
    _run(param[n_signed:], grad[n_signed:], m[n_signed:], v[n_signed:],
         signs, False, one_minus_beta1, one_minus_beta2, alpha_t, eps,
         neg_eta, clip_before, clip_after)


# AP2 of a normal float32 x > 0 from its bits: 1.f 2^e rounds up to
# 2^(e+1) where 1.f >= sqrt(2), that is where the 23 bits of f reach this.
_SQRT2_FRACTION = 0x3504F4
# A subnormal x (or 0) is scaled by 2^64 into the normal range first, and
# its AP2 back: both exact, powers of two.
_NORMAL = numpy.float32(2. ** -126)
_UP, _DOWN = numpy.float32(2. ** 64), numpy.float32(2. ** -64)
_INF = numpy.float32(numpy.inf)


@intrinsic
def _bits(typingctx, x):
    """The bits of a float32, as an int32 (LLVM's bitcast)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _float(typingctx, bits):
    """The float32 of the bits of an int32 (LLVM's bitcast)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@numba.njit(**_JIT)
def ap2_positive(x):
    """AP2(x) of a float32 x >= 0 (shift_batch_normalization.ap2's value,
    an infinity or a NaN kept), without branches, so that a loop of it
    vectorises."""
    subnormal = x < _NORMAL
    bits = _bits(x * _UP if subnormal else x)
    rounded = _float(numpy.int32(
        ((bits >> 23) + ((bits & 0x7FFFFF) >= _SQRT2_FRACTION)) << 23))
    rounded = rounded * _DOWN if subnormal else rounded
    return rounded if x < _INF else x


@numba.njit(**_JIT)
def _shift_run(param, grad, m, v, signs, signed, beta1,
               one_minus_beta1, beta2, eps, neg_step, eta, clip_before,
               clip_after):
    """The shift-based AdaMax step of each element; ``signed`` as _run's."""
    low, high = numpy.float32(-1.), numpy.float32(1.)
    for i in range(len(param)):
        p = param[i]
        if clip_before:
            p = low if p < low else (high if p > high else p)
        g = grad[i]
        m_i = m[i] * beta1
        m_i = m_i + one_minus_beta1 * g
        m[i] = m_i
        v_i = ap2_positive(max(v[i] * beta2, abs(g))) + eps
        v[i] = v_i
        p += (neg_step * (m_i / v_i)) * eta
        if clip_after:
            p = low if p < low else (high if p > high else p)
        param[i] = p
        if signed:
            signs[i] = high if p >= 0 else low


@numba.njit(**_JIT)
def shift_adamax(param, grad, m, v, signs, beta1, one_minus_beta1, beta2,
                 eps, neg_step, eta, clip_before, clip_after):
    """One step of shift_adamax.ShiftAdaMaxRule for every element in place,
    signs as adam's. The scalars are float32;
    ``neg_step`` is -AP2(alpha / (1 - beta1^t))."""
    n_signed = len(signs)
    _shift_run(param[:n_signed], grad[:n_signed], m[:n_signed],
               v[:n_signed], signs, True, beta1,
               one_minus_beta1, beta2, eps, neg_step, eta, clip_before,
               clip_after)
    _shift_run(param[n_signed:], grad[n_signed:], m[n_signed:],
               v[n_signed:], signs, False, beta1,
               one_minus_beta1, beta2, eps, neg_step, eta, clip_before,
               clip_after)
