"""BinaryNet's binary activation with the straight-through estimator
(Courbariaux et al., "Binarized Neural Networks", arXiv:1602.02830,
Sec. 1.3)."""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer.backends import cuda
from chainer.utils import type_check


def binarize(x):
    """x^b = sign(x): +1 where x >= 0, else -1, in x's dtype (Sec. 1.1)."""
    if isinstance(x, cuda.ndarray):
        # One kernel where the NumPy form below would launch four.
        return cuda.elementwise(
            'T x', 'T b', 'b = x >= (T)0 ? (T)1 : (T)-1', 'binarize')(x)
    # 2 [x >= 0] - 1 in place: the same values as a where(), several times
    # faster on the CPU, where it runs for every weight at every step.
    b = (x >= 0).astype(x.dtype)
    b *= 2
    b -= 1
    return b


class BinaryStraightThrough(chainer.function_node.FunctionNode):

    """Forward q = sign(r); backward g_r = g_q 1_{|r| <= 1} (Sec. 1.3)."""

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('x',))
        type_check.expect(in_types[0].dtype.kind == 'f')

    def forward(self, inputs):
        x, = inputs
        # The mask, in x's dtype, is all backward needs; keeping it frees x
        # (binary_stats.py counts it: where the gradient passes).
        if isinstance(x, cuda.ndarray):
            y, self.pass_through = cuda.elementwise(
                'T x', 'T y, T pass_through',
                '''y = x >= (T)0 ? (T)1 : (T)-1;
                   pass_through = x >= (T)-1 && x <= (T)1 ? (T)1 : (T)0;''',
                'bst_fwd')(x)
            return y,
        self.pass_through = (numpy.abs(x) <= 1).astype(x.dtype)
        return binarize(x),

    def backward(self, indexes, grad_outputs):
        gy, = grad_outputs
        return gy * self.pass_through,


def bst(x):
    """Binary activation: sign(x) forward, hard tanh's gradient backward.

    Args:
        x (~chainer.Variable or array): Input of any shape, float dtype.

    Returns:
        ~chainer.Variable: +1 where x >= 0, else -1, in x's dtype.
    """
    y, = BinaryStraightThrough().apply((x,))
    return y


class StochasticBinaryStraightThrough(BinaryStraightThrough):

    """Forward q = +1 with probability p = clip((x + 1) / 2, 0, 1), else -1
    (Sec. 1.1's stochastic binarization, the hard sigmoid); backward as
    BinaryStraightThrough's, g_x = g_q 1_{|x| <= 1}.

    The draws come from the device's global generator, as dropout's masks:
    train_mnist.py seeds it from (seed, epoch, step) before each step.
    """

    def forward(self, inputs):
        x, = inputs
        xp = chainer.backend.get_array_module(x)
        self.pass_through = (abs(x) <= 1).astype(x.dtype)
        # p in x's dtype, u in float64: u < p holds with probability p.
        p = xp.clip((x + 1) / 2, 0, 1)
        u = xp.random.random_sample(x.shape)
        q = (u < p).astype(x.dtype)
        q *= 2
        q -= 1
        return q,


def stochastic_bst(x):
    """Stochastic binary activation in training, bst(x) in evaluation.

    Args:
        x (~chainer.Variable or array): Input of any shape, float dtype.

    Returns:
        ~chainer.Variable: +1 with probability clip((x + 1) / 2, 0, 1) in
        training, else -1; sign(x) in evaluation.
    """
    if not chainer.config.train:
        return bst(x)
    y, = StochasticBinaryStraightThrough().apply((x,))
    return y
