"""Saving and loading models and optimizer states as npz, safely.

Loading never unpickles (Chainer's ``load_npz`` passes allow_pickle=True, so
a crafted file could run code) and insists that every array has the shape
the target holds: NumPy would otherwise broadcast a model saved with
``--unit 1`` into one of 1000 units without a word. Saving is atomic and
uncompressed: compressing the paper's 214 MB model took 9.3 s against
0.28 s, for a file 7% smaller.

A file may also hold its recipe, a small dict saved as JSON text in the
entry ``recipe``, so that a saved model says what it is, and other such dicts
(a snapshot's progress).
"""
import hashlib
import json
import zipfile

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer import serializers

from utils import atomic_file


class LoadError(ValueError):
    """A file that cannot be loaded into the given model or optimizer."""


RECIPE = 'recipe'
# What Optimizer.serialize writes besides the update rules' states.
OPTIMIZER_ENTRIES = ('t', 'epoch')
# Every npz file starts with a zip entry's header.
ZIP_MAGIC = b'PK\x03\x04'


def save(path, obj, recipe=None, arrays=None, **entries):
    """Saves a Link or an Optimizer, and ``recipe`` (a dict) if given, to
    ``path``, replacing it atomically; each of ``entries`` not None is saved
    as JSON text too, for json_entry to read, and ``arrays`` (a dict of
    NumPy arrays) as they are."""
    arrays = dict(serializers.npz.serialize(obj), **(arrays or {}))
    arrays.update(json_arrays(recipe, **entries))
    with atomic_file.open_for_write(path) as f:
        numpy.savez(f, **arrays)


def json_arrays(recipe=None, **entries):
    """``recipe`` and each of ``entries`` not None as JSON text, by name:
    the entries save adds to a file's arrays."""
    entries[RECIPE] = recipe
    return {name: numpy.array(json.dumps(value, sort_keys=True))
            for name, value in entries.items() if value is not None}


def digest(arrays):
    """SHA-256 of a model's arrays (as serialize or read gives them, its
    recipe aside): names, types, shapes and bytes. A snapshot's state names
    its model by it; the paper's 151 MB of weights take about 0.1 s."""
    hashed = hashlib.sha256()
    for name in sorted(arrays):
        if name == RECIPE:
            continue
        array = numpy.ascontiguousarray(arrays[name])
        hashed.update('{} {} {}\n'.format(name, array.dtype.str,
                                          array.shape).encode())
        hashed.update(array.reshape(-1).view(numpy.uint8))
    return hashed.hexdigest()


def recipe_of(arrays, path):
    """The recipe dict that ``read(path)`` found, or None where none is.

    Raises:
        LoadError: the entry is there but holds no JSON object.
    """
    return json_entry(arrays, RECIPE, path)


def json_entry(arrays, name, path):
    """The dict saved as the entry ``name`` of ``read(path)``, or None.

    Raises:
        LoadError: the entry is there but holds no JSON object.
    """
    if name not in arrays:
        return None
    try:
        value = json.loads(str(arrays[name]))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise LoadError('{}: its {} entry is not a JSON object'.format(
            path, name))
    return value


def load(path, obj):
    """Loads ``path`` into a Link or an Optimizer, with no pickles allowed.

    Raises:
        LoadError: the file is missing, not an npz file, holds pickled
            objects, or does not fit ``obj`` (an entry missing, a shape
            differing).
    """
    what = ('optimizer state' if isinstance(obj, chainer.Optimizer)
            else 'model')
    load_arrays(read(path, what), obj, path)


def read(path, what='model'):
    """The arrays of the npz file ``path``, by name, with no pickles allowed.

    Each entry is read once here: an NpzFile inflates an entry at every
    access, and the shape check and Chainer's copy both look.

    Raises:
        LoadError: the file is missing, not an npz file (not the ``what``
            it is taken for), or holds pickled objects.
    """
    not_ours = '{} is not a {} saved by this package'.format(path, what)
    try:
        with open(path, 'rb') as f:
            # numpy.load takes any other file for a pickle or an .npy array.
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                raise LoadError(not_ours + ' (not an npz file)')
        with numpy.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise LoadError('{}: no such file'.format(path))
    except IsADirectoryError:
        raise LoadError('{} is a folder, not a file'.format(path))
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise LoadError('{} is not a readable npz file ({})'.format(path, e))
    except LoadError:
        raise
    except ValueError:
        # NumPy's message advises allow_pickle=True: never here.
        raise LoadError(not_ours + ' (it holds pickled objects, which are '
                        'not loaded)')


def load_arrays(arrays, obj, path):
    """Loads what ``read(path)`` returned into a Link or an Optimizer.

    Raises:
        LoadError: ``arrays`` do not fit ``obj`` (an entry missing, a shape
            differing).
    """
    is_state = all(key in arrays for key in OPTIMIZER_ENTRIES)
    if isinstance(obj, chainer.Optimizer) and not is_state:
        raise LoadError("{} is a model, not an optimizer state: it goes to "
                        "train_mnist.py's --initmodel".format(path))
    if isinstance(obj, chainer.Link) and is_state:
        raise LoadError("{} is an optimizer state, not a model: it goes to "
                        "train_mnist.py's --resume".format(path))
    try:
        _ShapeCheckingDeserializer(arrays, path).load(obj)
    except LoadError:
        raise
    except ValueError as e:
        raise LoadError('{} cannot be loaded: {}'.format(path, e))
    if isinstance(obj, chainer.Optimizer):
        _check_states(obj, path)


class _ShapeCheckingDeserializer(serializers.NpzDeserializer):

    def __init__(self, npz, filename, path=''):
        super().__init__(npz, path=path)
        self.filename = filename

    def __getitem__(self, key):
        return _ShapeCheckingDeserializer(
            self.npz, self.filename, self.path + key.strip('/') + '/')

    def __call__(self, key, value):
        name = self.path + key.lstrip('/')
        if name not in self.npz:
            raise LoadError('{} has no entry {}: it was not saved from this '
                            'kind of object (another --preset?)'.format(
                                self.filename, name))
        stored = self.npz[name].shape
        shape = getattr(value, 'shape', None)
        if shape is not None and stored != shape:
            raise LoadError('{}: {} has shape {} where {} is expected (saved '
                            'with another --unit or --preset?)'.format(
                                self.filename, name, stored, shape))
        return super().__call__(key, value)


def _check_states(optimizer, path):
    # An update rule's state is read into an empty slot, so its shape can
    # only be compared with its parameter's once it is loaded.
    for name, param in optimizer.target.namedparams():
        for key, value in (param.update_rule.state or {}).items():
            if value.shape != param.shape:
                raise LoadError('{}: the state {} of {} has shape {} where {} '
                                'is expected (saved with another --unit or '
                                '--preset?)'.format(path, key, name,
                                                    value.shape, param.shape))
