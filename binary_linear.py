"""BinaryNet's fully-connected layer with binarized weights (Courbariaux et
al., "Binarized Neural Networks", arXiv:1602.02830, Sec. 1.2): the function
and its link."""
import compat  # noqa: F401  (must precede chainer)

import chainer
from chainer import initializers
from chainer import link
from chainer.utils import type_check
import chainer.functions as F

from bst import binarize


class BinaryLinearFunction(chainer.function_node.FunctionNode):

    """y = x . W_b^T + b with W_b = sign(W): the binary product (Sec. 1.2).

    Backward: gx = gy . W_b; gW = gy^T . x, straight through sign(W) to the
    real-valued W; gb = the sum of gy over the batch.

    Args:
        W_b: sign(W) where the caller keeps it (fast.flat_adam refreshes it
            once per step), or None to binarize W here.
        grad_W: The array gW is written into, or None for a new one.
        product: x -> x . W_b^T where the caller has an exact one of its
            own on packed bits (fast.flat_adam's, for a ternary x in
            training; fast.device_data's, for an x of +-1 in evaluation), or
            None for BLAS's.
    """

    def __init__(self, W_b=None, grad_W=None, product=None):
        self.W_b = W_b
        self.grad_W = grad_W
        self.product = product

    def check_type_forward(self, in_types):
        n_in = in_types.size()
        type_check.expect(2 <= n_in, n_in <= 3)
        x_type, w_type = in_types[:2]
        type_check._argname((x_type, w_type), ('x', 'W'))
        type_check.expect(
            x_type.dtype.kind == 'f',
            w_type.dtype == x_type.dtype,
            x_type.ndim == 2,
            w_type.ndim == 2,
            x_type.shape[1] == w_type.shape[1],
        )
        if type_check.eval(n_in) == 3:
            b_type = in_types[2]
            type_check._argname((b_type,), ('b',))
            type_check.expect(
                b_type.dtype == x_type.dtype,
                b_type.ndim == 1,
                b_type.shape[0] == w_type.shape[0],
            )

    def forward(self, inputs):
        x, W = inputs[:2]
        # Backward needs sign(W) and x; keeping sign(W) spares computing it
        # again.
        if self.W_b is None:
            self.W_b = binarize(W)
        self.retain_inputs((0,))
        y = x.dot(self.W_b.T) if self.product is None else self.product(x)
        if len(inputs) == 3:
            y += inputs[2]
        return y,

    def backward(self, indexes, grad_outputs):
        gy, = grad_outputs
        x, = self.get_retained_inputs()
        grads = []
        if 0 in indexes:
            grads.append(F.matmul(gy, self.W_b))
        if 1 in indexes:
            if self.grad_W is None:
                grads.append(F.matmul(gy, x, transa=True))
            else:
                # F.matmul's product, into the flat array the update reads.
                xp = chainer.backend.get_array_module(x)
                grads.append(chainer.Variable(xp.matmul(
                    gy.array.T, x.array, out=self.grad_W)))
        if 2 in indexes:
            grads.append(F.sum(gy, axis=0))
        return grads


def binary_linear(x, W, b=None, W_b=None, grad_W=None, product=None):
    """Computes y = x . sign(W)^T + b, with sign(0) = +1.

    Args:
        x (~chainer.Variable or array): Input of shape ``(batch, in_size)``.
        W (~chainer.Variable or array): Real-valued weights,
            ``(out_size, in_size)``; only their signs enter the product.
        b (~chainer.Variable or array): Bias of shape ``(out_size,)``, or None.
        W_b (array): sign(W), if the caller keeps it current; else None.
        grad_W (array): Where to write W's gradient, or None.
        product: x -> x . W_b^T, exact, in place of BLAS's; or None.

    Returns:
        ~chainer.Variable: Output of shape ``(batch, out_size)``.
    """
    args = (x, W) if b is None else (x, W, b)
    y, = BinaryLinearFunction(W_b, grad_W, product).apply(args)
    return y


class BinaryLinear(link.Link):

    """A fully-connected layer whose weights are binarized in the forward pass.

    It holds the real-valued weights W that the optimizer updates (the paper
    accumulates gradients in them, Sec. 1.2) and a bias b.

    Args:
        in_size (int): Dimension of the input vectors.
        out_size (int): Dimension of the output vectors.
        nobias (bool): If True, the layer holds no bias.
        initialW: Initializer of W; by default N(0, 1/in_size), as the
            Chainer port.
        initial_bias: Initializer of b; zero by default.
    """

    def __init__(self, in_size, out_size, nobias=False, initialW=None,
                 initial_bias=None):
        super().__init__()
        self.in_size = in_size
        self.out_size = out_size
        with self.init_scope():
            if initialW is None:
                initialW = initializers.LeCunNormal()
            self.W = chainer.Parameter(initialW, (out_size, in_size))
            if nobias:
                self.b = None
            else:
                if initial_bias is None:
                    initial_bias = 0
                self.b = chainer.Parameter(initial_bias, out_size)
        # Set by fast.flat_adam.FlatAdam, which alone then updates W: W_b =
        # sign(W), refreshed at each step, grad_W, where gW is written, and,
        # for a ternary input, product, x . W_b^T on packed bits, which
        # fast.device_data replaces while it evaluates.
        self.W_b = self.grad_W = self.product = None

    def forward(self, x):
        return binary_linear(x, self.W, self.b, self.W_b, self.grad_W,
                             self.product)
