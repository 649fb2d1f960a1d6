import argparse
import os
import sys
import types

import numpy
import pytest

from chainer.backends import cuda

from utils import cli


def test_integer_flags_say_what_is_wrong():
    parse = cli.integer(0, 'non-negative')
    assert parse('7') == 7 and parse('0') == 0
    with pytest.raises(argparse.ArgumentTypeError,
                       match="'x' is not an integer"):
        parse('x')
    with pytest.raises(argparse.ArgumentTypeError,
                       match='must be a non-negative integer, not -1'):
        parse('-1')


def test_negative_gpu_is_the_cpu():
    assert cli.get_device(-1).xp is numpy


def test_parser_errors_are_one_line(capsys):
    parser = cli.OneLineParser(prog='prog')
    parser.add_argument('--n', type=cli.positive_int)
    with pytest.raises(SystemExit) as exit:
        parser.parse_args(['--n', '0'])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        'prog: error: argument --n: must be a positive integer, not 0\n')


def without_cupy(monkeypatch, error):
    """Chainer as it is where CuPy failed to import with ``error``."""
    monkeypatch.setattr(cuda, 'available', False)
    monkeypatch.setattr(cuda, '_resolution_error', error, raising=False)


def test_missing_cupy_names_the_set_up(monkeypatch):
    without_cupy(monkeypatch,
                 ModuleNotFoundError("No module named 'cupy'", name='cupy'))
    with pytest.raises(cli.UsageError) as error:
        cli.get_device(0)
    assert str(error.value) == (
        '--gpu 0: CuPy is not installed (make setup GPU=cuda12x, or '
        'GPU=cuda13x, installs it)')


def test_cupy_that_does_not_import_says_why_in_one_line(monkeypatch):
    # What CuPy 14.2 raises without CUDA's libraries.
    lib = 'libcublasLt.so.13 or libcublasLt.so.12'
    without_cupy(monkeypatch, ImportError(
        'Failure finding "{0}": No such file: {0}, No such file: {0}\n'
        .format(lib)))
    with pytest.raises(cli.UsageError) as error:
        cli.get_device(1)
    message = str(error.value)
    assert '\n' not in message and len(message) < 250
    assert message.startswith(
        '--gpu 1: CuPy does not import (ImportError: Failure finding '
        '"libcublasLt.so.13 or libcublasLt.so.12": No such file:...); ')
    assert message.endswith("CUDA's libraries come with CuPy's [ctk] extra "
                            "(make setup GPU=cuda12x, or GPU=cuda13x) or a "
                            "CUDA Toolkit")


class FakeRuntime(object):
    """cupy.cuda.runtime, with ``count`` devices or ``error`` counting them."""

    class CUDARuntimeError(RuntimeError):
        pass

    def __init__(self, count=0, error=None):
        self.count, self.error = count, error

    def getDeviceCount(self):
        if self.error:
            raise self.CUDARuntimeError(self.error)
        return self.count


def with_runtime(monkeypatch, runtime):
    monkeypatch.setattr(cuda, 'available', True)
    monkeypatch.setattr(cuda, 'cupy', types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=runtime)))


@pytest.mark.parametrize('runtime,message', [
    (FakeRuntime(error='cudaErrorNoDevice: no CUDA-capable device is '
                 'detected'),
     '--gpu 0: no usable GPU (cudaErrorNoDevice: no CUDA-capable device is '
     'detected)'),
    (FakeRuntime(count=0), '--gpu 0: this machine has 0 GPUs'),
])
def test_no_device_is_said_plainly(monkeypatch, runtime, message):
    with_runtime(monkeypatch, runtime)
    with pytest.raises(cli.UsageError) as error:
        cli.get_device(0)
    assert str(error.value) == message


def test_synchronize_waits_for_the_gpu_only():
    events = []
    gpu = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Device=lambda: types.SimpleNamespace(
            synchronize=lambda: events.append('sync'))))
    cli.synchronize(numpy)
    assert events == []
    cli.synchronize(gpu)
    assert events == ['sync']


def test_a_mistyped_flag_is_told_the_close_one(capsys):
    parser = cli.OneLineParser(prog='prog')
    parser.add_argument('--epoch', '-e', type=int)
    parser.add_argument('--out', '-o')
    with pytest.raises(SystemExit):
        parser.parse_args(['--epochs', '3'])
    assert capsys.readouterr().err == (
        'prog: error: unrecognized arguments: --epochs 3 (did you mean '
        '--epoch?)\n')
    with pytest.raises(SystemExit):
        parser.parse_args(['--zzz'])
    assert capsys.readouterr().err == (
        'prog: error: unrecognized arguments: --zzz\n')


def test_a_closed_console_drops_messages_instead_of_raising(monkeypatch):
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, 'w')
    monkeypatch.setattr(sys, 'stdout', stream)
    with cli.console_may_close():
        print('lost, not raised')
        sys.stdout.flush()
    assert sys.stdout is stream
    # The descriptor now leads to /dev/null: the flush at exit succeeds.
    print('also lost', file=stream)
    stream.flush()
    stream.close()


def test_the_progress_line_leaves_room_for_the_echoed_ctrl_c(monkeypatch):
    monkeypatch.setattr(sys, 'stderr',
                        types.SimpleNamespace(fileno=lambda: 2))
    monkeypatch.setattr(cli.os, 'get_terminal_size',
                        lambda fd: os.terminal_size((100, 24)))
    assert cli.progress_width() == 98
