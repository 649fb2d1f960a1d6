"""Snapshots of a run: the model and the optimizer state saved together
every --frequency epochs, at the end and at Ctrl-C, SIGTERM or SIGHUP, and
loaded again with the checks that keep a run whole."""
import os
import shlex
import signal

import numpy

from chainer import serializers

from utils import atomic_file
from utils import cli
from utils import safe_npz
from utils import training_log
from utils.cli import UsageError

MODEL_FILE = 'mlp.model'
STATE_FILE = 'mlp.state'
BEST_MODEL_FILE = 'mlp_best.model'
# Written together, the state last: it names the model saved with it.
SNAPSHOT_FILES = (MODEL_FILE, BEST_MODEL_FILE, STATE_FILE)
# Everything a run writes into --out.
RUN_FILES = SNAPSHOT_FILES + training_log.FILES
# An epoch cut short, as the state keeps it: Means.partial() and the time.
PARTIAL_KEYS = {'loss', 'accuracy', 'count', 'batches', 'elapsed_time'}
# binary_stats.BinaryStats.partial()'s counts; its signs are arrays.
STATS_KEYS = {'passed', 'counted'}
SIGNS = 'partial_epoch/start_signs_{}'
# The signals a run stops at as at Ctrl-C: a closed terminal or ssh session
# (SIGHUP), kill, timeout and a scheduler's preemption (SIGTERM).
SIGNALS = tuple(getattr(signal, name) for name in ('SIGINT', 'SIGTERM',
                                                   'SIGHUP')
                if hasattr(signal, name))


class Interrupts(object):

    """Ctrl-C, SIGTERM and SIGHUP, taken only where ``check()`` asks, until
    ``restore()``: between training steps and once an epoch's evaluation,
    log and snapshot are written. A snapshot then holds whole steps, no
    epoch is left out of the log, and a second signal during a save changes
    nothing. A signal the process was started ignoring (nohup) stays
    ignored."""

    def __init__(self):
        self.signum = None
        self._handlers = {}
        for signum in SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._handlers[signum] = signal.signal(signum, self._request)

    def restore(self):
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)

    def _request(self, signum, frame):
        if self.signum is None:
            self.signum = signum

    def check(self):
        if self.signum is not None:
            raise KeyboardInterrupt

    def between(self, batches):
        """``batches``, with the signals taken before each."""
        for batch in batches:
            self.check()
            yield batch


class Snapshots(object):

    """A run's snapshots in ``out``: mlp.model, mlp.state and, where the
    recipe keeps one, mlp_best.model, each naming ``recipe`` (a dict), all
    replaced as one (atomic_file.write_together): a kill at any moment
    leaves the last snapshot whole or the new one finishable.

    The best model is written with the next snapshot, not at once, so that
    mlp_best.model always belongs to the history that mlp.state resumes.
    """

    def __init__(self, out, recipe):
        self.out = out
        self.recipe = recipe
        self.best = None
        # The step count of the last whole-epoch snapshot written.
        self.saved_at = None

    def path(self, name):
        return os.path.join(self.out, name)

    def keep_best(self, model):
        """A copy of ``model`` for mlp_best.model."""
        self.best = {name: numpy.array(array) for name, array in
                     serializers.npz.serialize(model).items()}

    def save(self, model, optimizer, log, partial=None, quiet=False):
        """Writes the snapshot; ``quiet``: without the port's two lines.

        The state also names the model saved with it (its epoch and
        safe_npz.digest), the last entry of ``log`` (log_end), so that a
        resumed run can tell its log.json from another run's, and, for an
        epoch cut short, ``partial``: its steps and sums
        (training_log.Means.partial), the binary layers' counts and signs
        (binary_stats.BinaryStats.partial) and the elapsed time, so that the
        epoch resumes at the step it stopped.
        """
        if (partial is None and self.best is None and
                self.saved_at == optimizer.t):
            # A signal after an epoch's snapshot: it is on disk already.
            return
        signs = {}
        if partial is not None:
            partial = dict(partial)
            signs = {SIGNS.format(k): numpy.packbits(s)
                     for k, s in enumerate(partial.pop('start_signs'), 1)}
        model_arrays = serializers.npz.serialize(model)
        made_with = {'epoch': optimizer.epoch,
                     'digest': safe_npz.digest(model_arrays)}
        recipe = safe_npz.json_arrays(self.recipe)
        state = dict(serializers.npz.serialize(optimizer), **signs)
        state.update(safe_npz.json_arrays(
            self.recipe, log_end=log_end(log), partial_epoch=partial,
            model=made_with))
        files = {MODEL_FILE: dict(model_arrays, **recipe), STATE_FILE: state}
        if self.best is not None:
            files[BEST_MODEL_FILE] = dict(self.best, **recipe)
        if not quiet:
            print('save the model')
            print('save the optimizer')
        atomic_file.write_together([(self.path(name), _npz(files[name]))
                                    for name in SNAPSHOT_FILES
                                    if name in files])
        self.best = None
        self.saved_at = optimizer.t if partial is None else None


