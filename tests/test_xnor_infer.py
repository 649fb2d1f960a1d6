import os
import re
import subprocess
import sys

import numpy
import pytest

import chainer.links as L

from conftest import ROOT, gpu_usable, record_clock
from net import MnistMLP
from utils import safe_npz
import train_mnist
import packed
import xnor_infer

SCRIPT = os.path.join(ROOT, 'xnor_infer.py')


@pytest.fixture(scope='module')
def trained(data_slice, tmp_path_factory):
    """A port net of 100 units after one epoch on 10,000 images."""
    out = tmp_path_factory.mktemp('trained')
    assert train_mnist.main(['--dataset-dir', data_slice, '--out', str(out),
                             '--unit', '100', '--epoch', '1',
                             '--noplot']) == 0
    return out / 'mlp.model'


def test_packed_path_agrees_on_all_10000_test_images(trained, tmp_path,
                                                     capsys):
    packed_path = tmp_path / 'packed.npz'
    assert xnor_infer.main(['--model', str(trained), '--batchsize', '2500',
                            '--save', str(packed_path)]) == 0
    out = capsys.readouterr().out
    accuracies = re.findall(r'accuracy (0\.[0-9]{4})', out)
    assert len(accuracies) == 2 and accuracies[0] == accuracies[1]
    assert float(accuracies[0]) > 0.85
    agreement = re.search(r'agreement: (\d+)/(\d+) predicted classes equal, '
                          r'logits within (\S+);', out)
    assert agreement.group(1, 2) == ('10000', '10000')
    assert float(agreement.group(3)) < 1e-4
    assert '1-bit params' in out and 'total' in out
    assert packed.PackedMLP.load(str(packed_path)).n_layers == 3


def test_paper_preset_net_with_signed_inputs_agrees(data_slice, tmp_path,
                                                    capsys):
    assert train_mnist.main(['--dataset-dir', data_slice, '--out',
                             str(tmp_path), '--unit', '100', '--epoch', '1',
                             '--noplot', '--preset', 'paper']) == 0
    # The model names its recipe: no --preset to repeat.
    assert xnor_infer.main(['--model', str(tmp_path / 'mlp_best.model')]) == 0
    out = capsys.readouterr().out
    assert '3 hidden layers of 100 units' in out
    assert 'agreement: 10000/10000 predicted classes equal' in out


def run_script(*args, cwd):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('flags,message', [
    (['--model', 'absent.model'], 'absent.model: no such file'),
    (['--model', 'garbage.npz'], 'garbage.npz is not a readable npz'),
    (['--model', 'norecipe.model'],
     'norecipe.model names no recipe: it was not saved by this '
     'train_mnist.py'),
    (['--model', 'mislabeled.model'],
     'is expected (saved with another --unit or --preset?)'),
    (['--model', 'MODEL', '--preset', 'paper'],
     'unrecognized arguments: --preset paper'),
    (['--model', 'MODEL', '--batchsize', '0'], 'must be a positive'),
    ([], 'the following arguments are required: --model'),
])
def test_bad_input_is_one_line(trained, tmp_path, flags, message):
    (tmp_path / 'garbage.npz').write_bytes(b'PK\x03\x04 not a zip')
    model = L.Classifier(MnistMLP(784, 10, 10))
    safe_npz.save(str(tmp_path / 'norecipe.model'), model)
    safe_npz.save(str(tmp_path / 'mislabeled.model'), model,
                  {'preset': 'port', 'unit': 50, 'epoch': 1})
    flags = [str(trained) if f == 'MODEL' else f for f in flags]
    result = run_script(*flags, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count('\n') == 1, result.stderr
    assert result.stderr.startswith('xnor_infer.py: error: ')
    assert message in result.stderr


def test_gpu_without_cuda_is_one_line(trained, tmp_path):
    if gpu_usable():
        pytest.skip('this machine has a usable GPU')
    result = run_script('--model', str(trained), '--gpu', '0', cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith('xnor_infer.py: error: --gpu 0: ')


@pytest.mark.gpu
def test_gpu_packed_path_agrees(trained, capsys):
    assert xnor_infer.main(['--model', str(trained), '--gpu', '0']) == 0
    out = capsys.readouterr().out
    assert 'agreement: 10000/10000 predicted classes equal' in out
    numpy.testing.assert_equal(len(re.findall('accuracy', out)), 2)


def test_clocks_start_after_the_warm_up_has_finished(trained, monkeypatch,
                                                     capsys):
    events = []
    record_clock(monkeypatch, xnor_infer, events)
    monkeypatch.setattr(xnor_infer.cli, 'synchronize',
                        lambda xp: events.append('sync'))
    assert xnor_infer.main(['--model', str(trained)]) == 0
    # Warm-up, then each path timed until its work is done.
    assert events == ['sync'] + ['clock', 'sync', 'clock'] * 2
