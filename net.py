"""The BinaryNet multi-layer perceptron for MNIST, as in the Chainer port."""
import compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.links as L

from binary_linear import BinaryLinear
from bst import bst


class MnistMLP(chainer.Chain):

    """h_k = bst(BN(BinaryLinear(h_k-1))), k = 1, 2; y = BN(BinaryLinear(h_2))

    Batch normalization follows every binary layer (paper, Algorithm 1). The
    input pixels (in [0, 1]) enter the first layer unbinarized, as in the
    paper's first layer (Sec. 1.6).
    """

    def __init__(self, n_in=784, n_units=1000, n_out=10):
        super().__init__()
        with self.init_scope():
            self.l1 = BinaryLinear(n_in, n_units)
            self.b1 = L.BatchNormalization(n_units)
            self.l2 = BinaryLinear(n_units, n_units)
            self.b2 = L.BatchNormalization(n_units)
            self.l3 = BinaryLinear(n_units, n_out)
            self.b3 = L.BatchNormalization(n_out)

    def forward(self, x):
        h1 = bst(self.b1(self.l1(x)))
        h2 = bst(self.b2(self.l2(h1)))
        return self.b3(self.l3(h2))

    def binary_links(self):
        """The layers whose weights are binarized, for the paper's clipping."""
        return [link for link in self.links()
                if isinstance(link, BinaryLinear)]
