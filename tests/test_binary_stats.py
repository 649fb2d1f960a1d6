import json

import numpy
import pytest

import chainer
import chainer.links as L

from binary_stats import BinaryStats
from bst import bst
from net import MnistMLP
import train_mnist
from weight_clip import WeightClip

N_IN, N_UNITS, N_OUT, BATCH, N_BATCHES = 6, 5, 3, 8, 3


def host(a):
    return chainer.backend.CpuDevice().send(a)


def sign(a):
    return numpy.where(host(a) >= 0, 1., -1.)


def pre_activations(mlp, x):
    """The inputs of each hidden bst, computed by hand in float64: r =
    gamma (a - mean(a)) / sqrt(var(a) + eps) + beta, a = h . sign(W)^T + b,
    the batch's own statistics."""
    h, rs = numpy.asarray(x, numpy.float64), []
    for linear, bn in mlp.layers()[:-1]:
        a = h @ sign(linear.W.array).T + host(linear.b.array)
        r = (host(bn.gamma.array) * (a - a.mean(axis=0)) /
             numpy.sqrt(a.var(axis=0) + bn.eps) + host(bn.beta.array))
        rs.append(r)
        h = sign(r)
    return rs


def small_net(timing):
    numpy.random.seed(1)
    model = L.Classifier(MnistMLP(N_IN, N_UNITS, N_OUT, n_hidden=2))
    # A large rate: weights flip and reach the clip within a few steps.
    optimizer = chainer.optimizers.Adam(alpha=0.3)
    optimizer.setup(model)
    optimizer.add_hook(WeightClip(), timing=timing)
    return model, optimizer


@pytest.mark.parametrize('timing, device', [
    ('pre', '@numpy'), ('post', '@numpy'),
    pytest.param('post', '@cupy:0', marks=pytest.mark.gpu)])
def test_ratios_are_the_hand_computed_ones_over_two_epochs(timing, device):
    model, optimizer = small_net(timing)
    model.to_device(device)
    mlp = model.predictor
    stats = BinaryStats(mlp)
    rng = numpy.random.RandomState(2)
    seen = set()
    for epoch in range(2):
        start = [host(link.W.array).copy() for link in mlp.binary_links()]
        passed = numpy.zeros(2)
        with stats:
            for _ in range(N_BATCHES):
                x = rng.uniform(-1, 1, (BATCH, N_IN)).astype(numpy.float32)
                t = rng.randint(N_OUT, size=BATCH).astype(numpy.int32)
                for k, r in enumerate(pre_activations(mlp, x)):
                    passed[k] += numpy.count_nonzero(abs(r) <= 1)
                optimizer.update(model, *model.device.send((x, t)))
        # Evaluation outside the epoch counts for nothing.
        with chainer.using_config('train', False):
            model(*model.device.send((x, t)))
        ratios = stats.ratios()
        expected = {}
        for k, (link, W0) in enumerate(zip(mlp.binary_links(), start), 1):
            W = host(link.W.array)
            expected['l{}/flip_ratio'.format(k)] = (
                numpy.count_nonzero(sign(W) != sign(W0)) / W.size)
            expected['l{}/clip_ratio'.format(k)] = (
                numpy.count_nonzero(abs(W) >= 1) / W.size)
            if timing == 'post':
                assert abs(W).max() == 1
        for k in (1, 2):
            expected['l{}/pass_ratio'.format(k)] = (
                passed[k - 1] / (N_BATCHES * BATCH * N_UNITS))
        assert ratios == pytest.approx(expected, abs=0, rel=1e-15)
        assert all(type(v) is float for v in ratios.values())
        seen.update(key for key, v in ratios.items() if 0 < v < 1)
    # Each quantity of each layer was seen strictly between 0 and 1.
    assert seen == set(expected)


def test_no_pass_ratio_for_the_output_layer():
    model, optimizer = small_net('post')
    stats = BinaryStats(model.predictor)
    with stats:
        optimizer.update(model, numpy.zeros((2, N_IN), numpy.float32),
                         numpy.zeros(2, numpy.int32))
    keys = set(stats.ratios())
    assert {'l3/flip_ratio', 'l3/clip_ratio'} <= keys
    assert 'l3/pass_ratio' not in keys and 'l2/pass_ratio' in keys


def test_pass_ratio_is_exact_beyond_float32s_integers():
    stats = BinaryStats(MnistMLP(2, 2, 2, n_hidden=1))
    with stats:
        # 2^24 + 5 ones summed in float32 are 2^24.
        bst(numpy.zeros((1, 2 ** 24 + 5), numpy.float32))
    assert stats.ratios()['l1/pass_ratio'] == 1


def ratios_logged(small_slice, out, *flags, status=0):
    flags = ['--dataset-dir', small_slice, '--out', str(out), '--unit', '16',
             '--noplot'] + list(flags)
    assert train_mnist.main(flags) == status
    with open(str(out / 'log.json')) as f:
        return [{key: value for key, value in entry.items()
                 if key.endswith(('flip_ratio', 'clip_ratio', 'pass_ratio'))}
                for entry in json.load(f)]


@pytest.mark.parametrize('preset', ['port', 'paper'])
def test_resumed_run_logs_the_uninterrupted_runs_ratios(
        small_slice, tmp_path, monkeypatch, preset):
    straight, broken = tmp_path / 'straight', tmp_path / 'broken'
    flags = ['--preset', preset, '-e', '2']
    expected = ratios_logged(small_slice, straight, *flags)
    n_layers = 3 if preset == 'port' else 4
    assert [len(entry) for entry in expected] == [3 * n_layers - 1] * 2
    # Stopped before epoch 2 (the paper's rates span --epoch 2 as given).
    run_epoch = train_mnist.run_epoch
    epochs = []

    def stopped_before_epoch_2(*args):
        epochs.append(len(epochs) + 1)
        if epochs[-1] == 2:
            raise KeyboardInterrupt
        return run_epoch(*args)

    monkeypatch.setattr(train_mnist, 'run_epoch', stopped_before_epoch_2)
    ratios_logged(small_slice, broken, *flags, status=130)
    monkeypatch.undo()
    # Epoch 2's flips are counted from the saved model's signs.
    assert ratios_logged(small_slice, broken, *flags,
                         '--initmodel', str(broken / 'mlp.model'),
                         '--resume', str(broken / 'mlp.state')) == expected


def test_plain_path_logs_the_fast_paths_ratios(small_slice, tmp_path):
    fast = ratios_logged(small_slice, tmp_path / 'fast', '-e', '2')
    plain = ratios_logged(small_slice, tmp_path / 'plain', '-e', '2',
                          '--plain')
    assert [len(entry) for entry in fast] == [8, 8]
    assert plain == fast
