"""Adam and BinaryNet's weight clipping (Courbariaux et al.,
arXiv:1602.02830, Sec. 1.2) as one update over all parameters at once.

Chainer's Adam runs an update rule, and its hooks, for each parameter: a
dozen small updates per step. Here the parameters, their gradients and
Adam's moments are views into flat arrays (the binary layers write their
weight gradients there), so that a step is one pass over those arrays (on
the CPU compiled by Numba, fast/adam_cpu.py; on a GPU one kernel for each group
of parameters that share a step scale and a clipping), with Chainer's
arithmetic, AdamRule's with weight decay 0:

    m += (1 - beta1) (g - m);  v += (1 - beta2) (g^2 - v)
    W -= eta alpha_t m / (sqrt(v) + eps)

then W clipped to [-1, 1] by weight_clip.py's clip, before the step instead
for the port (``timing='pre'``, as Chainer v1 ran its hook). The same pass
refreshes each binary layer's W_b = sign(W), which its forward then reads
instead of binarizing W again.

A layer whose input is ternary, in {-c, 0, +c} with c a power of two (sign()
of the layer before, dropped out or not), runs its forward product on the
CPU through the packed engine's XNOR kernels (packed/cpu.py), on one plane
of bits where it is +-1 and two where dropout leaves zeros: exact, so
BLAS's product, bit for bit, from its W_b packed once a step.
"""
import functools
import itertools

import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer.backends import cuda

from binary_linear import BinaryLinear
from bst import binarize
from packed import mlp as packed_mlp
from packed import reference
import shift_adamax
from shift_batch_normalization import ap2
from utils import numba_kernels
import weight_clip


@functools.lru_cache(maxsize=None)
def compiled():
    """The module fast.adam_cpu, or None where Numba does not import: the
    update then runs as NumPy operations (numba_kernels.load says so)."""
    return numba_kernels.load('fast.adam_cpu')


