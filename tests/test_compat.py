import subprocess
import sys
import warnings

import numpy
import pytest

import chainer
from chainer.backends import cuda
import chainer.functions as F

import compat

NUMPY_2 = int(numpy.__version__.split('.')[0]) >= 2


def test_sctypes_as_chainer_reads_them():
    assert numpy.int32 in numpy.sctypes['int']
    assert numpy.float16 in numpy.sctypes['float']
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (2, 2), (2, 1))  # reads numpy.sctypes, both ways
    numpy.testing.assert_array_equal(y.array, [[0, 1], [2, 3]])
    y.grad = numpy.ones((2, 2), numpy.float32)
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [1, 1, 1, 1, 0, 0])


def test_distutils_stand_in_only_where_the_real_one_fails():
    system_info = sys.modules['numpy.distutils.system_info']
    real = subprocess.run(
        [sys.executable, '-W', 'ignore', '-c',
         'import numpy.distutils.system_info'], capture_output=True)
    if real.returncode == 0:
        assert system_info.__file__.endswith('system_info.py')
    else:
        # NumPy 2, Python 3.12, or a setuptools too new for NumPy 1.26's.
        assert not hasattr(system_info, '__file__')
        assert system_info.get_info('blas_opt') == {}


def test_sctypes_stand_in_only_where_numpy_lacks_them():
    if NUMPY_2:
        # What NumPy 1.26 held, written out here, not taken from compat.
        assert numpy.sctypes == {
            'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
            'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
            'float': [numpy.float16, numpy.float32, numpy.float64,
                      numpy.longdouble],
            'complex': [numpy.complex64, numpy.complex128,
                        numpy.clongdouble],
            'others': [bool, object, bytes, str, numpy.void]}
    else:
        # NumPy's own, not replaced.
        assert numpy.sctypes is numpy.core.numerictypes.sctypes


class FakeGpuDevice(object):
    xp = object()
    used = False

    def use(self):
        self.used = True


def test_missing_cudnn_is_one_plain_line(monkeypatch, capsys):
    monkeypatch.setattr(cuda, 'cudnn_enabled', False)
    device = FakeGpuDevice()
    compat.use_device(device)
    assert device.used
    assert capsys.readouterr().err == compat.CUDNN_NOTE + '\n'


# What CuPy 14.2 warns, without NCCL, as Chainer imports cupy.cuda.nccl
# (cupy/_environment.py, _preload_warning).
NCCL_WARNING = """
nccl library could not be loaded.

Reason: ImportError (libnccl.so.2: cannot open shared object file: No such \
file or directory)

You can install the library by:
  $ pip install "nvidia-nccl-cu12>=2.18.1,<3"
"""


def test_warnings_of_an_importable_cupy_are_silenced(monkeypatch):
    # Chainer's own check, as importing chainer.functions runs it where
    # CuPy imports without cuDNN.
    monkeypatch.setattr(cuda, 'available', True)
    monkeypatch.setattr(cuda, '_cudnn_disabled_by_user', False,
                        raising=False)
    monkeypatch.setattr(cuda, 'cudnn_enabled', False)
    monkeypatch.setattr(cuda.check_cuda_available, '_already_warned', False,
                        raising=False)
    with warnings.catch_warnings(record=True) as caught:
        # Again: pytest undoes the filters set while it imports conftest.
        compat.install()
        cuda.check_cuda_available()
        warnings.warn(NCCL_WARNING)
        warnings.warn('another warning')
    assert cuda.check_cuda_available._already_warned
    assert [str(w.message) for w in caught] == ['another warning']


def test_cpu_device_says_nothing(capsys):
    compat.use_device(chainer.get_device('@numpy'))
    assert capsys.readouterr() == ('', '')


def test_a_gpu_device_is_made_current_silently_with_cudnn(
        monkeypatch, capsys):
    monkeypatch.setattr(cuda, 'cudnn_enabled', True)
    device = FakeGpuDevice()
    compat.use_device(device)
    assert device.used
    assert capsys.readouterr() == ('', '')


@pytest.mark.gpu
def test_gpu_device_is_made_current():
    if cuda.cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip('one GPU: device 0 is current already')
    compat.use_device(chainer.get_device('@cupy:1'))
    assert cuda.cupy.cuda.Device().id == 1
