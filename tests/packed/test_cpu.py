import types

import numba
import numpy
import pytest

import benchmark
from net import MnistMLP
import packed
from packed import cpu
from packed import reference

# Odd rows and columns, words that fill no 8-word vector, several tiles.
SHAPES = [(1, 1, 1), (7, 5, 63), (3, 9, 64), (10, 4, 65), (33, 70, 1001),
          (130, 129, 200), (65, 67, 1000)]


def random_words(rows, k, seed):
    bits = numpy.random.RandomState(seed).rand(rows, k) < 0.5
    return reference.pack_signs(bits)


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_product_is_numpys(m, n, k):
    a, w = random_words(m, k, 1), random_words(n, k, 2)
    d = cpu.xnor_popcount(a, w)
    assert d.dtype == numpy.int32
    numpy.testing.assert_array_equal(d, reference.xnor_popcount(a, w))


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_sign_product_is_the_float32_product_bit_for_bit(m, n, k):
    rng = numpy.random.RandomState(6)
    x, w = (numpy.where(rng.rand(rows, k) < 0.5, 1, -1).astype(numpy.float32)
            for rows in (m, n))
    y = cpu.sign_product(x, cpu.transpose(reference.pack_signs(w >= 0)), n)
    assert y.dtype == numpy.float32
    numpy.testing.assert_array_equal(y, x @ w.T)


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_sign_bits_of_one_plane_are_numpys_threshold_and_pack(m, n, k):
    a, w = random_words(m, k, 3), random_words(n, k, 4)
    rng = numpy.random.RandomState(5)
    threshold = rng.randint(-1, k + 2, n).astype(numpy.int32)
    flip = rng.rand(n) < 0.5
    expected = reference.pack_signs(
        (reference.xnor_popcount(a, w) >= threshold) ^ flip)
    numpy.testing.assert_array_equal(
        cpu.sign_bits(a[None], w, threshold, flip), expected)


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_sign_bits_weight_plane_b_by_two_to_the_b(m, n, k):
    planes = numpy.stack([random_words(m, k, 10 + b) for b in range(8)])
    w = random_words(n, k, 6)
    d = sum(reference.xnor_popcount(planes[b], w).astype(numpy.int64) << b
            for b in range(8))
    rng = numpy.random.RandomState(7)
    threshold = rng.randint(0, 255 * k + 2, n).astype(numpy.int32)
    threshold[:n // 2] = numpy.median(d, axis=0)[:n // 2]
    flip = rng.rand(n) < 0.5
    numpy.testing.assert_array_equal(
        cpu.sign_bits(planes, w, threshold, flip),
        reference.pack_signs((d >= threshold) ^ flip))


@pytest.mark.parametrize('k', [1, 63, 64, 65, 784])
def test_bit_planes_hold_the_pixels(k):
    pixels = numpy.random.RandomState(k).randint(0, 256, (9, k)).astype(
        numpy.uint8)
    words = -(-k // 64) + 3
    planes = cpu.bit_planes(pixels, words)
    assert planes.shape == (8, 9, words)
    assert not planes[:, :, -(-k // 64):].any()
    numpy.testing.assert_array_equal(
        sum(reference.unpack_signs(planes[b], k).astype(numpy.int32) << b
            for b in range(8)), pixels)


def test_results_do_not_depend_on_the_thread_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip('one core: one thread against one')
    a, w = random_words(301, 1000, 8), random_words(517, 1000, 9)
    threshold = numpy.full(517, 500, numpy.int32)
    flip = numpy.arange(517) % 3 == 0
    threads = numba.get_num_threads()
    results = []
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)
            results.append((cpu.xnor_popcount(a, w),
                            cpu.sign_bits(a[None], w, threshold, flip)))
    finally:
        numba.set_num_threads(threads)
    for one, many in zip(*results):
        numpy.testing.assert_array_equal(one, many)
    numpy.testing.assert_array_equal(results[0][0],
                                     reference.xnor_popcount(a, w))


def test_xor_popcount_rate_is_the_words_counted_over_their_seconds(
        monkeypatch):
    # Each pass over the words takes 1 ms of a faked thread clock.
    clock, passes = [0.], []

    def one_ms_a_pass(words, repeat):
        passes.append((len(words), repeat))
        clock[0] += 1e-3 * repeat
        return 0

    monkeypatch.setattr(cpu, '_xor_popcount_sum', one_ms_a_pass)
    monkeypatch.setattr(cpu, 'time', types.SimpleNamespace(
        thread_time=lambda: clock[0]))
    rate = cpu.xor_popcount_rate(seconds=0.01)
    n_words, repeat = passes[-1]
    assert repeat * 1e-3 >= 0.01
    assert rate == pytest.approx(n_words / 1e-3 * numba.get_num_threads())


def test_xor_popcount_sum_counts_the_bits_that_differ():
    words = random_words(1, 640, 12)[0]
    expected = sum(bin(int(x) ^ int(words[r])).count('1')
                   for r in range(3) for x in words)
    assert cpu._xor_popcount_sum(words, 3) == expected


FIRST_LAYERS = [cpu.BIT_PLANES] + (
    [cpu.VNNI] if cpu._has_vnni() else [])


def test_first_layer_path_is_named_and_vnni_where_the_cpu_has_it():
    assert cpu.FIRST_LAYER == (
        cpu.VNNI if cpu._has_vnni() else cpu.BIT_PLANES)


@pytest.mark.parametrize('path', FIRST_LAYERS)
@pytest.mark.parametrize('m,n,k', [(1, 1, 1), (7, 63, 784), (9, 64, 63),
                                   (66, 65, 65), (5, 1000, 130),
                                   (130, 1001, 784), (3, 70, 3)])
def test_first_layer_sums_are_the_exact_pixel_products(path, m, n, k):
    rng = numpy.random.RandomState(m + n + k)
    pixels = rng.randint(0, 256, (m, k)).astype(numpy.uint8)
    pixels[0] = 255
    signs = numpy.where(rng.rand(n, k) < 0.5, 1, -1).astype(numpy.int8)
    signs[-1] = -1
    s = pixels.astype(numpy.int64).dot(signs.T.astype(numpy.int64))
    threshold = rng.randint(-255 * k, 255 * k + 2, n).astype(numpy.int32)
    # Half the units on the boundary of some image: off by one would show.
    threshold[:n // 2] = s[m // 2, :n // 2]
    flip = rng.rand(n) < 0.5
    layer = cpu.first_layer(signs, threshold, flip, path)
    numpy.testing.assert_array_equal(
        cpu.first_sign_bits(pixels, layer),
        reference.pack_signs((s >= threshold) ^ flip))


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_product_with_kept_transposed_weights_is_numpys(m, n, k):
    a, w = random_words(m, k, 11), random_words(n, k, 12)
    wt = cpu.transpose(w)
    assert wt.shape == (-(-n // 64) * 8, w.shape[1], 8)
    numpy.testing.assert_array_equal(cpu.xnor_popcount(a, w, wt),
                                     reference.xnor_popcount(a, w))


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_ternary_product_with_kept_transposed_weights_is_numpys(m, n, k):
    rng = numpy.random.RandomState(k)
    x = rng.choice(numpy.float32([-2, -0., 0, 2]), (m, k))
    w = random_words(n, k, 13)
    numpy.testing.assert_array_equal(
        cpu.ternary_product(x, cpu.transpose(w), n),
        reference.ternary_product(x, w))


@pytest.mark.parametrize('m,n,k', SHAPES)
def test_transpose_signs_packs_sign_of_w_in_place(m, n, k):
    w = numpy.random.RandomState(n).normal(size=(n, k)).astype(numpy.float32)
    w.flat[:3] = (0., -0., -1e-30)
    expected = cpu.transpose(reference.pack_signs(w >= 0))
    wt = numpy.zeros_like(expected)
    cpu.transpose_signs(w, wt)
    numpy.testing.assert_array_equal(wt, expected)


@pytest.mark.parametrize('n_units', [63, 1001])
def test_packed_net_on_either_first_layer_is_the_numpy_path(n_units,
                                                            monkeypatch):
    numpy.random.seed(n_units)
    mlp = MnistMLP(784, n_units, 10, n_hidden=2)
    pixels = numpy.random.RandomState(3).randint(0, 256, (67, 784)).astype(
        numpy.uint8)
    benchmark.calibrate(mlp, pixels[:50] / numpy.float32(255))
    results = []
    for path in FIRST_LAYERS:
        monkeypatch.setattr(cpu, 'FIRST_LAYER', path)
        hidden = []
        results.append((packed.PackedMLP.from_chain(mlp).forward(
            pixels, hidden), hidden))
    monkeypatch.setattr(packed.mlp, 'compiled', lambda: None)
    hidden = []
    expected = packed.PackedMLP.from_chain(mlp).forward(pixels, hidden)
    assert 0.05 < reference.unpack_signs(hidden[0], n_units).mean() < 0.95
    for logits, bits in results:
        numpy.testing.assert_array_equal(logits, expected)
        for c, e in zip(bits, hidden):
            numpy.testing.assert_array_equal(c, e)


def test_every_kernel_has_a_cache_file_of_its_own():
    # Numba's cache names a compiled function by its source, not by its
    # flags: two njit of one Python function, one parallel, would share one
    # file, and each would load whichever compiled first.
    kernels = [k for k in vars(cpu).values()
               if isinstance(k, numba.core.registry.CPUDispatcher)]
    names = [k._cache._cache_file._index_name for k in kernels]
    assert len(kernels) >= 8
    assert len(set(names)) == len(names)
    assert cpu._product.targetoptions.get('parallel')
    assert not cpu._serial_product.targetoptions.get('parallel')
