import numpy
import pytest

import chainer
from chainer.backends import cuda

from bst import binarize, bst, stochastic_bst

X = numpy.array([-2., -1.5, -1., -0.5, -0., 0., 0.25, 1., 1.5], numpy.float32)
SIGN = numpy.array([-1, -1, -1, -1, 1, 1, 1, 1, 1], numpy.float32)
PASS = numpy.array([0, 0, 1, 1, 1, 1, 1, 1, 0], numpy.float32)


@pytest.mark.parametrize('dtype', [numpy.float16, numpy.float32,
                                   numpy.float64])
def test_forward_is_sign_with_zero_positive(dtype):
    y = bst(X.astype(dtype))
    assert y.dtype == dtype
    numpy.testing.assert_array_equal(y.array, SIGN)


def test_binarize_keeps_shape_and_dtype():
    x = numpy.linspace(-1, 1, 12, dtype=numpy.float64).reshape(3, 4)
    b = binarize(x)
    assert b.shape == (3, 4) and b.dtype == numpy.float64
    numpy.testing.assert_array_equal(b, numpy.where(x >= 0, 1., -1.))


def test_backward_passes_gradient_where_abs_x_at_most_one():
    x = chainer.Variable(X.copy())
    y = bst(x)
    gy = numpy.arange(1, len(X) + 1, dtype=numpy.float32)
    y.grad = gy
    y.backward()
    numpy.testing.assert_array_equal(x.grad, gy * PASS)


def test_first_order_gradient_is_the_same_without_a_graph():
    gy = numpy.arange(1, len(X) + 1, dtype=numpy.float32)
    grads = []
    for double in (False, True):
        x = chainer.Variable(X.copy())
        y = bst(x)
        y.grad = gy
        y.backward(enable_double_backprop=double)
        # Only double backprop needs the gradient's own graph.
        assert (x.grad_var.creator is None) is not double
        grads.append(x.grad)
    numpy.testing.assert_array_equal(*grads)


def test_rejects_integer_input():
    with pytest.raises(chainer.utils.type_check.InvalidType):
        bst(numpy.arange(3, dtype=numpy.int32))


@pytest.mark.gpu
def test_gpu_agrees_with_cpu():
    rng = numpy.random.RandomState(0)
    x_cpu = rng.uniform(-2, 2, (64, 33)).astype(numpy.float32)
    x_cpu[0, :3] = (0, 1, -1)
    gy_cpu = rng.normal(size=x_cpu.shape).astype(numpy.float32)
    results = []
    for xp in (numpy, cuda.cupy):
        x = chainer.Variable(xp.asarray(x_cpu))
        y = bst(x)
        y.grad = xp.asarray(gy_cpu)
        y.backward()
        results.append((cuda.to_cpu(y.array), cuda.to_cpu(x.grad)))
    numpy.testing.assert_array_equal(results[0][0], results[1][0])
    numpy.testing.assert_array_equal(results[0][1], results[1][1])


def test_binarize_matches_where_on_signed_zeros_and_nan():
    x = numpy.array([-0., 0., numpy.nan, -numpy.inf, numpy.inf, 1e-45,
                     -1e-45], numpy.float32)
    numpy.testing.assert_array_equal(binarize(x),
                                     numpy.where(x >= 0, 1., -1.))
    assert binarize(x).dtype == numpy.float32


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float16, numpy.float32,
                                   numpy.float64])
def test_gpu_kernels_agree_with_numpy(dtype):
    x = numpy.array([-2., -1., -0.5, -0., 0., 0.5, 1., 1.5, numpy.nan,
                     -numpy.inf, 1e-300, -1e-300], numpy.float64).astype(dtype)
    b = binarize(cuda.cupy.asarray(x))
    assert b.dtype == dtype
    numpy.testing.assert_array_equal(b.get(), binarize(x))
    results = []
    for xp in (numpy, cuda.cupy):
        v = chainer.Variable(xp.asarray(x))
        y = bst(v)
        y.grad = xp.ones_like(y.array)
        y.backward()
        results.append((cuda.to_cpu(y.array), cuda.to_cpu(v.grad)))
    numpy.testing.assert_array_equal(results[0][0], results[1][0])
    numpy.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize('x', [-1.5, -1., -0.6, -0.1, 0., 0.3, 0.9, 1., 2.])
def test_stochastic_activation_is_plus_one_with_the_hard_sigmoids_odds(x):
    n = 10 ** 6
    numpy.random.seed(7)
    with chainer.using_config('train', True):
        y = stochastic_bst(numpy.full(n, x, numpy.float32)).array
    assert set(numpy.unique(y)) <= {-1., 1.}
    p = min(max((x + 1) / 2, 0.), 1.)
    frequency = (y > 0).mean()
    # Within 5 standard deviations of a binomial's, or exact at 0 and 1.
    assert abs(frequency - p) <= 5 * numpy.sqrt(p * (1 - p) / n)


def test_stochastic_activation_draws_by_the_global_generators_seed():
    x = numpy.linspace(-1, 1, 1000, dtype=numpy.float32)
    draws = []
    with chainer.using_config('train', True):
        for seed in (3, 3, 4):
            numpy.random.seed(seed)
            draws.append(stochastic_bst(x).array)
    numpy.testing.assert_array_equal(draws[0], draws[1])
    assert (draws[0] != draws[2]).any()


def test_stochastic_activation_is_sign_in_evaluation_and_bsts_backward():
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(stochastic_bst(X).array, SIGN)
    x = chainer.Variable(X.copy())
    with chainer.using_config('train', True):
        y = stochastic_bst(x)
    g = numpy.arange(1, 10, dtype=numpy.float32)
    y.grad = g
    y.backward()
    numpy.testing.assert_array_equal(x.grad, PASS * g)
