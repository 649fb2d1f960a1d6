"""The multi-layer perceptron of BinaryNet's MNIST experiment (Courbariaux et
al., "Binarized Neural Networks", arXiv:1602.02830, Sec. 2.1)."""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from binary_linear import BinaryLinear
from bst import bst
from bst import stochastic_bst


class MnistMLP(chainer.Chain):

    """h_k = bst(BN(BinaryLinear(h_k-1))), k = 1..n; y = BN(BinaryLinear(h_n))

    Batch normalization follows every binary layer (paper, Algorithm 1). The
    input pixels enter the first layer unbinarized, as in the paper's first
    layer (Sec. 1.6). recipes.py builds the port's net (2 hidden layers, no
    dropout, eps 1e-5) and the paper's (3 hidden layers of 4096 units,
    dropout 0.2 on the input and 0.5 after each hidden activation, W uniform
    in [-1, 1], eps 1e-4, Lasagne's population statistics) from it.

    Args:
        n_in, n_units, n_out (int): Input, hidden and output widths.
        n_hidden (int): Number of hidden layers.
        input_dropout, hidden_dropout (float): Dropout ratios, applied in
            training only.
        initialW: Initializer of the binary layers' W (None: LeCunNormal).
        bn_eps (float): BatchNormalization's epsilon.
        batch_normalization: The link class of each BatchNormalization,
            called as ``batch_normalization(size, eps=bn_eps)``.
        output_batch_normalization: ``size -> link`` for the output layer's
            BatchNormalization, or None for ``batch_normalization``'s.
        initial_bias: ``fan_in -> initializer`` of the binary layers' b, or
            None for zeros.
        stochastic (bool): The hidden activations are stochastic in training
            (bst.stochastic_bst), as the authors' Torch7 recipe.

    The layers are named l1, b1, ..., l{n_hidden+1}, b{n_hidden+1}.
    """

    def __init__(self, n_in=784, n_units=1000, n_out=10, n_hidden=2,
                 input_dropout=0., hidden_dropout=0., initialW=None,
                 bn_eps=2e-5, batch_normalization=L.BatchNormalization,
                 output_batch_normalization=None, initial_bias=None,
                 stochastic=False):
        super().__init__()
        self.n_hidden = n_hidden
        self.input_dropout = input_dropout
        self.hidden_dropout = hidden_dropout
        self.activation = stochastic_bst if stochastic else bst
        sizes = [n_in] + [n_units] * n_hidden + [n_out]
        with self.init_scope():
            for k in range(1, n_hidden + 2):
                setattr(self, 'l{}'.format(k), BinaryLinear(
                    sizes[k - 1], sizes[k], initialW=initialW,
                    initial_bias=initial_bias and initial_bias(sizes[k - 1])))
                if k <= n_hidden or output_batch_normalization is None:
                    bn = batch_normalization(sizes[k], eps=bn_eps)
                else:
                    bn = output_batch_normalization(sizes[k])
                setattr(self, 'b{}'.format(k), bn)

    def layers(self):
        """The (BinaryLinear, BatchNormalization) pairs, input to output."""
        return [(self['l{}'.format(k)], self['b{}'.format(k)])
                for k in range(1, self.n_hidden + 2)]

    def forward(self, x):
        h = x
        if self.input_dropout:
            h = F.dropout(h, self.input_dropout)
        *hidden, (linear, bn) = self.layers()
        for hidden_linear, hidden_bn in hidden:
            h = self.activation(hidden_bn(hidden_linear(h)))
            if self.hidden_dropout:
                h = F.dropout(h, self.hidden_dropout)
        return bn(linear(h))

    def draws(self):
        """Whether training draws random numbers (dropout, stochastic
        activations): train_mnist.py seeds them at each step, the cost of a
        step of a small net where nothing is drawn."""
        return bool(self.input_dropout or self.hidden_dropout or
                    self.activation is stochastic_bst)

    def ternary_input_links(self):
        """The layers whose input is in {-c, 0, +c} with c a power of two:
        sign() of the layer before, not dropped out, or dropped out at a
        ratio whose scale 1 / (1 - ratio) is a power of two (the paper's
        0.5). The fast path runs their forward products on packed bits."""
        scale = numpy.float32(1 / (1 - self.hidden_dropout))
        if numpy.frexp(scale)[0] != 0.5:
            return []
        return [linear for linear, _ in self.layers()[1:]]

    def signed_input_links(self):
        """The layers whose input is sign() of the layer before, in {-1, +1}:
        those after the first where no dropout acts on them."""
        return [] if self.hidden_dropout else self.ternary_input_links()

    def binary_links(self):
        """The layers whose weights are binarized, for the paper's clipping."""
        return [linear for linear, _ in self.layers()]
