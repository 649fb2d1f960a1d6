import sys

import numpy
import pytest

import chainer
from chainer.backends import cuda

from binary_linear import BinaryLinear
from fast import flat_adam
from fast import make_step
from fast.flat_adam import FlatAdam
import packed.cpu
import recipes
from utils import numba_kernels


def batches(n, signed, seed=1):
    rng = numpy.random.RandomState(seed)
    for _ in range(n):
        x = rng.uniform(-1 if signed else 0, 1, (20, 784))
        yield x.astype(numpy.float32), rng.randint(10, size=20).astype('i')


def trained(recipe, fast, n_steps=6, device='@numpy', rate=None,
            clip=None):
    """A small model of ``recipe`` after ``n_steps`` of Chainer's Adam with
    its hooks, or of the fast path's FlatAdam (fast.make_step); dropout
    seeded alike for both. ``clip``: --clip, the recipe's by default."""
    clip = clip or recipe.clip
    numpy.random.seed(0)
    model = recipe.model(12)
    model.to_device(device)
    optimizer = recipe.optimizer(model, clip)
    step = optimizer
    if fast:
        step = make_step(model, optimizer,
                         recipes.clipped_params(model, clip),
                         recipe.clip_timing)
    for i, (x, t) in enumerate(batches(n_steps, recipe.signed_input)):
        if rate is not None:
            optimizer.alpha = rate(i)
        chainer.get_device(device).xp.random.seed(i)
        step.update(model, model.device.send(x), model.device.send(t))
    return model, optimizer


def state(model, optimizer):
    """Every parameter, moment and count, by name, on the CPU."""
    arrays = {}
    for name, param in model.namedparams():
        rule = param.update_rule
        arrays[name] = cuda.to_cpu(param.array)
        arrays[name + '/m'] = cuda.to_cpu(rule.state['m'])
        arrays[name + '/v'] = cuda.to_cpu(rule.state['v'])
        arrays[name + '/t'] = rule.t
    arrays['t'] = optimizer.t
    return arrays


@pytest.mark.parametrize('recipe,clip', [
    (recipes.Port, 'all'), (recipes.Paper, 'binary'),
    (recipes.Port, 'binary'), (recipes.Paper, 'all'),
    (recipes.Torch7, 'binary'), (recipes.Torch7, 'all')])
@pytest.mark.parametrize('numba', [True, False])
def test_same_parameters_as_chainers_adam_and_hooks(
        recipe, clip, numba, monkeypatch):
    assert flat_adam.compiled() is not None
    if not numba:
        monkeypatch.setattr(flat_adam, 'compiled', lambda: None)
    # Torch7's shift-based AdaMax: its step rounded, its v stored rounded.
    rate = ((lambda i: 3e-3 * 0.5 ** i) if recipe is not recipes.Port
            else None)
    plain = state(*trained(recipe, fast=False, rate=rate, clip=clip))
    fast = state(*trained(recipe, fast=True, rate=rate, clip=clip))
    assert plain.keys() == fast.keys()
    # The same operations in the same order, on the CPU: the same bits.
    for name in plain:
        numpy.testing.assert_array_equal(fast[name], plain[name],
                                         err_msg=name)
    assert fast['t'] == 6
    numpy.random.seed(0)
    initial = recipe.model(12).predictor.l2.W.array
    assert not numpy.array_equal(fast['/predictor/l2/W'], initial)


def test_parameters_and_moments_are_views_of_the_flat_arrays():
    model = recipes.Port.model(12)
    optimizer = recipes.Port.optimizer(model, 'all')
    before = {name: p.array.copy() for name, p in model.namedparams()}
    step = FlatAdam(optimizer, list(model.params()), 'pre')
    assert step.param.size == sum(p.size for p in model.params())
    for name, param in model.namedparams():
        numpy.testing.assert_array_equal(param.array, before[name])
        state = param.update_rule.state
        for array, flat in ((param.array, step.param), (state['m'], step.m),
                            (state['v'], step.v)):
            assert numpy.shares_memory(array, flat), name


def test_a_rebuilt_flat_adam_continues_as_an_unbroken_one():
    # Resuming builds a FlatAdam on an optimizer whose moments exist.
    straight = state(*trained(recipes.Paper, fast=True, n_steps=4))
    numpy.random.seed(0)
    model = recipes.Paper.model(12)
    optimizer = recipes.Paper.optimizer(model, 'binary')
    clipped = recipes.clipped_params(model, 'binary')
    step = FlatAdam(optimizer, clipped, 'post')
    data = list(batches(4, signed=True))
    for i, (x, t) in enumerate(data):
        if i == 2:
            step = FlatAdam(optimizer, clipped, 'post')
        numpy.random.seed(i)
        step.update(model, x, t)
    broken = state(model, optimizer)
    for name in straight:
        numpy.testing.assert_array_equal(broken[name], straight[name],
                                         err_msg=name)


