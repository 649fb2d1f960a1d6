"""Snapshots of a run: the model and the optimizer state saved at the end
or on Ctrl-C, and loaded again with the checks that keep a run whole."""
import os
import shlex
import signal

import numpy

from utils import cli
from utils import safe_npz
from utils import training_log
from utils.cli import UsageError

MODEL_FILE = 'mlp.model'
STATE_FILE = 'mlp.state'
# An epoch cut short, as the state keeps it: Means.partial() and the time.
PARTIAL_KEYS = {'loss', 'accuracy', 'count', 'batches', 'elapsed_time'}
# binary_stats.BinaryStats.partial()'s counts; its signs are arrays.
STATS_KEYS = {'passed', 'counted'}
SIGNS = 'partial_epoch/start_signs_{}'


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


def save(model, optimizer, out, recipe, log, partial=None):
    """mlp.model and mlp.state into ``out``, each naming ``recipe``.

    The state also names the last entry of ``log`` (log_end), so that a
    resumed run can tell its log.json from another run's, and, for an epoch
    cut short, ``partial``: its steps and sums (training_log.Means.partial),
    the binary layers' counts and signs (binary_stats.BinaryStats.partial)
    and the elapsed time, so that the epoch resumes at the step it stopped.
    """
    signs = None
    if partial is not None:
        partial = dict(partial)
        signs = {SIGNS.format(k): numpy.packbits(s)
                 for k, s in enumerate(partial.pop('start_signs'), 1)}
    # A second Ctrl-C must not cut the snapshot short.
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print('save the model')
        safe_npz.save(os.path.join(out, MODEL_FILE), model, recipe)
        print('save the optimizer')
        safe_npz.save(os.path.join(out, STATE_FILE), optimizer, recipe,
                      arrays=signs, log_end=log_end(log),
                      partial_epoch=partial)
    finally:
        signal.signal(signal.SIGINT, handler)


def log_end(log):
    """What identifies a run's log.json as it stands: its last epoch, that
    epoch's iteration and train loss (None for an empty log)."""
    if not log:
        return None
    return {key: log[-1][key] for key in ('epoch', 'iteration', 'main/loss')}


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


def load_state(path, optimizer, recipe, rate_decays, batchsize):
    """--resume: loads the optimizer state; returns its log_end and, where
    its epoch was cut short, the partial epoch (see save).

    Where the rate decays over the run (``rate_decays``), a state of another
    --epoch is refused, its schedule spanning that one; a partial epoch is
    refused at another --batchsize than its own, as it counts batches.
    """
    arrays = safe_npz.read(path, 'optimizer state')
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
    partial = safe_npz.json_entry(arrays, 'partial_epoch', path)
    if partial is not None:
        counts = {key: partial.get(key) for key in PARTIAL_KEYS}
        links = optimizer.target.predictor.binary_links()
        signs = [arrays.get(SIGNS.format(k)) for k in range(1, len(links) + 1)]
        if set(partial) != PARTIAL_KEYS | STATS_KEYS or not all(
                isinstance(v, (int, float)) for v in counts.values()) or (
                partial['batches'] < 1) or any(
                    s is None or s.shape != (-(-link.W.size // 8),)
                    for s, link in zip(signs, links)):
            raise safe_npz.LoadError('{}: its partial_epoch entry is not '
                                     'one this package saves'.format(path))
        own = partial['count'] // partial['batches']
        if own != batchsize:
            raise UsageError('{} stopped within an epoch of batches of {}: '
                             'resume it with --batchsize {}'.format(
                                 path, own, own))
        partial['start_signs'] = [
            numpy.unpackbits(s, count=link.W.size).reshape(
                link.W.shape).astype(bool) for s, link in zip(signs, links)]
    return safe_npz.json_entry(arrays, 'log_end', path), partial


def check_folder(path, out):
    """--resume continues a run in its own folder only: ``out`` must hold
    the state ``path``, or another run's files would be overwritten."""
    folder = os.path.dirname(path) or '.'
    if not (os.path.isdir(out) and os.path.samefile(folder, out)):
        raise UsageError('{} belongs to the run in {}, not to --out {}: '
                         'resume it with --out {}'.format(
                             path, folder, out, folder))


def resumed_log(out, path, epochs, saved_end):
    """The entries of log.json in ``out`` that the state ``path``, after
    ``epochs`` epochs, continues; its later ones (from a run stopped before
    it could save) are dropped.

    The log must end where ``saved_end`` (the state's log_end) says: another
    run's log is not continued, nor cut.
    """
    log = [e for e in training_log.read_log(out) if e['epoch'] <= epochs]
    if log_end(log) != saved_end:
        raise UsageError('{} is not the log of the run {} was saved from '
                         '(another run in this folder since?)'.format(
                             os.path.join(out, training_log.LOG_FILE), path))
    return log


def check_paths(args):
    """Refuses, before the data are loaded, an --out, --dataset-dir,
    --initmodel or --resume that cannot serve."""
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError('--out {} is a file, not a folder'.format(args.out))
    # The folder that --out would be made in.
    parent = os.path.dirname(os.path.abspath(args.out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError('--out {}: {} is a file, not a folder'.format(
            args.out, parent))
    if args.dataset_dir is not None and not os.path.isdir(args.dataset_dir):
        raise UsageError('--dataset-dir {}: no such folder'.format(
            args.dataset_dir))
    for path in (args.initmodel, args.resume):
        if path and not os.path.exists(path):
            raise UsageError('{}: no such file'.format(path))
    if args.resume:
        check_folder(args.resume, args.out)


def resume_command(parser, args, script, preset):
    """The command that resumes the run of ``args`` from its snapshot in
    --out, ready to paste: ``script`` and each flag of ``parser`` that
    differs from its default (or from ``preset``'s, a dict, for the flags
    that a preset fills)."""
    defaults = parser.parse_args([])
    for name, value in preset.items():
        setattr(defaults, name, value)
    resumed = dict(vars(args),
                   initmodel=os.path.join(args.out, MODEL_FILE),
                   resume=os.path.join(args.out, STATE_FILE))
    words = cli.script_command(script)
    for action in parser._actions:
        value = resumed.get(action.dest)
        if not action.option_strings or value == getattr(
                defaults, action.dest, value):
            continue
        words.append(action.option_strings[0])
        if action.nargs != 0:
            words.append(str(value))
    return ' '.join(shlex.quote(word) for word in words)
