"""Adam and BinaryNet's weight clipping (Courbariaux et al.,
arXiv:1602.02830, Sec. 1.2) as one update over all parameters at once.

Chainer's Adam runs an update rule, and its hooks, for each parameter: a
dozen small updates per step. Here the parameters and Adam's moments are
views into flat arrays, so that a step is a few operations on those arrays
(on a GPU, one kernel for each group of parameters that share a step scale
and a clipping), with Chainer's arithmetic, AdamRule's with weight decay 0:

    m += (1 - beta1) (g - m);  v += (1 - beta2) (g^2 - v)
    W -= eta alpha_t m / (sqrt(v) + eps)

then W clipped to [-1, 1] by weight_clip.py's clip, before the step instead
for the port (``timing='pre'``, as Chainer v1 ran its hook).
"""
import itertools

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer.backends import cuda

import weight_clip


class FlatAdam(object):

    """Steps in place of a set-up ``chainer.optimizers.Adam``.

    That optimizer remains the one saved and resumed: its ``alpha`` is read
    at each step, its ``t`` and its rules' ``t`` advance, and its rules'
    moments are the views into the flat arrays. Each parameter's ``eta`` is
    its rule's (the paper's Glorot factor).

    Args:
        optimizer (~chainer.optimizers.Adam): Set up on the model, its
            state (if resumed) loaded; no further parameter may be added.
        clipped (list of ~chainer.Parameter): The parameters kept in
            [-1, 1].
        timing (str): 'post' clips after each step, 'pre' before it.
    """

    def __init__(self, optimizer, clipped, timing):
        self.optimizer = optimizer
        self.timing = timing
        clipped = {id(param) for param in clipped}

        def kind(param):
            return id(param) in clipped, param.update_rule.hyperparam.eta

        # Sorted by kind, each group of one kind is one slice of the arrays.
        self.params = sorted((param for _, param in sorted(
            optimizer.target.namedparams())), key=kind)
        self.rules = [param.update_rule for param in self.params]
        self.device = optimizer.target.device
        self.xp = self.device.xp
        size = sum(param.size for param in self.params)
        self.param, self.m, self.v, self.grad = (
            self.xp.empty(size, self.params[0].dtype) for _ in range(4))
        self.groups = []
        stop = 0
        for (is_clipped, eta), group in itertools.groupby(self.params, kind):
            start = stop
            for param in group:
                self._hold(param, slice(stop, stop + param.size))
                stop += param.size
            self.groups.append((slice(start, stop), is_clipped, eta))

    def _hold(self, param, part):
        """Makes ``param`` and its moments views of the flat arrays."""
        rule = param.update_rule
        self.param[part] = param.array.ravel()
        param.array = self.param[part].reshape(param.shape)
        moments = {}
        for name, flat in (('m', self.m), ('v', self.v)):
            # A resumed state is read as NumPy arrays, wherever it goes.
            flat[part] = (0 if rule.state is None
                          else self.device.send(rule.state[name]).ravel())
            moments[name] = flat[part].reshape(param.shape)
        # As Chainer's own deserializer sets it, there being no setter.
        rule._state = moments

    def update(self, lossfun, *args):
        """One step on ``lossfun(*args)``, as ``Optimizer.update`` takes it."""
        # Chainer's type checks cost more than a small net's arithmetic;
        # --plain keeps them.
        with chainer.using_config('type_check', False):
            loss = lossfun(*args)
            self.optimizer.target.cleargrads()
            loss.backward()
        del loss
        self.xp.concatenate([param.grad.ravel() for param in self.params],
                            out=self.grad)
        self.optimizer.t += 1
        for rule in self.rules:
            rule.t += 1
        if self.xp is numpy:
            self._update_cpu()
        else:
            self._update_gpu()

    def _clip(self, timing):
        if timing != self.timing:
            return
        for part, clipped, _ in self.groups:
            if clipped:
                weight_clip.clip(self.param[part])

    def _update_cpu(self):
        hp = self.optimizer.hyperparam
        self._clip('pre')
        # AdamRule.update_core_cpu's operations in its order, on all at once.
        self.m += (1.0 - hp.beta1) * (self.grad - self.m)
        self.v += (1.0 - hp.beta2) * (self.grad * self.grad - self.v)
        step = self.optimizer.alpha_t / (numpy.sqrt(self.v) + hp.eps)
        step *= self.m
        for part, _, eta in self.groups:
            step[part] *= -eta
        self.param += step
        self._clip('post')

    def _update_gpu(self):
        hp = self.optimizer.hyperparam
        # AdamRule.update_core_gpu's kernel, the clip on either side of it.
        kernel = cuda.elementwise(
            'T grad, T alpha_t, T one_minus_beta1, T one_minus_beta2, '
            'T eps, T eta, bool clip_before, bool clip_after',
            'T param, T m, T v',
            '''if (clip_before) {clip}
               m += one_minus_beta1 * (grad - m);
               v += one_minus_beta2 * (grad * grad - v);
               param -= eta * (alpha_t * m / (sqrt(v) + eps));
               if (clip_after) {clip}'''.format(
                clip=weight_clip.CUDA_CLIP.format('param')),
            'flat_adam')
        alpha_t = self.optimizer.alpha_t
        for part, clipped, eta in self.groups:
            kernel(self.grad[part], alpha_t, 1 - hp.beta1,
                   1 - hp.beta2, hp.eps, eta,
                   clipped and self.timing == 'pre',
                   clipped and self.timing == 'post',
                   self.param[part], self.m[part], self.v[part])
