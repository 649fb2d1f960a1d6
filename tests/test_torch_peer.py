"""torch_peer's nets against Chainer's, as recipes.py builds them: with the
same weights, the same loss, and after the same steps the same
parameters."""
import math

import numpy
import pytest

from conftest import import_torch

torch = import_torch()

import chainer  # noqa: E402

from bst import binarize  # noqa: E402
from bst import bst  # noqa: E402
import recipes  # noqa: E402
import torch_peer  # noqa: E402


def nets(recipe, n_units):
    """The Chainer model ``recipe`` builds (seed 0) and torch_peer's net
    with its weights."""
    numpy.random.seed(0)
    model = recipe.model(n_units)
    peer = torch_peer.MnistMLP(recipe, n_units)
    with torch.no_grad():
        for (link, bn), linear, norm in zip(model.predictor.layers(),
                                            peer.linears, peer.norms):
            for param, array in ((linear.weight, link.W),
                                 (linear.bias, link.b),
                                 (norm.weight, bn.gamma),
                                 (norm.bias, bn.beta)):
                param.copy_(torch.from_numpy(array.array))
    return model, peer


def batch(recipe, size=100):
    """Images and labels. The pixels are multiples of 1/256, whose products
    with +-1 sum exactly in float32 in any order: BLAS's sums and PyTorch's
    agree, and no unit of the first layer is put across its threshold by
    rounding on one side only."""
    rng = numpy.random.RandomState(1)
    x = (rng.randint(256, size=(size, 784)) / 256).astype(numpy.float32)
    if recipe.signed_input:
        x = 2 * x - 1
    return x, rng.randint(10, size=size).astype(numpy.int32)


def chainers_eps(step, optimizer):
    """Sets PyTorch's eps for the step after ``optimizer``'s t-th to eps /
    sqrt(1 - beta2^t), from Chainer's: PyTorch adds eps to sqrt(v / (1 -
    beta2^t)), Chainer to sqrt(v) (torch_peer.optimizer)."""
    hyperparam = optimizer.hyperparam
    for group in step.optimizer.param_groups:
        group['eps'] = hyperparam.eps / math.sqrt(
            1 - hyperparam.beta2 ** optimizer.t)


def assert_same_params(model, peer, steps):
    """The parameters after ``steps`` steps on each side agree to 1% of a
    step (alpha eta, for each parameter). Where a gradient is as small as
    eps, Adam's step g / (|g| + eps) turns the last bits that BLAS's and
    PyTorch's sums round differently into up to 0.1% of a step. The biases
    b, which BatchNormalization cancels, have gradients of such bits only:
    each moves up to a step either way, on both sides, and so may the
    running means, which hold b."""
    for (link, bn), linear, norm in zip(model.predictor.layers(),
                                        peer.linears, peer.norms):
        for param, expected in ((linear.weight, link.W),
                                (norm.weight, bn.gamma), (norm.bias, bn.beta)):
            rate = expected.update_rule.hyperparam.alpha * (
                expected.update_rule.hyperparam.eta)
            numpy.testing.assert_allclose(param.detach().numpy(),
                                          expected.array, rtol=0,
                                          atol=0.01 * rate)
        bound = steps * link.b.update_rule.hyperparam.alpha
        for b in (linear.bias.detach().numpy(), link.b.array):
            assert abs(b).max() <= bound
        numpy.testing.assert_allclose(norm.running_mean.numpy(), bn.avg_mean,
                                      rtol=0, atol=bound)


def test_signs_and_their_gradients_are_bsts():
    r = numpy.array([-2., -1., -0.5, 0., 0.5, 1., 2.], numpy.float32)
    expected = chainer.Variable(r)
    y = bst(expected)
    y.grad = numpy.full_like(r, 3.)
    y.backward()
    for sign, grad in ((torch_peer.SignActivation, expected.grad),
                       # Straight through to W, |W| > 1 or not.
                       (torch_peer.SignWeights, numpy.full_like(r, 3.))):
        x = torch.from_numpy(r).requires_grad_()
        q = sign.apply(x)
        q.backward(torch.full_like(q, 3.))
        numpy.testing.assert_array_equal(q.detach().numpy(), binarize(r))
        numpy.testing.assert_array_equal(x.grad.numpy(), grad)
    assert binarize(r)[3] == 1


@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper])
def test_the_nets_are_built_as_the_recipes(recipe):
    torch.manual_seed(0)
    peer = torch_peer.MnistMLP(recipe, 200)
    assert [(linear.in_features, linear.out_features)
            for linear in peer.linears] == (
        [(784, 200)] + [(200, 200)] * (recipe.n_hidden - 1) + [(200, 10)])
    assert [norm.eps for norm in peer.norms] == [recipe.bn_eps] * (
        recipe.n_hidden + 1)
    assert (peer.input_dropout.p, peer.hidden_dropout.p) == (
        recipe.input_dropout, recipe.hidden_dropout)
    W = peer.linears[0].weight.detach().numpy()
    if recipe is recipes.Port:
        # Chainer's LeCunNormal: N(0, 1 / fan_in).
        assert W.std() == pytest.approx(784 ** -0.5, rel=0.02)
    else:
        assert -1 <= W.min() < -0.99 and 0.99 < W.max() <= 1
        assert W.std() == pytest.approx(3 ** -0.5, rel=0.02)
    assert all(not linear.bias.any() for linear in peer.linears)


