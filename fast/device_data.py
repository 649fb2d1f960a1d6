"""A dataset held whole on the device, read in slices instead of examples:
the fast path's data, for training BinaryNet (arXiv:1602.02830) on MNIST.

Chainer's SerialIterator builds each batch from ``batchsize`` Python tuples
and ``concat_examples`` copies it to the device; here the images and labels
are two arrays put on the device once, a training batch is one gather
through the epoch's permutation, and evaluation runs the net on wide chunks.
"""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer.dataset import convert

from utils.training_log import Means

# Images the net takes at once when evaluating. On the CPU 1,000 ran
# fastest of 100 to 10,000 (the port's and the paper's nets alike: the
# activations stay in cache); on a GPU it leaves 10 launches per layer for
# the test set instead of 100.
CHUNK = 1000


class DeviceDataset(object):

    """(x, t): all the images and labels of ``dataset`` on ``device``."""

    def __init__(self, dataset, device):
        self.x, self.t = convert.concat_examples(dataset[:], device)
        self.device = device

    def __len__(self):
        return len(self.t)

    def batches(self, batchsize, order=None):
        """(x[i], t[i]) for i in consecutive slices of ``order``.

        ``order`` (NumPy indices, a permutation or the end of one; None for
        0..n-1) is sliced as SerialIterator slices it without repeat: the
        last batch is short.
        """
        n = len(self)
        if order is not None:
            n = len(order)
            order = self.device.send(order)
        for start in range(0, n, batchsize):
            if order is None:
                index = slice(start, start + batchsize)
            else:
                index = order[start:start + batchsize]
            yield self.x[index], self.t[index]


def epoch_order(n, seed, epoch):
    """The permutation ShuffleOrderSampler draws first from a
    RandomState([seed, epoch]): --plain's order of the epoch."""
    return numpy.random.RandomState([seed, epoch]).permutation(n)


def evaluate(model, data, batchsize, batch_statistics=False):
    """Mean loss and accuracy over the batches of ``batchsize``, the
    predictor run on ``CHUNK`` images at a time (a multiple of
    ``batchsize``), or on each batch with ``batch_statistics``.

    In inference mode BatchNormalization normalises each image alone, so the
    outputs do not depend on the chunk; the loss and accuracy are still
    taken over each batch of ``batchsize``, so that the means sum as the
    batch-by-batch evaluation sums them. With ``batch_statistics``, as the
    port evaluated, each batch is normalised by its own statistics, which
    also moves the running averages as training does.
    """
    means = Means()
    chunk = (batchsize if batch_statistics else
             max(batchsize, CHUNK // batchsize * batchsize))
    with chainer.using_config('train', batch_statistics), \
            chainer.using_config('type_check', False), \
            chainer.no_backprop_mode():
        for x, t in data.batches(chunk):
            y = model.predictor(x).array
            for start in range(0, len(t), batchsize):
                part = slice(start, start + batchsize)
                means.add(model.lossfun(y[part], t[part]),
                          model.accfun(y[part], t[part]), len(t[part]))
    return means.result()
