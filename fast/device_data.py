"""A dataset held whole on the device, read in slices instead of examples:
the fast path's data, for training BinaryNet (arXiv:1602.02830) on MNIST.

Chainer's SerialIterator builds each batch from ``batchsize`` Python tuples
and ``concat_examples`` copies it to the device; here the images and labels
are two arrays put on the device once, and a training batch is one gather
through the epoch's permutation. The evaluation runs the hidden layers'
products on packed bits, as BinaryNet's run time does (Sec. 3).
"""
import contextlib
import functools

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer.dataset import convert

from bst import binarize
from packed import mlp as packed_mlp
from packed import reference
from utils.training_log import Means


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
    """Mean loss and accuracy over the batches of ``batchsize``, as --plain
    computes them, BatchNormalization using its population statistics, or
    with ``batch_statistics``, as the port evaluated, each batch's own, which
    also moves the running averages as training does.

    Batch by batch, as --plain: BLAS sums the first layer's products in an
    order that depends on the number of rows, and chunks of 1,000 images
    moved a test loss of a 20-epoch port run in its 7th digit. The hidden
    layers' products run on packed bits (packed_products), which are exact.
    """
    means = Means()
    with chainer.using_config('train', batch_statistics), \
            chainer.using_config('type_check', False), \
            chainer.no_backprop_mode(), \
            packed_products(model.predictor, batch_statistics):
        for x, t in data.batches(batchsize):
            y = model.predictor(x).array
            means.add(model.lossfun(y, t), model.accfun(y, t), len(t))
    return means.result()


@contextlib.contextmanager
def packed_products(net, train):
    """Within it, each binary layer of ``net`` (an MnistMLP) whose input is
    sign() of the layer before runs its forward product x . W_b^T on packed
    bits (packed.cpu.sign_product): exact integers, so BLAS's float32
    product bit for bit (1.6 ms against BLAS's 22 ms, 100x4096x4096, RESULTS).

    On the CPU where Numba runs, and not where ``train`` has dropout act on
    the hidden layers (their inputs then are not +-1); elsewhere the layers
    keep their own product (FlatAdam's, or BLAS's). Each gets it back after.
    """
    engine = packed_mlp.compiled() if net.xp is numpy else None
    links = [linear for linear, _ in net.layers()[1:]]
    if engine is None or (train and net.hidden_dropout):
        links = []
    kept = [link.product for link in links]
    for link in links:
        W_b = binarize(link.W.array) if link.W_b is None else link.W_b
        link.product = functools.partial(
            engine.sign_product, n=len(W_b),
            wt=engine.transpose(reference.pack_signs(W_b >= 0)))
    try:
        yield
    finally:
        for link, product in zip(links, kept):
            link.product = product
