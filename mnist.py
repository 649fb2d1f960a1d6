"""MNIST from IDX files, offline and verified, as Chainer's ``get_mnist()``.

Where the files come from, in order:
1. ``dataset_dir``, any folder holding the four standard IDX files (gzip or
   not): checked for structure, so another MNIST-format dataset works too;
2. the copy shipped in this repository (``data/mnist``);
3. Chainer's dataset cache, downloading what is missing there from the first
   mirror that answers.
Files of 2. and 3. must also match the canonical MNIST checksums.
"""
import gzip
import hashlib
import os
import urllib.request
import zlib

import compat  # noqa: F401  (must precede chainer)

import numpy

from chainer.dataset import download
from chainer.datasets import tuple_dataset

from utils import atomic_file
from utils import cli

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'data', 'mnist')

MIRRORS = (
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
)

# SHA-256 of the uncompressed files: the same whoever compressed them.
SHA256 = {
    'train-images-idx3-ubyte':
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte':
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte':
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte':
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}

SPLITS = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


class MnistError(ValueError):
    """A dataset file that is missing, unreadable or not what it claims."""


def get_mnist(dataset_dir=None, signed=False):
    """Returns ``(train, test)``: TupleDatasets of (x, t) pairs.

    x is float32 of shape (784,) with values p / 255 in [0, 1] for pixels p,
    or with ``signed`` 2p / 255 - 1 in [-1, 1]; t is an int32 label.

    Args:
        dataset_dir (str): A folder with the four IDX files, or None for the
            shipped (else cached, else downloaded) canonical MNIST.
        signed (bool): Scale the pixels to [-1, 1], as the paper does.

    Raises:
        MnistError: a file is missing, corrupt, truncated or malformed.
    """
    if dataset_dir is not None:
        if not os.path.isdir(dataset_dir):
            raise MnistError('{}: no such folder'.format(dataset_dir))
        read = _folder_reader(dataset_dir, verify=False)
    elif all(_find(SHIPPED_DIR, name) for name in SHA256):
        read = _folder_reader(SHIPPED_DIR, verify=True)
    else:
        read = _cache_reader()
    return tuple(_split(read, *SPLITS[split], signed=signed)
                 for split in ('train', 'test'))


def _split(read, images_name, labels_name, signed):
    images_path, images = read(images_name)
    labels_path, labels = read(labels_name)
    images = parse_images(images, images_path)
    labels = parse_labels(labels, labels_path)
    if len(images) != len(labels):
        raise MnistError('{} holds {} images but {} holds {} labels'.format(
            images_path, len(images), labels_path, len(labels)))
    x = images.reshape(len(images), -1).astype(numpy.float32) / 255
    if signed:
        x = 2 * x - 1
    return tuple_dataset.TupleDataset(x, labels.astype(numpy.int32))


def _find(folder, name):
    """The path of ``name`` in ``folder``, gzipped or not; None if absent."""
    for path in (os.path.join(folder, name + '.gz'),
                 os.path.join(folder, name)):
        if os.path.isfile(path):
            return path
    return None


def _folder_reader(folder, verify):
    def read(name):
        path = _find(folder, name)
        if path is None:
            raise MnistError('{} has no {} (nor {}.gz)'.format(
                folder, name, name))
        data = _read(path)
        if verify:
            _check_sha256(data, name, path)
        return path, data
    return read


def _cache_reader():
    cache = download.get_dataset_directory('binarynet/mnist')

    def read(name):
        path = os.path.join(cache, name + '.gz')
        if not os.path.isfile(path):
            _download(name, path)
        data = _read(path)
        _check_sha256(data, name, path)
        return path, data
    return read


def _download(name, path):
    failures = []
    for mirror in MIRRORS:
        url = mirror + name + '.gz'
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = response.read()
            _check_sha256(gzip.decompress(body), name, url)
        except (OSError, EOFError, zlib.error, MnistError) as e:
            failures.append('{} ({})'.format(url, e))
            continue
        with atomic_file.open_for_write(path) as f:
            f.write(body)
        return
    raise MnistError('could not download {}: {}'.format(
        name, '; '.join(failures)))


def _read(path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
        if data[:2] == b'\x1f\x8b':
            data = gzip.decompress(data)
    except EOFError:
        raise MnistError('{} is truncated (its gzip stream ends early)'.format(
            path))
    except (OSError, zlib.error) as e:
        raise MnistError('{} is unreadable: {}'.format(path, e))
    return data


def _check_sha256(data, name, where):
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise MnistError('{} is corrupt: its contents differ from the '
                         'canonical {}'.format(where, name))


def _header(data, name, magic, n_dims):
    size = 4 * (1 + n_dims)
    if len(data) < size:
        raise MnistError('{} is too short for an IDX header'.format(name))
    fields = numpy.frombuffer(data, '>u4', count=1 + n_dims)
    if fields[0] != magic:
        raise MnistError('{} is not an IDX file of {} of unsigned bytes '
                         '(magic number 0x{:08x}, expected 0x{:08x})'.format(
                             name, cli.plural(n_dims, 'dimension'),
                             fields[0], magic))
    shape = tuple(int(n) for n in fields[1:])
    expected = size + int(numpy.prod(shape))
    if len(data) != expected:
        raise MnistError('{} holds {} bytes where its header announces {}{}'
                         .format(name, len(data), expected,
                                 ' (truncated)' if len(data) < expected
                                 else ''))
    return shape, numpy.frombuffer(data, numpy.uint8, offset=size)


def parse_images(data, name):
    """Returns the uint8 images, (n, 28, 28), of an uncompressed IDX file."""
    shape, pixels = _header(data, name, IMAGES_MAGIC, 3)
    if shape[1:] != (28, 28):
        raise MnistError('{} holds images of {}x{} pixels, not 28x28'.format(
            name, shape[1], shape[2]))
    return pixels.reshape(shape)


def parse_labels(data, name):
    """Returns the uint8 labels, (n,), of an uncompressed IDX file."""
    _, labels = _header(data, name, LABELS_MAGIC, 1)
    if labels.size and labels.max() > 9:
        raise MnistError('{} holds label {}, outside 0-9'.format(
            name, labels.max()))
    return labels
