import numpy
import pytest

import chainer
from chainer import gradient_check
from chainer.backends import cuda

from binary_linear import BinaryLinear, binary_linear


def make(batch=5, n_in=7, n_out=4, dtype=numpy.float64, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.uniform(-1, 1, (batch, n_in)).astype(dtype)
    W = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
    W[0, 0] = 0  # sign(0) = +1
    b = rng.uniform(-1, 1, n_out).astype(dtype)
    gy = rng.normal(size=(batch, n_out)).astype(dtype)
    return x, W, b, gy


def sign(W):
    return numpy.where(W >= 0, 1., -1.).astype(W.dtype)


def test_forward_uses_signs_of_weights():
    x, W, b, _ = make()
    y = binary_linear(x, W, b)
    numpy.testing.assert_allclose(y.array, x @ sign(W).T + b, rtol=1e-12)
    y = binary_linear(x, W)
    numpy.testing.assert_allclose(y.array, x @ sign(W).T, rtol=1e-12)


def test_gradients_are_straight_through():
    x, W, b, gy = make()
    xv, Wv, bv = (chainer.Variable(a) for a in (x, W, b))
    y = binary_linear(xv, Wv, bv)
    y.grad = gy
    y.backward()
    numpy.testing.assert_allclose(xv.grad, gy @ sign(W), rtol=1e-12)
    # W's gradient ignores sign(): it is that of x . W^T.
    numpy.testing.assert_allclose(Wv.grad, gy.T @ x, rtol=1e-12)
    numpy.testing.assert_allclose(bv.grad, gy.sum(axis=0), rtol=1e-12)


def test_given_signs_and_gradient_array_are_used():
    x, W, b, gy = make(dtype=numpy.float32)
    link = BinaryLinear(7, 4)
    link.W.array[...], link.b.array[...] = W, b
    # Signs that are not W's: the forward must read these, not binarize W.
    link.W_b = -sign(W)
    link.grad_W = numpy.full_like(W, numpy.nan)
    link.cleargrads()
    xv = chainer.Variable(x)
    y = link(xv)
    numpy.testing.assert_allclose(y.array, x @ -sign(W).T + b, rtol=1e-6)
    y.grad = gy
    y.backward()
    assert link.W.grad is link.grad_W
    numpy.testing.assert_allclose(link.grad_W, gy.T @ x, rtol=1e-6)
    numpy.testing.assert_allclose(xv.grad, gy @ -sign(W), rtol=1e-6)


def test_given_product_runs_the_forward_and_backward_reads_the_signs():
    x, W, b, gy = make(dtype=numpy.float32)
    link = BinaryLinear(7, 4)
    link.W.array[...], link.b.array[...] = W, b
    link.W_b = sign(W)
    made = numpy.arange(len(x) * 4, dtype=numpy.float32).reshape(len(x), 4)
    link.product = lambda given: made.copy() if given is xv.array else None
    xv = chainer.Variable(x)
    y = link(xv)
    numpy.testing.assert_array_equal(y.array, made + b)
    y.grad = gy
    y.backward()
    numpy.testing.assert_allclose(xv.grad, gy @ sign(W), rtol=1e-6)


def test_gradient_check_in_x_and_b():
    x, W, b, gy = make()
    gradient_check.check_backward(
        lambda x, b: binary_linear(x, W, b), (x, b), gy,
        eps=1e-3, atol=1e-7, rtol=1e-7)


def test_second_order_gradient_check_in_x():
    x, W, b, gy = make()
    ggx = numpy.random.RandomState(1).normal(size=x.shape)
    gradient_check.check_double_backward(
        lambda x, b: binary_linear(x, W, b), (x, b), gy, (ggx, b * 0),
        eps=1e-3, atol=1e-7, rtol=1e-7)


def test_first_order_gradients_are_the_same_without_a_graph():
    x, W, b, gy = make()
    grads = []
    for double in (False, True):
        xv, Wv, bv = (chainer.Variable(a) for a in (x, W, b))
        y = binary_linear(xv, Wv, bv)
        y.grad = gy
        y.backward(enable_double_backprop=double)
        # Only double backprop needs the gradients' own graph.
        assert all((v.grad_var.creator is None) is not double
                   for v in (xv, Wv, bv))
        grads.append((xv.grad, Wv.grad, bv.grad))
    for first_order, double in zip(*grads, strict=True):
        numpy.testing.assert_array_equal(first_order, double)


@pytest.mark.parametrize('x_shape,W_shape', [
    ((5, 6), (4, 7)),     # in_size differs
    ((5, 7, 1), (4, 7)),  # x not a matrix
])
def test_rejects_mismatched_shapes(x_shape, W_shape):
    with pytest.raises(chainer.utils.type_check.InvalidType):
        binary_linear(numpy.zeros(x_shape, numpy.float32),
                      numpy.zeros(W_shape, numpy.float32))


def test_rejects_bias_of_wrong_size():
    with pytest.raises(chainer.utils.type_check.InvalidType):
        binary_linear(numpy.zeros((2, 3), numpy.float32),
                      numpy.zeros((4, 3), numpy.float32),
                      numpy.zeros(5, numpy.float32))


def test_link_holds_real_weights_and_zero_bias():
    numpy.random.seed(0)
    link = BinaryLinear(400, 300)
    assert link.W.shape == (300, 400) and link.W.dtype == numpy.float32
    assert link.b.shape == (300,)
    numpy.testing.assert_array_equal(link.b.array, 0)
    # N(0, 1/in_size), as the Chainer port initialises it.
    assert abs(link.W.array.std() * numpy.sqrt(400) - 1) < 0.01
    assert abs(link.W.array.mean()) < 0.005


def test_link_forward_and_nobias():
    link = BinaryLinear(3, 2, nobias=True, initialW=numpy.array(
        [[0.5, -0.2, 0.], [-1., 0.3, -0.1]], numpy.float32))
    assert link.b is None
    y = link(numpy.array([[1., 2., 4.]], numpy.float32))
    numpy.testing.assert_array_equal(y.array, [[1 - 2 + 4, -1 + 2 - 4]])


@pytest.mark.gpu
def test_gpu_agrees_with_cpu():
    x, W, b, gy = make(batch=100, n_in=300, n_out=65, dtype=numpy.float32)
    results = []
    for xp in (numpy, cuda.cupy):
        xv, Wv, bv = (chainer.Variable(xp.asarray(a)) for a in (x, W, b))
        y = binary_linear(xv, Wv, bv)
        y.grad = xp.asarray(gy)
        y.backward()
        results.append([cuda.to_cpu(a) for a in
                        (y.array, xv.grad, Wv.grad, bv.grad)])
    for cpu, gpu in zip(*results, strict=True):
        numpy.testing.assert_allclose(cpu, gpu, rtol=1e-5, atol=1e-4)
