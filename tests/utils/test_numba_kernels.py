import sys

from utils import numba_kernels


def test_one_note_a_process_however_many_modules_fall_back(monkeypatch,
                                                           capsys):
    monkeypatch.setitem(sys.modules, 'numba', None)
    for module in ('fast.adam_cpu', 'fast.batch_norm_cpu', 'packed.cpu'):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(numba_kernels, '_noted', False)
    loaded = [numba_kernels.load(module) for module in (
        'fast.adam_cpu', 'fast.batch_norm_cpu', 'packed.cpu')]
    assert loaded == [None] * 3
    err = capsys.readouterr().err.splitlines()
    assert err == ["note: numba is not available (import of numba halted; "
                   "None in sys.modules); NumPy runs in its place"]


def test_a_module_that_imports_is_returned():
    assert numba_kernels.load('fast.adam_cpu').__name__ == 'fast.adam_cpu'
