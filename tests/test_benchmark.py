import json

import numpy

import benchmark
from net import MnistMLP


def test_quick_run_checks_every_path(capsys):
    assert benchmark.main(['--quick']) == 0
    lines = capsys.readouterr().out.splitlines()
    result = json.loads(lines[-1])
    assert result['machine']['cores'] >= 1
    assert [(r['m'], r['k'], r['n']) for r in result['product']] == [
        (100, 256, 256), (300, 65, 130)]
    assert all(r['equal'] for r in result['product'])
    assert all(r['words_per_s'] > 0 for r in result['product'])
    compiled = result['compiled']
    assert compiled['first_call_s'] > 0 and compiled['threads'] >= 1
    assert compiled['ceiling_words_per_s'] > 0
    inference, = result['inference']
    assert inference['agree'] == 1000
    training = result['training']
    assert training['ratio'] == (training['binary_s_per_epoch'] /
                                 training['float_s_per_epoch'])
    assert 'training, s per epoch' in '\n'.join(lines)


def test_calibrated_units_fire_on_some_images_only():
    numpy.random.seed(0)
    mlp = MnistMLP(784, 50, 10)
    x = numpy.random.RandomState(0).rand(200, 784).astype(numpy.float32)
    benchmark.calibrate(mlp, x)
    h = mlp.b1(mlp.l1(x)).array
    numpy.testing.assert_allclose(h.mean(axis=0), 0, atol=1e-4)
    assert 0.3 < (h >= 0).mean() < 0.7


def test_float_mlp_has_the_binary_nets_shape():
    numpy.random.seed(0)
    floats = benchmark.FloatMLP(64)
    binary = MnistMLP(784, 64, 10)
    assert sorted((n, p.shape) for n, p in floats.namedparams()) == sorted(
        (n, p.shape) for n, p in binary.namedparams())
