import numpy

import chainer

from squared_hinge import squared_hinge


def test_hand_worked_example():
    y = numpy.array([[0.5, -2., 3.],
                     [-0.5, 0.2, 1.5]], numpy.float32)
    t = numpy.array([0, 2], numpy.int32)
    # Row 0, true class 0: (1 - 0.5)^2, max(0, 1 - 2)^2, (1 + 3)^2
    #   = 0.25 + 0 + 16
    # Row 1, true class 2: (1 - 0.5)^2, (1 + 0.2)^2, max(0, 1 - 1.5)^2
    #   = 0.25 + 1.44 + 0
    expected = (16.25 + 1.69) / 6
    loss = squared_hinge(y, t)
    assert abs(float(loss.array) - expected) < 1e-6


def test_gradient_is_that_of_the_mean():
    y = chainer.Variable(numpy.array([[0.5, -2., 3.]], numpy.float32))
    t = numpy.array([0], numpy.int32)
    squared_hinge(y, t).backward()
    # d/dy of (1 - y0)^2 / 3, 0, (1 + y2)^2 / 3
    numpy.testing.assert_allclose(
        y.grad, [[-2 * 0.5 / 3, 0., 2 * 4 / 3]], rtol=1e-6)
