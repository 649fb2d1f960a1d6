"""What is particular to training a binary net, measured over an epoch:
binary weights that flip, real-valued weights at the clip, and the share of
pre-activations through which the straight-through estimator passes a
gradient (Courbariaux et al., "Binarized Neural Networks",
arXiv:1602.02830, Sec. 1.2-1.3)."""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer

from bst import BinaryStraightThrough


class BinaryStats(chainer.FunctionHook):

    """For each binary layer lK of an ``MnistMLP``, over one training epoch:

    - flip_ratio = mean(sign(W_end) != sign(W_start)), the binary weights
      that changed sign;
    - clip_ratio = mean(|W_end| >= 1): at the clip's bound, or, where the
      recipe clips before each update (the port), beyond it, so clipped at
      the next step;
    - pass_ratio = mean over the epoch's pre-activations r (the input of
      bst) of 1{|r| <= 1}, where g_r = g_q passes (hidden layers only).

    Use ``with stats:`` around the epoch's training steps (evaluation stays
    outside), then ``stats.ratios()``. The counts stay on the device until
    ``ratios()``: no step waits for them.

    Args:
        mlp (~net.MnistMLP): The net being trained.
    """

    name = 'BinaryStats'

    def __init__(self, mlp):
        self.links = mlp.binary_links()
        self.n_hidden = mlp.n_hidden
        self.start_signs = self.passed = self.counted = None
        self.calls = 0
        self.resumed = False

    def __enter__(self):
        # An epoch resumed at its step goes on with its counts.
        if not self.resumed:
            # W >= 0 is sign(W) = +1 (sign(0) = +1), at a byte a weight.
            self.start_signs = [link.W.array >= 0 for link in self.links]
            xp = chainer.backend.get_array_module(self.start_signs[0])
            self.passed = xp.zeros(self.n_hidden, numpy.float64)
            self.counted = [0] * self.n_hidden
        self.resumed = False
        self.calls = 0
        return super().__enter__()

    def partial(self):
        """The counts of an epoch cut short, for a snapshot: the pass counts
        as JSON takes them, and the signs at the epoch's start."""
        return {'passed': [float(p) for p in self.passed],
                'counted': list(self.counted),
                'start_signs': [chainer.backend.CpuDevice().send(s)
                                for s in self.start_signs]}

    def resume(self, passed, counted, start_signs):
        """Goes on with partial()'s counts at the next ``with``."""
        xp = self.links[0].xp
        self.passed = xp.asarray(passed, numpy.float64)
        self.counted = list(counted)
        self.start_signs = [xp.asarray(s) for s in start_signs]
        self.resumed = True

    def forward_postprocess(self, function, in_data):
        if not isinstance(function, BinaryStraightThrough):
            return
        # The forward pass applies bst once per hidden layer, in order.
        k = self.calls % self.n_hidden
        self.calls += 1
        # The mask backward multiplies by: 1 where |r| <= 1, else 0.
        mask = function.pass_through
        # A sum of 0s and 1s is exact in the mask's float32 up to 2^24, and
        # several times faster there than in float64.
        exact = mask.size <= 2 ** (numpy.finfo(mask.dtype).nmant + 1)
        self.passed[k] += mask.sum(dtype=None if exact else numpy.float64)
        self.counted[k] += mask.size

    def ratios(self):
        """{'lK/flip_ratio': ..., 'lK/clip_ratio': ..., 'lK/pass_ratio':
        ...} for the epoch just trained, as Python floats."""
        entry = {}
        for k, (link, start) in enumerate(
                zip(self.links, self.start_signs), 1):
            W = link.W.array
            xp = chainer.backend.get_array_module(W)
            prefix = 'l{}/'.format(k)
            entry[prefix + 'flip_ratio'] = float(
                xp.count_nonzero((W >= 0) != start)) / W.size
            entry[prefix + 'clip_ratio'] = float(
                xp.count_nonzero(abs(W) >= 1)) / W.size
            if k <= self.n_hidden and self.counted[k - 1]:
                entry[prefix + 'pass_ratio'] = (
                    float(self.passed[k - 1]) / self.counted[k - 1])
        return entry
