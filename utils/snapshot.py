"""Snapshots of a run: the model and the optimizer state saved at the end
or on Ctrl-C, and loaded again with the checks that keep a run whole."""
import os
import signal

from utils import safe_npz
from utils.cli import UsageError

MODEL_FILE = 'mlp.model'
STATE_FILE = 'mlp.state'


class Interrupts(object):

    """Ctrl-C, taken only where ``check()`` asks, until ``restore()``:
    between training steps and once an epoch's evaluation and log are
    written. A snapshot then holds whole steps, and no epoch is left out of
    the log."""

    def __init__(self):
        self.requested = False
        self._handler = signal.signal(signal.SIGINT, self._request)

    def restore(self):
        signal.signal(signal.SIGINT, self._handler)

    def _request(self, signum, frame):
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def between(self, batches):
        """``batches``, with Ctrl-C taken before each."""
        for batch in batches:
            self.check()
            yield batch


def save(model, optimizer, out, recipe):
    """mlp.model and mlp.state into ``out``, each naming ``recipe``."""
    # A second Ctrl-C must not cut the snapshot short.
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print('save the model')
        safe_npz.save(os.path.join(out, MODEL_FILE), model, recipe)
        print('save the optimizer')
        safe_npz.save(os.path.join(out, STATE_FILE), optimizer, recipe)
    finally:
        signal.signal(signal.SIGINT, handler)


def load_model(path, model, recipe):
    """--initmodel: a model of another recipe is refused in one line."""
    arrays = safe_npz.read(path)
    saved = safe_npz.recipe_of(arrays, path)
    if saved is not None and any(saved.get(key) != recipe[key]
                                 for key in ('preset', 'unit')):
        raise UsageError('{} is a --preset {} --unit {} model, not --preset '
                         '{} --unit {}'.format(
                             path, saved.get('preset'), saved.get('unit'),
                             recipe['preset'], recipe['unit']))
    safe_npz.load_arrays(arrays, model, path)


def load_state(path, optimizer, recipe, rate_decays):
    """--resume: where the rate decays over the run (``rate_decays``), a
    state of another --epoch is refused, its schedule spanning that one."""
    arrays = safe_npz.read(path)
    saved = safe_npz.recipe_of(arrays, path)
    if rate_decays:
        if saved is None:
            raise UsageError('{} names no recipe, so not the --epoch its '
                             'learning-rate schedule spans'.format(path))
        epochs = saved.get('epoch')
        if epochs != recipe['epoch']:
            raise UsageError('{} follows the learning-rate schedule of '
                             '--epoch {}: resume it with that --epoch'.format(
                                 path, epochs))
    safe_npz.load_arrays(arrays, optimizer, path)
