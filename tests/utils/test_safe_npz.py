import os
import zipfile

import numpy
import pytest

import chainer
import chainer.links as L

from net import MnistMLP
from utils import safe_npz
from utils.safe_npz import LoadError


def model(units=5, seed=0):
    numpy.random.seed(seed)
    return L.Classifier(MnistMLP(12, units, 3))


def trained_optimizer(target):
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(target)
    x = numpy.random.RandomState(0).uniform(size=(4, 12)).astype('f')
    optimizer.update(target, x, numpy.array([0, 1, 2, 0], numpy.int32))
    optimizer.new_epoch()
    return optimizer


def params(link):
    return {name: p.array.copy() for name, p in link.namedparams()}


def test_model_round_trip(tmp_path):
    path = str(tmp_path / 'm.npz')
    saved = model(seed=1)
    safe_npz.save(path, saved)
    loaded = model(seed=2)
    safe_npz.load(path, loaded)
    for name, array in params(saved).items():
        numpy.testing.assert_array_equal(params(loaded)[name], array)
    numpy.testing.assert_array_equal(loaded.predictor.b1.avg_var,
                                     saved.predictor.b1.avg_var)


def test_optimizer_round_trip(tmp_path):
    path = str(tmp_path / 's.npz')
    saved = trained_optimizer(model())
    safe_npz.save(path, saved)
    loaded = chainer.optimizers.Adam()
    loaded.setup(model())
    safe_npz.load(path, loaded)
    assert (loaded.t, loaded.epoch) == (1, 1)
    state = loaded.target.predictor.l2.W.update_rule.state
    numpy.testing.assert_array_equal(
        state['m'], saved.target.predictor.l2.W.update_rule.state['m'])


def test_pickled_objects_are_refused_unrun(tmp_path):
    marker = tmp_path / 'ran'

    class Payload(object):
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = str(tmp_path / 'evil.npz')
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(model())
    arrays = serializer.target
    arrays['predictor/l1/W'] = numpy.array([Payload()], dtype=object)
    numpy.savez(path, **arrays)
    with pytest.raises(LoadError) as error:
        safe_npz.load(path, model())
    # Not NumPy's advice to pass allow_pickle=True.
    assert str(error.value) == (
        '{} is not a model saved by this package (it holds pickled objects, '
        'which are not loaded)'.format(path))
    assert not marker.exists()
    # The payload is live: loading as Chainer's load_npz does runs it.
    with numpy.load(path, allow_pickle=True) as npz:
        npz['predictor/l1/W']
    assert marker.exists()


def test_other_unit_count_is_refused(tmp_path):
    path = str(tmp_path / 'm.npz')
    safe_npz.save(path, model(units=1))  # broadcastable into 5 units
    # Entries are checked in Chainer's order, a set's: any layer may be first.
    with pytest.raises(LoadError, match=r'has shape \([^)]*\b1\b[^)]*\) '
                       r'where \([^)]*\b5\b[^)]*\) is expected'):
        safe_npz.load(path, model(units=5))


def test_optimizer_of_other_unit_count_is_refused(tmp_path):
    path = str(tmp_path / 's.npz')
    safe_npz.save(path, trained_optimizer(model(units=1)))
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model(units=5))
    with pytest.raises(LoadError, match='another --unit'):
        safe_npz.load(path, optimizer)


@pytest.mark.parametrize('content', [b'', b'not a zip file at all',
                                     'truncated'])
def test_unreadable_files_are_refused(tmp_path, content):
    path = str(tmp_path / 'm.npz')
    if content == 'truncated':
        safe_npz.save(path, model())
        with open(path, 'rb') as f:
            content = f.read()[:1000]
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(LoadError, match='m.npz'):
        safe_npz.load(path, model())


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(LoadError, match='no such file'):
        safe_npz.load(str(tmp_path / 'absent'), model())
    with pytest.raises(LoadError, match='is a folder'):
        safe_npz.load(str(tmp_path), model())


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'm.npz')
    safe_npz.save(path, model())
    with open(path, 'rb') as f:
        before = f.read()

    def broken_save(f, **arrays):
        f.write(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(safe_npz.numpy, 'savez', broken_save)
    with pytest.raises(KeyboardInterrupt):
        safe_npz.save(path, model(seed=3))
    with open(path, 'rb') as f:
        assert f.read() == before
    assert os.listdir(tmp_path) == ['m.npz']


def test_recipe_is_saved_beside_the_arrays_without_pickles(tmp_path):
    path = str(tmp_path / 'm.npz')
    recipe = {'preset': 'paper', 'unit': 5, 'epoch': 1000}
    safe_npz.save(path, model(), recipe)
    arrays = safe_npz.read(path)
    assert safe_npz.recipe_of(arrays, path) == recipe
    loaded = model(seed=2)
    safe_npz.load(path, loaded)
    numpy.testing.assert_array_equal(loaded.predictor.l1.W.array,
                                     model().predictor.l1.W.array)
    safe_npz.save(path, model())
    assert safe_npz.recipe_of(safe_npz.read(path), path) is None


def test_a_recipe_that_is_not_a_json_object_is_refused(tmp_path):
    path = str(tmp_path / 'm.npz')
    numpy.savez(path, recipe=numpy.array('[1, 2'))
    with pytest.raises(LoadError, match='recipe entry is not a JSON object'):
        safe_npz.recipe_of(safe_npz.read(path), path)


def test_saves_are_uncompressed(tmp_path):
    # Compressing the paper's 214 MB model took 9.3 s, against 0.28 s.
    path = str(tmp_path / 'm.npz')
    safe_npz.save(path, model())
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {
            zipfile.ZIP_STORED}


@pytest.mark.parametrize('content', [b'# README\n', b'\x93NUMPY', b''])
def test_a_file_of_another_kind_is_not_ours(tmp_path, content):
    path = tmp_path / 'README.md'
    path.write_bytes(content)
    for obj, what in ((model(), 'model'),
                      (trained_optimizer(model()), 'optimizer state')):
        with pytest.raises(LoadError) as error:
            safe_npz.load(str(path), obj)
        assert str(error.value) == (
            '{} is not a {} saved by this package (not an npz file)'.format(
                path, what))


def test_a_model_and_a_state_given_for_each_other_say_so(tmp_path):
    model_path, state_path = str(tmp_path / 'm.npz'), str(tmp_path / 's.npz')
    safe_npz.save(model_path, model())
    safe_npz.save(state_path, trained_optimizer(model()))
    with pytest.raises(LoadError) as error:
        safe_npz.load(state_path, model())
    assert str(error.value) == (
        "{} is an optimizer state, not a model: it goes to train_mnist.py's "
        "--resume".format(state_path))
    with pytest.raises(LoadError) as error:
        safe_npz.load(model_path, trained_optimizer(model()))
    assert str(error.value) == (
        "{} is a model, not an optimizer state: it goes to train_mnist.py's "
        "--initmodel".format(model_path))
