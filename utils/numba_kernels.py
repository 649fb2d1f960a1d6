"""Numba's compiled kernels where Numba imports, NumPy's code where not."""
import importlib
import sys

# One note a process, however many kernel modules fall back.
_noted = False


def load(module):
    """The kernel module ``module``, or None where it does not import
    (Numba missing or broken): then, the first time, one line says that
    NumPy runs instead."""
    global _noted
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if not _noted:
            print('note: numba is not available ({}); NumPy runs in its '
                  'place'.format(e), file=sys.stderr)
            _noted = True
        return None
