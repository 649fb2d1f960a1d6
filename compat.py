"""Lets Chainer 7.8.1, its last release, import on today's Python and NumPy.

Import this module before ``chainer``. It changes nothing where nothing is
missing. Chainer 7.8.1 reads two things that have since gone:

- ``numpy.sctypes`` (removed in NumPy 2), read by ``F.as_strided``. It is put
  back with the contents NumPy 1.26 had.
- ``numpy.distutils.system_info``, imported by Chainer's environment check:
  removed in NumPy 2, absent for Python >= 3.12, and broken even with NumPy
  1.26 beside setuptools >= 74 (no ``distutils.msvccompiler``). The check
  calls ``get_info('blas_opt')`` on macOS only, to warn about Accelerate; a
  stand-in whose ``get_info`` finds nothing lets it pass silently.

Chainer also imports ``pkg_resources`` at run time, which setuptools 81
removed: requirements.txt pins ``setuptools<81`` for that, and the warning
setuptools 80 prints about it on every start is silenced here.

Where CuPy 14 imports, ``import chainer`` warns that cuDNN is not enabled
(CuPy 14 has no cuDNN support at all) and that CuPy found no NCCL (only
Chainer's multi-GPU updater uses it, and this package does not): thirteen
lines of advice on stderr that cannot or need not be followed, silenced
here too.

Every script imports this module first, so it is also where a script started
by a Python without requirements.txt installed (the shebang's ``python3``
where the venv is not active) ends in one line saying how to run it.
"""
import importlib
import importlib.util
import os
import sys
import types
import warnings

try:
    import numpy
except ImportError:
    numpy = None

# What requirements.txt installs and the scripts cannot run without.
REQUIRED = ('numpy', 'chainer', 'tqdm')

CUDNN_NOTE = ('note: cuDNN is not available (CuPy 14 ships none); Chainer '
              'uses its own CUDA kernels instead, which is expected and '
              'gives the same results')


def _sctypes():
    return {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64,
                  numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }


def _distutils_stand_in():
    package = types.ModuleType('numpy.distutils')
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    package.system_info = system_info
    package.__path__ = []
    return package, system_info


def install():
    """Provides what Chainer 7.8.1 needs and this NumPy lacks, and silences
    its import-time warnings."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                            category=UserWarning)
    warnings.filterwarnings('ignore', message='cuDNN is not enabled',
                            category=UserWarning)
    # CuPy's message starts with a line break.
    warnings.filterwarnings('ignore', message=r'\s*nccl library could not',
                            category=UserWarning)
    if not hasattr(numpy, 'sctypes'):
        numpy.sctypes = _sctypes()
    try:
        with warnings.catch_warnings():
            # NumPy 1.26 on Python 3.11 still has it, deprecated: Chainer's
            # own import would print that warning on every run.
            warnings.simplefilter('ignore', DeprecationWarning)
            importlib.import_module('numpy.distutils.system_info')
    except ImportError:
        package, system_info = _distutils_stand_in()
        sys.modules['numpy.distutils'] = package
        sys.modules['numpy.distutils.system_info'] = system_info


def require_installed():
    """Exits in one line where this Python lacks a module of ``REQUIRED``,
    naming the venv's Python, which has them."""
    missing = [name for name in REQUIRED
               if importlib.util.find_spec(name) is None]
    if not missing:
        return
    script = sys.argv[0] or 'your_script.py'
    venv = os.path.relpath(os.path.join(os.path.dirname(
        os.path.abspath(__file__)), '.venv'))
    sys.exit('{}: error: {} has no {}: run {} {}, or . {} first (make '
             'setup makes {})'.format(
                 os.path.basename(script), sys.executable, ', '.join(missing),
                 os.path.join(venv, 'bin', 'python'), script,
                 os.path.join(venv, 'bin', 'activate'), venv))


def use_device(device):
    """Makes ``device`` current, telling once and plainly when cuDNN is absent.

    Chainer's own warning, silenced by install(), says to reinstall CuPy:
    with CuPy 14 that advice cannot be followed, so one line saying it is
    expected replaces it, on a GPU run only.
    """
    if device.xp is not numpy:
        from chainer.backends import cuda
        if not cuda.cudnn_enabled:
            print(CUDNN_NOTE, file=sys.stderr)
    device.use()


require_installed()
install()
