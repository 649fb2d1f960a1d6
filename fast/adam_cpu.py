"""The fast path's update on the CPU, compiled by Numba: Adam, BinaryNet's
clip (Courbariaux et al., arXiv:1602.02830, Sec. 1.2) and the binarized
weights W_b = sign(W) (Sec. 1.1) in one pass over the flat parameters.

Per element, in float32 and in Chainer's AdamRule.update_core_cpu order:

    m += (1 - beta1) (g - m);  v += (1 - beta2) (g g - v)
    W += (-eta) ((alpha_t / (sqrt(v) + eps)) m)

with W clipped to [-1, 1] before or after. Without fastmath LLVM neither
contracts a product and a sum into an FMA nor reorders them, and its
vectorised sqrt and / are IEEE's, correctly rounded: the bits of NumPy's
passes, in one.
"""
import numba
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
