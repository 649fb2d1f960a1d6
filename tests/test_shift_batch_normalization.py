import fractions
import math

import numpy
import pytest

import chainer

from shift_batch_normalization import ShiftBatchNormalization
from shift_batch_normalization import ap2
from shift_batch_normalization import shift_batch_normalization


def ap2_oracle(x):
    """AP2 in exact arithmetic: sign(x) 2^round(log2 |x|), AP2(0) = 0. With
    2^k <= |x| < 2^(k+1), |x| rounds up where |x|^2 >= 2^(2k+1). (The
    authors' float32 log(|x|) / log(2) may round otherwise within an ulp or
    so of a cut, where no float lies exactly.)"""
    if x == 0:
        return 0.
    k = math.frexp(abs(x))[1] - 1
    up = fractions.Fraction(abs(x)) ** 2 >= fractions.Fraction(2) ** (
        2 * k + 1)
    return math.copysign(2. ** (k + up), x)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_ap2_at_powers_of_two_cut_points_negatives_and_zero(dtype):
    powers = [2. ** k for k in range(-30, 31)]
    # The cut between 2^k and 2^(k+1) is 2^(k + 1/2): the floats next to
    # it on either side.
    cuts = numpy.array([2. ** (k + 0.5) for k in range(-10, 10)], dtype)
    below = numpy.nextafter(cuts, dtype(0))
    above = numpy.nextafter(cuts, dtype(numpy.inf))
    x = numpy.concatenate([numpy.array(powers, dtype), below, cuts, above,
                           numpy.array([3, 5.7, 0.2, 1e-30], dtype)])
    x = numpy.concatenate([x, -x, [dtype(0), dtype(-0.)]])
    y = ap2(x)
    assert y.dtype == dtype
    numpy.testing.assert_array_equal(y, [ap2_oracle(float(v)) for v in x])
    numpy.testing.assert_array_equal(ap2(numpy.array(powers, dtype)), powers)
    numpy.testing.assert_array_equal(
        ap2(below), [2. ** k for k in range(-10, 10)])
    numpy.testing.assert_array_equal(
        ap2(above), [2. ** (k + 1) for k in range(-10, 10)])
    assert ap2(dtype(3)) == 4 and ap2(dtype(-0.2)) == -0.25
    special = ap2(numpy.array([numpy.inf, -numpy.inf, numpy.nan], dtype))
    assert list(special[:2]) == [numpy.inf, -numpy.inf]
    assert numpy.isnan(special[2])


def design_forward(x, gamma, beta, eps):
    """The design page's training forward, in float64 (its items 7-8)."""
    mu = x.mean(axis=0)
    c = x - mu
    C = numpy.vectorize(ap2_oracle)(c)
    inv_std = 1 / numpy.sqrt((C * c).mean(axis=0) + eps)
    s = numpy.vectorize(ap2_oracle)(inv_std)
    x_hat = c * s
    g_ap2 = numpy.vectorize(ap2_oracle)(gamma)
    return x_hat * g_ap2 + beta, mu, inv_std, (C, s, x_hat, g_ap2)


def design_backward(g, terms):
    C, s, x_hat, g_ap2 = terms
    g_x = g_ap2 * s * (g - g.mean(axis=0) - s ** 2 * C * (C * g).mean(
        axis=0))
    g_gamma = (numpy.vectorize(ap2_oracle)(x_hat) * g).sum(axis=0)
    return g_x, g_gamma, g.sum(axis=0)


@pytest.fixture
def batch():
    rng = numpy.random.RandomState(0)
    x = rng.normal(3, 2, (100, 7)) * rng.uniform(0.1, 10, 7)
    gamma = rng.uniform(-3, 3, 7)
    beta = rng.normal(size=7)
    g = rng.normal(size=(100, 7))
    return x, gamma, beta, g


def test_training_forward_and_backward_are_the_authors(batch):
    x, gamma, beta, g = batch
    xv, gv, bv = (chainer.Variable(a.copy()) for a in (x, gamma, beta))
    y = shift_batch_normalization(xv, gv, bv, eps=1e-5)
    expected, _, _, terms = design_forward(x, gamma, beta, 1e-5)
    numpy.testing.assert_allclose(y.array, expected, rtol=1e-12, atol=1e-12)
    y.grad = g
    y.backward()
    for got, want in zip((xv.grad, gv.grad, bv.grad),
                         design_backward(g, terms)):
        numpy.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # Not the forward's derivative: a finite difference tells them apart.
    step = 1e-6
    shifted = x.copy()
    shifted[3, 2] += step
    numeric = (g * (design_forward(shifted, gamma, beta, 1e-5)[0] -
                    expected)).sum() / step
    assert abs(numeric - xv.grad[3, 2]) > 1e-3 * abs(numeric)


def test_running_statistics_average_mu_and_the_unrounded_inv_std(batch):
    x, gamma, beta, _ = batch
    bn = ShiftBatchNormalization(7)
    assert (bn.decay, bn.eps) == (0.875, 1e-5)
    numpy.testing.assert_array_equal(bn.gamma.array, 1)
    numpy.testing.assert_array_equal(bn.avg_inv_std, 1)
    mean, inv_std = numpy.zeros(7), numpy.ones(7)
    with chainer.using_config('train', True):
        for k in range(3):
            bn(x[k * 30:(k + 1) * 30].astype(numpy.float32))
            _, mu, batch_inv_std, _ = design_forward(
                x[k * 30:(k + 1) * 30].astype(numpy.float32).astype(
                    numpy.float64), 1, 0, 1e-5)
            mean = 0.875 * mean + 0.125 * mu
            inv_std = 0.875 * inv_std + 0.125 * batch_inv_std
    numpy.testing.assert_allclose(bn.avg_mean, mean, rtol=1e-5)
    numpy.testing.assert_allclose(bn.avg_inv_std, inv_std, rtol=1e-5)
    assert not numpy.allclose(inv_std, ap2(inv_std))


def test_evaluation_is_centred_times_ap2_inv_std_times_ap2_gamma_plus_beta(
        batch):
    x, gamma, beta, _ = batch
    bn = ShiftBatchNormalization(7)
    bn.gamma.array[...] = gamma
    bn.beta.array[...] = beta
    bn.avg_mean[...] = x.mean(axis=0)
    bn.avg_inv_std[...] = 1 / x.std(axis=0)
    x = x.astype(numpy.float32)
    with chainer.using_config('train', False):
        y = bn(x).array
    expected = ((x - bn.avg_mean.astype(numpy.float64)) *
                ap2(bn.avg_inv_std.astype(numpy.float64)) *
                ap2(bn.gamma.array.astype(numpy.float64)) + beta)
    numpy.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    gamma, beta_, mean, std = bn.population_terms()
    numpy.testing.assert_array_equal(gamma, ap2(bn.gamma.array))
    numpy.testing.assert_array_equal(1 / std, ap2(bn.avg_inv_std))
