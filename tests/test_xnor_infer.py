import os
import re
import subprocess
import sys

import numpy
import pytest

from chainer.dataset import convert
import chainer.links as L

from conftest import ROOT, float64_forward, gpu_usable, record_clock
import mnist
from net import MnistMLP
import packed
import train_mnist
from utils import safe_npz
import xnor_infer

SCRIPT = os.path.join(ROOT, 'xnor_infer.py')
# Predictions that Chainer's float32 path may make otherwise than the exact
# packed path, where rounding puts a pre-activation on the other side of its
# threshold: a trained net's biases keep units off the 1/255 grid, but that
# is a float coincidence, not a promise.
FEW = 10


def agreement(out):
    """(equal predictions, images, largest logit difference) as printed."""
    found = re.search(r'agreement: (\d+)/(\d+) predicted classes equal, '
                      r'logits within (\S+);', out)
    return int(found.group(1)), int(found.group(2)), float(found.group(3))


def assert_exact(model_path, xp=numpy):
    """The packed engine's predictions on the test set, on ``xp``, equal a
    float64 evaluation of the saved net's, every one."""
    arrays = safe_npz.read(str(model_path))
    recipe, n_units, bn = xnor_infer.saved_recipe(arrays, str(model_path))
    mlp = recipe.model(n_units, bn)
    safe_npz.load_arrays(arrays, mlp, str(model_path))
    _, test = mnist.get_mnist()
    x, _ = convert.concat_examples(test)
    pixels = numpy.rint(x * 255).astype(numpy.uint8)
    affine = recipe.input_affine()
    engine = packed.PackedMLP.from_chain(mlp.predictor, affine)
    logits = engine.to_device(xp).logits(xp.asarray(pixels))
    _, expected = float64_forward(mlp.predictor, pixels, affine)
    predicted = logits.argmax(axis=1)
    predicted = predicted if xp is numpy else predicted.get()
    numpy.testing.assert_array_equal(predicted, expected.argmax(axis=1))


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
    accuracies = [float(a) for a in
                  re.findall(r'accuracy (0\.[0-9]{4})', out)]
    assert len(accuracies) == 2
    assert abs(accuracies[0] - accuracies[1]) <= FEW / 10000
    assert accuracies[0] > 0.85
    equal, images, difference = agreement(out)
    assert images == 10000 and equal >= images - FEW
    assert difference < 1e-4 or equal < images
    assert '1-bit params' in out and 'total' in out
    assert packed.PackedMLP.load(str(packed_path)).n_layers == 3
    assert_exact(trained)


# The paper's signed inputs; torch7's normalised ones and shift-based
# BatchNormalization.
@pytest.mark.parametrize('preset', ['paper', 'torch7'])
def test_a_presets_net_with_a_validation_split_agrees(small_slice, tmp_path,
                                                      capsys, preset):
    assert train_mnist.main(['--dataset-dir', small_slice, '--out',
                             str(tmp_path), '--unit', '100', '--epoch', '1',
                             '--noplot', '--preset', preset]) == 0
    # The model names its recipe: no --preset to repeat.
    assert xnor_infer.main(['--model', str(tmp_path / 'mlp_best.model')]) == 0
    out = capsys.readouterr().out
    assert '(--preset {}, 3 hidden layers of 100 units)'.format(preset) in out
    equal, images, _ = agreement(out)
    assert images == 10000 and equal >= images - FEW
    assert_exact(tmp_path / 'mlp_best.model')


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
    (['--model', 'MODEL', '--save', 'absent/packed.npz'],
     'cannot write absent/packed.npz: No such file or directory'),
    ([], 'the following arguments are required: --model'),
])
def test_bad_input_is_one_line(trained, tmp_path, flags, message,
                               monkeypatch, capsys):
    (tmp_path / 'garbage.npz').write_bytes(b'PK\x03\x04 not a zip')
    model = L.Classifier(MnistMLP(784, 10, 10))
    safe_npz.save(str(tmp_path / 'norecipe.model'), model)
    safe_npz.save(str(tmp_path / 'mislabeled.model'), model,
                  {'preset': 'port', 'unit': 50, 'epoch': 1})
    flags = [str(trained) if f == 'MODEL' else f for f in flags]
    # main() as the script calls it, in this process; the test below starts
    # the script as a user does, where a fresh process's imports could
    # print more.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(xnor_infer, 'PROG', 'xnor_infer.py')
    try:
        status = xnor_infer.main(flags)
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err
    assert status != 0
    assert err.count('\n') == 1, err
    assert err.startswith('xnor_infer.py: error: ')
    assert message in err


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
    equal, images, _ = agreement(out)
    assert images == 10000 and equal >= images - FEW
    numpy.testing.assert_equal(len(re.findall('accuracy', out)), 2)
    import cupy
    assert_exact(trained, cupy)


def test_clocks_start_after_the_warm_up_has_finished(trained, monkeypatch,
                                                     capsys):
    events = []
    record_clock(monkeypatch, xnor_infer, events)
    monkeypatch.setattr(xnor_infer.cli, 'synchronize',
                        lambda xp: events.append('sync'))
    assert xnor_infer.main(['--model', str(trained)]) == 0
    # Warm-up, then each path timed until its work is done.
    assert events == ['sync'] + ['clock', 'sync', 'clock'] * 2


def test_a_reader_that_closes_the_pipe_ends_the_output_quietly(trained):
    # ./xnor_infer.py -m result/mlp.model | head -1
    process = subprocess.Popen(
        [sys.executable, SCRIPT, '--model', str(trained)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert first.startswith('model: ')
    assert process.returncode == 0
    assert err == ''
