"""The three recipes for BinaryNet (Courbariaux et al., arXiv:1602.02830) on
MNIST, side by side.

``Port`` is the 2016 Chainer port (hillbig/binary_net, Chainer v1); ``Paper``
is the paper's MNIST experiment as the authors' Theano code runs it
(MatthieuCourbariaux/BinaryNet, Train-time/mnist.py), Table 1's BNN (Theano)
row; ``Torch7`` is the same experiment as the authors' Torch7 code runs it
(itayhubara/BinaryNet, Main_BinaryNet_MNIST.lua), Table 1's BNN (Torch7)
row. Each holds all that ``--preset`` chooses: the defaults of the flags,
the model, the optimizer and its clipping, the data, and the learning-rate
schedule.
"""
import functools

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from batch_normalization import BatchNormalization
from batch_normalization import LasagneBatchNormalization
import mnist
import net
from shift_adamax import ShiftAdaMax
from shift_batch_normalization import ShiftBatchNormalization
from squared_hinge import squared_hinge
from utils.cli import plural
from weight_clip import WeightClip

# The flags that choose the paper's parts on any preset, and their words in
# describe().
BN = {'exact': None, 'shift': 'shift-based BatchNormalization'}
OPTIMIZERS = {'adam': 'Adam', 'shift-adamax': 'shift-based AdaMax'}
BINARIZE = {'deterministic': None, 'stochastic': 'stochastic activations'}


class Recipe(object):

    """What ``--preset`` chooses; each recipe sets its values.

    ``epoch``, ``unit``, ``clip``, ``bn``, ``optimizer_name`` and
    ``binarize`` are the defaults of those flags (``defaults()``);
    ``clip_timing`` is 'pre' or 'post' the update; ``signed_input``: the
    pixels enter as 2x - 1 instead of x; ``rate_decays``: the learning rate
    follows a schedule over ``epoch`` epochs.
    """

    name = None
    epoch = unit = clip = clip_timing = None
    bn, optimizer_name, binarize = 'exact', 'adam', 'deterministic'
    # The learning rate, or the first of its schedule.
    rate = None
    initial_bias = None
    signed_input = rate_decays = False
    n_hidden, input_dropout, hidden_dropout = 2, 0., 0.
    # The share of the training file held out to validate.
    validation_fraction = 0.
    initialW = None
    bn_eps = batch_normalization = lossfun = None
    # Steps of the binary weights scaled by Glorot's factor.
    glorot_steps = False
    # The rate over the run, in words, after the optimizer's name.
    schedule = None

    @classmethod
    def defaults(cls):
        """The flags this recipe chooses, by name, with their values."""
        return {'epoch': cls.epoch, 'unit': cls.unit, 'clip': cls.clip,
                'bn': cls.bn, 'optimizer': cls.optimizer_name,
                'binarize': cls.binarize}

    @classmethod
    def model(cls, n_units, bn=None, binarize=None):
        """The net; ``bn`` 'shift' puts shift-based BatchNormalization after
        the hidden layers (the output layer's stays exact, as in the
        authors' Torch7 code); ``binarize`` 'stochastic' makes the hidden
        activations stochastic in training. None: the recipe's own."""
        bn, binarize = bn or cls.bn, binarize or cls.binarize
        hidden = (ShiftBatchNormalization if bn == 'shift'
                  else cls.batch_normalization)
        return L.Classifier(
            net.MnistMLP(784, n_units, 10, n_hidden=cls.n_hidden,
                         input_dropout=cls.input_dropout,
                         hidden_dropout=cls.hidden_dropout,
                         initialW=cls.initialW, bn_eps=cls.bn_eps,
                         batch_normalization=hidden,
                         output_batch_normalization=(
                             cls.output_batch_normalization),
                         initial_bias=cls.initial_bias,
                         stochastic=binarize == 'stochastic'),
            lossfun=cls.lossfun)

    @classmethod
    def output_batch_normalization(cls, size):
        return cls.batch_normalization(size, eps=cls.bn_eps)

    @classmethod
    def optimizer(cls, model, clip, name=None):
        """Adam, or with ``name`` 'shift-adamax' shift-based AdaMax, at the
        recipe's rate, with its clipping and step multipliers."""
        if (name or cls.optimizer_name) == 'shift-adamax':
            optimizer = ShiftAdaMax(alpha=cls.rate)
        else:
            optimizer = chainer.optimizers.Adam(alpha=cls.rate)
        optimizer.setup(model)
        add_clipping(optimizer, model, clip, cls.clip_timing)
        cls.scale_steps(model)
        return optimizer

    @classmethod
    def scale_steps(cls, model):
        """Each parameter's step multiplier (its rule's ``eta``)."""
        if cls.glorot_steps:
            scale_binary_steps(model)

    @classmethod
    def data(cls, dataset_dir):
        """(train, validation, test); validation is None where the recipe
        keeps no validation split."""
        raise NotImplementedError

    @classmethod
    def learning_rate(cls, epoch, n_epochs):
        """The rate for ``epoch`` of ``n_epochs``, or None to keep the
        optimizer's own."""
        return None

    @classmethod
    def input_affine(cls, dataset_dir=None):
        """(scale, shift) with the net's input x = scale p + shift for the
        pixels p, which the packed engine folds into its first layer."""
        return (2 / 255., -1.) if cls.signed_input else (1 / 255., 0.)

    @classmethod
    def describe(cls, n_units, n_epochs, bn=None, optimizer=None,
                 binarize=None):
        """The preset, its net, its parts and its schedule, in a few
        words."""
        widths = [784] + [n_units] * cls.n_hidden + [10]
        parts = [BN[bn or cls.bn], BINARIZE[binarize or cls.binarize]]
        return '--preset {}: {}{}, {}, {}{} {} over {}'.format(
            cls.name, '-'.join(map(str, widths)),
            ' with dropout' if cls.hidden_dropout else '',
            cls.lossfun.__name__.replace('_', ' '),
            ''.join(part + ', ' for part in parts if part),
            OPTIMIZERS[optimizer or cls.optimizer_name], cls.schedule,
            plural(n_epochs, 'epoch'))


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
    rate = 0.001
    schedule = 'at 0.001'
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
    rate, last_rate = 3e-3, 3e-7
    schedule = 'from 3e-3 down to 3e-7'
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
        ratio = cls.last_rate / cls.rate
        return cls.rate * ratio ** ((epoch - 1) / n_epochs)


