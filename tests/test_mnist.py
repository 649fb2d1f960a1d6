import gzip
import os
import shutil

import numpy
import pytest

from chainer.dataset import download

from conftest import idx_images, idx_labels
import mnist
from mnist import MnistError

SHIPPED = mnist.SHIPPED_DIR
NAMES = sorted(mnist.SHA256)


@pytest.fixture(scope='module')
def shipped():
    return mnist.get_mnist()


def write_dataset(folder, n_train=6, n_test=4, compress=False, **replace):
    """Writes four small IDX files; ``replace`` maps a name to its bytes."""
    rng = numpy.random.RandomState(0)
    files = {
        'train-images-idx3-ubyte':
            idx_images(rng.randint(0, 256, (n_train, 28, 28))),
        'train-labels-idx1-ubyte': idx_labels(numpy.arange(n_train) % 10),
        't10k-images-idx3-ubyte':
            idx_images(rng.randint(0, 256, (n_test, 28, 28))),
        't10k-labels-idx1-ubyte': idx_labels(numpy.arange(n_test) % 10),
    }
    files.update(replace)
    for name, data in files.items():
        if compress:
            data = gzip.compress(data)
            name += '.gz'
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)
    return files


def test_shipped_matches_get_mnist_form(shipped):
    train, test = shipped
    assert (len(train), len(test)) == (60000, 10000)
    x, t = train[0]
    assert x.shape == (784,) and x.dtype == numpy.float32
    assert t.dtype == numpy.int32
    images = train._datasets[0]
    assert images.min() == 0 and images.max() == 1


