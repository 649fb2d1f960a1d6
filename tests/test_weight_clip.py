import numpy
import pytest

import chainer
from chainer.backends import cuda
import chainer.links as L

from net import MnistMLP
from weight_clip import WeightClip


def out_of_range_model(xp=numpy):
    """A model whose every parameter is +-5, with zero gradients: Adam then
    moves nothing, so only the hook changes the values."""
    model = L.Classifier(MnistMLP(6, 5, 3))
    model.to_device('@numpy' if xp is numpy else '@cupy:0')
    for i, param in enumerate(model.params()):
        param.array[...] = 5 if i % 2 else -5
        param.grad = xp.zeros_like(param.array)
    return model


def test_optimizer_hook_clips_every_parameter_in_place():
    model = out_of_range_model()
    arrays = {name: p.array for name, p in model.namedparams()}
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    optimizer.add_hook(WeightClip())
    optimizer.update()
    for name, param in model.namedparams():
        assert param.array is arrays[name]
        assert numpy.abs(param.array).max() == 1, name
    assert {'/predictor/b1/gamma', '/predictor/b1/beta'} <= set(arrays)


def test_update_rule_hook_clips_that_parameter_alone():
    model = out_of_range_model()
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    model.predictor.l2.W.update_rule.add_hook(WeightClip())
    optimizer.update()
    for name, param in model.namedparams():
        expected = 1 if name == '/predictor/l2/W' else 5
        assert numpy.abs(param.array).max() == expected, name


def test_bounds_are_kept_and_inner_values_untouched():
    param = chainer.Parameter(numpy.array(
        [-3., -1., -0.5, 0., 0.2, 0.9, 1., 3.], numpy.float32))
    WeightClip()(None, param)
    numpy.testing.assert_array_equal(param.array, numpy.array(
        [-1., -1., -0.5, 0., 0.2, 0.9, 1., 1.], numpy.float32))


def test_uninitialized_parameter_is_skipped():
    WeightClip()(None, chainer.Parameter())


@pytest.mark.gpu
def test_gpu_agrees_with_cpu():
    results = []
    for xp in (numpy, cuda.cupy):
        model = out_of_range_model(xp)
        optimizer = chainer.optimizers.Adam()
        optimizer.setup(model)
        optimizer.add_hook(WeightClip())
        optimizer.update()
        results.append([cuda.to_cpu(p.array) for p in model.params()])
    for cpu, gpu in zip(*results, strict=True):
        numpy.testing.assert_array_equal(cpu, gpu)
