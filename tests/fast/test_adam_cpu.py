import numpy
import pytest

from fast import adam_cpu as cpu


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
