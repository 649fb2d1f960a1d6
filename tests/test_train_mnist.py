import json
import os
import re
import shutil
import subprocess
import sys

import numpy
import pytest

import chainer
import chainer.links as L

from conftest import N_TEST, N_TRAIN, ROOT, gpu_usable
from net import MnistMLP
import safe_npz
from squared_hinge import squared_hinge
import train_mnist

SCRIPT = os.path.join(ROOT, 'train_mnist.py')


def run(data_slice, out, *flags):
    return train_mnist.main(['--dataset-dir', data_slice, '--out', str(out),
                             '--unit', '100', '--noplot'] + list(flags))


def read_log(out):
    with open(os.path.join(out, 'log.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def two_epochs(data_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp('two_epochs')
    assert run(data_slice, out, '--epoch', '2') == 0
    return out


def test_short_run_learns_and_prints_the_ports_log(data_slice, tmp_path,
                                                   capsys):
    assert run(data_slice, tmp_path, '--epoch', '2') == 0
    lines = capsys.readouterr().out.splitlines()
    number = r'[0-9]+\.[0-9]+'
    train = 'train mean loss=#, accuracy=#'
    test = 'test  mean loss=#, accuracy=#'
    expected = ['load MNIST dataset', 'epoch 1', 'graph generated', train,
                test, 'epoch 2', train, test, 'save the model',
                'save the optimizer']
    assert len(lines) == len(expected)
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(re.escape(pattern).replace('\\#', number), line)
    log = read_log(tmp_path)
    assert [e['epoch'] for e in log] == [1, 2]
    assert log[1]['iteration'] == 2 * N_TRAIN // 100
    # 10,000 images, 2 epochs, 100 units: 0.852-0.859 measured (seeds 1-3).
    assert log[1]['validation/main/accuracy'] >= 0.82
    assert 'BinaryStraightThrough' in (tmp_path / 'graph.dot').read_text()
    assert {'mlp.model', 'mlp.state'} <= set(os.listdir(tmp_path))


def test_plots_are_drawn(data_slice, tmp_path):
    pytest.importorskip('matplotlib')
    assert train_mnist.main(['--dataset-dir', data_slice, '--out',
                             str(tmp_path), '--unit', '10', '-e', '1']) == 0
    for name in ('loss.png', 'accuracy.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def arrays(path):
    with numpy.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def test_resumed_run_continues_where_it_stopped(data_slice, two_epochs,
                                                tmp_path, capsys):
    assert run(data_slice, tmp_path, '--epoch', '1') == 0
    capsys.readouterr()
    assert run(data_slice, tmp_path, '--epoch', '2',
               '--initmodel', str(tmp_path / 'mlp.model'),
               '--resume', str(tmp_path / 'mlp.state')) == 0
    printed = capsys.readouterr().out
    assert 'epoch 2' in printed and 'epoch 1' not in printed
    assert read_log(tmp_path)[:2] == [
        dict(e, elapsed_time=pytest.approx(e['elapsed_time'], abs=1e9))
        for e in read_log(two_epochs)]
    # Same orders, same optimizer state: the same model as without a break.
    for name in ('mlp.model', 'mlp.state'):
        resumed, straight = arrays(tmp_path / name), arrays(two_epochs / name)
        assert resumed.keys() == straight.keys()
        for key in straight:
            numpy.testing.assert_array_equal(resumed[key], straight[key],
                                             err_msg=key)


def test_initmodel_starts_from_the_saved_weights(data_slice, two_epochs,
                                                 tmp_path):
    assert run(data_slice, tmp_path, '--epoch', '1',
               '--initmodel', str(two_epochs / 'mlp.model')) == 0
    fresh, = read_log(two_epochs)[:1]
    continued, = read_log(tmp_path)
    assert continued['epoch'] == 1
    assert continued['main/accuracy'] > fresh['main/accuracy'] + 0.03


def test_ctrl_c_leaves_a_resumable_snapshot(data_slice, tmp_path,
                                            monkeypatch, capsys):
    concat_examples = train_mnist.convert.concat_examples
    batches = []

    def interrupted_in_epoch_2(*args):
        batches.append(1)
        # Epoch 1 is 100 training and 10 test batches: stop 5 into epoch 2.
        if len(batches) == 115:
            raise KeyboardInterrupt
        return concat_examples(*args)

    monkeypatch.setattr(train_mnist.convert, 'concat_examples',
                        interrupted_in_epoch_2)
    assert run(data_slice, tmp_path, '--epoch', '3') == 130
    assert 'interrupted after 1 complete epoch(s)' in capsys.readouterr().err
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(L.Classifier(MnistMLP(784, 100, 10)))
    safe_npz.load(str(tmp_path / 'mlp.state'), optimizer)
    assert (optimizer.epoch, optimizer.t) == (1, 104)
    monkeypatch.undo()
    assert run(data_slice, tmp_path, '--epoch', '3',
               '--initmodel', str(tmp_path / 'mlp.model'),
               '--resume', str(tmp_path / 'mlp.state')) == 0
    assert [e['epoch'] for e in read_log(tmp_path)] == [1, 2, 3]


def test_ctrl_c_before_any_update_saves_nothing(data_slice, tmp_path,
                                                monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_mnist, 'run_epoch', interrupted)
    assert run(data_slice, tmp_path) == 130
    assert not (tmp_path / 'mlp.model').exists()


@pytest.mark.parametrize('which,clipped', [
    ('all', {'W', 'b', 'gamma', 'beta'}),
    ('binary', {'W'}),
])
def test_clipping_choice(which, clipped):
    model = L.Classifier(MnistMLP(6, 5, 3))
    for param in model.params():
        param.array[...] = 5
        param.grad = numpy.zeros_like(param.array)
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    train_mnist.add_clipping(optimizer, model, which)
    optimizer.update()
    for name, param in model.namedparams():
        expected = 1 if name.rsplit('/', 1)[1] in clipped else 5
        assert param.array.max() == expected, name


# The paper's recipe.

def test_presets_fill_only_the_flags_not_given():
    port = train_mnist.parse_args([])
    assert (port.epoch, port.unit, port.clip) == (20, 1000, 'all')
    paper = train_mnist.parse_args(['--preset', 'paper'])
    assert (paper.epoch, paper.unit, paper.clip) == (1000, 4096, 'binary')
    mixed = train_mnist.parse_args(['--preset', 'paper', '-e', '5', '-u', '8',
                                    '--clip', 'all'])
    assert (mixed.epoch, mixed.unit, mixed.clip) == (5, 8, 'all')


def test_paper_model_is_the_papers_net():
    numpy.random.seed(0)
    model = train_mnist.make_model('paper', 64)
    mlp = model.predictor
    assert model.lossfun is squared_hinge
    assert [(linear.in_size, linear.out_size)
            for linear, _ in mlp.layers()] == [
        (784, 64), (64, 64), (64, 64), (64, 10)]
    assert (mlp.input_dropout, mlp.hidden_dropout) == (0.2, 0.5)
    assert all(bn.eps == 1e-4 and bn.decay == 0.9 for _, bn in mlp.layers())
    W = mlp.l2.W.array
    # Uniform in [-1, 1], not LeCun's N(0, 1/64).
    assert W.min() >= -1 and W.max() <= 1 and W.std() > 0.5


def test_paper_steps_of_exactly_the_binary_weights_are_glorot_scaled():
    numpy.random.seed(0)
    model = train_mnist.make_model('paper', 16)
    plain = model.copy(mode='copy')
    rng = numpy.random.RandomState(1)
    for (name, param), (_, twin) in zip(sorted(model.namedparams()),
                                        sorted(plain.namedparams())):
        # Away from the clip, so that only the step differs.
        param.array[...] = twin.array[...] = 0
        param.grad = twin.grad = rng.normal(
            size=param.shape).astype(numpy.float32)
    train_mnist.make_optimizer(model, 'paper', 'binary').update()
    reference = chainer.optimizers.Adam()
    reference.setup(plain)
    reference.update()
    factors = {'/predictor/l1/W': (1.5 / (784 + 16)) ** -0.5,
               '/predictor/l2/W': (1.5 / 32) ** -0.5,
               '/predictor/l3/W': (1.5 / 32) ** -0.5,
               '/predictor/l4/W': (1.5 / 26) ** -0.5}
    assert abs(factors['/predictor/l1/W'] - 23.09) < 0.01
    for (name, param), (_, twin) in zip(sorted(model.namedparams()),
                                        sorted(plain.namedparams())):
        numpy.testing.assert_allclose(
            param.array, factors.get(name, 1) * twin.array, rtol=1e-5,
            err_msg=name)


def test_paper_clips_the_binary_weights_only():
    model = train_mnist.make_model('paper', 16)
    optimizer = train_mnist.make_optimizer(model, 'paper', 'binary')
    for param in model.params():
        param.array[...] = 0.9999
        param.grad = numpy.full_like(param.array, -1)
    optimizer.update()
    for name, param in model.namedparams():
        if name.endswith('/W'):
            assert param.array.max() == 1, name
        else:
            assert param.array.min() > 1, name


def test_learning_rate_decays_from_3e_3_to_3e_7():
    rates = [train_mnist.learning_rate(e, 50) for e in range(1, 51)]
    assert rates[0] == 3e-3
    assert rates[-1] == pytest.approx(3e-7, rel=1e-9)
    ratios = numpy.array(rates[1:]) / rates[:-1]
    numpy.testing.assert_allclose(ratios, 1e-4 ** (1 / 49), rtol=1e-9)
    assert train_mnist.learning_rate(1, 1) == 3e-3


def test_paper_split_is_the_last_sixth_of_the_training_set(data_slice):
    train, validation, test = train_mnist.get_data('paper', data_slice)
    assert (len(train), len(validation), len(test)) == (8333, 1667, N_TEST)
    port_train, none, port_test = train_mnist.get_data('port', data_slice)
    assert none is None and len(port_train) == N_TRAIN
    x, t = validation[0]
    x_port, t_port = port_train[8333]
    numpy.testing.assert_allclose(x, 2 * x_port - 1, atol=1e-7)
    assert t == t_port
    assert train_mnist.VALIDATION_FRACTION * 60000 == 10000


def test_resumed_paper_run_is_the_uninterrupted_one(data_slice, tmp_path):
    straight, broken = tmp_path / 'straight', tmp_path / 'broken'
    assert run(data_slice, straight, '--preset', 'paper', '-e', '2') == 0
    # The rate of epoch 1 is 3e-3 whatever the number of epochs.
    assert run(data_slice, broken, '--preset', 'paper', '-e', '1') == 0
    assert run(data_slice, broken, '--preset', 'paper', '-e', '2',
               '--initmodel', str(broken / 'mlp.model'),
               '--resume', str(broken / 'mlp.state')) == 0
    for name in ('mlp.model', 'mlp.state', 'mlp_best.model'):
        resumed, expected = arrays(broken / name), arrays(straight / name)
        for key in expected:
            numpy.testing.assert_array_equal(resumed[key], expected[key],
                                             err_msg=name + ' ' + key)
    assert [e['lr'] for e in read_log(broken)] == [
        e['lr'] for e in read_log(straight)]


def test_best_entry_is_the_first_of_highest_validation_accuracy():
    log = [{'epoch': e, 'validation/main/accuracy': a,
            'test/main/accuracy': 0.5}
           for e, a in ((1, 0.9), (2, 0.95), (3, 0.93), (4, 0.95))]
    assert train_mnist.best_entry(log)['epoch'] == 2
    assert train_mnist.best_entry([{'epoch': 1,
                                    'validation/main/accuracy': 1}]) is None


def test_paper_run_keeps_the_best_validation_model(data_slice, tmp_path,
                                                   capsys, monkeypatch):
    saved = []
    save = safe_npz.save

    def recording_save(path, obj):
        save(path, obj)
        if path.endswith('mlp_best.model'):
            saved.append(arrays(path))

    monkeypatch.setattr(safe_npz, 'save', recording_save)
    assert run(data_slice, tmp_path, '--preset', 'paper', '--epoch', '3') == 0
    out = capsys.readouterr().out
    assert out.count('valid mean loss=') == 3
    assert out.count('test  mean loss=') == 3
    log = read_log(tmp_path)
    assert [e['lr'] for e in log] == pytest.approx([3e-3, 3e-5, 3e-7])
    best = train_mnist.best_entry(log)
    assert out.rstrip().endswith(
        'lowest validation error {:.2%} at epoch {}: test error {:.2%} '
        '({})'.format(1 - best['validation/main/accuracy'], best['epoch'],
                      1 - best['test/main/accuracy'],
                      tmp_path / 'mlp_best.model'))
    # 3x100 units, 8,333 images, 3 epochs: the paper's recipe learns.
    assert best['test/main/accuracy'] > 0.75
    # The file holds the model as it was after the best epoch.
    improved = [e for i, e in enumerate(log) if all(
        e['validation/main/accuracy'] > p['validation/main/accuracy']
        for p in log[:i])]
    assert len(saved) == len(improved)
    final = arrays(tmp_path / 'mlp_best.model')
    for key in final:
        numpy.testing.assert_array_equal(final[key], saved[-1][key])
    if best is not log[-1]:
        assert any(not numpy.array_equal(final[k], v)
                   for k, v in arrays(tmp_path / 'mlp.model').items())


# Bad input, through the command line as a user meets it.

def run_script(*args, cwd):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


@pytest.fixture
def previous_run(two_epochs, tmp_path):
    out = tmp_path / 'result'
    shutil.copytree(two_epochs, out)
    return out


def bad_files(folder):
    (folder / 'garbage.npz').write_bytes(b'PK\x03\x04 not really a zip')
    numpy.random.seed(0)
    safe_npz.save(str(folder / 'units50.model'),
                  L.Classifier(MnistMLP(784, 50, 10)))


@pytest.mark.parametrize('flags,message', [
    (['--initmodel', 'absent.model'], 'absent.model: no such file'),
    (['--initmodel', 'garbage.npz'], 'garbage.npz is not a readable npz'),
    (['--initmodel', 'units50.model'], 'saved with another --unit'),
    (['--initmodel', 'result/mlp.model', '--resume', 'garbage.npz'],
     'garbage.npz is not a readable npz'),
    (['--initmodel', 'result/mlp.model', '--resume', 'result/mlp.state',
      '--epoch', '2'], 'has trained 2 epochs already'),
    (['--resume', 'result/mlp.state'], '--resume needs --initmodel'),
    (['--epoch', '0'], 'argument --epoch/-e: must be a positive integer'),
    (['--batchsize', '-1'], 'argument --batchsize/-b: must be a positive'),
    (['--unit', 'many'], "argument --unit/-u: 'many' is not an integer"),
    (['--dataset-dir', 'nowhere'], 'nowhere has no train-images-idx3-ubyte'),
])
def test_bad_input_is_one_line_and_harms_nothing(
        data_slice, previous_run, flags, message):
    cwd = previous_run.parent
    bad_files(cwd)
    before = snapshot(previous_run)
    if '--dataset-dir' not in flags:
        flags = ['--dataset-dir', data_slice] + flags
    result = run_script('--unit', '100', '--out', 'result', *flags, cwd=cwd)
    assert result.returncode != 0
    assert result.stderr.count('\n') == 1, result.stderr
    assert result.stderr.startswith('train_mnist.py: error: ')
    assert message in result.stderr
    assert snapshot(previous_run) == before


def test_gpu_without_cuda_is_one_line(data_slice, previous_run):
    if gpu_usable():
        pytest.skip('this machine has a usable GPU')
    before = snapshot(previous_run)
    result = run_script('--gpu', '0', '--out', 'result', '--dataset-dir',
                        data_slice, cwd=previous_run.parent)
    assert result.returncode == 1
    assert result.stderr.startswith('train_mnist.py: error: --gpu 0: ')
    assert result.stderr.count('\n') == 1, result.stderr
    assert snapshot(previous_run) == before


def test_resume_into_a_broken_log_is_one_line(data_slice, previous_run):
    (previous_run / 'log.json').write_text('{"epoch": ')
    before = snapshot(previous_run)
    result = run_script('--unit', '100', '--out', 'result', '--epoch', '3',
                        '--initmodel', 'result/mlp.model',
                        '--resume', 'result/mlp.state',
                        '--dataset-dir', data_slice, cwd=previous_run.parent)
    assert result.returncode == 1
    assert result.stderr.startswith('train_mnist.py: error: ')
    assert 'log.json cannot be continued' in result.stderr
    assert result.stderr.count('\n') == 1, result.stderr
    assert snapshot(previous_run) == before
