import subprocess
import sys

import numpy
import pytest

import chainer

from bst import bst
from conftest import ROOT, SIGNED, UNSIGNED, float64_forward
from net import MnistMLP
import packed
from packed import reference
import recipes
from test_reference import random_bits
from utils import numba_kernels


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
    affine = SIGNED if signed_input else UNSIGNED
    engine = packed.PackedMLP.from_chain(mlp, affine)
    hidden = []
    logits = engine.forward(pixels, hidden)
    expected_bits, expected_logits = float64_forward(mlp, pixels, affine)
    assert len(hidden) == n_hidden
    for k, (words, bits) in enumerate(
            zip(hidden, expected_bits, strict=True), 1):
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
    for k, (c, e) in enumerate(
            zip(compiled_hidden, numpy_hidden, strict=True), 1):
        numpy.testing.assert_array_equal(c, e, err_msg='layer %d' % k)
    numpy.testing.assert_array_equal(logits, expected)


def test_without_numba_one_line_says_so_and_numpy_runs(monkeypatch, capsys):
    mlp = random_net(65, 2, seed=4)
    pixels = numpy.random.RandomState(3).randint(0, 256, (20, 784)).astype(
        numpy.uint8)
    expected = packed.PackedMLP.from_chain(mlp).forward(pixels)
    monkeypatch.setitem(sys.modules, 'numba', None)
    monkeypatch.delitem(sys.modules, 'packed.cpu')
    monkeypatch.setattr(numba_kernels, '_noted', False)
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
    assert err[0].endswith('); NumPy runs in its place')


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
    assert len(cpu_hidden) == 2
    for c, g in zip(cpu_hidden, gpu_hidden, strict=True):
        numpy.testing.assert_array_equal(g.get(), c)
    numpy.testing.assert_allclose(logits.get(), expected, rtol=1e-6)


def forward_both_paths(monkeypatch, engine, pixels):
    """(logits, hidden bits) of the compiled path and of NumPy's."""
    results = []
    for kernels in (packed.compiled(), None):
        monkeypatch.setattr(packed.mlp, 'compiled', lambda: kernels)
        hidden = []
        results.append((engine.forward(pixels, hidden), hidden))
    monkeypatch.undo()
    return results


def test_a_sum_on_its_threshold_gives_plus_one_for_either_sign_of_gamma(
        monkeypatch):
    mlp = random_net(64, 2, seed=5)
    linear, bn = mlp.layers()[1]
    rng = numpy.random.RandomState(5)
    # a = 64 - 2 S, an even integer; BN(a) = 0 exactly where a = mean.
    linear.b.array[...] = 0
    bn.avg_mean[...] = rng.randint(-4, 5, 64) * 2
    bn.beta.array[...] = 0
    bn.gamma.array[...] = rng.choice([-1., 1.], 64) * rng.uniform(.5, 2, 64)
    pixels = numpy.random.RandomState(6).randint(0, 256, (200, 784)).astype(
        numpy.uint8)
    bits, _ = float64_forward(mlp, pixels)
    # The second layer's sums, from the first layer's bits.
    a = numpy.where(bits[0], 1., -1.).dot(
        numpy.where(linear.W.array >= 0, 1., -1.).T)
    ties = a == bn.avg_mean
    for sign in (bn.gamma.array > 0, bn.gamma.array < 0):
        assert (ties & sign).sum() > 100
    engine = packed.PackedMLP.from_chain(mlp)
    for _, hidden in forward_both_paths(monkeypatch, engine, pixels):
        got = reference.unpack_signs(hidden[1], 64)
        assert got[ties].all()
        numpy.testing.assert_array_equal(got, bits[1])


def test_a_zero_weight_is_packed_as_plus_one(monkeypatch):
    mlp = random_net(65, 2, seed=7)
    rng = numpy.random.RandomState(7)
    for linear, _ in mlp.layers():
        linear.W.array[rng.rand(*linear.W.shape) < 0.2] = 0
    engine = packed.PackedMLP.from_chain(mlp)
    for k, (linear, _) in enumerate(mlp.layers(), 1):
        signs = reference.unpack_signs(engine.arrays['l{}/W'.format(k)],
                                       linear.W.shape[1])
        assert signs[linear.W.array == 0].all()
    pixels = numpy.random.RandomState(8).randint(0, 256, (50, 784)).astype(
        numpy.uint8)
    bits, expected = float64_forward(mlp, pixels)
    for logits, hidden in forward_both_paths(monkeypatch, engine, pixels):
        numpy.testing.assert_allclose(logits, expected, rtol=1e-5,
                                      atol=1e-4)
        for words, b in zip(hidden, bits, strict=True):
            numpy.testing.assert_array_equal(
                reference.unpack_signs(words, b.shape[1]), b)


def chainer_float64(recipe, n_units, seed):
    """A net of ``recipe`` held in float64, its population statistics with
    variances near the recipe's eps (so that eps moves every threshold) and
    betas of the pre-activations' spread."""
    with chainer.using_config('dtype', numpy.float64):
        mlp = recipe.model(n_units).predictor
    rng = numpy.random.RandomState(seed)
    for k, (linear, bn) in enumerate(mlp.layers(), 1):
        n = len(linear.W.array)
        linear.b.array[...] = rng.normal(size=n)
        spread = 10. if k == 1 else numpy.sqrt(linear.W.shape[1])
        bn.gamma.array[...] = rng.normal(size=n)
        bn.avg_mean[...] = rng.normal(size=n) * spread
        var = rng.uniform(0.5, 2, n) * bn.eps
        if hasattr(bn, 'avg_inv_std'):
            bn.avg_inv_std[...] = 1 / numpy.sqrt(var + bn.eps)
        else:
            bn.avg_var[...] = var
        bn.beta.array[...] = rng.normal(size=n) * spread / numpy.sqrt(
            var + bn.eps)
    return mlp


@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper,
                                    recipes.Torch7])
def test_packed_net_is_chainers_inference_forward_in_float64(recipe):
    mlp = chainer_float64(recipe, 65, seed=9)
    pixels = numpy.random.RandomState(9).randint(0, 256, (300, 784)).astype(
        numpy.uint8)
    scale, shift = recipe.input_affine()
    x = pixels * scale + shift
    expected_bits = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        h = x
        *hidden_layers, (linear, bn) = mlp.layers()
        for hidden_linear, hidden_bn in hidden_layers:
            h = bst(hidden_bn(hidden_linear(h)))
            expected_bits.append(h.array > 0)
        expected = bn(linear(h)).array
    engine = packed.PackedMLP.from_chain(mlp, (scale, shift))
    hidden = []
    logits = engine.forward(pixels, hidden)
    for words, bits in zip(hidden, expected_bits, strict=True):
        assert 0.05 < bits.mean() < 0.95
        numpy.testing.assert_array_equal(
            reference.unpack_signs(words, 65), bits)
    numpy.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-3)


def test_forward_is_the_same_with_one_thread_and_with_all():
    numba = pytest.importorskip('numba')
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip('one core: one thread against one')
    mlp = random_net(1001, 2, seed=10)
    engine = packed.PackedMLP.from_chain(mlp)
    pixels = numpy.random.RandomState(10).randint(0, 256, (257, 784)).astype(
        numpy.uint8)
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)
            hidden = []
            results.append((engine.forward(pixels, hidden), hidden))
    finally:
        numba.set_num_threads(threads)
    (one, one_hidden), (many, many_hidden) = results
    numpy.testing.assert_array_equal(one, many)
    for a, b in zip(one_hidden, many_hidden, strict=True):
        numpy.testing.assert_array_equal(a, b)