def _npz(arrays):
    return lambda f: numpy.savez(f, **arrays)


def finish_cut(out):
    """Where a process was killed while it wrote a snapshot into ``out``:
    a snapshot cut between its renames is finished, its state naming the
    model already in place; one cut while its files were written is removed,
    the last one being whole. Returns a line saying which, or None."""
    parts = {name: atomic_file.part_path(os.path.join(out, name))
             for name in SNAPSHOT_FILES}
    state = parts[STATE_FILE]
    if not any(os.path.exists(part) for part in parts.values()):
        return None
    try:
        made_with = safe_npz.json_entry(safe_npz.read(state), 'model', state)
        in_place = safe_npz.digest(safe_npz.read(
            os.path.join(out, MODEL_FILE)))
    except safe_npz.LoadError:
        made_with = in_place = None
    if not made_with or made_with.get('digest') != in_place:
        atomic_file.remove(parts.values())
        return ('removed the snapshot that was being written into {} when '
                'the run stopped'.format(out))
    for name in (BEST_MODEL_FILE, STATE_FILE):
        if os.path.exists(parts[name]):
            os.replace(parts[name], os.path.join(out, name))
    return 'finished the snapshot of epoch {} that the run stopped in'.format(
        made_with.get('epoch'))


def replace_run(out, initmodel):
    """A new run's start in ``out``: the files of a run before it there
    (RUN_FILES, the parts of a cut snapshot) are removed, so that a folder
    never mixes two runs. Returns a line naming them, or None.

    Raises:
        UsageError: ``initmodel`` is one of them.
    """
    paths = [os.path.join(out, name) for name in RUN_FILES]
    if initmodel and any(os.path.exists(path) and
                         os.path.samefile(initmodel, path) for path in paths):
        raise UsageError('--initmodel {} is a file of the run in {}, which a '
                         'new run there replaces: copy it elsewhere, or give '
                         'another --out'.format(initmodel, out))
    removed = atomic_file.remove(
        paths + [atomic_file.part_path(os.path.join(out, name))
                 for name in SNAPSHOT_FILES])
    if not removed:
        return None
    return 'replaced the run in {}: {}'.format(out, ', '.join(removed))


def log_end(log):
    """What identifies a run's log.json as it stands: its last epoch, that
    epoch's iteration and train loss (None for an empty log)."""
    if not log:
        return None
    return {key: log[-1][key] for key in ('epoch', 'iteration', 'main/loss')}


# The parts a saved recipe names, and their values in files saved before it
# named them.
PARTS = {'bn': 'exact', 'optimizer': 'adam', 'binarize': 'deterministic'}


def load_model(path, model, recipe):
    """--initmodel: a model of another recipe is refused in one line.
    Returns the model's safe_npz.digest, for load_state."""
    arrays = safe_npz.read(path)
    saved = safe_npz.recipe_of(arrays, path)
    if saved is not None:
        saved = dict(PARTS, **saved)
        if any(saved.get(key) != recipe[key]
               for key in ('preset', 'unit', 'bn')):
            raise UsageError(
                '{} is a --preset {} --unit {} --bn {} model, not --preset '
                '{} --unit {} --bn {}'.format(
                    path, saved.get('preset'), saved.get('unit'),
                    saved.get('bn'), recipe['preset'], recipe['unit'],
                    recipe['bn']))
    safe_npz.load_arrays(arrays, model, path)
    return safe_npz.digest(arrays)


def load_state(path, optimizer, recipe, rate_decays, batchsize, model):
    """--resume: loads the optimizer state; returns its log_end and, where
    its epoch was cut short, the partial epoch (see Snapshots.save).

    ``model`` is (--initmodel, its digest): a state resumes only the model
    saved with it.

    Where the rate decays over the run (``rate_decays``), a state of another
    --epoch is refused, its schedule spanning that one; a partial epoch is
    refused at another --batchsize than its own, as it counts batches.
    """
    arrays = safe_npz.read(path, 'optimizer state')
    saved = safe_npz.recipe_of(arrays, path)
    for flag, value in sorted(PARTS.items()):
        own = (saved or {}).get(flag, value)
        if own != recipe.get(flag, value):
            raise UsageError('{} was saved with --{} {}: resume it with '
                             'that'.format(path, flag, own))
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
    made_with = safe_npz.json_entry(arrays, 'model', path)
    if made_with is None:
        raise UsageError('{} names no model it was saved with (a state of '
                         'an older version of this package)'.format(path))
    initmodel, digest = model
    if made_with.get('digest') != digest:
        raise UsageError('{} was not saved with {}: it resumes only the '
                         'model of epoch {} saved beside it'.format(
                             path, initmodel, made_with.get('epoch')))
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
        # A first snapshot cut between its renames: finish_cut finishes it.
        if path and not os.path.exists(path) and not (
                path == args.resume and
                os.path.exists(atomic_file.part_path(path))):
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
