import functools
import importlib.abc
import json
import sys
import types

import numpy
import pytest

import chainer

import benchmark
from conftest import import_torch
from conftest import record_clock
from net import MnistMLP
from packed import cpu
import recipes


def quick_timing(monkeypatch):
    """One timed run of each thing: --quick's times measure nothing."""
    monkeypatch.setattr(benchmark, 'best_time', functools.partial(
        benchmark.best_time, min_total=0))
    monkeypatch.setattr(benchmark, 'interleaved', functools.partial(
        benchmark.interleaved, min_total=0, min_rounds=1))


def test_quick_run_checks_every_path(capsys, monkeypatch):
    quick_timing(monkeypatch)
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
    # The port's net and torch7's, its shift-based BatchNormalization
    # folded. Chainer's float32 may put a few images' units across their
    # thresholds where the exact packed path does not
    # (tests/test_xnor_infer.py's FEW).
    assert [r['hidden'] for r in result['inference']] == [2, 3]
    for inference in result['inference']:
        assert 1000 - 10 <= inference['agree'] <= 1000
    assert 'training, s per epoch' in '\n'.join(lines)
    # The PyTorch part: its table where torch imports, else one line.
    if result['torch'] is None:
        assert lines[-2].startswith('the same step in PyTorch: skipped, '
                                    'torch does not import (')
    else:
        assert [(r['net'], r['hidden'], r['units'])
                for r in result['torch']['steps']] == [
            ('port', 2, 100), ('paper', 3, 100)]
        assert lines[-5].startswith('the same step in PyTorch {}, eager, '
                                    .format(result['torch']['version']))
        assert [line.split()[:2] for line in lines[-3:-1]] == [
            ['port', '2x100'], ['paper', '3x100']]
    # Its figures come with the warning that they mean nothing.
    assert lines[0] == ('--quick: sizes that check that every path runs; its '
                        'times and ratios measure nothing')


def test_product_rate_is_the_words_of_the_product_over_its_time(
        monkeypatch):
    def best_time(run, xp, **kwargs):
        # Known seconds: 1 ms for the float32 product, 0.2 ms for the xnor.
        return 1e-3 if run().dtype == numpy.float32 else 2e-4

    monkeypatch.setattr(benchmark, 'best_time', best_time)
    rows = benchmark.bench_product(numpy, [(100, 256, 256), (300, 65, 130)])
    assert [(r['float32_s'], r['xnor_s']) for r in rows] == [(1e-3, 2e-4)] * 2
    # m x n dot products of ceil(k / 64) words each.
    assert [r['words_per_s'] for r in rows] == [
        pytest.approx(100 * 256 * 4 / 2e-4),
        pytest.approx(300 * 130 * 2 / 2e-4)]
    assert all(r['equal'] for r in rows)


def test_training_is_timed_per_epoch_of_60000_images(monkeypatch):
    rng = numpy.random.RandomState(0)
    train = chainer.datasets.TupleDataset(
        rng.rand(300, 784).astype(numpy.float32),
        rng.randint(10, size=300).astype(numpy.int32))
    float_steps = []
    forward = benchmark.FloatMLP.forward
    monkeypatch.setattr(benchmark.FloatMLP, 'forward', lambda self, x: (
        float_steps.append(1) or forward(self, x)))

    def best_time(run, xp, **kwargs):
        # Known seconds for the 3 steps: 0.15 for the float net's, 0.6 for
        # BinaryNet's.
        del float_steps[:]
        run()
        if float_steps:
            assert len(float_steps) == 3
            return 0.15
        return 0.6

    monkeypatch.setattr(benchmark, 'best_time', best_time)
    result = benchmark.bench_training(chainer.get_device('@numpy'), 20, 3,
                                      train)
    # 3 steps of 100 images timed: an epoch of 60,000 is 200 times them.
    assert result['binary_s_per_epoch'] == pytest.approx(120.)
    assert result['float_s_per_epoch'] == pytest.approx(30.)
    assert result['ratio'] == pytest.approx(4.)


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


@pytest.mark.parametrize('words_per_s, share', [
    (7.9e9, '82.3%'), (1.35e10, '141%'), (4e7, '0.417%')])
