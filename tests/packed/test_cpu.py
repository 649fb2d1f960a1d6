import numba
import numpy
import pytest

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


def test_xor_popcount_rate_is_a_rate():
    rate = cpu.xor_popcount_rate(seconds=0.01)
    assert numpy.isfinite(rate) and rate > 0
