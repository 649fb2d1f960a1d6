"""What the scripts share on the command line: flags, devices, errors.

A user's mistake ends in one line on stderr and a non-zero exit; these are
the pieces that make it so.
"""
import argparse
import contextlib
import difflib
import os
import shutil
import sys
import textwrap

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer


class UsageError(Exception):
    """A request that cannot be carried out as asked."""


class OneLineParser(argparse.ArgumentParser):

    def error(self, message):
        # One line, without argparse's usage block: --help shows that.
        unknown = 'unrecognized arguments: '
        if message.startswith(unknown):
            message += self._close_matches(message[len(unknown):].split())
        self.exit(2, '{}: error: {}\n'.format(self.prog, message))

    def _close_matches(self, words):
        """' (did you mean --epoch?)' for the flags like ``words``' own."""
        flags = [f for f in self._option_string_actions if f.startswith('--')]
        matches = []
        for word in words:
            if word.startswith('--'):
                matches += difflib.get_close_matches(word.split('=')[0],
                                                     flags, n=1)
        if not matches:
            return ''
        return ' (did you mean {}?)'.format(', '.join(matches))


def integer(minimum, what):
    """An argparse type: an int of at least ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                '{!r} is not an integer'.format(text))
        if value < minimum:
            raise argparse.ArgumentTypeError(
                'must be a {} integer, not {}'.format(what, value))
        return value
    return parse


positive_int = integer(1, 'positive')


def add_gpu_flag(parser):
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU ID (negative value indicates CPU)')


def get_device(gpu):
    """The chainer device for ``--gpu``, or UsageError saying why not."""
    if gpu < 0:
        return chainer.get_device('@numpy')
    from chainer.backends import cuda
    if not cuda.available:
        raise UsageError('--gpu {}: {}'.format(
            gpu, cupy_failure(cuda._resolution_error)))
    try:
        count = cuda.cupy.cuda.runtime.getDeviceCount()
    except cuda.cupy.cuda.runtime.CUDARuntimeError as e:
        raise UsageError('--gpu {}: no usable GPU ({})'.format(gpu, e))
    if gpu >= count:
        raise UsageError('--gpu {}: this machine has {}'.format(
            gpu, plural(count, 'GPU')))
    return chainer.get_device('@cupy:{}'.format(gpu))


def cupy_failure(error):
    """Why Chainer found no CuPy, from the error it kept, and the remedy."""
    if isinstance(error, ModuleNotFoundError) and error.name == 'cupy':
        return ('CuPy is not installed (make setup GPU=cuda12x, or '
                'GPU=cuda13x, installs it)')
    # CuPy's messages run long and over several lines.
    cause = textwrap.shorten(str(error), 80, placeholder='...')
    return ("CuPy does not import ({}: {}); CUDA's libraries come with "
            "CuPy's [ctk] extra (make setup GPU=cuda12x, or GPU=cuda13x) "
            "or a CUDA Toolkit".format(type(error).__name__, cause))


class _Console(object):

    """A stream whose reader may be gone: ``... | tee log`` ends ``tee``
    with the same Ctrl-C. What it cannot take is dropped, not raised."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError:
            self._close()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except OSError:
            self._close()

    def _close(self):
        # Later writes, and the flush at exit, then reach /dev/null instead
        # of failing again (Python's own advice for SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def console_may_close():
    """sys.stdout and sys.stderr that cannot raise for a closed pipe or
    terminal within the block: a lost message must not cost a run."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Console(sys.stdout), _Console(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def synchronize(xp):
    """Waits until the GPU has done the work queued on it: a clock read
    before then would miss it."""
    if xp is not numpy:
        xp.cuda.Device().synchronize()


def progress_width():
    """The terminal's width less two columns, or None: the ^C that the
    terminal echoes then fits on the progress line, which is cleared,
    instead of wrapping below it and leaving it on the screen."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return None
    return columns - 2 if columns > 2 else None


def script_command(path):
    """[python, script] that start the script ``path`` again from this
    shell: the script alone where its shebang's python3 would be this
    Python."""
    script = os.path.relpath(os.path.abspath(path))
    if os.path.dirname(script) == '':
        script = os.path.join('.', script)
    if sys.prefix != sys.base_prefix:
        # A venv: its python3 comes first on the PATH once activated.
        active = os.environ.get('VIRTUAL_ENV')
        bare = active is not None and os.path.realpath(
            active) == os.path.realpath(sys.prefix)
    else:
        python3 = shutil.which('python3')
        bare = python3 is not None and os.path.samefile(python3,
                                                        sys.executable)
    if bare:
        return [script]
    python = os.path.relpath(sys.executable)
    if python.startswith(os.pardir):
        python = sys.executable
    return [python, script]


def plural(n, noun):
    """'1 epoch', '2 epochs', '0 epochs'."""
    return '{} {}{}'.format(n, noun, '' if n == 1 else 's')
