import numpy
import pytest

import chainer

from shift_adamax import ShiftAdaMax
from shift_batch_normalization import ap2


def code_rule(theta, grads, lr=2. ** -6, glr=1., beta1=0.9, beta2=0.999,
              eps=2. ** -27):
    """adaMax_binary_clip_shift.lua's steps, transcribed in NumPy (float32
    arrays, as Torch's FloatTensor): theta after them, and the v the state
    keeps."""
    m = numpy.zeros_like(theta)
    v = numpy.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        m = m * numpy.float32(beta1) + numpy.float32(1 - beta1) * g
        v = numpy.maximum(v * numpy.float32(beta2), numpy.abs(g))
        step = lr / (1 - beta1 ** t)
        step = 2. ** numpy.round(numpy.log2(step))
        v = ap2(v) + numpy.float32(eps)
        theta = theta + numpy.float32(-step) * (m / v) * numpy.float32(glr)
    return theta, v


@pytest.fixture
def problem():
    rng = numpy.random.RandomState(0)
    theta = rng.uniform(-1, 1, (5, 4)).astype(numpy.float32)
    grads = [rng.normal(size=(5, 4)).astype(numpy.float32) * 10. ** -k
             for k in range(6)]
    # A gradient always 0, whose v lives on eps alone; one 0 at one step.
    for g in grads:
        g[0, 0] = 0
    grads[2][1] = 0
    return theta, grads


def steps(theta, grads, **kwargs):
    link = chainer.Link()
    with link.init_scope():
        link.w = chainer.Parameter(theta.copy())
    optimizer = ShiftAdaMax(**kwargs)
    optimizer.setup(link)
    for g in grads:
        link.w.grad = g.copy()
        optimizer.update()
    return link.w, optimizer


def test_steps_are_the_codes_and_the_state_keeps_ap2_v_plus_eps(problem):
    theta, grads = problem
    w, _ = steps(theta, grads)
    expected, v = code_rule(theta, grads)
    numpy.testing.assert_allclose(w.array, expected, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_array_equal(w.update_rule.state['v'], v)
    # A power of two plus eps (which float32 may round away) everywhere.
    rest = w.update_rule.state['v'] - numpy.float32(2. ** -27)
    numpy.testing.assert_allclose(rest, ap2(rest), rtol=1e-7)
    assert (rest < 2. ** -20).any() and (rest > 0.1).any()


def test_eta_multiplies_each_step_as_glr(problem):
    theta, grads = problem
    w, _ = steps(theta, grads, eta=43.45)
    expected, _ = code_rule(theta, grads, glr=43.45)
    numpy.testing.assert_allclose(w.array, expected, rtol=1e-5, atol=1e-6)


def test_the_rounded_step_halves_as_the_bias_correction_fades():
    link = chainer.Link()
    with link.init_scope():
        link.w = chainer.Parameter(numpy.zeros(1, numpy.float32))
    optimizer = ShiftAdaMax()
    optimizer.setup(link)
    rule = link.w.update_rule
    taken = []
    for t in range(1, 14):
        rule.t = t
        taken.append(rule.step)
    assert taken == [2. ** -3] + [2. ** -4] * 3 + [2. ** -5] * 7 + [
        2. ** -6] * 2
    assert (optimizer.alpha, optimizer.beta1, optimizer.beta2,
            optimizer.eps) == (2. ** -6, 0.9, 0.999, 2. ** -27)
