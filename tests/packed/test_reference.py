import numpy
import pytest

import chainer

import packed
from packed import reference


def random_bits(rows, k, seed=0):
    return numpy.random.RandomState(seed).rand(rows, k) < 0.5


@pytest.mark.parametrize('k', [1, 63, 64, 65, 130, 784])
def test_pack_unpack_round_trip_with_zero_padding(k):
    bits = random_bits(5, k)
    words = reference.pack_signs(bits)
    assert words.dtype == numpy.uint64 and words.shape == (5, -(-k // 64))
    numpy.testing.assert_array_equal(reference.unpack_signs(words, k), bits)
    assert reference.popcount(words).sum() == bits.sum()


def test_popcount_without_bitwise_count_is_right():
    rng = numpy.random.RandomState(0)
    words = rng.randint(0, 2 ** 63, 1000, dtype=numpy.int64).view(
        numpy.uint64) * numpy.uint64(2) + rng.randint(0, 2, 1000).astype(
        numpy.uint64)
    words[:3] = [0, 2 ** 64 - 1, 2 ** 63]
    expected = [bin(int(w)).count('1') for w in words]
    numpy.testing.assert_array_equal(reference._popcount_swar(words), expected)
    numpy.testing.assert_array_equal(reference.popcount(words), expected)


@pytest.mark.parametrize('m,n,k', [(1, 1, 1), (7, 5, 63), (3, 9, 64),
                                   (10, 4, 65), (33, 70, 1001)])
def test_xnor_popcount_is_the_plus_minus_one_product(m, n, k):
    a, w = random_bits(m, k, 1), random_bits(n, k, 2)
    plus_minus = [numpy.where(b, 1., -1.) for b in (a, w)]
    for product in (packed.xnor_popcount, reference.xnor_popcount):
        d = product(reference.pack_signs(a), reference.pack_signs(w))
        assert d.dtype == numpy.int32
        numpy.testing.assert_array_equal(
            k - 2 * d, plus_minus[0].dot(plus_minus[1].T))


def ternary(m, k, c, seed):
    """x in {-c, 0, +c}^(m x k), as dropout at 1 - 1/c leaves sign()'s
    output (-0 where a -1 was dropped), in float32."""
    rng = numpy.random.RandomState(seed)
    signs = numpy.where(rng.rand(m, k) < 0.5, 1, -1).astype(numpy.float32)
    return signs * (numpy.float32(c) * (rng.rand(m, k) >= 1 - 1 / c))


@pytest.mark.parametrize('m,n,k', [(1, 1, 1), (7, 5, 63), (3, 9, 64),
                                   (33, 70, 1001), (20, 30, 4096)])
@pytest.mark.parametrize('c', [1, 2, 4])
def test_ternary_product_is_blas_float32_bit_for_bit(m, n, k, c):
    x = ternary(m, k, c, seed=k)
    assert set(numpy.unique(abs(x))) <= {0, c} and (c > 1 or 0 not in x)
    w = random_bits(n, k, 2)
    signs = numpy.where(w, 1, -1).astype(numpy.float32)
    y = reference.ternary_product(x, reference.pack_signs(w))
    assert y.dtype == numpy.float32
    numpy.testing.assert_array_equal(y, x.astype(numpy.float64) @ signs.T)
    numpy.testing.assert_array_equal(y, x @ signs.T)


class FakeBN(object):
    def __init__(self, gamma, beta, mean, var, eps=2e-5):
        self.gamma = chainer.Parameter(gamma)
        self.beta = chainer.Parameter(beta)
        self.avg_mean, self.avg_var, self.eps = mean, var, eps


@pytest.mark.parametrize('alpha,c_scale', [(-2., 30.), (1 / 255, 5.),
                                           (2 / 255, 1.)])
def test_fold_threshold_agrees_with_bn_then_sign_for_every_s(alpha, c_scale):
    rng = numpy.random.RandomState(0)
    n = 60
    gamma = rng.normal(size=n)
    gamma[:10] = 0
    gamma[10:20] = -abs(gamma[10:20])
    bn = FakeBN(gamma, rng.normal(size=n), rng.normal(size=n) * c_scale,
                rng.uniform(0.5, 2, n) * c_scale ** 2)
    c = rng.normal(size=n) * c_scale
    threshold, flip = reference.fold_threshold(alpha, c, bn)
    s = numpy.arange(-3000, 3001)[:, None]
    a = alpha * s + c
    y = (gamma * (a - bn.avg_mean) / numpy.sqrt(bn.avg_var + bn.eps) +
         bn.beta.array)
    numpy.testing.assert_array_equal((s >= threshold) ^ flip, y >= 0)
