"""The two recipes for BinaryNet (Courbariaux et al., arXiv:1602.02830) on
MNIST, side by side.

``Port`` is the 2016 Chainer port (hillbig/binary_net, Chainer v1); ``Paper``
is the paper's MNIST experiment as the authors' Theano code runs it
(MatthieuCourbariaux/BinaryNet, Train-time/mnist.py). Each holds all that
``--preset`` chooses: the defaults of the flags, the model, the optimizer
and its clipping, the data, and the learning-rate schedule.
"""
import compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.functions as F
import chainer.links as L

from batch_normalization import BatchNormalization
from batch_normalization import LasagneBatchNormalization
import mnist
import net
from squared_hinge import squared_hinge
from weight_clip import WeightClip


class Recipe(object):

    """What ``--preset`` chooses; Port and Paper each set their values.

    ``epoch``, ``unit`` and ``clip`` are the defaults of those flags;
    ``clip_timing`` is 'pre' or 'post' the update; ``signed_input``: the
    pixels enter as 2x - 1 instead of x; ``rate_decays``: the learning rate
    follows a schedule over ``epoch`` epochs.
    """

    name = None
    epoch = unit = clip = clip_timing = None
    signed_input = rate_decays = False
    n_hidden, input_dropout, hidden_dropout = 2, 0., 0.
    # The share of the training file held out to validate.
    validation_fraction = 0.
    initialW = None
    bn_eps = batch_normalization = lossfun = None
    # Steps of the binary weights scaled by Glorot's factor.
    glorot_steps = False
    # Adam's rate over the run, in words.
    schedule = None

    @classmethod
    def model(cls, n_units):
        return L.Classifier(
            net.MnistMLP(784, n_units, 10, n_hidden=cls.n_hidden,
                         input_dropout=cls.input_dropout,
                         hidden_dropout=cls.hidden_dropout,
                         initialW=cls.initialW, bn_eps=cls.bn_eps,
                         batch_normalization=cls.batch_normalization),
            lossfun=cls.lossfun)

    @classmethod
    def optimizer(cls, model, clip):
        optimizer = chainer.optimizers.Adam()
        optimizer.setup(model)
        add_clipping(optimizer, model, clip, cls.clip_timing)
        if cls.glorot_steps:
            scale_binary_steps(model)
        return optimizer

    @classmethod
    def data(cls, dataset_dir):
        """(train, validation, test); validation is None where the recipe
        keeps no validation split."""
        raise NotImplementedError

    @classmethod
    def learning_rate(cls, epoch, n_epochs):
        """Adam's alpha for ``epoch`` of ``n_epochs``, or None to keep
        Adam's own."""
        return None

    @classmethod
    def describe(cls, n_units, n_epochs):
        """The preset, its net and its schedule, in a few words."""
        widths = [784] + [n_units] * cls.n_hidden + [10]
        return '--preset {}: {}{}, {}, {} over {} epochs'.format(
            cls.name, '-'.join(map(str, widths)),
            ' with dropout' if cls.hidden_dropout else '',
            cls.lossfun.__name__.replace('_', ' '), cls.schedule, n_epochs)


class Port(Recipe):

    """Softmax cross entropy on 784-1000-1000-10, Adam's defaults, 20 epochs.

    The port clipped every parameter (``optimizer.add_hook`` reaches
    BatchNormalization's gamma and beta too) and, as Chainer v1 ran
    optimizer hooks, before each update: its forward pass saw weights up to
    one Adam step outside [-1, 1]. Its rate is Adam's alpha, 0.001,
    throughout.
    """

    name = 'port'
    epoch, unit, clip = 20, 1000, 'all'
    clip_timing = 'pre'
    schedule = 'Adam at 0.001'
    # Chainer v1's BatchNormalization default; Chainer 7's is 2e-5. The
    # port never evaluated with population statistics (README), so
    # Chainer's own are kept.
    bn_eps = 1e-5
    batch_normalization = BatchNormalization
    lossfun = staticmethod(F.softmax_cross_entropy)

    @classmethod
    def data(cls, dataset_dir):
        """The port has no validation split: it evaluates on the test set."""
        train, test = mnist.get_mnist(dataset_dir)
        return train, None, test


class Paper(Recipe):

    """Squared hinge on 784-3x4096-10 with dropout, 1000 epochs of Adam
    from 3e-3 to 3e-7, binary steps scaled by Glorot's factor, the binary
    weights clipped after each update, and a validation split.
    """

    name = 'paper'
    epoch, unit, clip = 1000, 4096, 'binary'
    clip_timing = 'post'
    signed_input = rate_decays = True
    n_hidden, input_dropout, hidden_dropout = 3, 0.2, 0.5
    initialW = chainer.initializers.Uniform(1.)
    bn_eps = 1e-4
    batch_normalization = LasagneBatchNormalization
    lossfun = staticmethod(squared_hinge)
    glorot_steps = True
    first_rate, last_rate = 3e-3, 3e-7
    schedule = 'Adam from 3e-3 down to 3e-7'
    # The last 10,000 of the 60,000 training images.
    validation_fraction = 1 / 6

    @classmethod
    def data(cls, dataset_dir):
        """The inputs scaled to 2x - 1; the last sixth of the training set
        held out to validate."""
        train, test = mnist.get_mnist(dataset_dir, signed=True)
        n_train = len(train) - round(len(train) * cls.validation_fraction)
        train, validation = chainer.datasets.split_dataset(train, n_train)
        return train, validation, test

    @classmethod
    def learning_rate(cls, epoch, n_epochs):
        """first * (last / first)^((epoch - 1) / n_epochs), epoch 1..n.

        The authors multiply the rate by (last / first)^(1 / n_epochs)
        after each epoch, so the last epoch trains just above ``last``.
        """
        ratio = cls.last_rate / cls.first_rate
        return cls.first_rate * ratio ** ((epoch - 1) / n_epochs)


PRESETS = {recipe.name: recipe for recipe in (Port, Paper)}


def add_clipping(optimizer, model, which, timing):
    """Clips every parameter ('all') or the binary weights ('binary')."""
    if which == 'all':
        optimizer.add_hook(WeightClip(), timing=timing)
    else:
        for param in clipped_params(model, which):
            param.update_rule.add_hook(WeightClip(), timing=timing)


def clipped_params(model, which):
    """The parameters that ``add_clipping(..., which, ...)`` clips."""
    if which == 'all':
        return list(model.params())
    return [link.W for link in model.predictor.binary_links()]


def glorot_factor(link):
    """1 / sqrt(1.5 / (fan_in + fan_out)): the paper's W_LR_scale."""
    return (1.5 / (link.in_size + link.out_size)) ** -0.5


def scale_binary_steps(model):
    """W <- W - glorot_factor * (Adam's step), for each binary W only.

    Adam's ``eta`` multiplies the step of one parameter: the real-valued
    weights start in [-1, 1], and unscaled steps would take long to flip
    their signs.
    """
    for link in model.predictor.binary_links():
        link.W.update_rule.hyperparam.eta = glorot_factor(link)
