"""The training fast path: BinaryNet's Algorithm 1 (Courbariaux et al.,
arXiv:1602.02830) with the data on the device (device_data.py), one Adam
step, clipping included, for all parameters at once (flat_adam.py), and
BatchNormalization compiled on the CPU (batch_norm.py).

The data sit on the device and a batch is one slice through the epoch's
permutation; type checks are off. On the CPU the update is one pass compiled
by Numba (adam_cpu.py) that also clips and refreshes the sign(W) the forward
reads, and the binary layers write their weight gradients straight into the
flat array; on a GPU it is one fused kernel. The hidden binary layers, whose
inputs are signs (or 0 where dropped out), multiply on packed bits in
training and evaluation alike: exact integers, the sums BLAS gives.

train_mnist.py runs this or, with --plain, Chainer's iterator, update rules,
hooks and type checks: the same model, bit for bit on the CPU.
"""
from fast import batch_norm
from fast import device_data
from fast.flat_adam import FlatAdam


def make_step(model, optimizer, clipped, timing):
    """The fast path's FlatAdam for ``model`` (a Classifier of an MnistMLP,
    on its device), its BatchNormalization compiled and its hidden layers'
    products on packed bits, on the CPU where Numba runs; the arguments are
    FastPath's; the optimizer is Adam or shift-based AdaMax."""
    net = model.predictor
    batch_norm.use_compiled(net)
    return FlatAdam(optimizer, clipped, timing, net.ternary_input_links(),
                    net.signed_input_links())


class FastPath(object):

    """step(x, t), batches(data, epoch, start) and evaluate(data), as
    train_mnist.PlainPath has them.

    Args:
        model (~chainer.links.Classifier): The model, on ``device``.
        optimizer (~chainer.optimizers.Adam): Set up on ``model`` by its
            recipe, its state loaded; it stays the one saved and resumed.
        clipped (list of ~chainer.Parameter): The parameters the recipe
            clips, at ``timing`` ('pre' or 'post' the update).
        args: train_mnist.py's flags (``batchsize``, ``seed``, ``eval_bn``).
        device: The chainer device.
    """

    def __init__(self, model, optimizer, clipped, timing, args, device):
        self.model = model
        self.adam = make_step(model, optimizer, clipped, timing)
        self.args = args
        self.device = device

    def dataset(self, data):
        """``data`` (a TupleDataset, or None) held whole on the device."""
        return None if data is None else device_data.DeviceDataset(
            data, self.device)

    def step(self, x, t):
        self.adam.update(self.model, x, t)

    def batches(self, data, epoch, start=0):
        """The (x, t) batches of ``epoch`` from batch ``start`` on, in
        --plain's order."""
        order = device_data.epoch_order(len(data), self.args.seed, epoch)
        return data.batches(self.args.batchsize,
                            order[start * self.args.batchsize:])

    def evaluate(self, data):
        """Mean loss and accuracy on ``data``, as --plain computes them."""
        return device_data.evaluate(self.model, data, self.args.batchsize,
                                    self.args.eval_bn == 'batch')