def test_cpu_line_gives_the_products_share_of_its_ceiling(
        capsys, words_per_s, share):
    benchmark.print_tables({
        'machine': {'blas': 'openblas Haswell'},
        'compiled': {'first_call_s': 0.4, 'threads': 2,
                     'ceiling_words_per_s': 9.6e9,
                     'first_layer': 'bit planes'},
        'product': [{'m': 100, 'k': 4096, 'n': 4096, 'float32_s': 8e-3,
                     'xnor_s': 1e-3, 'words_per_s': words_per_s,
                     'equal': True}],
        'inference': [],
        'training': {'units': 1000, 'iterations': 600,
                     'binary_s_per_epoch': 2., 'float_s_per_epoch': 1.,
                     'ratio': 2.}})
    line, = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('compiled kernels')]
    assert 'the product reached up to {};'.format(share) in line


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


def test_steps_are_timed_against_their_yardstick(capsys, monkeypatch):
    rng = numpy.random.RandomState(0)
    train = chainer.datasets.TupleDataset(
        rng.rand(200, 784).astype(numpy.float32),
        rng.randint(10, size=200).astype(numpy.int32))
    # Known seconds: each run taken once, as interleaved() would.
    seconds = {'fast_s': 3e-3, 'plain_s': 12e-3, 'yardstick_s': 2e-3}

    def interleaved(runs, xp):
        assert runs.keys() == seconds.keys()
        for run in runs.values():
            run()
        return dict(seconds)

    monkeypatch.setattr(benchmark, 'interleaved', interleaved)
    rows = benchmark.bench_steps(chainer.get_device('@numpy'),
                                 [(recipes.Port, 20), (recipes.Paper, 30)],
                                 train)
    assert [(r['net'], r['hidden'], r['units']) for r in rows] == [
        ('port', 2, 20), ('paper', 3, 30)]
    for r in rows:
        assert (r['fast_ratio'], r['plain_ratio']) == (
            pytest.approx(1.5), pytest.approx(6.))
    # 200 images: 2 steps an epoch for the port, 1 for the paper's 167.
    assert [r['epoch_steps'] for r in rows] == [2, 1]
    for r in rows:
        assert r['snapshot_ratio'] == pytest.approx(
            r['snapshot_s'] / (r['epoch_steps'] * 3e-3))
    benchmark.print_steps(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-5].split() == ['port', '2x20', '3.0', '12.0', '2.0',
                                 '1.50x', '6.00x']
    assert lines[-4].split()[:2] == ['paper', '3x30']
    # The model, its state and the best model: 4 bytes a parameter, 8 more
    # for Adam's moments.
    n_params = 784 * 20 + 20 * 20 + 20 * 10 + 4 * (20 + 20 + 10)
    assert 16 * n_params < rows[0]['snapshot_bytes'] < 16 * n_params + 4e4
    assert lines[-2] == '  port       2x20 {:7.1f} MB in {:.2f} s: {:.1%} ' \
        'of 2 steps'.format(rows[0]['snapshot_bytes'] / 1e6,
                            rows[0]['snapshot_s'], rows[0]['snapshot_ratio'])
    assert lines[-1].endswith('of 1 step')


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


def test_torch_part_times_the_peer_its_products_and_the_fast_step(
        capsys, monkeypatch):
    torch = import_torch()
    torch_peer, skipped = benchmark.load_torch_peer(
        chainer.get_device('@numpy'))
    assert skipped is None
    rng = numpy.random.RandomState(0)
    train = chainer.datasets.TupleDataset(
        rng.rand(100, 784).astype(numpy.float32),
        rng.randint(10, size=100).astype(numpy.int32))
    # Known seconds: each run taken once, as interleaved() would.
    seconds = {'torch_s': 24e-3, 'products_s': 4e-3, 'fast_s': 8e-3}
    pauses = []

    peers = []
    net = torch_peer.MnistMLP
    monkeypatch.setattr(torch_peer, 'MnistMLP',
                        lambda *args: peers.append(net(*args)) or peers[-1])

    def interleaved(runs, xp, *, pause):
        assert runs.keys() == seconds.keys()
        # Each label times its own run: only the PyTorch step moves the
        # PyTorch net's weights.
        for name, run in runs.items():
            before = [p.detach().clone() for p in peers[-1].parameters()]
            run()
            moved = any(not torch.equal(a, b) for a, b in zip(
                before, peers[-1].parameters()))
            assert moved == (name == 'torch_s'), name
        pauses.append(pause)
        return dict(seconds)

    monkeypatch.setattr(benchmark, 'interleaved', interleaved)
    result = benchmark.bench_torch(torch_peer, [(recipes.Port, 20),
                                                (recipes.Paper, 30)],
                                   train, 0.2)
    assert pauses == [0.2, 0.2]
    assert (result['version'], result['threads']) == (
        torch.__version__, torch.get_num_threads())
    assert [(r['net'], r['hidden'], r['units'], r['batch'])
            for r in result['steps']] == [('port', 2, 20, 100),
                                          ('paper', 3, 30, 100)]
    for r in result['steps']:
        assert (r['torch_fast_ratio'], r['torch_ratio'], r['fast_ratio']) == (
            pytest.approx(3.), pytest.approx(6.), pytest.approx(2.))
    benchmark.print_torch(json.loads(json.dumps(result)))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        'the same step in PyTorch {}, eager, {} thread{}, batch 100 (ms); '
        'products: its float32 products alone (torch.matmul)'.format(
            torch.__version__, torch.get_num_threads(),
            '' if torch.get_num_threads() == 1 else 's'))
    assert lines[2].split() == ['preset', 'net', 'pytorch', 'products',
                                'fast', 'pytorch/f', 'pytorch/p', 'fast/p']
    assert lines[3].split() == ['port', '2x20', '24.0', '4.0', '8.0',
                                '3.00x', '6.00x', '2.00x']
    assert lines[4].split()[:2] == ['paper', '3x30']


