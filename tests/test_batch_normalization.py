import numpy
import pytest

import chainer
import chainer.links as L

from batch_normalization import BatchNormalization
from batch_normalization import LasagneBatchNormalization
from packed import reference
import recipes

BATCHES = [numpy.random.RandomState(k).normal(k, 1 + k, (5, 3)).astype(
    numpy.float32) for k in range(3)]


def lasagne_statistics(batches, eps, alpha=0.1):
    """Lasagne's BatchNormLayer updates, in float64: mean from 0, inv_std
    from 1, each a running average with weight alpha on the batch's."""
    mean, inv_std = numpy.zeros(3), numpy.ones(3)
    for x in batches:
        x = x.astype(numpy.float64)
        batch_inv_std = 1 / numpy.sqrt(x.var(axis=0) + eps)
        mean = (1 - alpha) * mean + alpha * x.mean(axis=0)
        inv_std = (1 - alpha) * inv_std + alpha * batch_inv_std
    return mean, inv_std


def test_population_statistics_are_lasagnes():
    bn = LasagneBatchNormalization(3, eps=1e-4)
    with chainer.using_config('train', True):
        for x in BATCHES:
            bn(x)
    mean, inv_std = lasagne_statistics(BATCHES, 1e-4)
    numpy.testing.assert_allclose(bn.avg_mean, mean, rtol=1e-6)
    numpy.testing.assert_allclose(bn.avg_inv_std, inv_std, rtol=1e-6)
    # Chainer's own would average the unbiased variance, from 1.
    assert not hasattr(bn, 'avg_var')


def test_inference_is_gamma_times_centred_times_inv_std_plus_beta():
    bn = LasagneBatchNormalization(3, eps=1e-4)
    bn.gamma.array[...] = [0.5, -2., 1.5]
    bn.beta.array[...] = [0.1, 0., -0.3]
    bn.avg_mean[...] = [1., -2., 0.5]
    bn.avg_inv_std[...] = [0.25, 3., 1.]
    x = BATCHES[1]
    with chainer.using_config('train', False):
        y = bn(x).array
    expected = ((x - bn.avg_mean) * bn.gamma.array * bn.avg_inv_std +
                bn.beta.array)
    numpy.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    # The packed engine folds the same statistics: std = 1 / inv_std.
    gamma, beta, mean, std = reference.bn_arrays(bn)
    numpy.testing.assert_allclose(std, 1 / bn.avg_inv_std, rtol=1e-7)


def test_training_normalises_as_chainers_batch_normalization():
    ours, chainers = (LasagneBatchNormalization(3, eps=1e-4),
                      L.BatchNormalization(3, eps=1e-4))
    x = chainer.Variable(BATCHES[2])
    with chainer.using_config('train', True):
        y, expected = ours(x), chainers(x.array)
    numpy.testing.assert_array_equal(y.array, expected.array)
    y.grad = numpy.ones_like(y.array)
    y.backward()
    assert ours.gamma.grad is not None


@pytest.mark.parametrize('recipe,kind', [
    (recipes.Port, BatchNormalization),
    (recipes.Paper, LasagneBatchNormalization)])
def test_only_the_paper_keeps_lasagnes_statistics(recipe, kind):
    for _, bn in recipe.model(8).predictor.layers():
        assert type(bn) is kind
