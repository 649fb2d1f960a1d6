import types

import numpy
import pytest

import chainer
from chainer.backends import cuda
from chainer.dataset import convert

from fast import device_data
from packed import cpu
from packed import mlp as packed_mlp
import recipes
import train_mnist


def plain_path(batchsize, seed=0, eval_bn='population'):
    """train_mnist.PlainPath on the CPU, with the flags it reads."""
    args = types.SimpleNamespace(batchsize=batchsize, seed=seed,
                                 eval_bn=eval_bn)
    return train_mnist.PlainPath(None, None, args, None)


def datasets(data_slice):
    """The port's training set and the paper's, a SubDataset of 8,333."""
    return recipes.Port.data(data_slice)[0], recipes.Paper.data(data_slice)[0]


@pytest.mark.parametrize('which', [0, 1])
def test_batches_are_the_iterators_to_the_last_short_one(data_slice, which):
    dataset = datasets(data_slice)[which]
    held = device_data.DeviceDataset(dataset, chainer.get_device('@numpy'))
    assert len(held) == len(dataset)
    order = device_data.epoch_order(len(held), 3, 7)
    sliced = list(held.batches(300, order))
    iterated = list(plain_path(300, seed=3).batches(dataset, 7))
    assert len(sliced) == len(iterated) == -(-len(dataset) // 300)
    assert len(sliced[-1][1]) == len(dataset) % 300
    for (x, t), (x_expected, t_expected) in zip(sliced, iterated, strict=True):
        numpy.testing.assert_array_equal(x, x_expected)
        numpy.testing.assert_array_equal(t, t_expected)
        assert (x.dtype, t.dtype) == (numpy.float32, numpy.int32)


def test_orders_differ_between_epochs_and_seeds():
    orders = [device_data.epoch_order(1000, seed, epoch)
              for seed, epoch in ((0, 1), (0, 2), (1, 1))]
    assert all(sorted(order) == list(range(1000)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3


def test_no_order_reads_the_dataset_as_it_is(data_slice):
    dataset = datasets(data_slice)[0]
    held = device_data.DeviceDataset(dataset, chainer.get_device('@numpy'))
    x, t = next(held.batches(70))
    x_expected, t_expected = convert.concat_examples(dataset[:70])
    numpy.testing.assert_array_equal(x, x_expected)
    numpy.testing.assert_array_equal(t, t_expected)


def signed(dataset):
    """``dataset`` with its images as +-1: every product of the first
    layer exact, so that no summation order moves a result."""
    x, t = convert.concat_examples(dataset[:])
    return chainer.datasets.TupleDataset(numpy.sign(x - 0.5), t)


@pytest.mark.parametrize('recipe,eval_bn', [
    (recipes.Port, 'population'), (recipes.Port, 'batch'),
    (recipes.Paper, 'population')])
def test_evaluation_is_plains_to_the_last_bit(data_slice, recipe, eval_bn,
                                              monkeypatch):
    calls, packed = [], cpu.sign_product

    def sign_product(x, wt, n):
        calls.append(n)
        return packed(x, wt, n)
    monkeypatch.setattr(cpu, 'sign_product', sign_product)
    numpy.random.seed(0)
    model = recipe.model(32)
    _, _, test = recipe.data(data_slice)
    held = device_data.DeviceDataset(test, chainer.get_device('@numpy'))
    # 14 batches of 70 images, then 20 images in one.
    path = plain_path(70, eval_bn=eval_bn)
    path.model = model.copy(mode='copy')
    assert device_data.evaluate(model, held, 70, eval_bn == 'batch') == \
        path.evaluate(test)
    # The hidden layers' products on packed bits, the last one's 10 wide.
    assert calls == ([32] * (recipe.n_hidden - 1) + [10]) * 15


@pytest.mark.parametrize('recipe,train,packed', [
    (recipes.Port, False, 2), (recipes.Port, True, 2),
    (recipes.Paper, False, 3), (recipes.Paper, True, 0)])
def test_packed_products_where_the_hidden_inputs_are_signs(recipe, train,
                                                           packed):
    numpy.random.seed(0)
    net = recipe.model(32).predictor
    with device_data.packed_products(net, train):
        products = [linear.product for linear, _ in net.layers()]
    assert products[0] is None
    assert sum(product is not None for product in products) == packed
    assert all(linear.product is None for linear, _ in net.layers())


def test_packed_products_gives_each_layer_its_own_product_back():
    numpy.random.seed(0)
    net = recipes.Port.model(32).predictor
    owns = [object() for _ in net.layers()]
    for (linear, _), own in zip(net.layers(), owns):
        linear.product = own
    with device_data.packed_products(net, False):
        assert net.layers()[1][0].product is not owns[1]
    assert [linear.product for linear, _ in net.layers()] == owns


def test_without_numba_blas_runs_every_product(monkeypatch):
    monkeypatch.setattr(packed_mlp, 'compiled', lambda: None)
    numpy.random.seed(0)
    net = recipes.Paper.model(32).predictor
    with device_data.packed_products(net, False):
        assert all(linear.product is None for linear, _ in net.layers())


@pytest.mark.gpu
def test_gpu_batches_and_means_agree_with_the_cpus(data_slice):
    numpy.random.seed(0)
    model = recipes.Port.model(32)
    train, _, test = recipes.Port.data(data_slice)
    test = signed(test)
    results = []
    for device in map(chainer.get_device, ('@numpy', '@cupy:0')):
        model.to_device(device)
        held = device_data.DeviceDataset(train, device)
        x, t = list(held.batches(300, device_data.epoch_order(
            len(held), 0, 1)))[-1]
        assert isinstance(x, device.xp.ndarray)
        means = device_data.evaluate(
            model, device_data.DeviceDataset(test, device), 100)
        results.append((cuda.to_cpu(x), cuda.to_cpu(t), means))
    (x_cpu, t_cpu, cpu), (x_gpu, t_gpu, gpu) = results
    numpy.testing.assert_array_equal(x_gpu, x_cpu)
    numpy.testing.assert_array_equal(t_gpu, t_cpu)
    # The +-1 images make every pre-activation exact on both, so every
    # sign and prediction agrees; the loss's float32 arithmetic may round
    # otherwise (a fused multiply-add on the GPU).
    assert gpu[1] == cpu[1]
    assert gpu[0] == pytest.approx(cpu[0], rel=1e-6)
