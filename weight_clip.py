"""The weight clipping of BinaryNet (Courbariaux et al., arXiv:1602.02830,
Sec. 1.2): the real-valued weights kept in [-1, 1] at each update."""
import compat  # noqa: F401  (must precede chainer)

from chainer import backend

LOW, HIGH = -1., 1.
# clip() inside a fused CUDA kernel (fast/flat_adam.py's), on a T ``{}``.
CUDA_CLIP = '{0} = min(max({0}, (T)-1), (T)1);'


def clip(p):
    """w <- clip(w, -1, 1), in place, on a NumPy or CuPy array."""
    backend.get_array_module(p).clip(p, LOW, HIGH, out=p)


class WeightClip(object):

    """An optimizer hook: clip(w) after each update (or before it).

    Added with ``optimizer.add_hook`` it clips every parameter, as the Chainer
    port did (BatchNormalization's gamma and beta included); added with
    ``param.update_rule.add_hook`` it clips that parameter alone, as the paper
    clips only the binary weights. ``timing='pre'`` in either call clips
    before the update instead, as Chainer v1 ran the port's hook.
    """

    name = 'WeightClip'
    call_for_each_param = True
    timing = 'post'

    def __call__(self, rule, param):
        if param.array is not None:
            clip(param.array)