def test_shipped_facts(shipped):
    train, test = shipped
    assert list(train._datasets[1][:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(test._datasets[1][:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    mean = train._datasets[0].astype(numpy.float64).mean()
    assert abs(mean * 255 - 33.3184) < 1e-4


def test_signed_pixels_are_2x_minus_1(tmp_path):
    write_dataset(str(tmp_path))
    train, test = mnist.get_mnist(str(tmp_path))
    signed_train, signed_test = mnist.get_mnist(str(tmp_path), signed=True)
    for plain, signed in ((train, signed_train), (test, signed_test)):
        x, t = plain._datasets
        x_signed, t_signed = signed._datasets
        numpy.testing.assert_allclose(x_signed, 2 * x - 1, atol=1e-7)
        assert x_signed.dtype == numpy.float32
        numpy.testing.assert_array_equal(t_signed, t)
    assert x_signed.min() == -1 and x_signed.max() == 1


@pytest.mark.parametrize('compress', [False, True])
def test_dataset_dir_gzip_or_not(tmp_path, compress):
    files = write_dataset(tmp_path, compress=compress)
    train, test = mnist.get_mnist(str(tmp_path))
    assert (len(train), len(test)) == (6, 4)
    pixels = numpy.frombuffer(files['train-images-idx3-ubyte'], numpy.uint8,
                              offset=16)
    numpy.testing.assert_array_equal(train._datasets[0].ravel() * 255,
                                     pixels)
    assert list(test._datasets[1]) == [0, 1, 2, 3]


def corrupt_copy_of_shipped(folder):
    for name in NAMES:
        shutil.copy(os.path.join(SHIPPED, name + '.gz'), folder)
    path = os.path.join(folder, 't10k-labels-idx1-ubyte.gz')
    with gzip.open(path) as f:
        data = bytearray(f.read())
    data[-1] = (data[-1] + 1) % 10  # a valid label, but not MNIST's
    with open(path, 'wb') as f:
        f.write(gzip.compress(bytes(data)))
    return path


def test_shipped_files_are_checked_against_checksums(tmp_path, monkeypatch):
    path = corrupt_copy_of_shipped(tmp_path)
    monkeypatch.setattr(mnist, 'SHIPPED_DIR', str(tmp_path))
    with pytest.raises(MnistError, match='corrupt') as e:
        mnist.get_mnist()
    assert path in str(e.value)


def test_dataset_dir_is_not_held_to_mnist_checksums(tmp_path):
    corrupt_copy_of_shipped(tmp_path)
    mnist.get_mnist(str(tmp_path))


@pytest.mark.parametrize('name,data,message', [
    ('t10k-labels-idx1-ubyte', idx_labels([1, 2, 10, 3]), 'label 10'),
    ('t10k-labels-idx1-ubyte', idx_labels([1, 2, 3]), '4 images but'),
    ('t10k-labels-idx1-ubyte', idx_images(numpy.zeros((4, 28, 28))),
     'an IDX file of 1 dimension of unsigned bytes .magic number 0x00000803'),
    ('t10k-images-idx3-ubyte', idx_images(numpy.zeros((4, 27, 28))),
     '27x28'),
    ('t10k-images-idx3-ubyte', idx_images(numpy.zeros((4, 28, 28)))[:-5],
     'truncated'),
    ('t10k-images-idx3-ubyte', idx_images(numpy.zeros((4, 28, 28))) + b'x',
     'header announces'),
    ('t10k-images-idx3-ubyte', b'\0\0\x08', 'too short'),
])
def test_malformed_files_are_refused(tmp_path, name, data, message):
    write_dataset(tmp_path, **{name: data})
    with pytest.raises(MnistError, match=message) as e:
        mnist.get_mnist(str(tmp_path))
    assert os.path.join(str(tmp_path), name) in str(e.value)


def test_truncated_gzip_is_refused(tmp_path):
    write_dataset(tmp_path, compress=True)
    path = os.path.join(tmp_path, 'train-images-idx3-ubyte.gz')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(MnistError, match='truncated') as e:
        mnist.get_mnist(str(tmp_path))
    assert path in str(e.value)


def test_corrupt_gzip_is_refused(tmp_path):
    write_dataset(tmp_path, compress=True)
    path = os.path.join(tmp_path, 'train-labels-idx1-ubyte.gz')
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    data[-8] ^= 0xff  # the CRC-32 of the contents
    with open(path, 'wb') as f:
        f.write(bytes(data))
    with pytest.raises(MnistError, match='unreadable') as e:
        mnist.get_mnist(str(tmp_path))
    assert path in str(e.value)


def test_missing_file_is_named(tmp_path):
    write_dataset(tmp_path)
    os.remove(os.path.join(tmp_path, 't10k-images-idx3-ubyte'))
    with pytest.raises(MnistError, match='no t10k-images-idx3-ubyte'):
        mnist.get_mnist(str(tmp_path))


@pytest.fixture
def no_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, 'SHIPPED_DIR', str(tmp_path / 'absent'))
    root = download.get_dataset_root()
    download.set_dataset_root(str(tmp_path / 'cache'))
    yield tmp_path / 'cache' / 'binarynet' / 'mnist'
    download.set_dataset_root(root)


def test_downloads_from_the_first_mirror_that_serves_good_files(
        tmp_path, monkeypatch, no_shipped_copy):
    bad = tmp_path / 'bad'
    bad.mkdir()
    corrupt_copy_of_shipped(bad)
    monkeypatch.setattr(mnist, 'MIRRORS', (
        (tmp_path / 'nothing').as_uri() + '/',
        bad.as_uri() + '/',
        'file://' + SHIPPED + '/',
    ))
    train, test = mnist.get_mnist()
    assert (len(train), len(test)) == (60000, 10000)
    assert sorted(os.listdir(no_shipped_copy)) == [n + '.gz' for n in NAMES]
    # Now cached: no mirror is needed.
    monkeypatch.setattr(mnist, 'MIRRORS', ())
    assert len(mnist.get_mnist()[1]) == 10000


def test_download_failure_names_every_mirror(tmp_path, monkeypatch,
                                             no_shipped_copy):
    mirrors = tuple((tmp_path / d).as_uri() + '/' for d in ('m1', 'm2'))
    monkeypatch.setattr(mnist, 'MIRRORS', mirrors)
    with pytest.raises(MnistError, match='could not download') as e:
        mnist.get_mnist()
    assert all(m in str(e.value) for m in mirrors)
    assert not os.listdir(no_shipped_copy)


def test_a_missing_folder_is_said_to_be_missing(tmp_path):
    with pytest.raises(mnist.MnistError) as error:
        mnist.get_mnist(str(tmp_path / 'missing'))
    assert str(error.value) == '{}: no such folder'.format(
        tmp_path / 'missing')