class FlatAdam(object):

    """Steps in place of a set-up ``chainer.optimizers.Adam``.

    That optimizer remains the one saved and resumed: its ``alpha`` is read
    at each step, its ``t`` and its rules' ``t`` advance, and its rules'
    moments are the views into the flat arrays. Each parameter's ``eta`` is
    its rule's (the paper's Glorot factor). Each BinaryLinear link of the
    model gets ``W_b``, a view of ``signs`` kept equal to sign(W), and
    ``grad_W``, the view of ``grad`` its backward writes W's gradient into.

    Args:
        optimizer (~chainer.optimizers.Adam): Set up on the model, its
            state (if resumed) loaded; no further parameter may be added.
        clipped (list of ~chainer.Parameter): The parameters kept in
            [-1, 1].
        timing (str): 'post' clips after each step, 'pre' before it.
        ternary (list of BinaryLinear): The layers whose input is ternary
            (``MnistMLP.ternary_input_links()``); their forward products run
            on packed bits on the CPU, where Numba runs.
        signed (list of BinaryLinear): Those of them whose input is +-1
            (``MnistMLP.signed_input_links()``): one plane of bits, not two.
    """

    def __init__(self, optimizer, clipped, timing, ternary=(), signed=()):
        self.optimizer = optimizer
        self.shift = isinstance(optimizer, shift_adamax.ShiftAdaMax)
        self.timing = timing
        clipped = {id(param) for param in clipped}
        binary = {id(link.W): link for link in optimizer.target.links()
                  if isinstance(link, BinaryLinear)}

        def kind(param):
            return id(param) in clipped, param.update_rule.hyperparam.eta

        # Sorted by kind, each group of one kind is one slice of the arrays,
        # its binary weights first, in the order of ``signs``.
        self.params = sorted((param for _, param in sorted(
            optimizer.target.namedparams())),
            key=lambda param: (kind(param), id(param) not in binary))
        self.rules = [param.update_rule for param in self.params]
        self.device = optimizer.target.device
        self.xp = self.device.xp
        size = sum(param.size for param in self.params)
        self.param, self.m, self.v, self.grad = (
            self.xp.empty(size, self.params[0].dtype) for _ in range(4))
        self.signs = self.xp.empty(
            sum(link.W.size for link in binary.values()),
            self.params[0].dtype)
        # (part of the flat arrays, part of signs, clipped, eta) per group.
        self.groups = []
        stop = signs_stop = 0
        for (is_clipped, eta), group in itertools.groupby(self.params, kind):
            start, signs_start = stop, signs_stop
            for param in group:
                part = slice(stop, stop + param.size)
                self._hold(param, part)
                if id(param) in binary:
                    signs = slice(signs_stop, signs_stop + param.size)
                    self._hold_binary(binary[id(param)], part, signs)
                    signs_stop += param.size
                stop += param.size
            self.groups.append((slice(start, stop),
                                slice(signs_start, signs_stop),
                                is_clipped, eta))
        self.kernels = compiled() if self.xp is numpy else None
        self.engine = packed_mlp.compiled() if self.kernels else None
        # Each ternary-input link with its W_b packed and transposed as the
        # engine's products take it, refreshed after each update.
        self.packed = []
        for link in ternary if self.engine else ():
            wt = self.engine.transpose(reference.pack_signs(link.W_b > 0))
            product = (self.engine.sign_product if link in signed
                       else self.engine.ternary_product)
            link.product = functools.partial(product, wt=wt, n=len(link.W_b))
            self.packed.append((link.W_b, wt))

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

    def _hold_binary(self, link, part, signs):
        """Gives ``link`` its W_b and grad_W, views of signs and grad."""
        shape = link.W.shape
        link.W_b = self.signs[signs].reshape(shape)
        link.W_b[...] = binarize(link.W.array)
        link.grad_W = self.grad[part].reshape(shape)

    def update(self, lossfun, *args):
        """One step on ``lossfun(*args)``, as ``Optimizer.update`` takes it."""
        # Chainer's type checks cost more than a small net's arithmetic;
        # --plain keeps them.
        with chainer.using_config('type_check', False):
            loss = lossfun(*args)
            self.optimizer.target.cleargrads()
            loss.backward()
        del loss
        # The binary weights' gradients are in place; the rest are small.
        start = 0
        for param in self.params:
            part = slice(start, start + param.size)
            start += param.size
            if param.grad.base is not self.grad:
                self.grad[part] = param.grad.ravel()
        self.optimizer.t += 1
        for rule in self.rules:
            rule.t += 1
        if self.kernels is not None:
            self._update_compiled()
            for W_b, wt in self.packed:
                self.engine.transpose_signs(W_b, wt)
        elif self.xp is numpy:
            self._update_cpu()
        else:
            self._update_gpu()

    def _update_compiled(self):
        hp = self.optimizer.hyperparam
        # NumPy casts the Python floats of AdamRule's expressions so.
        f32 = self.param.dtype.type
        if self.shift:
            neg_step = f32(-self.rules[0].step)
            for part, signs, clipped, eta in self.groups:
                self.kernels.shift_adamax(
                    self.param[part], self.grad[part], self.m[part],
                    self.v[part], self.signs[signs], f32(hp.beta1),
                    f32(1 - hp.beta1), f32(hp.beta2), f32(hp.eps), neg_step,
                    f32(eta), clipped and self.timing == 'pre',
                    clipped and self.timing == 'post')
            return
        for part, signs, clipped, eta in self.groups:
            self.kernels.adam(
                self.param[part], self.grad[part], self.m[part],
                self.v[part], self.signs[signs], f32(1.0 - hp.beta1),
                f32(1.0 - hp.beta2), f32(self.optimizer.alpha_t),
                f32(hp.eps), f32(-eta), clipped and self.timing == 'pre',
                clipped and self.timing == 'post')

    def _clip(self, timing):
        if timing != self.timing:
            return
        for part, _, clipped, _ in self.groups:
            if clipped:
                weight_clip.clip(self.param[part])

    def _binarize(self):
        for part, signs, _, _ in self.groups:
            binary = self.param[part][:signs.stop - signs.start]
            self.signs[signs] = binarize(binary)

    def _update_cpu(self):
        hp = self.optimizer.hyperparam
        self._clip('pre')
        if self.shift:
            # ShiftAdaMaxRule.update_core_cpu's, on all at once.
            self.m *= hp.beta1
            self.m += (1 - hp.beta1) * self.grad
            numpy.maximum(self.v * hp.beta2, abs(self.grad), out=self.v)
            self.v[...] = ap2(self.v)
            self.v += hp.eps
            step = -self.rules[0].step * (self.m / self.v)
            etas = [eta for _, _, _, eta in self.groups]
        else:
            # AdamRule.update_core_cpu's operations in its order.
            self.m += (1.0 - hp.beta1) * (self.grad - self.m)
            self.v += (1.0 - hp.beta2) * (self.grad * self.grad - self.v)
            step = self.optimizer.alpha_t / (numpy.sqrt(self.v) + hp.eps)
            step *= self.m
            etas = [-eta for _, _, _, eta in self.groups]
        for (part, _, _, _), eta in zip(self.groups, etas):
            step[part] *= eta
        self.param += step
        self._clip('post')
        self._binarize()

    def _update_gpu(self):
        hp = self.optimizer.hyperparam
        if self.shift:
            # ShiftAdaMaxRule.update_core_gpu's kernel, the clip on either
            # side of it.
            kernel = cuda.elementwise(
                'T grad, T beta1, T one_minus_beta1, T beta2, T eps, T eta, '
                'T neg_step, bool clip_before, bool clip_after',
                'T param, T m, T v',
                'if (clip_before) {clip} {step} if (clip_after) {clip}'
                .format(clip=weight_clip.CUDA_CLIP.format('param'),
                        step=shift_adamax.CUDA_STEP),
                'flat_shift_adamax')
            neg_step = -self.rules[0].step
            for part, _, clipped, eta in self.groups:
                kernel(self.grad[part], hp.beta1, 1 - hp.beta1, hp.beta2,
                       hp.eps, eta, neg_step,
                       clipped and self.timing == 'pre',
                       clipped and self.timing == 'post',
                       self.param[part], self.m[part], self.v[part])
            self._binarize()
            return
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
        for part, _, clipped, eta in self.groups:
            kernel(self.grad[part], alpha_t, 1 - hp.beta1,
                   1 - hp.beta2, hp.eps, eta,
                   clipped and self.timing == 'pre',
                   clipped and self.timing == 'post',
                   self.param[part], self.m[part], self.v[part])
        self._binarize()