def test_torch_yardstick_runs_yardsticks_products(monkeypatch):
    torch = import_torch()
    calls = []
    real = torch.matmul
    monkeypatch.setattr(torch, 'matmul', lambda a, b: calls.append(
        (a, b)) or real(a, b))
    benchmark.torch_yardstick(torch, [784, 30, 30, 10], 100)()
    layers = benchmark.yardstick_arrays([784, 30, 30, 10], 100)
    # The same arrays: x . W_b^T, gy^T . x and, above the first layer,
    # gy . W_b.
    expected = []
    for k, (x, W_b, gy) in enumerate(layers):
        expected += [(x, W_b.T), (gy.T, x)] + ([(gy, W_b)] if k else [])
    assert len(calls) == len(expected) == 8
    for (a, b), (x, y) in zip(calls, expected):
        numpy.testing.assert_array_equal(a.numpy(), x)
        numpy.testing.assert_array_equal(b.numpy(), y)


def test_without_torch_one_line_says_so(capsys, monkeypatch):
    # import torch fails, whether or not it is installed.
    monkeypatch.setitem(sys.modules, 'torch', None)
    monkeypatch.delitem(sys.modules, 'torch_peer', raising=False)
    # The other parts, stood in for: this test is of the PyTorch part.
    for name, value in (('bench_compiled', None), ('bench_product', []),
                        ('bench_inference', []), ('bench_steps', []),
                        ('bench_training', {
                            'units': 100, 'iterations': 10,
                            'binary_s_per_epoch': 2., 'float_s_per_epoch': 1.,
                            'ratio': 2.})):
        monkeypatch.setattr(benchmark, name, lambda *args, value=value: value)
    assert benchmark.main(['--quick']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1])['torch'] is None
    assert lines[-2] == (
        'the same step in PyTorch: skipped, torch does not import (import of '
        'torch halted; None in sys.modules); pip install -r '
        'requirements-torch.txt adds it')
    assert sum('PyTorch' in line for line in lines[:-1]) == 1


class Unloadable(importlib.abc.MetaPathFinder):

    """torch installed, but its shared libraries do not load."""

    def find_spec(self, name, path, target=None):
        if name == 'torch':
            raise OSError('libtorch_cpu.so: cannot open shared object file')
        return None


def test_a_torch_that_does_not_load_is_skipped(monkeypatch):
    monkeypatch.delitem(sys.modules, 'torch', raising=False)
    monkeypatch.delitem(sys.modules, 'torch_peer', raising=False)
    monkeypatch.setattr(sys, 'meta_path', [Unloadable()] + sys.meta_path)
    assert benchmark.load_torch_peer(chainer.get_device('@numpy')) == (
        None, 'the same step in PyTorch: skipped, torch does not import '
        '(libtorch_cpu.so: cannot open shared object file); pip install -r '
        'requirements-torch.txt adds it')
    # And the PyTorch tests skip, where pytest.importorskip would fail.
    with pytest.raises(pytest.skip.Exception):
        import_torch()


def test_on_a_gpu_the_torch_part_is_skipped_in_one_line():
    gpu = types.SimpleNamespace(xp=types.SimpleNamespace())
    assert benchmark.load_torch_peer(gpu) == (
        None, 'the same step in PyTorch: skipped, on the CPU only')
