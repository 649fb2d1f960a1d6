import numpy
import pytest

import chainer
import chainer.links as L

from batch_normalization import BatchNormalization
from conftest import N_TEST, N_TRAIN
import mnist
from net import MnistMLP
import recipes
import shift_adamax
from shift_batch_normalization import ShiftBatchNormalization
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


def test_torch7_model_is_the_authors_torch7_net():
    numpy.random.seed(0)
    model = recipes.Torch7.model(2048)
    mlp = model.predictor
    assert model.lossfun is squared_hinge
    assert mlp.activation.__name__ == 'stochastic_bst'
    assert (mlp.n_hidden, mlp.input_dropout, mlp.hidden_dropout) == (3, 0, 0)
    *hidden, (linear, output_bn) = mlp.layers()
    for _, bn in hidden:
        assert type(bn) is ShiftBatchNormalization
        assert (bn.decay, bn.eps) == (0.875, 1e-5)
        numpy.testing.assert_array_equal(bn.gamma.array, 1)
    # Torch's nn.BatchNormalization: gamma uniform in [0, 1), eps 1e-5,
    # momentum 0.1.
    assert type(output_bn) is BatchNormalization
    assert (output_bn.decay, output_bn.eps) == (0.9, 1e-5)
    gamma = output_bn.gamma.array
    assert 0 <= gamma.min() and gamma.max() < 1 and gamma.std() > 0.1
    for link, _ in mlp.layers():
        W, b = link.W.array, link.b.array
        assert -1 <= W.min() and W.max() <= 1 and W.std() > 0.5
        bound = link.in_size ** -0.5
        assert -bound <= b.min() and b.max() <= bound
        assert b.std() > bound / 3


def test_torch7_steps_are_scaled_by_the_codes_glr():
    model = recipes.Torch7.model(2048)
    recipes.Torch7.optimizer(model, 'binary')
    etas = {name: param.update_rule.hyperparam.eta
            for name, param in model.namedparams()}
    expected = {'l1': 43.45, 'l2': 52.26, 'l3': 52.26, 'l4': 37.04}
    for layer, glr in expected.items():
        for param in ('W', 'b'):
            assert etas['/predictor/{}/{}'.format(layer, param)] == (
                pytest.approx(glr, abs=0.005))
    for k, glr in ((1, 36.95), (2, 36.95), (3, 36.95), (4, 2.582)):
        assert etas['/predictor/b{}/gamma'.format(k)] == pytest.approx(
            glr, abs=0.0005)
        assert etas['/predictor/b{}/beta'.format(k)] == 1
    assert isinstance(
        model.predictor.l1.W.update_rule, shift_adamax.ShiftAdaMaxRule)


def test_torch7_rate_halves_after_every_20th_epoch_whatever_the_run():
    rates = [recipes.Torch7.learning_rate(e, n) for e, n in (
        (1, 100), (20, 100), (21, 100), (40, 7), (41, 1000))]
    assert rates == [2 ** -6, 2 ** -6, 2 ** -7, 2 ** -7, 2 ** -8]
    assert not recipes.Torch7.rate_decays


def test_torch7_data_are_normalised_by_the_training_pixels(data_slice):
    train, validation, test = recipes.Torch7.data(data_slice)
    assert (len(train), len(validation), len(test)) == (
        N_TRAIN - round(N_TRAIN / 6), round(N_TRAIN / 6), N_TEST)
    x = train._datasets[0].astype(numpy.float64)
    assert abs(x.mean()) < 1e-6 and abs(x.std(ddof=1) - 1) < 1e-6
    scale, shift = recipes.Torch7.input_affine(data_slice)
    (pixels, _), (test_pixels, _) = (
        (numpy.rint(d._datasets[0] * 255.), None)
        for d in mnist.get_mnist(data_slice))
    numpy.testing.assert_allclose(test._datasets[0],
                                  test_pixels * scale + shift, atol=1e-6)
    numpy.testing.assert_allclose(validation._datasets[0],
                                  pixels[len(train):] * scale + shift,
                                  atol=1e-6)
    assert validation._datasets[0].mean() != pytest.approx(0, abs=1e-6)
    # Torch's std() divides by n - 1: over pixels 0 and 255, 1 / sqrt(2).
    scale, shift = recipes.Torch7._affine(numpy.array([0., 255.]))
    assert (scale, shift) == (pytest.approx(2 ** 0.5 / 255),
                              pytest.approx(-0.5 * 2 ** 0.5))


def test_describe_names_the_parts_that_ran():
    assert recipes.Torch7.describe(2048, 100) == (
        '--preset torch7: 784-2048-2048-2048-10, squared hinge, shift-based '
        'BatchNormalization, stochastic activations, shift-based AdaMax at '
        '2^-6, halved every 20 epochs over 100 epochs')
    assert recipes.Paper.describe(16, 4, bn='shift') == (
        '--preset paper: 784-16-16-16-10 with dropout, squared hinge, '
        'shift-based BatchNormalization, Adam from 3e-3 down to 3e-7 over 4 '
        'epochs')
    assert recipes.Port.describe(16, 1).endswith('Adam at 0.001 over 1 epoch')
