import numpy
import pytest

import chainer
import chainer.links as L

from batch_normalization import BatchNormalization
from batch_normalization import LasagneBatchNormalization
from fast import batch_norm
from net import MnistMLP
import recipes
from shift_batch_normalization import ShiftBatchNormalization


def pair(kind, width, seed):
    """Two equal links of ``kind``, the second training through
    CompiledImpl, with gamma and beta off their initial 1 and 0."""
    rng = numpy.random.RandomState(seed)
    links = [kind(width, eps=1e-4) for _ in range(2)]
    gamma = rng.uniform(-1.5, 1.5, width)
    beta = rng.uniform(-.5, .5, width)
    for link in links:
        link.gamma.array[...] = gamma
        link.beta.array[...] = beta
    if kind is ShiftBatchNormalization:
        links[1].kernels = batch_norm.compiled_shift()
    else:
        links[1].impl_selector = batch_norm.select
    return links


def train_step(link, x, gy):
    """y, g_x, g_gamma, g_beta and the population statistics after one
    training forward and backward."""
    x = chainer.Variable(x)
    link.cleargrads()
    with chainer.using_config('train', True):
        y = link(x)
    y.grad = gy
    y.backward()
    return ([y.array, x.grad, link.gamma.grad, link.beta.grad] +
            [getattr(link, name) for name in sorted(link._persistent)
             if name != 'N'])


# Chainer warns of a batch of 1, which normalises to beta.
@pytest.mark.filterwarnings('ignore:A batch with no more than one sample')
@pytest.mark.parametrize('kind', [BatchNormalization,
                                  LasagneBatchNormalization,
                                  ShiftBatchNormalization])
@pytest.mark.parametrize('rows,width', [
    (100, 1000), (100, 10), (100, 2), (7, 19), (2, 64), (1, 5), (100, 1),
    (128, 1)])
def test_compiled_is_chainers_numpy_code_bit_for_bit(kind, rows, width):
    plain, compiled = pair(kind, width, seed=rows + width)
    rng = numpy.random.RandomState(width)
    for step in range(3):
        # Pre-activations of varied scale and offset, as a binary layer's,
        # a column of -0s and one constant: NumPy's sums start from +0.
        x = (rng.randn(rows, width) * rng.uniform(1, 50, width) +
             rng.uniform(-20, 20, width)).astype(numpy.float32)
        x[:, 0] = -0.
        x[:, -1] = 3.
        gy = rng.randn(rows, width).astype(numpy.float32)
        gy[:, 0] = -0.
        gy[:, -1] = -abs(gy[:, -1])
        expected, got = train_step(plain, x, gy), train_step(compiled, x, gy)
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            # The bits: assert_array_equal takes -0 for +0.
            numpy.testing.assert_array_equal(
                g.view(numpy.uint32), e.view(numpy.uint32),
                err_msg='array %d' % k)


def counted(kernels, calls):
    """``kernels``' forward and backward, each call's name added to
    ``calls``."""
    class Counted(object):
        def forward(self, *args):
            calls.append('forward')
            kernels.forward(*args)

        def backward(self, *args):
            calls.append('backward')
            kernels.backward(*args)
    return Counted()


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the kernels called, as they run."""
    calls = []
    kernels = counted(batch_norm.compiled(), calls)
    monkeypatch.setattr(batch_norm, 'compiled', lambda: kernels)
    return calls


def test_the_kernels_run_on_a_float32_batch_of_rows(kernel_calls):
    _, link = pair(BatchNormalization, 6, seed=0)
    x = numpy.ones((4, 6), numpy.float32)
    train_step(link, x, x)
    assert kernel_calls == ['forward', 'backward']


def test_numpy_runs_where_it_sums_otherwise(kernel_calls):
    rng = numpy.random.RandomState(0)
    x = rng.randn(4, 6).astype(numpy.float32)
    # NumPy sums a single column pairwise.
    _, column = pair(BatchNormalization, 1, seed=0)
    train_step(column, x[:, :1].copy(), x[:, :1].copy())
    # A column-major batch, and float64.
    _, link = pair(BatchNormalization, 6, seed=0)
    train_step(link, numpy.asfortranarray(x), x)
    double = BatchNormalization(6, dtype=numpy.float64)
    double.impl_selector = batch_norm.select
    train_step(double, x.astype(numpy.float64), x.astype(numpy.float64))
    assert kernel_calls == []


def test_inference_is_chainers_own():
    plain, compiled = pair(BatchNormalization, 8, seed=1)
    x = numpy.random.RandomState(2).randn(5, 8).astype(numpy.float32)
    for link in (plain, compiled):
        train_step(link, x, x)
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(compiled(x).array, plain(x).array)


@pytest.mark.parametrize('recipe', [recipes.Port, recipes.Paper])
def test_use_compiled_sets_each_of_the_nets_links(recipe):
    model = recipe.model(8)
    batch_norm.use_compiled(model.predictor)
    assert [bn.impl_selector for _, bn in model.predictor.layers()] == [
        batch_norm.select] * (recipe.n_hidden + 1)


def test_use_compiled_sets_the_shift_based_links_kernels():
    model = recipes.Torch7.model(8)
    batch_norm.use_compiled(model.predictor)
    *hidden, (_, output) = model.predictor.layers()
    assert [bn.kernels for _, bn in hidden] == [
        batch_norm.compiled_shift()] * 3
    assert output.impl_selector is batch_norm.select


def test_shift_kernels_run_on_a_float32_batch_of_rows_only():
    calls = []
    kernels = counted(batch_norm.compiled_shift(), calls)
    x = numpy.random.RandomState(0).randn(4, 6).astype(numpy.float32)
    for width, batch in ((6, x), (1, x[:, :1].copy()),
                         (6, numpy.asfortranarray(x))):
        link = ShiftBatchNormalization(width)
        link.kernels = kernels
        train_step(link, batch, batch)
    assert calls == ['forward', 'backward']


def test_use_compiled_leaves_chainers_link_and_numpy_alone(monkeypatch):
    chainers = MnistMLP(6, 4, 3, batch_normalization=L.BatchNormalization)
    batch_norm.use_compiled(chainers)
    assert not any(hasattr(bn, 'impl_selector')
                   for _, bn in chainers.layers())
    monkeypatch.setattr(batch_norm, 'compiled', lambda: None)
    model = recipes.Port.model(8)
    batch_norm.use_compiled(model.predictor)
    assert [bn.impl_selector for _, bn in model.predictor.layers()] == [
        None] * 3
