import numpy
import pytest

import chainer
import chainer.links as L

from conftest import N_TEST, N_TRAIN
from net import MnistMLP
import recipes
from squared_hinge import squared_hinge


@pytest.mark.parametrize('which,clipped', [
    ('all', {'W', 'b', 'gamma', 'beta'}),
    ('binary', {'W'}),
])
def test_clipping_choice(which, clipped):
    model = L.Classifier(MnistMLP(6, 5, 3))
    for param in model.params():
        param.array[...] = 5
        param.grad = numpy.zeros_like(param.array)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    recipes.add_clipping(optimizer, model, which, 'post')
    optimizer.update()
    for name, param in model.namedparams():
        expected = 1 if name.rsplit('/', 1)[1] in clipped else 5
        assert param.array.max() == expected, name


def pushed_past_one(recipe, n_updates):
    """A model at 0.9999 everywhere after updates whose gradients push every
    parameter up by Adam's first steps."""
    numpy.random.seed(0)
    model = recipe.model(8)
    optimizer = recipe.optimizer(model, 'all')
    for param in model.params():
        param.array[...] = 0.9999
    for _ in range(n_updates):
        for param in model.params():
            param.grad = numpy.full_like(param.array, -1)
        optimizer.update()
    return model


def test_port_clips_before_each_update_as_chainer_v1_did():
    # Clipped first (0.9999 stays), then one step of Adam: 0.9999 + 0.001.
    for param in pushed_past_one(recipes.Port, 1).params():
        numpy.testing.assert_allclose(param.array, 1.0009, rtol=1e-6)
    # The second update clips to 1 first, then steps: 1 + 0.001.
    for param in pushed_past_one(recipes.Port, 2).params():
        numpy.testing.assert_allclose(param.array, 1.001, rtol=1e-6)


def test_paper_clips_after_each_update():
    for param in pushed_past_one(recipes.Paper, 1).params():
        assert param.array.max() == 1


def test_port_model_is_the_ports_net_with_chainer_v1s_eps():
    model = recipes.Port.model(32)
    mlp = model.predictor
    assert [(linear.in_size, linear.out_size)
            for linear, _ in mlp.layers()] == [(784, 32), (32, 32), (32, 10)]
    assert all(bn.eps == 1e-5 for _, bn in mlp.layers())
    assert (mlp.input_dropout, mlp.hidden_dropout) == (0, 0)


def test_paper_model_is_the_papers_net():
    numpy.random.seed(0)
    model = recipes.Paper.model(64)
    mlp = model.predictor
    assert model.lossfun is squared_hinge
    assert [(linear.in_size, linear.out_size)
            for linear, _ in mlp.layers()] == [
        (784, 64), (64, 64), (64, 64), (64, 10)]
    assert (mlp.input_dropout, mlp.hidden_dropout) == (0.2, 0.5)
    assert all(bn.eps == 1e-4 and bn.decay == 0.9 for _, bn in mlp.layers())
    W = mlp.l2.W.array
    # Uniform in [-1, 1], not LeCun's N(0, 1/64).
    assert W.min() >= -1 and W.max() <= 1 and W.std() > 0.5


def test_paper_steps_of_exactly_the_binary_weights_are_glorot_scaled():
    numpy.random.seed(0)
    model = recipes.Paper.model(16)
    plain = model.copy(mode='copy')
    rng = numpy.random.RandomState(1)
    for (name, param), (_, twin) in zip(sorted(model.namedparams()),
                                        sorted(plain.namedparams()),
                                        strict=True):
        # Away from the clip, so that only the step differs.
        param.array[...] = twin.array[...] = 0
        param.grad = twin.grad = rng.normal(
            size=param.shape).astype(numpy.float32)
    recipes.Paper.optimizer(model, 'binary').update()
    # At the schedule's first rate, which train_mnist.py sets each epoch.
    reference = chainer.optimizers.Adam(alpha=3e-3)
    reference.setup(plain)
    reference.update()
    factors = {'/predictor/l1/W': (1.5 / (784 + 16)) ** -0.5,
               '/predictor/l2/W': (1.5 / 32) ** -0.5,
               '/predictor/l3/W': (1.5 / 32) ** -0.5,
               '/predictor/l4/W': (1.5 / 26) ** -0.5}
    assert abs(factors['/predictor/l1/W'] - 23.09) < 0.01
    for (name, param), (_, twin) in zip(sorted(model.namedparams()),
                                        sorted(plain.namedparams()),
                                        strict=True):
        numpy.testing.assert_allclose(
            param.array, factors.get(name, 1) * twin.array, rtol=1e-5,
            err_msg=name)


def test_paper_clips_the_binary_weights_only():
    model = recipes.Paper.model(16)
    optimizer = recipes.Paper.optimizer(model, 'binary')
    for param in model.params():
        param.array[...] = 0.9999
        param.grad = numpy.full_like(param.array, -1)
    optimizer.update()
    for name, param in model.namedparams():
        if name.endswith('/W'):
            assert param.array.max() == 1, name
        else:
            assert param.array.min() > 1, name


def test_learning_rate_follows_the_authors_decay():
    # LR_decay = (3e-7 / 3e-3)^(1 / 3), applied after each epoch.
    rates = [recipes.Paper.learning_rate(e, 3) for e in (1, 2, 3)]
    assert rates == pytest.approx([3e-3, 1.3925e-4, 6.4633e-6], rel=1e-4)
    rates = [recipes.Paper.learning_rate(e, 50) for e in range(1, 52)]
    assert rates[0] == 3e-3
    # Epoch 51 would start at the final rate: the last trains above it.
    assert rates[-1] == pytest.approx(3e-7, rel=1e-9)
    ratios = numpy.array(rates[1:]) / rates[:-1]
    numpy.testing.assert_allclose(ratios, 1e-4 ** (1 / 50), rtol=1e-9)
    assert recipes.Port.learning_rate(1, 20) is None


def test_paper_split_is_the_last_sixth_of_the_training_set(data_slice):
    train, validation, test = recipes.Paper.data(data_slice)
    assert (len(train), len(validation), len(test)) == (8333, 1667, N_TEST)
    port_train, none, port_test = recipes.Port.data(data_slice)
    assert none is None and len(port_train) == N_TRAIN
    x, t = validation[0]
    x_port, t_port = port_train[8333]
    numpy.testing.assert_allclose(x, 2 * x_port - 1, atol=1e-7)
    assert t == t_port
    assert recipes.Paper.validation_fraction * 60000 == 10000
