"""The squared hinge loss of BinaryNet's MNIST experiment (Courbariaux et al.,
"Binarized Neural Networks", arXiv:1602.02830, Sec. 2.1)."""
import compat  # noqa: F401  (must precede chainer)

import chainer.functions as F


def squared_hinge(y, t):
    """L = mean over batch and classes of max(0, 1 - t'_k y_k)^2

    with t'_k = +1 for the true class and -1 for the others: the authors'
    Theano code, which takes the mean over classes as well as over the batch.

    Args:
        y (~chainer.Variable or array): Scores, ``(batch, n_classes)``.
        t (~chainer.Variable or array): Labels, int32 ``(batch,)``.
    """
    # Chainer's hinge sums over the classes; the paper averages over them.
    return F.hinge(y, t, norm='L2') / y.shape[1]
