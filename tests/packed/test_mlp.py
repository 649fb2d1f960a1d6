import subprocess
import sys

import numpy
import pytest

from conftest import ROOT, float64_forward
from net import MnistMLP
import packed
from packed import reference
from test_reference import random_bits


def random_net(n_units, n_hidden, seed):
    numpy.random.seed(seed)
    mlp = MnistMLP(784, n_units, 10, n_hidden=n_hidden)
    rng = numpy.random.RandomState(seed)
    for k, (linear, bn) in enumerate(mlp.layers(), 1):
        n, k_in = linear.W.shape
        linear.b.array[...] = rng.normal(size=n)
        gamma = rng.normal(size=n)
        gamma[rng.rand(n) < 0.1] = 0
        bn.gamma.array[...] = gamma
        bn.beta.array[...] = rng.normal(size=n)
        # Spreads like those of the pre-activations, so that units fire
        # on some images and not on others.
        spread = 10. if k == 1 else numpy.sqrt(k_in)
        bn.avg_mean[...] = rng.normal(size=n) * spread
        bn.avg_var[...] = rng.uniform(0.5, 2, n) * spread ** 2
    return mlp


@pytest.mark.parametrize('n_units,n_hidden,signed_input', [
    (63, 2, False), (64, 2, True), (65, 1, False), (1000, 2, False),
    (1001, 3, True)])
def test_packed_net_is_the_float_net(n_units, n_hidden, signed_input):
    mlp = random_net(n_units, n_hidden, seed=n_units)
    pixels = numpy.random.RandomState(1).randint(0, 256, (40, 784)).astype(
        numpy.uint8)
    engine = packed.PackedMLP.from_chain(mlp, signed_input)
    hidden = []
    logits = engine.forward(pixels, hidden)
    expected_bits, expected_logits = float64_forward(mlp, pixels, signed_input)
    assert len(hidden) == n_hidden
    for k, (words, bits) in enumerate(zip(hidden, expected_bits), 1):
        assert 0.05 < bits.mean() < 0.95
        numpy.testing.assert_array_equal(
            reference.unpack_signs(words, n_units), bits,
            err_msg='layer %d' % k)
    assert logits.dtype == numpy.float32
    numpy.testing.assert_allclose(logits, expected_logits, rtol=1e-5,
                                  atol=1e-4)


@pytest.mark.parametrize('n_units,n_hidden', [
    (63, 2), (64, 2), (65, 1), (1000, 2), (1001, 3)])
def test_compiled_path_is_the_numpy_path_bit_for_bit(n_units, n_hidden,
                                                     monkeypatch):
    mlp = random_net(n_units, n_hidden, seed=n_units + 1)
    pixels = numpy.random.RandomState(2).randint(0, 256, (131, 784)).astype(
        numpy.uint8)
    engine = packed.PackedMLP.from_chain(mlp)
    assert packed.compiled() is not None
    compiled_hidden = []
    logits = engine.forward(pixels, compiled_hidden)
    monkeypatch.setattr(packed.mlp, 'compiled', lambda: None)
    numpy_hidden = []
    expected = engine.forward(pixels, numpy_hidden)
    assert len(compiled_hidden) == len(numpy_hidden) == n_hidden
    for k, (c, e) in enumerate(zip(compiled_hidden, numpy_hidden), 1):
        numpy.testing.assert_array_equal(c, e, err_msg='layer %d' % k)
    numpy.testing.assert_array_equal(logits, expected)


def test_without_numba_one_line_says_so_and_numpy_runs(monkeypatch, capsys):
    mlp = random_net(65, 2, seed=4)
    pixels = numpy.random.RandomState(3).randint(0, 256, (20, 784)).astype(
        numpy.uint8)
    expected = packed.PackedMLP.from_chain(mlp).forward(pixels)
    monkeypatch.setitem(sys.modules, 'numba', None)
    monkeypatch.delitem(sys.modules, 'packed.cpu')
    packed.compiled.cache_clear()
    try:
        engine = packed.PackedMLP.from_chain(mlp)
        logits = [engine.forward(pixels) for _ in range(2)]
        assert packed.compiled() is None
    finally:
        monkeypatch.undo()
        packed.compiled.cache_clear()
    for result in logits:
        numpy.testing.assert_array_equal(result, expected)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith('note: numba is not available (')
    assert err[0].endswith('); the packed engine uses NumPy')


def test_importing_packed_imports_no_numba():
    # Training and the GPU path never pay Numba's import.
    code = ('import sys; sys.path.insert(0, {!r}); import packed; '
            'print("numba" in sys.modules)'.format(ROOT))
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True)
    assert out.stdout.split() == ['False']


def test_save_load_without_pickle_and_summary(tmp_path):
    mlp = random_net(1000, 2, seed=0)
    engine = packed.PackedMLP.from_chain(mlp)
    path = str(tmp_path / 'packed.npz')
    engine.save(path)
    with numpy.load(path, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
    loaded = packed.PackedMLP.load(path)
    pixels = numpy.random.RandomState(0).randint(0, 256, (20, 784)).astype(
        numpy.uint8)
    numpy.testing.assert_array_equal(loaded.forward(pixels),
                                     engine.forward(pixels))
    lines = engine.summary().splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:]
            if line[0] != '-'}
    assert set(rows) == {'l1', 'l2', 'l3', 'total'}
    # l2: 1000x1000 binary weights, 1000 thresholds and flips.
    assert rows['l2'][2:5] == ['1000000', str(4 * 1005000),
                               str(1000 * 16 * 8 + 1000 * 5)]
    for name in ('l1', 'l2'):
        assert float(rows[name][5].rstrip('x')) >= 28


def test_corrupt_packed_file_is_refused(tmp_path):
    path = tmp_path / 'bad.npz'
    path.write_bytes(b'not an npz')
    with pytest.raises(packed.PackedError, match='bad.npz'):
        packed.PackedMLP.load(str(path))


@pytest.mark.gpu
def test_gpu_kernel_and_model_match_the_cpu():
    import cupy
    for m, n, k in [(1, 1, 1), (70, 130, 65), (200, 1001, 4096)]:
        a = reference.pack_signs(random_bits(m, k, 1))
        w = reference.pack_signs(random_bits(n, k, 2))
        numpy.testing.assert_array_equal(
            packed.xnor_popcount(cupy.asarray(a), cupy.asarray(w)).get(),
            packed.xnor_popcount(a, w))
    mlp = random_net(1001, 3, seed=3)
    pixels = numpy.random.RandomState(1).randint(0, 256, (300, 784)).astype(
        numpy.uint8)
    cpu = packed.PackedMLP.from_chain(mlp)
    gpu = packed.PackedMLP.from_chain(mlp).to_device(cupy)
    cpu_hidden, gpu_hidden = [], []
    expected = cpu.forward(pixels, cpu_hidden)
    logits = gpu.forward(cupy.asarray(pixels), gpu_hidden)
    for c, g in zip(cpu_hidden, gpu_hidden):
        numpy.testing.assert_array_equal(g.get(), c)
    numpy.testing.assert_allclose(logits.get(), expected, rtol=1e-6)