def _fan_in_uniform(fan_in):
    """Torch's nn.Linear bias: uniform in +-1 / sqrt(fan_in)."""
    return chainer.initializers.Uniform(fan_in ** -0.5)


class _UnitUniform(chainer.initializer.Initializer):

    """Uniform in [0, 1), from NumPy's global generator: Torch's
    nn.BatchNormalization gamma."""

    def __call__(self, array):
        array[...] = numpy.random.uniform(0, 1, array.shape)


class Torch7(Recipe):

    """Squared hinge on 784-3x2048-10, shift-based BatchNormalization after
    the hidden layers, stochastic activations, shift-based AdaMax at 2^-6
    halved every 20 epochs, each step scaled by Glorot's factor (GLR), the
    binary weights clipped after each update, and a validation split.

    As the authors' code: the pixels x / 255 normalised by one mean and one
    standard deviation (n - 1) of the training images; W uniform in [-1, 1],
    b uniform in +-1/sqrt(fan_in); the output layer's BatchNormalization
    Torch's (Chainer's arithmetic: eps 1e-5, momentum 0.1, the unbiased
    running variance), its gamma uniform in [0, 1). Not copied: dp's split
    shares one image between training and validation, and rescales and
    relabels it twice; here the sets are the first 50,000 and the last
    10,000 training images, as the paper preset's. The code runs until
    stopped and picks no best epoch; here the run keeps the model of lowest
    validation error too.
    """

    name = 'torch7'
    epoch, unit, clip = 100, 2048, 'binary'
    clip_timing = 'post'
    bn, optimizer_name, binarize = 'shift', 'shift-adamax', 'stochastic'
    n_hidden = 3
    initialW = chainer.initializers.Uniform(1.)
    initial_bias = staticmethod(_fan_in_uniform)
    bn_eps = 1e-5
    batch_normalization = functools.partial(BatchNormalization,
                                            initial_gamma=_UnitUniform())
    lossfun = staticmethod(squared_hinge)
    rate, halving = 2. ** -6, 20
    schedule = 'at 2^-6, halved every 20 epochs'
    validation_fraction = 1 / 6

    @classmethod
    def output_batch_normalization(cls, size):
        return BatchNormalization(size, eps=cls.bn_eps,
                                  initial_gamma=_UnitUniform())

    @classmethod
    def scale_steps(cls, model):
        """GLR: a binary layer's W and b Glorot's factor, each
        BatchNormalization's gamma 1 / sqrt(1.5 / units), beta 1."""
        for linear, bn in model.predictor.layers():
            for param in (linear.W, linear.b):
                param.update_rule.hyperparam.eta = glorot_factor(linear)
            bn.gamma.update_rule.hyperparam.eta = (
                1.5 / bn.gamma.size) ** -0.5

    @classmethod
    def data(cls, dataset_dir):
        """(x / 255 - mean) / std, the mean and std of the 50,000 training
        images' pixels; the last 10,000 held out to validate."""
        (p, t), (p_test, t_test) = cls._pixels(dataset_dir)
        n_train = len(p) - round(len(p) * cls.validation_fraction)
        scale, shift = cls._affine(p[:n_train])
        x, x_test = ((p * scale + shift).astype(numpy.float32)
                     for p in (p, p_test))
        return (chainer.datasets.TupleDataset(x[:n_train], t[:n_train]),
                chainer.datasets.TupleDataset(x[n_train:], t[n_train:]),
                chainer.datasets.TupleDataset(x_test, t_test))

    @classmethod
    def input_affine(cls, dataset_dir=None):
        (p, _), _ = cls._pixels(dataset_dir)
        return cls._affine(p[:len(p) - round(len(p) *
                                             cls.validation_fraction)])

    @staticmethod
    def _pixels(dataset_dir):
        """(pixels, labels) of the training and the test set, the pixels
        exactly, in float64, from get_mnist's p / 255 in float32."""
        return [(numpy.rint(x.astype(numpy.float64) * 255), t) for x, t in (
            dataset._datasets for dataset in mnist.get_mnist(dataset_dir))]

    @staticmethod
    def _affine(pixels):
        """(scale, shift) with (p / 255 - mean) / std = scale p + shift, the
        mean and std (n - 1) of all the training ``pixels``."""
        x = pixels / 255.
        mean, std = x.mean(), x.std(ddof=1)
        return 1 / (255. * std), -mean / std

    @classmethod
    def learning_rate(cls, epoch, n_epochs):
        """2^-6, halved after every 20th epoch, whatever the run's length."""
        return cls.rate * 0.5 ** ((epoch - 1) // cls.halving)


PRESETS = {recipe.name: recipe for recipe in (Port, Paper, Torch7)}


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
