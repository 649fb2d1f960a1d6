"""BinaryNet's BatchNormalization links (Courbariaux et al.,
arXiv:1602.02830, Algorithm 1): Chainer's, as the port used it, and one
with the population statistics of the authors' code, as Lasagne's
BatchNormLayer keeps them."""
import compat  # noqa: F401  (must precede chainer)

import chainer
import chainer.functions as F
from chainer.functions.normalization import batch_normalization
import chainer.links as L


class BatchNormalization(L.BatchNormalization):

    """Chainer's BatchNormalization: y = gamma (x - mu_B) / sqrt(sigma_B^2 +
    eps) + beta over the batch in training, the running mean and unbiased
    variance at inference.

    ``impl_selector``: None for Chainer's link as it is; the fast path sets
    fast.batch_norm.select on the CPU, whose training forward and backward
    are Chainer's arithmetic compiled (training as the port trains: no
    fine-tuning mode).
    """

    impl_selector = None

    def forward(self, x):
        if self.impl_selector is None or not chainer.config.train:
            return super().forward(x)
        return self.normalize(x, self.avg_mean, self.avg_var)

    def normalize(self, x, running_mean=None, running_var=None):
        """Chainer's batch_normalization of ``x`` by the batch's statistics,
        updating ``running_mean`` and ``running_var`` where given."""
        if self.impl_selector is None:
            return F.batch_normalization(
                x, self.gamma, self.beta, eps=self.eps,
                running_mean=running_mean, running_var=running_var,
                decay=self.decay, axis=self.axis)
        y, = batch_normalization.BatchNormalization(
            self.eps, running_mean, running_var, self.decay, self.axis,
            impl_selector=self.impl_selector).apply(
                (x, self.gamma, self.beta))
        return y


class LasagneBatchNormalization(BatchNormalization):

    """mean <- d mean + (1 - d) mu_B; inv_std <- d inv_std + (1 - d) /
    sqrt(sigma_B^2 + eps), from mean 0 and inv_std 1; y = gamma (x - mean)
    inv_std + beta at inference.

    sigma_B^2 is the batch's biased variance and d = ``decay`` = 1 - Lasagne's
    alpha. Chainer's BatchNormalization instead averages the unbiased
    variance, from 1, and divides by sqrt(var + eps) at inference. Training
    normalises each batch by its own statistics either way.

    Args:
        size (int): Number of units.
        decay (float): d above; the authors' alpha is 0.1.
        eps (float): epsilon above.
    """

    def __init__(self, size, decay=0.9, eps=1e-4):
        super().__init__(size, decay=decay, eps=eps)
        del self.avg_var
        self.avg_inv_std = self.xp.ones_like(self.avg_mean)
        self.register_persistent('avg_inv_std')

    def forward(self, x):
        if chainer.config.train:
            batch = x.array if isinstance(x, chainer.Variable) else x
            inv_std = 1 / self.xp.sqrt(batch.var(axis=0) + self.eps)
            self.avg_mean[...] = (self.decay * self.avg_mean +
                                  (1 - self.decay) * batch.mean(axis=0))
            self.avg_inv_std[...] = (self.decay * self.avg_inv_std +
                                     (1 - self.decay) * inv_std)
            return self.normalize(x)
        centred = x - self.xp.broadcast_to(self.avg_mean, x.shape)
        return F.bias(F.scale(centred, self.gamma * self.avg_inv_std, axis=1),
                      self.beta, axis=1)
