import numba
import numpy
import pytest

from fast import adam_cpu as cpu
from shift_batch_normalization import ap2


def numpy_step(param, grad, m, v, beta1, beta2, alpha_t, eps, eta, clip):
    """Chainer's AdamRule.update_core_cpu, NumPy pass by pass, clipped
    'pre' or 'post' as weight_clip.clip clips."""
    if clip == 'pre':
        numpy.clip(param, -1, 1, out=param)
    m += (1.0 - beta1) * (grad - m)
    v += (1.0 - beta2) * (grad * grad - v)
    step = alpha_t / (numpy.sqrt(v) + eps)
    param += -eta * (step * m)
    if clip == 'post':
        numpy.clip(param, -1, 1, out=param)


@pytest.mark.parametrize('clip', ['pre', 'post', None])
@pytest.mark.parametrize('n_signed', [0, 1000, 50007])
def test_adam_is_numpys_passes_bit_for_bit(clip, n_signed):
    n = 80003
    rng = numpy.random.RandomState(n_signed)
    param = rng.uniform(-1.5, 1.5, n).astype(numpy.float32)
    grad = (rng.standard_normal(n) * 10. ** rng.randint(-8, 3, n)).astype(
        numpy.float32)
    m = (rng.standard_normal(n) * 1e-3).astype(numpy.float32)
    v = (rng.rand(n) * 1e-4).astype(numpy.float32)
    # sign(0) = sign(-0) = +1: zeros that stay zeros (no gradient, no moment).
    for array, value in ((param, (0., -0.)), (grad, 0.), (m, 0.), (v, 0.)):
        array[:2] = value
    expected = [a.copy() for a in (param, grad, m, v)]
    numpy_step(*expected, 0.9, 0.999, 2.7e-3, 1e-8, 23.04, clip)
    signs = numpy.full(n_signed, numpy.nan, numpy.float32)
    f32 = numpy.float32
    cpu.adam(param, grad, m, v, signs, f32(1.0 - 0.9), f32(1.0 - 0.999),
             f32(2.7e-3), f32(1e-8), f32(-23.04), clip == 'pre',
             clip == 'post')
    for name, ours, theirs in zip(('W', 'g', 'm', 'v'),
                                  (param, grad, m, v), expected):
        numpy.testing.assert_array_equal(ours, theirs, err_msg=name)
    numpy.testing.assert_array_equal(
        signs, numpy.where(expected[0][:n_signed] >= 0, 1, -1))
    assert (param[:2] == 0).all()
    if n_signed:
        assert (signs[:2] == 1).all()


@numba.njit
def _ap2_each(x):
    out = numpy.empty_like(x)
    for i in range(len(x)):
        out[i] = cpu.ap2_positive(x[i])
    return out


def test_ap2_on_the_bits_is_shift_batch_normalizations_ap2():
    rng = numpy.random.RandomState(0)
    # Random floats of every exponent, every subnormal's range, and the
    # mantissas either side of sqrt(2) at every exponent.
    cuts = numpy.arange(1, 254, dtype=numpy.int64) << 23
    bits = numpy.concatenate([
        rng.randint(0, 0x7F000000, 10 ** 6), rng.randint(1, 0x800000, 10 ** 5),
        numpy.arange(0, 4096), [0x7FFFFF, 0x800000, 0x7F800000, 0x7FC00000],
        cuts + 0x3504F3, cuts + 0x3504F4]).astype(numpy.int32)
    x = bits.view(numpy.float32)
    numpy.testing.assert_array_equal(_ap2_each(x), ap2(x))
    assert set(_ap2_each(x[-506:]).view(numpy.int32) & 0x7FFFFF) == {0}


@pytest.mark.parametrize('clip', ['pre', 'post', None])
def test_shift_adamax_is_its_rules_numpy_passes_bit_for_bit(clip):
    n, n_signed = 80003, 50007
    rng = numpy.random.RandomState(3)
    param = rng.uniform(-1.5, 1.5, n).astype(numpy.float32)
    m = (rng.standard_normal(n) * 1e-3).astype(numpy.float32)
    v = numpy.zeros(n, numpy.float32)
    ours = [a.copy() for a in (param, m, v)]
    signs = numpy.empty(n_signed, numpy.float32)
    f32 = numpy.float32
    for t in range(1, 4):
        # Gradients of every scale, subnormal and 0 among them.
        grad = (rng.standard_normal(n) * 10. ** rng.randint(-44, 3, n)
                ).astype(numpy.float32)
        grad[::97] = 0
        step = float(ap2(numpy.float64(2 ** -6 / (1 - 0.9 ** t))))
        # shift_adamax.ShiftAdaMaxRule.update_core_cpu, with eta 43.45.
        if clip == 'pre':
            numpy.clip(param, -1, 1, out=param)
        m *= 0.9
        m += (1 - 0.9) * grad
        numpy.maximum(v * 0.999, abs(grad), out=v)
        v[...] = ap2(v)
        v += 2. ** -27
        param += -step * (m / v) * 43.45
        if clip == 'post':
            numpy.clip(param, -1, 1, out=param)
        cpu.shift_adamax(*ours[:1], grad, *ours[1:], signs, f32(0.9),
                         f32(1 - 0.9), f32(0.999), f32(2. ** -27), f32(-step),
                         f32(43.45), clip == 'pre', clip == 'post')
        for got, want in zip(ours, (param, m, v)):
            numpy.testing.assert_array_equal(got.view(numpy.uint32),
                                             want.view(numpy.uint32))
        numpy.testing.assert_array_equal(
            signs, numpy.where(param[:n_signed] >= 0, 1, -1))
