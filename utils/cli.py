"""What the scripts share on the command line: flags, devices, errors.

A user's mistake ends in one line on stderr and a non-zero exit; these are
the pieces that make it so.
"""
import argparse
import textwrap

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer


class UsageError(Exception):
    """A request that cannot be carried out as asked."""


class OneLineParser(argparse.ArgumentParser):

    def error(self, message):
        # One line, without argparse's usage block: --help shows that.
        self.exit(2, '{}: error: {}\n'.format(self.prog, message))


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
        raise UsageError('--gpu {}: this machine has {} GPU(s)'.format(
            gpu, count))
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


def synchronize(xp):
    """Waits until the GPU has done the work queued on it: a clock read
    before then would miss it."""
    if xp is not numpy:
        xp.cuda.Device().synchronize()
