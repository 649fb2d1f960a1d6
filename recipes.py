"""The two recipes for BinaryNet on MNIST, side by side.

``Port`` is the 2016 Chainer port (hillbig/binary_net, Chainer v1); ``Paper``
is the paper's MNIST experiment as the authors' Theano code runs it
(MatthieuCourbariaux/BinaryNet, Train-time/mnist.py). Each holds all that
``--preset`` chooses: the defaults of the flags, the model, the optimizer
and its clipping, the data, and the learning-rate schedule.
"""
import compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.links as L

import mnist
import net
from squared_hinge import squared_hinge
from weight_clip import WeightClip


class Port(object):

    """Softmax cross entropy on 784-1000-1000-10, Adam's defaults, 20 epochs.

    The port clipped every parameter (``optimizer.add_hook`` reaches
    BatchNormalization's gamma and beta too) and, as Chainer v1 ran
    optimizer hooks, before each update: its forward pass saw weights up to
    one Adam step outside [-1, 1].
    """

    name = 'port'
    epoch, unit, clip = 20, 1000, 'all'
    clip_timing = 'pre'
    signed_input = False
    # Chainer v1's BatchNormalization default; Chainer 7's is 2e-5.
    bn_eps = 1e-5

    @classmethod
    def model(cls, n_units):
        return L.Classifier(net.MnistMLP(784, n_units, 10, bn_eps=cls.bn_eps))

    @classmethod
    def optimizer(cls, model, clip):
        optimizer = chainer.optimizers.Adam()
        optimizer.setup(model)
        add_clipping(optimizer, model, clip, cls.clip_timing)
        return optimizer

    @staticmethod
    def data(dataset_dir):
        """(train, validation, test): the port has no validation split."""
        train, test = mnist.get_mnist(dataset_dir)
        return train, None, test

    # Adam's own alpha, 0.001, throughout.
    learning_rate = None


class Paper(object):

    """Squared hinge on 784-3x4096-10 with dropout, 1000 epochs of Adam
    from 3e-3 to 3e-7, binary steps scaled by Glorot's factor, the binary
    weights clipped after each update, and a validation split.
    """

    name = 'paper'
    epoch, unit, clip = 1000, 4096, 'binary'
    clip_timing = 'post'
    signed_input = True
    bn_eps = 1e-4
    first_rate, last_rate = 3e-3, 3e-7
    # The last 10,000 of the 60,000 training images.
    validation_fraction = 1 / 6

    @classmethod
    def model(cls, n_units):
        return L.Classifier(
            net.MnistMLP(784, n_units, 10, n_hidden=3, input_dropout=0.2,
                         hidden_dropout=0.5,
                         initialW=chainer.initializers.Uniform(1.),
                         bn_eps=cls.bn_eps),
            lossfun=squared_hinge)

    @classmethod
    def optimizer(cls, model, clip):
        optimizer = chainer.optimizers.Adam()
        optimizer.setup(model)
        add_clipping(optimizer, model, clip, cls.clip_timing)
        scale_binary_steps(model)
        return optimizer

    @classmethod
    def data(cls, dataset_dir):
        """(train, validation, test), the inputs scaled to 2x - 1."""
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
