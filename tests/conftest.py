import gzip
import os
import sys

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import compat  # noqa: E402,F401  (must precede chainer)
from chainer.backends import cuda  # noqa: E402

import mnist  # noqa: E402

N_TRAIN, N_TEST = 10000, 1000


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'gpu: needs CuPy and a CUDA device; skipped without them')


def gpu_usable():
    if not cuda.available:
        return False
    try:
        return cuda.cupy.cuda.runtime.getDeviceCount() > 0
    except cuda.cupy.cuda.runtime.CUDARuntimeError:
        return False


def pytest_collection_modifyitems(config, items):
    if gpu_usable():
        return
    skip = pytest.mark.skip(reason='no CuPy with a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope='session')
def data_slice(tmp_path_factory):
    """The first images of the real MNIST, as a --dataset-dir."""
    folder = tmp_path_factory.mktemp('mnist_slice')
    for split, n in (('train', N_TRAIN), ('test', N_TEST)):
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
