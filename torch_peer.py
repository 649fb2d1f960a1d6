"""BinaryNet (Courbariaux et al., arXiv:1602.02830) on MNIST written the usual
PyTorch way: the port's recipe and the paper's, as recipes.Port and
recipes.Paper set them, for benchmark.py to time against this package's
step.

torch is an optional extra (requirements-torch.txt): nothing but benchmark.py
and its tests imports this module.
"""
import torch
from torch import nn
import torch.nn.functional as F


def binarize(x):
    """x^b = sign(x): +1 where x >= 0, else -1 (Sec. 1.1; sign(0) = +1, as
    bst.binarize's)."""
    return torch.where(x >= 0, 1., -1.).to(x.dtype)


class SignWeights(torch.autograd.Function):

    """W_b = sign(W) forward; g_W = g_{W_b} backward, straight through to
    the real-valued W (Sec. 1.2)."""

    @staticmethod
    def forward(ctx, w):
        return binarize(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


class SignActivation(torch.autograd.Function):

    """q = sign(r) forward; g_r = g_q 1{|r| <= 1} backward (Sec. 1.3)."""

    @staticmethod
    def forward(ctx, r):
        ctx.save_for_backward(r)
        return binarize(r)

    @staticmethod
    def backward(ctx, grad):
        r, = ctx.saved_tensors
        return grad.masked_fill(r.abs() > 1, 0)


class BinaryLinear(nn.Linear):

    """y = x . sign(W)^T + b (Sec. 1.2)."""

    def forward(self, x):
        return F.linear(x, SignWeights.apply(self.weight), self.bias)


def squared_hinge(y, t):
    """L = mean over batch and classes of max(0, 1 - t'_k y_k)^2, t'_k = +1
    for the true class and -1 for the others (squared_hinge.py's)."""
    signs = 2 * F.one_hot(t, y.shape[1]).to(y.dtype) - 1
    return F.relu(1 - signs * y).square().mean()


# The Chainer objects recipes.py names, in PyTorch: the binary layers'
# initial W (Chainer's LeCunNormal, N(0, 1/fan_in), for the port; the
# authors' uniform in [-1, 1] for the paper) and the loss, by preset.
INITIAL_W = {
    'port': lambda w: nn.init.normal_(w, std=w.shape[1] ** -0.5),
    'paper': lambda w: nn.init.uniform_(w, -1., 1.),
}
LOSSES = {'port': F.cross_entropy, 'paper': squared_hinge}


class MnistMLP(nn.Module):

    """h_k = sign(BN(BinaryLinear(h_k-1))), k = 1..n; y = BN(BinaryLinear(h_n))

    net.MnistMLP, with ``recipe``'s depth, dropout, initial W (b zero) and
    BatchNormalization's eps, for recipes.Port or recipes.Paper.

    BatchNorm1d's momentum 0.1 is Chainer's decay 0.9 and the authors'
    alpha 0.1. It keeps the running mean and unbiased variance, as the
    port's BatchNormalization does, where the paper's keeps Lasagne's mean
    and 1 / sqrt(biased variance + eps) (LasagneBatchNormalization): a
    training step normalises by the batch's own statistics either way.
    """

    def __init__(self, recipe, n_units):
        super().__init__()
        sizes = [784] + [n_units] * recipe.n_hidden + [10]
        self.linears = nn.ModuleList(
            BinaryLinear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n, eps=recipe.bn_eps, momentum=0.1)
            for n in sizes[1:])
        for linear in self.linears:
            INITIAL_W[recipe.name](linear.weight)
            nn.init.zeros_(linear.bias)
        self.input_dropout = nn.Dropout(recipe.input_dropout)
        self.hidden_dropout = nn.Dropout(recipe.hidden_dropout)

    def forward(self, x):
        h = self.input_dropout(x)
        *hidden, last = zip(self.linears, self.norms)
        for linear, norm in hidden:
            h = self.hidden_dropout(SignActivation.apply(norm(linear(h))))
        linear, norm = last
        return norm(linear(h))


def glorot_factor(linear):
    """1 / sqrt(1.5 / (fan_in + fan_out)): the paper's W_LR_scale, as
    recipes.glorot_factor."""
    return (1.5 / (linear.in_features + linear.out_features)) ** -0.5


def optimizer(recipe, model):
    """Adam at ``recipe.rate``; where the recipe scales the binary weights'
    steps, W <- W - glorot_factor (Adam's step), each binary W a group of
    its own at that multiple of the rate.

    PyTorch's betas and eps are Chainer's (0.9, 0.999, 1e-8), but PyTorch
    adds eps to sqrt(v / (1 - beta2^t)) where Chainer and Lasagne add it to
    sqrt(v): the same step as theirs with eps * sqrt(1 - beta2^t) in place
    of eps, 3e-10 at the first step, 1e-8 after a few thousand. The Adam
    is PyTorch's default one (neither fused nor foreach on the CPU).
    """
    if not recipe.glorot_steps:
        return torch.optim.Adam(model.parameters(), lr=recipe.rate)
    binary = {id(linear.weight) for linear in model.linears}
    groups = [{'params': [linear.weight],
               'lr': recipe.rate * glorot_factor(linear)}
              for linear in model.linears]
    groups.append({'params': [p for p in model.parameters()
                              if id(p) not in binary]})
    return torch.optim.Adam(groups, lr=recipe.rate)


def clipped_params(model, recipe):
    """The parameters ``recipe`` keeps in [-1, 1]: all of them (the port's
    hook reached BatchNormalization's too) or the binary weights."""
    if recipe.clip == 'all':
        return list(model.parameters())
    return [linear.weight for linear in model.linears]


class Step(object):

    """step(x, t) -> loss: one Adam step of ``model`` (in training mode) on
    the batch, with W <- clip(W, -1, 1) (Sec. 1.2) at the recipe's timing:
    before the update for the port, after it for the paper."""

    def __init__(self, recipe, model):
        self.model = model
        self.optimizer = optimizer(recipe, model)
        self.clipped = clipped_params(model, recipe)
        self.lossfun = LOSSES[recipe.name]
        self.timing = recipe.clip_timing

    def clip(self):
        with torch.no_grad():
            for param in self.clipped:
                param.clamp_(-1., 1.)

    def __call__(self, x, t):
        self.optimizer.zero_grad()
        loss = self.lossfun(self.model(x), t)
        loss.backward()
        # Chainer v1 ran the port's hook after backward, before the update:
        # its gradients are those of the unclipped weights.
        if self.timing == 'pre':
            self.clip()
        self.optimizer.step()
        if self.timing == 'post':
            self.clip()
        return loss
