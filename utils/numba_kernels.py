"""Numba's compiled kernels where Numba imports, NumPy's code where not."""
import importlib
import sys


def load(module, user):
    """The kernel module ``module``, or None where it does not import
    (Numba missing or broken): then one line says that ``user`` runs on
    NumPy instead."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        print('note: numba is not available ({}); {} uses NumPy'.format(
            e, user), file=sys.stderr)
        return None
