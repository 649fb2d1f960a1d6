import gzip
import os
import signal
import sys
import types

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import compat  # noqa: E402,F401  (must precede chainer)

from chainer.backends import cuda  # noqa: E402

import mnist  # noqa: E402
from packed import reference  # noqa: E402
from utils import cli  # noqa: E402

N_TRAIN, N_TEST = 10000, 1000
# The small slice: for the tests of bookkeeping, where learning is not the
# point; 20 batches of 100 an epoch.
N_SMALL_TRAIN, N_SMALL_TEST = 2000, 500


def pytest_addoption(parser):
    parser.addoption('--require-gpu', action='store_true',
                     help='fail the gpu tests where they would be skipped: '
                     'a run on a GPU machine must test the GPU')


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'gpu: needs CuPy and a CUDA device; skipped without them')
    # The tests press Ctrl-C as a terminal would. A shell that starts a
    # background job without job control has it ignore SIGINT, and so its
    # processes (train_mnist.py rightly keeps a run going then): the tests
    # run, and start their subprocesses, with Python's own handler.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def import_torch():
    """torch, or the module's tests skipped: where it is not installed, and
    where it is but does not load (a missing shared library raises
    OSError, which pytest.importorskip lets through)."""
    try:
        import torch
    except (ImportError, OSError) as e:
        pytest.skip('torch does not import ({})'.format(e),
                    allow_module_level=True)
    return torch


def no_gpu_reason():
    """Why ``--gpu 0`` cannot run here, or None where it can."""
    try:
        cli.get_device(0)
    except cli.UsageError as e:
        return str(e)
    return None


def gpu_usable():
    return no_gpu_reason() is None


def pytest_runtest_setup(item):
    if 'gpu' not in item.keywords:
        return
    reason = no_gpu_reason()
    if reason is None:
        return
    if item.config.getoption('require_gpu'):
        pytest.fail('--require-gpu: ' + reason, pytrace=False)
    pytest.skip(reason)


def record_clock(monkeypatch, module, events):
    """Makes ``module``'s time.perf_counter add 'clock' to ``events``."""
    def clock():
        events.append('clock')
        return float(len(events))

    monkeypatch.setattr(module, 'time',
                        types.SimpleNamespace(perf_counter=clock))


# x = scale p + shift, by a recipe's input_affine(): the port's, the
# paper's.
UNSIGNED, SIGNED = (1 / 255., 0.), (2 / 255., -1.)


def float64_forward(mlp, pixels, input_affine=UNSIGNED):
    """A MnistMLP's inference in float64 from uint8 pixels, its input
    scale p + shift with ``input_affine`` = (scale, shift): each hidden
    layer's bits, and the logits. The oracle of the packed engine."""
    scale, shift = input_affine
    x = pixels * scale + shift
    bits = []
    for k, (linear, bn) in enumerate(mlp.layers(), 1):
        W_b = numpy.where(cuda.to_cpu(linear.W.array) >= 0, 1., -1.)
        a = x.dot(W_b.T) + cuda.to_cpu(linear.b.array)
        gamma, beta, mean, std = reference.bn_arrays(bn)
        y = gamma * (a - mean) / std + beta
        if k == len(mlp.layers()):
            return bits, y
        bits.append(y >= 0)
        x = numpy.where(y >= 0, 1., -1.)


def idx_images(images):
    """The bytes of an uncompressed IDX file of uint8 images."""
    images = numpy.asarray(images, numpy.uint8)
    header = numpy.array((0x803,) + images.shape, '>u4').tobytes()
    return header + images.tobytes()


def idx_labels(labels):
    """The bytes of an uncompressed IDX file of uint8 labels."""
    labels = numpy.asarray(labels, numpy.uint8)
    header = numpy.array((0x801, len(labels)), '>u4').tobytes()
    return header + labels.tobytes()


def write_slice(folder, n_train, n_test):
    """The first images of the real MNIST, as a --dataset-dir."""
    for split, n in (('train', n_train), ('test', n_test)):
        images_name, labels_name = mnist.SPLITS[split]
        with gzip.open(os.path.join(mnist.SHIPPED_DIR,
                                    images_name + '.gz')) as f:
            images = mnist.parse_images(f.read(), images_name)[:n]
        with gzip.open(os.path.join(mnist.SHIPPED_DIR,
                                    labels_name + '.gz')) as f:
            labels = mnist.parse_labels(f.read(), labels_name)[:n]
        (folder / images_name).write_bytes(idx_images(images))
        (folder / labels_name).write_bytes(idx_labels(labels))
    return str(folder)


@pytest.fixture(scope='session')
def data_slice(tmp_path_factory):
    """N_TRAIN and N_TEST images: enough to learn from."""
    return write_slice(tmp_path_factory.mktemp('mnist_slice'), N_TRAIN,
                       N_TEST)


@pytest.fixture(scope='session')
def small_slice(tmp_path_factory):
    """N_SMALL_TRAIN and N_SMALL_TEST images."""
    return write_slice(tmp_path_factory.mktemp('mnist_small'), N_SMALL_TRAIN,
                       N_SMALL_TEST)
