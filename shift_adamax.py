"""BinaryNet's shift-based AdaMax (Courbariaux et al., "Binarized Neural
Networks", arXiv:1602.02830, Sec. 1.5 and its algorithm "Shift based AdaMax
learning rule"), as the authors' Torch7 code computes it
(itayhubara/BinaryNet, adaMax_binary_clip_shift.lua): the update rule and
its optimizer.

Where the code departs from the paper's algorithm, whose defaults are powers
of two (1 - beta1 = 2^-3, 1 - beta2 = 2^-10, alpha = 2^-10): it takes
beta1 = 0.9, beta2 = 0.999 and alpha = 2^-6, rounds the bias-corrected step
to a power of two with AP2 (no second-moment correction), stores AP2(v) + eps
in place of v, multiplies each parameter's step by a constant GLR (``eta``
here, as Chainer's Adam names such a factor) and clips the binary weights
inside the update (here, weight_clip's hook after it: the same numbers).
"""
import compat  # noqa: F401  (must precede chainer)

import numpy

import chainer
from chainer import optimizer

from shift_batch_normalization import ap2

_default_hyperparam = optimizer.Hyperparameter()
_default_hyperparam.alpha = 2. ** -6
_default_hyperparam.beta1 = 0.9
_default_hyperparam.beta2 = 0.999
_default_hyperparam.eps = 2. ** -27
_default_hyperparam.eta = 1.

# One element's step in a CUDA kernel, on T param, m, v, grad and the
# scalars beta1, one_minus_beta1, beta2, eps, neg_step and eta: AP2 by
# frexp and ldexp, the mantissa's cut compared in double as ap2's.
CUDA_STEP = '''
    m = m * beta1 + one_minus_beta1 * grad;
    T a = max(v * beta2, abs(grad));
    int e;
    T f = frexp(a, &e);
    T r = a == (T)0 || !isfinite(a) ? a
        : ldexp((double)f < 0.70710678118654752 ? (T)0.5 : (T)1, e);
    v = r + eps;
    param += neg_step * (m / v) * eta;'''


class ShiftAdaMaxRule(optimizer.UpdateRule):

    """At step t (the run's), for the gradient g of a parameter theta:

        m <- beta1 m + (1 - beta1) g;  v <- max(beta2 v, |g|)
        step = AP2(alpha / (1 - beta1^t));  v <- AP2(v) + eps
        theta <- theta - step eta m / v

    The v kept for the next step is AP2(v) + eps, as the code keeps it.
    """

    is_elementwise = True

    def __init__(self, parent_hyperparam=None, alpha=None, beta1=None,
                 beta2=None, eps=None, eta=None):
        super().__init__(parent_hyperparam or _default_hyperparam)
        for name, value in (('alpha', alpha), ('beta1', beta1),
                            ('beta2', beta2), ('eps', eps), ('eta', eta)):
            if value is not None:
                setattr(self.hyperparam, name, value)

    def init_state(self, param):
        with chainer.using_device(param.device):
            xp = param.device.xp
            self.state['m'] = xp.zeros_like(param.data)
            self.state['v'] = xp.zeros_like(param.data)

    @property
    def step(self):
        """AP2(alpha / (1 - beta1^t)), in double precision as Lua's math."""
        hp = self.hyperparam
        return float(ap2(numpy.float64(hp.alpha / (1 - hp.beta1 ** self.t))))

    def update_core_cpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        m, v = self.state['m'], self.state['v']
        m *= hp.beta1
        m += (1 - hp.beta1) * grad
        numpy.maximum(v * hp.beta2, abs(grad), out=v)
        v[...] = ap2(v)
        v += hp.eps
        # The code's addcmul: theta + (-step (m / v)) eta.
        param.data += -self.step * (m / v) * hp.eta

    def update_core_gpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        chainer.backends.cuda.elementwise(
            'T grad, T beta1, T one_minus_beta1, T beta2, T eps, T eta, '
            'T neg_step', 'T param, T m, T v', CUDA_STEP,
            'shift_adamax')(grad, hp.beta1, 1 - hp.beta1, hp.beta2, hp.eps,
                            hp.eta, -self.step, param.data, self.state['m'],
                            self.state['v'])


class ShiftAdaMax(optimizer.GradientMethod):

    """Shift-based AdaMax (ShiftAdaMaxRule) for every parameter.

    Args:
        alpha (float): Learning rate (the code's LR, 2^-6 for MNIST).
        beta1, beta2 (float): Decay rates of m and of v.
        eps (float): Added to AP2(v).
        eta (float): The multiplier GLR of every parameter's step; the
            torch7 recipe sets each parameter's own.
    """

    def __init__(self, alpha=_default_hyperparam.alpha,
                 beta1=_default_hyperparam.beta1,
                 beta2=_default_hyperparam.beta2,
                 eps=_default_hyperparam.eps, eta=_default_hyperparam.eta):
        super().__init__()
        self.hyperparam.alpha = alpha
        self.hyperparam.beta1 = beta1
        self.hyperparam.beta2 = beta2
        self.hyperparam.eps = eps
        self.hyperparam.eta = eta

    alpha = optimizer.HyperparameterProxy('alpha')
    beta1 = optimizer.HyperparameterProxy('beta1')
    beta2 = optimizer.HyperparameterProxy('beta2')
    eps = optimizer.HyperparameterProxy('eps')
    eta = optimizer.HyperparameterProxy('eta')

    def create_update_rule(self):
        return ShiftAdaMaxRule(self.hyperparam)
