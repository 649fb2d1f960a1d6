import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, no_gpu_reason

SCRIPT = os.path.join(ROOT, 'gpu_check.sh')


def run_check(path, *args):
    env = dict(os.environ, PATH=path, PYTHON=sys.executable)
    return subprocess.run([shutil.which('bash'), SCRIPT] + list(args),
                          env=env, capture_output=True, text=True,
                          timeout=120)


def nvidia_smi(folder, script):
    """A stand-in for nvidia-smi in ``folder``, running the sh ``script``."""
    path = folder / 'nvidia-smi'
    path.write_text('#!/bin/sh\n' + script + '\n')
    path.chmod(0o755)
    return str(folder) + os.pathsep + os.environ['PATH']


def assert_one_line(result, line):
    assert result.returncode == 1
    assert result.stderr == 'gpu_check.sh: ' + line + '\n'


def test_without_nvidia_smi_it_stops_at_once(tmp_path):
    result = run_check(str(tmp_path), str(tmp_path / 'out'))
    assert_one_line(result, 'no CUDA here: no nvidia-smi')
    assert not (tmp_path / 'out').exists()


def test_a_failing_nvidia_smi_is_quoted(tmp_path):
    path = nvidia_smi(tmp_path, 'echo "NVIDIA-SMI has failed"; echo more; '
                      'exit 9')
    result = run_check(path, str(tmp_path / 'out'))
    assert_one_line(result, 'no CUDA here: NVIDIA-SMI has failed')


def test_without_a_usable_gpu_it_says_why(tmp_path):
    reason = no_gpu_reason()
    if reason is None:
        pytest.skip('this machine has a usable GPU')
    path = nvidia_smi(tmp_path, 'echo "GPU 0: a stand-in"')
    result = run_check(path, str(tmp_path / 'out'))
    assert_one_line(result, reason)
    assert os.listdir(tmp_path / 'out') == []


def test_the_folder_is_required(tmp_path):
    result = run_check(os.environ['PATH'])
    assert_one_line(result, 'usage: gpu_check.sh OUT (the folder for the '
                    'logs)')


def test_the_paper_preset_gets_two_minutes_within_the_deadline():
    with open(SCRIPT) as f:
        script = f.read()
    deadline = int(re.search(r'deadline=\$\(\(SECONDS \+ (\d+)\)\)',
                             script).group(1))
    limits = dict(re.findall(r'^step (\S+) (\d+) ', script, re.MULTILINE))
    kept = int(re.search(r'step paper \$\(\(deadline - SECONDS - (\d+)',
                         script).group(1))
    assert kept >= int(limits['xnor-paper'])
    before = sum(int(limits[name]) for name in (
        'tests', 'port', 'xnor-port', 'port-clip-binary', 'benchmark',
        'torch7'))
    assert deadline - before - kept >= 120
    # Only the gpu tests: the CPU suite alone outlasts any step's limit.
    assert re.search(r'^step tests .* -m gpu tests$', script, re.MULTILINE)