@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper])
def test_adam_is_chainers(recipe):
    model, peer = nets(recipe, 20)
    hyperparam = recipe.optimizer(model, recipe.clip).hyperparam
    group = torch_peer.optimizer(recipe, peer).param_groups[-1]
    assert group['lr'] == hyperparam.alpha == recipe.rate
    assert group['betas'] == (hyperparam.beta1, hyperparam.beta2)
    assert group['eps'] == hyperparam.eps
    assert group['weight_decay'] == hyperparam.weight_decay_rate == 0
    assert not group['amsgrad'] and not hyperparam.amsgrad


def test_paper_groups_scale_the_binary_weights_steps_as_the_recipe():
    model, peer = nets(recipes.Paper, 30)
    recipes.Paper.optimizer(model, recipes.Paper.clip)
    groups = torch_peer.optimizer(recipes.Paper, peer).param_groups
    links = model.predictor.binary_links()
    assert [group['params'] for group in groups[:-1]] == [
        [linear.weight] for linear in peer.linears]
    assert [group['lr'] / recipes.Paper.rate for group in groups[:-1]] == [
        pytest.approx(link.W.update_rule.hyperparam.eta) for link in links]
    assert [link.W.update_rule.hyperparam.eta for link in links] == [
        recipes.glorot_factor(link) for link in links]
    # The biases and BatchNormalization's parameters, at eta 1.
    rest = groups[-1]['params']
    assert len(rest) == 3 * len(links)
    assert sum(p.numel() for p in rest) == sum(
        param.size for name, param in model.namedparams()
        if not name.endswith('/W'))


def forward_and_two_steps(recipe, model, peer, x, t):
    """One forward of both nets, their losses compared, then two steps of
    each on the same batch."""
    x_torch, t_torch = torch.from_numpy(x), torch.from_numpy(t).long()
    loss = model(x, t)
    peer_loss = torch_peer.LOSSES[recipe.name](peer(x_torch), t_torch)
    assert peer_loss.item() == pytest.approx(float(loss.array), rel=1e-6)
    optimizer = recipe.optimizer(model, recipe.clip)
    step = torch_peer.Step(recipe, peer)
    for _ in range(2):
        optimizer.update(model, x, t)
        chainers_eps(step, optimizer)
        step(x_torch, t_torch)


def test_port_forward_and_steps_are_chainers():
    recipe = recipes.Port
    model, peer = nets(recipe, 64)
    forward_and_two_steps(recipe, model, peer, *batch(recipe))
    # The port clips before each step, so the first step's gammas of
    # 1 + alpha are clipped back only before the second.
    assert max(norm.weight.max().item() for norm in peer.norms) > 1
    assert_same_params(model, peer, 2)
    for (_, bn), norm in zip(model.predictor.layers(), peer.norms):
        # Both the unbiased variance, at Chainer's decay 0.9.
        numpy.testing.assert_allclose(norm.running_var.numpy(), bn.avg_var,
                                      rtol=1e-5)


class Masks(torch.nn.Module):

    """Dropout by the masks given, in turn, scale included."""

    def __init__(self, masks):
        super().__init__()
        self.masks = masks

    def forward(self, x):
        return x * torch.from_numpy(self.masks.pop(0))


def test_paper_forward_and_steps_with_the_same_dropout_are_chainers(
        monkeypatch):
    recipe, n_units = recipes.Paper, 48
    model, peer = nets(recipe, n_units)
    # Chainer's dropout draws from NumPy's generator, PyTorch's from its
    # own: both sides are given the same masks instead, which tests where
    # dropout acts and its scale. One forward and two steps, each drawing
    # an input mask and one for each hidden layer.
    rng = numpy.random.RandomState(2)
    ratios = ([recipe.input_dropout] + [recipe.hidden_dropout] *
              recipe.n_hidden) * 3
    masks = [((rng.rand(100, 784 if ratio == recipe.input_dropout
                        else n_units) >= ratio) / (1 - ratio)).astype(
                            numpy.float32) for ratio in ratios]
    drawn = list(masks)

    def dropout(x, ratio):
        assert ratio == ratios.pop(0)
        return x * drawn.pop(0)

    monkeypatch.setattr(chainer.functions, 'dropout', dropout)
    peer.input_dropout = peer.hidden_dropout = Masks(masks)
    forward_and_two_steps(recipe, model, peer, *batch(recipe))
    assert not masks and not drawn
    # Clipped after each step: W uniform in [-1, 1] reaches the bounds.
    assert all(linear.weight.abs().max().item() == 1
               for linear in peer.linears)
    assert_same_params(model, peer, 2)
