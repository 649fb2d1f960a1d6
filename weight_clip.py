"""Optimizer hook keeping real-valued weights in [-1, 1] (paper, Sec. 1.2)."""
import compat  # noqa: F401  (must precede chainer)

from chainer import backend


class WeightClip(object):

    """w <- clip(w, low, high), in place, after each update (or before it).

    Added with ``optimizer.add_hook`` it clips every parameter, as the Chainer
    port did (BatchNormalization's gamma and beta included); added with
    ``param.update_rule.add_hook`` it clips that parameter alone, as the paper
    clips only the binary weights. ``timing='pre'`` in either call clips
    before the update instead, as Chainer v1 ran the port's hook.

    Args:
        low (float): Lower bound.
        high (float): Upper bound.
    """

    name = 'WeightClip'
    call_for_each_param = True
    timing = 'post'

    def __init__(self, low=-1., high=1.):
        self.low = low
        self.high = high

    def __call__(self, rule, param):
        p = param.array
        if p is None:
            return
        xp = backend.get_array_module(p)
        xp.clip(p, self.low, self.high, out=p)
