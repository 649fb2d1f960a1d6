import numpy
import pytest

import chainer

from binary_linear import BinaryLinear
from net import MnistMLP


def batch(n=8, n_in=784):
    return numpy.random.RandomState(0).uniform(
        0, 1, (n, n_in)).astype(numpy.float32)


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('n_units', [1, 33, 1000])
def test_logits_shape_and_dtype(train, n_units):
    model = MnistMLP(784, n_units, 10)
    with chainer.using_config('train', train):
        y = model(batch())
    assert y.shape == (8, 10) and y.dtype == numpy.float32


def test_hidden_activations_are_plus_minus_one():
    model = MnistMLP(784, 20, 10)
    inputs = []
    forward = model.l2.forward
    model.l2.forward = lambda h: inputs.append(h.array) or forward(h)
    model(batch())
    values = set(numpy.unique(inputs[0]))
    assert values == {-1., 1.}


def test_training_mode_updates_statistics_and_inference_mode_uses_them():
    model = MnistMLP(784, 20, 10)
    x = batch()
    before = model.b3.avg_mean.copy()
    with chainer.using_config('train', False):
        y1 = model(x).array
        y2 = model(x[:1]).array
    numpy.testing.assert_array_equal(model.b3.avg_mean, before)
    # Inference mode normalises each image alone, batch or not.
    numpy.testing.assert_allclose(y1[:1], y2, rtol=1e-6)
    model(x)
    assert not numpy.array_equal(model.b3.avg_mean, before)


def test_binary_links_are_the_three_binary_layers():
    model = MnistMLP(784, 20, 10)
    links = model.binary_links()
    assert all(isinstance(link, BinaryLinear) for link in links)
    assert {id(link) for link in links} == {
        id(model.l1), id(model.l2), id(model.l3)}


@pytest.mark.parametrize('ratio,ternary', [
    (0., True), (0.5, True), (0.75, True), (0.2, False), (0.3, False)])
def test_ternary_inputs_are_those_where_dropout_scales_by_a_power_of_two(
        ratio, ternary):
    numpy.random.seed(0)
    model = MnistMLP(784, 16, 10, n_hidden=3, hidden_dropout=ratio)
    links = model.ternary_input_links()
    assert links == ([model.l2, model.l3, model.l4] if ternary else [])
    # Without dropout the inputs are +-1 alone (expected below).
    assert model.signed_input_links() == ([] if ratio else links)
    inputs = []
    for link in links:
        link.W_b = numpy.where(link.W.array >= 0, 1, -1).astype(numpy.float32)
        link.product = lambda x, W_b=link.W_b: (inputs.append(x), x @ W_b.T)[1]
    x = numpy.random.RandomState(0).rand(50, 784).astype(numpy.float32)
    # Dropout's scale, as Chainer computes it: a power of two, or no link.
    scale = numpy.float32(1 / (1 - ratio))
    assert (numpy.frexp(scale)[0] == 0.5) == ternary
    for train, c in ((True, scale), (False, 1)):
        with chainer.using_config('train', train):
            model(x)
        assert len(inputs) == len(links)
        expected = {0, c} if train and ratio else {c}
        for h in inputs:
            assert set(numpy.unique(numpy.abs(h))) == expected
        del inputs[:]


def test_depth_and_names():
    model = MnistMLP(784, 16, 10, n_hidden=3)
    assert [(linear.in_size, linear.out_size, b.avg_mean.shape)
            for linear, b in model.layers()] == [
        (784, 16, (16,)), (16, 16, (16,)), (16, 16, (16,)), (16, 10, (10,))]
    assert [name for name, _ in sorted(model.namedlinks(skipself=True))] == [
        '/b1', '/b2', '/b3', '/b4', '/l1', '/l2', '/l3', '/l4']


def test_dropout_only_in_training():
    numpy.random.seed(0)
    model = MnistMLP(784, 50, 10, input_dropout=0.2, hidden_dropout=0.5)
    plain = MnistMLP(784, 50, 10)
    plain.copyparams(model)
    x = batch()
    with chainer.using_config('train', False):
        y = model(x).array
        numpy.testing.assert_array_equal(y, model(x).array)
        numpy.testing.assert_array_equal(y, plain(x).array)
    # In training the inputs and hidden units are dropped at random.
    y1, y2 = model(x).array, model(x).array
    assert not numpy.array_equal(y1, y2)
    assert not numpy.array_equal(y1, plain(x).array)


def test_a_net_draws_where_it_drops_out_or_binarizes_at_random():
    assert not MnistMLP(6, 4, 3).draws()
    assert MnistMLP(6, 4, 3, input_dropout=0.2).draws()
    assert MnistMLP(6, 4, 3, hidden_dropout=0.5).draws()
    assert MnistMLP(6, 4, 3, stochastic=True).draws()