def test_groups_are_slices_of_one_kind():
    numpy.random.seed(0)
    model = recipes.Paper.model(12)
    optimizer = recipes.Paper.optimizer(model, 'binary')
    step = FlatAdam(optimizer, recipes.clipped_params(model, 'binary'),
                    'post')
    # l1, l4 and (l2, l3) have their own Glorot factors; the rest eta 1.
    assert [(clipped, round(eta, 2)) for _, _, clipped, eta in step.groups] \
        == [(False, 1.0), (True, 3.83), (True, 4.0), (True, 23.04)]
    assert step.groups[-1][0].stop == step.param.size
    # Only the binary weights have signs: l2 and l3 share a group.
    assert [s.stop - s.start for _, s, _, _ in step.groups] == [
        0, 12 * 10, 2 * 12 * 12, 784 * 12]
    assert step.groups[-1][1].stop == step.signs.size


@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper,
                                    recipes.Torch7])
@pytest.mark.parametrize('numba', [True, False])
def test_forward_reads_the_signs_of_the_current_weights(recipe, numba,
                                                        monkeypatch):
    if not numba:
        monkeypatch.setattr(flat_adam, 'compiled', lambda: None)
    numpy.random.seed(0)
    model = recipe.model(12)
    links = [link for link in model.links() if isinstance(link, BinaryLinear)]
    assert len(links) == recipe.n_hidden + 1
    # Pixels 0-2 are 0, so l1's W[:, :3] get no gradient and keep their
    # values: sign(0) = sign(-0) = +1 at every step.
    links[0].W.array[0, :3] = (0., -0., -1e-30)
    optimizer = recipe.optimizer(model, recipe.clip)
    step = FlatAdam(optimizer, recipes.clipped_params(model, recipe.clip),
                    recipe.clip_timing,
                    model.predictor.ternary_input_links(),
                    model.predictor.signed_input_links())
    # Where Numba runs, the hidden layers' inputs are ternary and their
    # products run on packed W_b, kept as the engine takes it: on one plane
    # of bits for the port's and torch7's +-1, on two for the paper's
    # dropped-out signs.
    assert [link.product is not None for link in links] == (
        [False] + [numba] * recipe.n_hidden)
    product = (packed.cpu.ternary_product if recipe.hidden_dropout
               else packed.cpu.sign_product)
    assert all(link.product.func is product for link in links[1:] if numba)
    initial = [link.W_b.copy() for link in links]
    for i, (x, t) in enumerate(batches(3, recipe.signed_input)):
        x[:, :3] = 0
        for link in links:
            numpy.testing.assert_array_equal(
                link.W_b, numpy.where(link.W.array >= 0, 1, -1))
            assert numpy.shares_memory(link.W_b, step.signs)
        for W_b, wt in step.packed:
            numpy.testing.assert_array_equal(wt, packed.cpu.transpose(
                packed.reference.pack_signs(W_b > 0)))
        assert links[0].W.array[0, 1] == 0
        assert list(links[0].W_b[0, :3]) == [1, 1, -1]
        numpy.random.seed(i)
        step.update(model, x, t)
        for link in links:
            # The gradient was written where the update reads it.
            assert numpy.shares_memory(link.W.grad, step.grad)
    # Signs flipped, and W_b followed.
    assert any(not numpy.array_equal(link.W_b, before)
               for link, before in zip(links, initial))


def test_without_numba_one_line_says_so_and_numpy_runs(monkeypatch, capsys):
    expected = state(*trained(recipes.Port, fast=True, n_steps=2))
    monkeypatch.setitem(sys.modules, 'numba', None)
    monkeypatch.delitem(sys.modules, 'fast.adam_cpu')
    monkeypatch.setattr(numba_kernels, '_noted', False)
    flat_adam.compiled.cache_clear()
    try:
        results = [state(*trained(recipes.Port, fast=True, n_steps=2))
                   for _ in range(2)]
        assert flat_adam.compiled() is None
    finally:
        monkeypatch.undo()
        flat_adam.compiled.cache_clear()
    for result in results:
        for name in expected:
            numpy.testing.assert_array_equal(result[name], expected[name],
                                             err_msg=name)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith('note: numba is not available (')
    assert err[0].endswith('); NumPy runs in its place')


@pytest.mark.gpu
@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper,
                                    recipes.Torch7])
def test_gpu_agrees_with_chainers_adam_on_the_gpu(recipe):
    plain = state(*trained(recipe, fast=False, device='@cupy:0'))
    fast = state(*trained(recipe, fast=True, device='@cupy:0'))
    # The same bits, as on the CPU: FlatAdam's kernel is AdamRule's
    # expression less its weight decay term, exactly 0 there (with or
    # without FMA contraction, q + 0 * param is q), in IEEE float32 (CuPy
    # compiles without fast math); min and max, its clip, round nothing.
    # tests/test_train_mnist.py asks the same of a whole epoch.
    for name in plain:
        numpy.testing.assert_array_equal(fast[name], plain[name],
                                         err_msg=name)
