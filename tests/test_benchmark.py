import json
import types

import numpy

import chainer

import benchmark
from conftest import record_clock
from net import MnistMLP
from packed import cpu
import recipes


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
    assert compiled['first_layer'] == cpu.FIRST_LAYER
    assert any('first layer by ' + cpu.FIRST_LAYER in line for line in lines)
    assert compiled['ceiling_words_per_s'] > 0
    inference, = result['inference']
    # Chainer's float32 may put a few images' units across their thresholds
    # where the exact packed path does not (tests/test_xnor_infer.py's FEW).
    assert 1000 - 10 <= inference['agree'] <= 1000
    training = result['training']
    assert training['ratio'] == (training['binary_s_per_epoch'] /
                                 training['float_s_per_epoch'])
    assert 'training, s per epoch' in '\n'.join(lines)
    # Its figures come with the warning that they mean nothing.
    assert lines[0] == ('--quick: sizes that check that every path runs; its '
                        'times and ratios measure nothing')


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


def test_clocks_start_after_the_warm_up_has_finished(monkeypatch):
    events = []
    record_clock(monkeypatch, benchmark, events)
    gpu = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Device=lambda: types.SimpleNamespace(
            synchronize=lambda: events.append('sync'))))
    benchmark.best_time(lambda: events.append('run'), gpu, min_total=1e9,
                        max_repeat=2)
    assert events == ['run', 'sync'] + ['clock', 'run', 'sync', 'clock'] * 2


def test_gpu_tables_set_the_kernels_side_by_side(capsys):
    product = {'m': 100, 'k': 4096, 'n': 4096, 'float32_s': 8e-3,
               'float16_s': 2e-3, 'popcll_s': 3e-3, 'xnor_s': 1e-3,
               'words_per_s': 6.7e13, 'equal': True}
    benchmark.print_tables({
        'machine': {'gpu': 'a GPU', 'xnor_kernel': 'tensor cores (mma b1)',
                    'blas': 'openblas SkylakeX'},
        'compiled': None,
        'product': [product],
        'inference': [{'hidden': 3, 'units': 4096, 'batch': 100,
                       'chainer_s': 0.7, 'packed_s': 0.1, 'agree': 10000}],
        'training': {'units': 1000, 'iterations': 600,
                     'binary_s_per_epoch': 2., 'float_s_per_epoch': 1.,
                     'ratio': 2.}})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith('float32 by openblas SkylakeX')
    assert lines[2].split() == ['100x4096x4096', '8.00', '2.00', '1.00',
                                '8.00x', '67000.0', 'True']
    assert lines[3] == ('xnor by tensor cores (mma b1), against float16 and '
                        'the __popcll kernel')
    assert lines[5].split() == ['100x4096x4096', '3.00', '2.00x', '3.00x']


def test_blas_kernel_is_named_and_a_forced_one_said_so(monkeypatch):
    monkeypatch.setattr(benchmark.threadpoolctl, 'threadpool_info', lambda: [
        {'user_api': 'openmp', 'internal_api': 'openmp'},
        {'user_api': 'blas', 'internal_api': 'openblas',
         'architecture': 'SkylakeX'}])
    monkeypatch.delenv('OPENBLAS_CORETYPE', raising=False)
    assert benchmark.blas_kernel() == 'openblas SkylakeX'
    monkeypatch.setenv('OPENBLAS_CORETYPE', 'Haswell')
    assert benchmark.blas_kernel() == (
        'openblas SkylakeX (forced by OPENBLAS_CORETYPE=Haswell)')


def test_steps_are_timed_against_their_yardstick(capsys):
    rng = numpy.random.RandomState(0)
    train = chainer.datasets.TupleDataset(
        rng.rand(100, 784).astype(numpy.float32),
        rng.randint(10, size=100).astype(numpy.int32))
    rows = benchmark.bench_steps(chainer.get_device('@numpy'),
                                 [(recipes.Port, 20), (recipes.Paper, 30)],
                                 train)
    assert [(r['net'], r['hidden'], r['units']) for r in rows] == [
        ('port', 2, 20), ('paper', 3, 30)]
    for r in rows:
        assert r['fast_s'] > 0 and r['plain_s'] > 0 and r['yardstick_s'] > 0
        assert r['fast_ratio'] == r['fast_s'] / r['yardstick_s']
        assert r['plain_ratio'] == r['plain_s'] / r['yardstick_s']
    benchmark.print_steps(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:2] == ['port', '2x20']
    assert lines[-1].split()[-2:] == [
        '{:.2f}x'.format(rows[1]['fast_ratio']),
        '{:.2f}x'.format(rows[1]['plain_ratio'])]


def test_yardstick_runs_each_layers_products(monkeypatch):
    calls = []
    device = chainer.get_device('@numpy')
    products = benchmark.yardstick(device, [784, 30, 30, 10], 100)
    real = numpy.matmul
    monkeypatch.setattr(numpy, 'matmul', lambda a, b: calls.append(
        (a.shape, b.shape)) or real(a, b))
    products()
    # gy^T . x for 3 layers, gy . W_b for the two above the first.
    assert calls == [((30, 100), (100, 784)), ((30, 100), (100, 30)),
                     ((100, 30), (30, 30)), ((10, 100), (100, 30)),
                     ((100, 10), (10, 30))]


def test_interleaved_runs_take_turns_after_a_warm_up(monkeypatch):
    events = []
    record_clock(monkeypatch, benchmark, events)
    runs = {'a': lambda: events.append('a'), 'b': lambda: events.append('b')}
    times = benchmark.interleaved(runs, numpy, min_total=0, min_rounds=2,
                                  max_rounds=5)
    # A warm-up round, then two timed ones, each run between two clocks.
    assert events == ['clock', 'a', 'clock', 'clock', 'b', 'clock'] * 3
    assert times == {'a': 2., 'b': 2.}


def test_without_mnist_one_line_says_so(monkeypatch, capsys):
    def missing(*args, **kwargs):
        raise benchmark.mnist.MnistError('data/mnist: no MNIST here')
    monkeypatch.setattr(benchmark.mnist, 'get_mnist', missing)
    assert benchmark.main(['--quick']) == 1
    out, err = capsys.readouterr()
    assert err.endswith(': error: data/mnist: no MNIST here\n')
    assert err.count('\n') == 1
