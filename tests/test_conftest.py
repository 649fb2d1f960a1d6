import os
import signal
import subprocess
import sys

from conftest import ROOT, no_gpu_reason

GPU_TEST = 'tests/test_compat.py::test_gpu_device_is_made_current'


def run_pytest(*flags):
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         GPU_TEST] + list(flags),
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_require_gpu_fails_what_would_be_skipped():
    plain, required = run_pytest('-rs'), run_pytest('--require-gpu')
    reason = no_gpu_reason()
    if reason is None:
        assert plain.returncode == required.returncode == 0
        assert '1 passed' in required.stdout
    else:
        assert plain.returncode == 0
        assert '1 skipped' in plain.stdout and reason in plain.stdout
        # Failed in its set-up: pytest counts an error, and exits with 1.
        assert required.returncode == 1
        assert '1 error' in required.stdout
        assert '--require-gpu: ' + reason in required.stdout


def test_ctrl_c_reaches_the_tests_of_a_runner_that_ignores_it():
    code = ('import signal, types, conftest; '
            'conftest.pytest_configure(types.SimpleNamespace('
            'addinivalue_line=lambda *args: None)); '
            'print(signal.getsignal(signal.SIGINT) is '
            'signal.default_int_handler)')
    ignoring = subprocess.run(
        [sys.executable, '-c', code], cwd=os.path.join(ROOT, 'tests'),
        capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert ignoring.stdout == 'True\n', ignoring.stderr
