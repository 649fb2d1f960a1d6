import numpy
import pytest

import chainer
from chainer.backends import cuda

from fast.flat_adam import FlatAdam
import recipes


def batches(n, signed, seed=1):
    rng = numpy.random.RandomState(seed)
    for _ in range(n):
        x = rng.uniform(-1 if signed else 0, 1, (20, 784))
        yield x.astype(numpy.float32), rng.randint(10, size=20).astype('i')


def trained(recipe, fast, n_steps=6, device='@numpy', rate=None,
            clip=None):
    """A small model of ``recipe`` after ``n_steps`` of Chainer's Adam with
    its hooks, or of FlatAdam; dropout seeded alike for both. ``clip``:
    --clip, the recipe's by default."""
    clip = clip or recipe.clip
    numpy.random.seed(0)
    model = recipe.model(12)
    model.to_device(device)
    optimizer = recipe.optimizer(model, clip)
    step = optimizer
    if fast:
        step = FlatAdam(optimizer, recipes.clipped_params(model, clip),
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
    (recipes.Port, 'binary'), (recipes.Paper, 'all')])
def test_same_parameters_as_chainers_adam_and_hooks(recipe, clip):
    rate = (lambda i: 3e-3 * 0.5 ** i) if recipe is recipes.Paper else None
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
    assert [(clipped, round(eta, 2)) for _, clipped, eta in step.groups] == [
        (False, 1.0), (True, 3.83), (True, 4.0), (True, 23.04)]
    assert step.groups[-1][0].stop == step.param.size


@pytest.mark.gpu
@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper])
def test_gpu_agrees_with_chainers_adam_on_the_gpu(recipe):
    plain = state(*trained(recipe, fast=False, device='@cupy:0'))
    fast = state(*trained(recipe, fast=True, device='@cupy:0'))
    for name in plain:
        # AdamRule's expression in one kernel with the clip: nvcc may
        # contract it otherwise than the two kernels, in the last bits.
        numpy.testing.assert_allclose(fast[name], plain[name], rtol=1e-6,
                                      atol=1e-7, err_msg=name)
