import contextlib
import errno
import io
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

import chainer
import chainer.links as L

from conftest import N_SMALL_TRAIN, N_TRAIN, ROOT, gpu_usable
import fast
from net import MnistMLP
import recipes
import train_mnist
from utils import atomic_file
from utils import safe_npz
from utils import snapshot as snapshot_module
from utils.cli import plural

SCRIPT = os.path.join(ROOT, 'train_mnist.py')


def run(dataset_dir, out, *flags):
    return train_mnist.main(['--dataset-dir', dataset_dir, '--out', str(out),
                             '--unit', '100', '--noplot'] + list(flags))


def read_log(out):
    with open(os.path.join(out, 'log.json')) as f:
        return json.load(f)


def printed_run(data, out, *flags):
    """run(), its exit status asserted 0; what it printed: (out, err)."""
    with contextlib.redirect_stdout(io.StringIO()) as stdout, \
            contextlib.redirect_stderr(io.StringIO()) as stderr:
        assert run(data, out, *flags) == 0
    return stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope='module')
def two_epochs_printed(data_slice, tmp_path_factory):
    """The port's 2 epochs of 100 units on data_slice, which learn: the
    run's folder, and what it printed (out, err)."""
    out = tmp_path_factory.mktemp('two_epochs')
    return out, printed_run(data_slice, out, '--epoch', '2')


@pytest.fixture(scope='module')
def two_epochs(two_epochs_printed):
    return two_epochs_printed[0]


@pytest.fixture(scope='module')
def trained(small_slice, tmp_path_factory):
    """trained(*flags): the folder of a finished run on small_slice with
    ``flags``, trained once for the module; the tests only read it."""
    runs = {}

    def train(*flags):
        if flags not in runs:
            runs[flags] = tmp_path_factory.mktemp('trained')
            printed_run(small_slice, runs[flags], *flags)
        return runs[flags]
    return train


def test_short_run_learns_and_prints_the_ports_log(two_epochs_printed):
    folder, (out, err) = two_epochs_printed
    # No progress line where stderr is not a terminal.
    assert err == ''
    lines = out.splitlines()
    # Python 2's str(float): at most 12 significant digits.
    number = r'[0-9]\.[0-9]{1,12}'
    train = 'train mean loss=#, accuracy=#'
    test = 'test  mean loss=#, accuracy=#'
    expected = ['load MNIST dataset', 'epoch 1', 'graph generated', train,
                test, 'epoch 2', train, test, 'save the model',
                'save the optimizer']
    # The port's lines, then one saying what ran and where it went.
    *lines, last = lines
    assert len(lines) == len(expected)
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(re.escape(pattern).replace('\\#', number), line)
    log = read_log(folder)
    assert last == (
        '--preset port: 784-100-100-10, softmax cross entropy, Adam at 0.001 '
        'over 2 epochs: test accuracy {:.2%} after epoch 2; the model, its '
        'optimizer state and log.json are in {}'.format(
            log[1]['validation/main/accuracy'], folder))
    assert [e['epoch'] for e in log] == [1, 2]
    assert log[1]['iteration'] == 2 * N_TRAIN // 100
    # 10,000 images, 2 epochs, 100 units: 0.852-0.859 measured (seeds 1-3).
    assert log[1]['validation/main/accuracy'] >= 0.82
    assert 'BinaryStraightThrough' in (folder / 'graph.dot').read_text()
    assert {'mlp.model', 'mlp.state'} <= set(os.listdir(folder))


def test_plots_are_drawn(small_slice, tmp_path):
    pytest.importorskip('matplotlib')
    assert train_mnist.main(['--dataset-dir', small_slice, '--out',
                             str(tmp_path), '--unit', '10', '-e', '1']) == 0
    for name in ('loss.png', 'accuracy.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def interrupted_at(batches, epoch, index, signum=signal.SIGINT):
    """A path's ``batches`` method that sends a Ctrl-C (or ``signum``)
    before batch ``index`` of ``epoch``."""
    def interrupted(self, data, current, start=0):
        for i, batch in enumerate(batches(self, data, current, start),
                                  start):
            if (current, i) == (epoch, index):
                os.kill(os.getpid(), signum)
            yield batch
    return interrupted


def arrays(path):
    with numpy.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope='module')
def resumed(small_slice, tmp_path_factory):
    """One epoch, its log's elapsed time set to 1000 s, then resumed for a
    second: the folder, and what the resumed run printed."""
    out = tmp_path_factory.mktemp('resumed')
    printed_run(small_slice, out, '-e', '1', '-u', '16')
    log = read_log(out)
    log[0]['elapsed_time'] = 1000.
    (out / 'log.json').write_text(json.dumps(log))
    printed, _ = printed_run(small_slice, out, '-e', '2', '-u', '16',
                             '--initmodel', str(out / 'mlp.model'),
                             '--resume', str(out / 'mlp.state'))
    return out, printed


def test_resumed_run_continues_where_it_stopped(resumed, trained):
    out, printed = resumed
    straight = trained('-e', '2', '-u', '16')
    assert 'epoch 2' in printed and 'epoch 1' not in printed
    assert read_log(out)[:2] == [
        dict(e, elapsed_time=pytest.approx(e['elapsed_time'], abs=1e9))
        for e in read_log(straight)]
    # Same orders, same optimizer state: the same model as without a break.
    for name in ('mlp.model', 'mlp.state'):
        resumed, expected = arrays(out / name), arrays(straight / name)
        assert resumed.keys() == expected.keys()
        for key in expected:
            numpy.testing.assert_array_equal(resumed[key], expected[key],
                                             err_msg=key)


def test_initmodel_starts_from_the_saved_weights(small_slice, trained,
                                                 tmp_path):
    saved = trained('-e', '2', '-u', '16')
    assert run(small_slice, tmp_path, '--epoch', '1', '-u', '16',
               '--initmodel', str(saved / 'mlp.model')) == 0
    fresh, = read_log(saved)[:1]
    continued, = read_log(tmp_path)
    assert continued['epoch'] == 1
    # 16 units, 2,000 images: 0.26-0.29 fresh, 0.56-0.62 so continued
    # (seeds 0-2).
    assert continued['main/accuracy'] > fresh['main/accuracy'] + 0.03


@pytest.mark.parametrize('flags', [[], ['--plain']])
def test_ctrl_c_leaves_a_resumable_snapshot(small_slice, tmp_path,
                                            monkeypatch, capsys, flags):
    # Epoch 1 is 20 batches: Ctrl-C before the 5th of epoch 2, which is
    # taken before its step.
    for path in (train_mnist.PlainPath, fast.FastPath):
        monkeypatch.setattr(path, 'batches', interrupted_at(
            path.batches, 2, 4))
    assert run(small_slice, tmp_path, '--epoch', '3', '-u', '16',
               *flags) == 130
    assert 'interrupted after 1 complete epoch and' in capsys.readouterr().err
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(L.Classifier(MnistMLP(784, 16, 10)))
    safe_npz.load(str(tmp_path / 'mlp.state'), optimizer)
    assert (optimizer.epoch, optimizer.t) == (1, 24)
    monkeypatch.undo()
    assert run(small_slice, tmp_path, '--epoch', '3', '-u', '16',
               '--initmodel', str(tmp_path / 'mlp.model'),
               '--resume', str(tmp_path / 'mlp.state')) == 0
    assert [e['epoch'] for e in read_log(tmp_path)] == [1, 2, 3]


def test_ctrl_c_in_an_evaluation_waits_for_the_epochs_log(
        small_slice, tmp_path, monkeypatch, capsys):
    evaluate = fast.FastPath.evaluate
    calls = []

    def interrupted_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return evaluate(*args)

    monkeypatch.setattr(fast.FastPath, 'evaluate', interrupted_in_epoch_2)
    written = []
    write_together = atomic_file.write_together
    monkeypatch.setattr(atomic_file, 'write_together', lambda writes: (
        written.append(len(writes)), write_together(writes)))
    assert run(small_slice, tmp_path, '--epoch', '3', '-u', '16') == 130
    assert 'interrupted after 2 complete epochs\n' in capsys.readouterr().err
    # Epoch 2's snapshot, already written, is not written again.
    assert len(written) == 2
    assert [e['epoch'] for e in read_log(tmp_path)] == [1, 2]
    monkeypatch.undo()
    assert run(small_slice, tmp_path, '--epoch', '3', '-u', '16',
               '--initmodel', str(tmp_path / 'mlp.model'),
               '--resume', str(tmp_path / 'mlp.state')) == 0
    assert [e['epoch'] for e in read_log(tmp_path)] == [1, 2, 3]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_before_any_update_saves_nothing(small_slice, tmp_path,
                                                monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_mnist, 'run_epoch', interrupted)
    assert run(small_slice, tmp_path) == 130
    assert not (tmp_path / 'mlp.model').exists()


# The paper's recipe.

def test_presets_fill_only_the_flags_not_given():
    def chosen(args):
        return (args.epoch, args.unit, args.clip, args.bn, args.optimizer,
                args.binarize)
    port = train_mnist.parse_args([])
    assert chosen(port) == (20, 1000, 'all', 'exact', 'adam',
                            'deterministic')
    paper = train_mnist.parse_args(['--preset', 'paper'])
    assert chosen(paper) == (1000, 4096, 'binary', 'exact', 'adam',
                             'deterministic')
    torch7 = train_mnist.parse_args(['--preset', 'torch7'])
    assert chosen(torch7) == (100, 2048, 'binary', 'shift', 'shift-adamax',
                              'stochastic')
    mixed = train_mnist.parse_args(['--preset', 'paper', '-e', '5', '-u', '8',
                                    '--clip', 'all', '--bn', 'shift'])
    assert chosen(mixed) == (5, 8, 'all', 'shift', 'adam', 'deterministic')


class ScriptedSteps(object):
    """A model and step whose losses and accuracies come from a list."""

    def __init__(self, values):
        self.values = iter(values)

    def __call__(self, x, t):
        value = next(self.values)
        self.loss = self.accuracy = chainer.Variable(
            numpy.array(value, numpy.float32))


def test_epoch_means_are_summed_in_float64_as_the_port_did():
    values = numpy.random.RandomState(0).rand(3000).astype(numpy.float32)
    steps = ScriptedSteps(values)
    batch = numpy.zeros((100, 1), numpy.float32), numpy.zeros(100, 'i')
    loss, accuracy = train_mnist.run_epoch(steps, steps, [batch] * 3000,
                                           300000)
    # The port: sum_loss += float(loss.data) * len(t), in Python floats.
    expected = 0.
    for value in values:
        expected += float(value) * 100
    assert loss == accuracy == expected / 300000
    float32_sum = numpy.float32(0)
    for value in values:
        float32_sum += value * numpy.float32(100)
    assert float(float32_sum) / 300000 != expected / 300000


def test_progress_shows_on_a_terminal_only(small_slice, tmp_path, capsys,
                                           monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    assert run(small_slice, tmp_path, '--epoch', '1', '-u', '10') == 0
    assert 'img/s' in terminal.getvalue()
    assert '/{} ['.format(N_SMALL_TRAIN) in terminal.getvalue()
    assert 'img' not in capsys.readouterr().out


def test_eval_bn_batch_evaluates_as_the_port_did(trained):
    batch = trained('-e', '2', '-u', '16', '--eval-bn', 'batch')
    population = trained('-e', '2', '-u', '16')
    ours, population_log = read_log(batch), read_log(population)
    assert len(ours) == len(population_log) == 2
    for entry, plain in zip(ours, population_log):
        assert entry['main/loss'] == plain['main/loss']
        assert (entry['validation/main/accuracy'] !=
                plain['validation/main/accuracy'])
    # The test batches moved the running averages, as in the port.
    saved, plain = arrays(batch / 'mlp.model'), arrays(
        population / 'mlp.model')
    assert not numpy.array_equal(saved['predictor/b1/avg_mean'],
                                 plain['predictor/b1/avg_mean'])
    numpy.testing.assert_array_equal(saved['predictor/l1/W'],
                                     plain['predictor/l1/W'])


def same_training(fast, plain):
    """Asserts the same saved model and state, bit for bit, and the same
    log."""
    for name in ('mlp.model', 'mlp.state'):
        ours, theirs = arrays(fast / name), arrays(plain / name)
        assert ours.keys() == theirs.keys()
        for key in theirs:
            numpy.testing.assert_array_equal(ours[key], theirs[key],
                                             err_msg=name + ' ' + key)
    assert len(read_log(fast)) == len(read_log(plain))
    for ours, theirs in zip(read_log(fast), read_log(plain)):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            if key != 'elapsed_time':
                assert ours[key] == theirs[key], key


@pytest.mark.parametrize('flags', [
    [], ['--eval-bn', 'batch'], ['--preset', 'paper'], ['--preset', 'torch7'],
    ['--preset', 'paper', '--bn', 'shift', '--optimizer', 'shift-adamax',
     '--binarize', 'stochastic'],
    ['--preset', 'torch7', '--bn', 'exact', '--optimizer', 'adam',
     '--binarize', 'deterministic']])
def test_plain_path_trains_the_same_model_and_log(trained, flags):
    fast = trained('-e', '2', '-u', '16', *flags)
    plain = trained('-e', '2', '-u', '16', *flags, '--plain')
    same_training(fast, plain)


@pytest.mark.gpu
@pytest.mark.parametrize('preset', ['port', 'paper', 'torch7'])
def test_plain_path_trains_the_same_model_on_the_gpu(data_slice, tmp_path,
                                                     preset):
    fast, plain = tmp_path / 'fast', tmp_path / 'plain'
    for out, flags in ((fast, []), (plain, ['--plain'])):
        assert run(data_slice, out, '-e', '1', '--gpu', '0', '--preset',
                   preset, *flags) == 0
    # The steps are the same bits (tests/fast/test_flat_adam.py asks it of
    # FlatAdam's kernel), and both paths hand cuBLAS the same products, a
    # batch at a time, in training and evaluation alike.
    same_training(fast, plain)


def test_saved_files_name_their_recipe(two_epochs):
    for name in ('mlp.model', 'mlp.state'):
        recipe = safe_npz.recipe_of(arrays(two_epochs / name), name)
        assert recipe == {'preset': 'port', 'unit': 100, 'epoch': 2,
                          'bn': 'exact', 'optimizer': 'adam',
                          'binarize': 'deterministic'}


def test_resumed_paper_run_is_the_uninterrupted_one(small_slice, trained,
                                                    tmp_path, monkeypatch,
                                                    capsys):
    straight = trained('-e', '2', '-u', '16', '--preset', 'paper')
    broken = tmp_path / 'broken'
    run_epoch = train_mnist.run_epoch
    epochs = []

    def stopped_before_epoch_2(*args):
        epochs.append(1)
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return run_epoch(*args)

    monkeypatch.setattr(train_mnist, 'run_epoch', stopped_before_epoch_2)
    assert run(small_slice, broken, '-e', '2', '-u', '16',
               '--preset', 'paper') == 130
    monkeypatch.undo()
    resume = ['-u', '16', '--preset', 'paper', '--initmodel',
              str(broken / 'mlp.model'), '--resume', str(broken / 'mlp.state')]
    capsys.readouterr()
    # Another --epoch would change the rates of the epochs still to come.
    assert run(small_slice, broken, '-e', '3', *resume) == 1
    assert capsys.readouterr().err.endswith(
        ': error: {} follows the learning-rate schedule of --epoch 2: resume '
        'it with that --epoch\n'.format(broken / 'mlp.state'))
    assert run(small_slice, broken, '-e', '2', *resume) == 0
    for name in ('mlp.model', 'mlp.state', 'mlp_best.model'):
        resumed, expected = arrays(broken / name), arrays(straight / name)
        for key in expected:
            numpy.testing.assert_array_equal(resumed[key], expected[key],
                                             err_msg=name + ' ' + key)
    assert [e['lr'] for e in read_log(broken)] == [
        e['lr'] for e in read_log(straight)]


def test_paper_run_keeps_the_best_validation_model(small_slice, tmp_path,
                                                   capsys, monkeypatch):
    # Validation accuracies with a tie at the best, which is not the last.
    scripted = iter([(.5, .90), (.6, .80), (.4, .95), (.6, .81),
                     (.4, .95), (.6, .82), (.5, .93), (.6, .83)])
    after_epoch = []

    def evaluate_and_keep(self, data):
        """The scripted result; at each validation, the parameters."""
        result = next(scripted)
        if result[1] > .85:
            after_epoch.append({name: p.array.copy() for name, p in
                                self.model.namedparams()})
        return result

    monkeypatch.setattr(fast.FastPath, 'evaluate', evaluate_and_keep)
    saved = []
    write_together = atomic_file.write_together

    def recording_write(writes):
        write_together(writes)
        saved.append([os.path.basename(path) for path, _ in writes])

    monkeypatch.setattr(atomic_file, 'write_together', recording_write)
    assert run(small_slice, tmp_path, '--preset', 'paper', '--epoch', '4',
               '--unit', '16') == 0
    out = capsys.readouterr().out
    log = read_log(tmp_path)
    assert [e['validation/main/accuracy'] for e in log] == [
        .90, .95, .95, .93]
    assert [e['lr'] for e in log] == pytest.approx(
        [3e-3 * 1e-4 ** (k / 4) for k in range(4)])
    *_, best_line, last = out.splitlines()
    assert best_line == (
        'lowest validation error 5.00% at epoch 3: test error 18.00% '
        '({})'.format(tmp_path / 'mlp_best.model'))
    assert last == (
        '--preset paper: 784-16-16-16-10 with dropout, squared hinge, Adam '
        'from 3e-3 down to 3e-7 over 4 epochs: test accuracy 83.00% after '
        'epoch 4; the model, its optimizer state and log.json are in '
        '{}'.format(tmp_path))
    # A snapshot after each epoch (--frequency 1), with the best model after
    # epochs 1, 2 and 3 (a tie with the best so far saves too), holding the
    # model as it was after epoch 3, not the last.
    assert saved == [['mlp.model', 'mlp_best.model', 'mlp.state']] * 3 + [
        ['mlp.model', 'mlp.state']]
    assert out.count('lowest validation error so far: saved {}\n'.format(
        tmp_path / 'mlp_best.model')) == 3
    best = arrays(tmp_path / 'mlp_best.model')
    last_model = arrays(tmp_path / 'mlp.model')
    for name, array in after_epoch[2].items():
        key = name.lstrip('/')
        numpy.testing.assert_array_equal(best[key], array, err_msg=key)
    assert any(not numpy.array_equal(best[k], last_model[k])
               for k in best if k.startswith('predictor/l'))


# Bad input: each case through main() as the script calls it, in this
# process; the tests after them start the script as a user does
# (run_script), where a fresh process's imports could print more.

def run_script(*args, cwd):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def run_main(argv, monkeypatch):
    """sys.exit(main(argv)) of the script, called by its name: the exit
    status."""
    monkeypatch.setattr(train_mnist, 'PROG', 'train_mnist.py')
    try:
        return train_mnist.main(argv)
    except SystemExit as e:
        return e.code


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


@pytest.fixture
def previous_run(two_epochs, tmp_path):
    out = tmp_path / 'result'
    shutil.copytree(two_epochs, out)
    return out


def bad_files(folder):
    for garbage in (folder / 'garbage.npz', folder / 'result/garbage.npz'):
        garbage.write_bytes(b'PK\x03\x04 not really a zip')
    numpy.random.seed(0)
    safe_npz.save(str(folder / 'units50.model'),
                  L.Classifier(MnistMLP(784, 50, 10)))
    safe_npz.save(str(folder / 'other.model'),
                  L.Classifier(MnistMLP(784, 100, 10)),
                  {'preset': 'port', 'unit': 100, 'epoch': 2})


@pytest.mark.parametrize('flags,message', [
    (['--initmodel', 'absent.model'], 'absent.model: no such file'),
    (['--initmodel', 'garbage.npz'], 'garbage.npz is not a readable npz'),
    (['--initmodel', 'units50.model'], 'saved with another --unit'),
    (['--initmodel', 'result/mlp.model', '--resume', 'result/garbage.npz'],
     'result/garbage.npz is not a readable npz'),
    (['--initmodel', 'result/mlp.model', '--resume', 'result/mlp.state',
      '--epoch', '2'], 'has trained 2 epochs already'),
    (['--resume', 'result/mlp.state'], '--resume needs --initmodel'),
    (['--epoch', '0'], 'argument --epoch/-e: must be a positive integer'),
    (['--batchsize', '-1'], 'argument --batchsize/-b: must be a positive'),
    (['--unit', 'many'], "argument --unit/-u: 'many' is not an integer"),
    (['--dataset-dir', 'nowhere/'], '--dataset-dir nowhere/: no such folder'),
    (['--out', 'afile'], '--out afile is a file, not a folder'),
    (['--out', 'afile/run'], 'afile is a file, not a folder'),
    (['--initmodel', 'README.md'],
     'README.md is not a model saved by this package (not an npz file)'),
    (['--initmodel', 'result/mlp.state'],
     "result/mlp.state is an optimizer state, not a model: it goes to "
     "train_mnist.py's --resume"),
    (['--initmodel', 'result/mlp.model', '--resume', 'result/mlp.model'],
     'result/mlp.model is a model, not an optimizer state'),
    (['--epochs', '3'],
     'unrecognized arguments: --epochs 3 (did you mean --epoch?)'),
    (['--initmodel', 'result/mlp.model', '--resume', 'result/mlp.state',
      '--out', 'other', '--epoch', '3'],
     'result/mlp.state belongs to the run in result, not to --out other: '
     'resume it with --out result'),
    (['--initmodel', 'result/mlp.model', '--preset', 'paper'],
     'result/mlp.model is a --preset port --unit 100 --bn exact model, not '
     '--preset paper --unit 100 --bn exact'),
    (['--initmodel', 'result/mlp.model', '--bn', 'shift'],
     'result/mlp.model is a --preset port --unit 100 --bn exact model, not '
     '--preset port --unit 100 --bn shift'),
    (['--initmodel', 'other.model', '--resume', 'result/mlp.state',
      '--epoch', '3', '--optimizer', 'shift-adamax'],
     'result/mlp.state was saved with --optimizer adam: resume it with '
     'that'),
    (['--preset', 'paper', '--eval-bn', 'batch'],
     "--eval-bn batch is the port's evaluation"),
    (['--initmodel', 'other.model', '--resume', 'result/mlp.state',
      '--epoch', '3'],
     'result/mlp.state was not saved with other.model: it resumes only the '
     'model of epoch 2 saved beside it'),
    (['--initmodel', 'result/mlp.model'],
     '--initmodel result/mlp.model is a file of the run in result, which a '
     'new run there replaces: copy it elsewhere, or give another --out'),
    (['--frequency', '0'],
     'argument --frequency/-f: must be a positive integer, not 0'),
    (['--eval-bn', 'batch', '--binarize', 'stochastic'],
     '--eval-bn batch evaluates in training mode, where --binarize '
     'stochastic would draw the activations'),
])
def test_bad_input_is_one_line_and_harms_nothing(
        data_slice, previous_run, flags, message, monkeypatch, capsys):
    cwd = previous_run.parent
    bad_files(cwd)
    before = snapshot(previous_run)
    (cwd / 'README.md').write_text('# A README\n')
    (cwd / 'afile').write_text('')
    if '--dataset-dir' not in flags:
        flags = ['--dataset-dir', data_slice] + flags
    monkeypatch.chdir(cwd)
    status = run_main(['--unit', '100', '--out', 'result'] + flags,
                      monkeypatch)
    out, err = capsys.readouterr()
    assert status != 0
    assert err.count('\n') == 1, err
    assert err.startswith('train_mnist.py: error: ')
    assert message in err
    assert snapshot(previous_run) == before
    assert not (cwd / 'other').exists()
    if '--out' in flags or '--dataset-dir' in flags[2:]:
        # The paths are checked before the data are loaded.
        assert out == ''


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


# Ctrl-C and resume, as a user meets them.

@pytest.mark.parametrize('flags,signum', [
    ([], signal.SIGINT), ([], signal.SIGTERM), (['--plain'], signal.SIGHUP),
    (['--preset', 'paper'], signal.SIGTERM),
    (['--preset', 'torch7'], signal.SIGINT)])
def test_an_interrupt_at_a_random_step_resumes_as_the_uninterrupted_run(
        small_slice, trained, tmp_path, monkeypatch, capsys, flags, signum):
    broken = tmp_path / 'broken'
    flags = ['-e', '2', '-u', '16'] + flags
    straight = trained(*flags)
    # As a terminal's session starts it, whatever ran the tests (nohup, a
    # CI runner) did to the signal: an ignored SIGHUP stays ignored.
    monkeypatch.setattr(signal, 'getsignal', lambda signum: signal.SIG_DFL)
    # The paper preset's 1,667 images make 17 batches an epoch.
    epoch, index = 1 + numpy.random.RandomState(len(flags)).randint(
        2), numpy.random.RandomState(16 + len(flags) + signum).randint(1, 17)
    for path in (train_mnist.PlainPath, fast.FastPath):
        monkeypatch.setattr(path, 'batches', interrupted_at(
            path.batches, epoch, index, signum))
    assert run(small_slice, broken, *flags) == 128 + signum
    what = {signal.SIGINT: 'interrupted', signal.SIGTERM: 'stopped by '
            'SIGTERM', signal.SIGHUP: 'stopped by SIGHUP'}[signum]
    assert capsys.readouterr().err.startswith(
        '{} after {} and {} of epoch {}\n'.format(
            what, plural(epoch - 1, 'complete epoch'), plural(index, 'step'),
            epoch))
    monkeypatch.undo()
    assert run(small_slice, broken, *flags, '--initmodel',
               str(broken / 'mlp.model'), '--resume',
               str(broken / 'mlp.state')) == 0
    printed = capsys.readouterr().out
    assert 'epoch {}\n'.format(epoch) in printed
    assert_same_run(broken, straight)


def assert_same_run(resumed, straight):
    """The run in ``resumed`` is the run in ``straight``: the same log but
    for its times, and the same files, bit for bit."""
    names = ['mlp.model', 'mlp.state']
    if (straight / 'mlp_best.model').exists():
        names.append('mlp_best.model')
    for name in names:
        got, expected = arrays(resumed / name), arrays(straight / name)
        assert got.keys() == expected.keys()
        for key in expected:
            numpy.testing.assert_array_equal(got[key], expected[key],
                                             err_msg=name + ' ' + key)
    got, expected = read_log(resumed), read_log(straight)
    assert [dict(e, elapsed_time=0) for e in got] == [
        dict(e, elapsed_time=0) for e in expected]
    assert not [name for name in os.listdir(resumed) if name.endswith(
        '.part')]


def test_a_partial_epoch_resumes_only_with_its_batchsize(
        small_slice, tmp_path, monkeypatch, capsys):
    for path in (train_mnist.PlainPath, fast.FastPath):
        monkeypatch.setattr(path, 'batches', interrupted_at(
            path.batches, 1, 7))
    assert run(small_slice, tmp_path, '-e', '2', '-u', '16') == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert run(small_slice, tmp_path, '-e', '2', '-u', '16', '-b', '50',
               '--initmodel', str(tmp_path / 'mlp.model'), '--resume',
               str(tmp_path / 'mlp.state')) == 1
    assert capsys.readouterr().err.endswith(
        'mlp.state stopped within an epoch of batches of 100: resume it '
        'with --batchsize 100\n')


def start_script(*args, cwd):
    """train_mnist.py in a process of its own, as a shell in a terminal
    starts it (SIGHUP not ignored, whatever ran the tests did to it); the
    printed resume command names this Python, the venv not being active."""
    env = dict(os.environ)
    env.pop('VIRTUAL_ENV', None)
    return subprocess.Popen(
        [sys.executable, SCRIPT] + list(args), cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))


def interrupt_once_training(process, out):
    """Ctrl-C once the first step is taken (graph.dot is written then)."""
    while not (out / 'graph.dot').exists():
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)


def test_ctrl_c_under_a_closed_pipe_saves_the_run(data_slice, tmp_path):
    # ./train_mnist.py | tee log: the terminal's Ctrl-C ends tee too, and
    # every message after it meets a closed pipe.
    out = tmp_path / 'run1'
    process = start_script('--unit', '16', '--epoch', '20', '--noplot',
                           '--dataset-dir', data_slice, '-o', 'run1',
                           cwd=tmp_path)
    while not (out / 'graph.dot').exists():
        assert process.poll() is None
        time.sleep(0.05)
    process.stdout.close()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(L.Classifier(MnistMLP(784, 16, 10)))
    safe_npz.load(str(out / 'mlp.state'), optimizer)
    assert optimizer.t > 0
    safe_npz.load(str(out / 'mlp.model'), L.Classifier(MnistMLP(784, 16, 10)))


def test_the_printed_resume_command_continues_the_run_and_no_other(
        data_slice, trained, tmp_path):
    other = tmp_path / 'result'
    shutil.copytree(trained('-e', '2', '-u', '16'), other)
    before = snapshot(other)
    out = tmp_path / 'run1'
    process = start_script('-u', '16', '-e', '2', '--seed', '2', '--noplot',
                           '--dataset-dir', data_slice, '-o', 'run1',
                           cwd=tmp_path)
    interrupt_once_training(process, out)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    command = printed.splitlines()[-1]
    python = os.path.relpath(sys.executable, tmp_path)
    if python.startswith(os.pardir):
        python = sys.executable
    assert command == (
        'resume with: {} {} --epoch 2 --out run1 --unit 16 --initmodel '
        'run1/mlp.model --resume run1/mlp.state --seed 2 --dataset-dir {} '
        '--noplot'.format(python, os.path.relpath(SCRIPT, tmp_path),
                          data_slice))
    words = shlex.split(command[len('resume with: '):])
    # As the issue ran it: without --out, into another run's folder; and
    # with an --out that names that folder.
    without_out = words[:4] + words[6:]
    for wrong in (without_out, words + ['--out', 'result']):
        refused = subprocess.run(wrong, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode == 1
        assert refused.stderr == (
            'train_mnist.py: error: run1/mlp.state belongs to the run in '
            'run1, not to --out result: resume it with --out run1\n')
        assert snapshot(other) == before
    resumed = subprocess.run(words, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [e['epoch'] for e in read_log(out)] == [1, 2]
    assert read_log(out)[-1]['iteration'] == 2 * N_TRAIN // 100
    assert snapshot(other) == before


def test_a_log_of_another_run_in_the_folder_is_not_overwritten(
        small_slice, trained, tmp_path, capsys):
    # The state of a one-epoch run beside the log of another two-epoch run.
    assert run(small_slice, tmp_path, '-e', '1', '-u', '16', '--seed',
               '5') == 0
    shutil.copy(trained('-e', '2', '-u', '16') / 'log.json',
                tmp_path / 'log.json')
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert run(small_slice, tmp_path, '-e', '3', '-u', '16', '--seed', '5',
               '--initmodel', str(tmp_path / 'mlp.model'), '--resume',
               str(tmp_path / 'mlp.state')) == 1
    assert capsys.readouterr().err.endswith(
        ': error: {} is not the log of the run {} was saved '
        'from (another run in this folder since?)\n'.format(
            tmp_path / 'log.json', tmp_path / 'mlp.state'))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('script', [
    'train_mnist.py', 'xnor_infer.py', 'benchmark.py', 'plot_results.py'])
def test_a_python_without_chainer_is_told_how_to_run_the_script(script):
    # -S: no site-packages, so no NumPy, Chainer or tqdm, as the system
    # python3 that the shebang finds where the venv is not active.
    result = subprocess.run([sys.executable, '-S', script, '--help'],
                            cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stdout == ''
    assert result.stderr == (
        '{0}: error: {1} has no numpy, chainer, tqdm: run .venv/bin/python '
        '{0}, or . .venv/bin/activate first (make setup makes .venv)\n'
        .format(script, sys.executable))


def test_a_paper_state_without_a_recipe_is_one_line(data_slice, tmp_path,
                                                    capsys):
    model = recipes.Paper.model(100)
    optimizer = recipes.Paper.optimizer(model, 'binary')
    safe_npz.save(str(tmp_path / 'mlp.model'), model)
    safe_npz.save(str(tmp_path / 'mlp.state'), optimizer)
    assert run(data_slice, tmp_path, '--preset', 'paper', '--initmodel',
               str(tmp_path / 'mlp.model'), '--resume',
               str(tmp_path / 'mlp.state')) == 1
    assert capsys.readouterr().err.endswith(
        ': error: {} names no recipe, so not the --epoch its '
        'learning-rate schedule spans\n'.format(tmp_path / 'mlp.state'))


def test_elapsed_time_goes_on_across_a_resume(resumed):
    first, second = read_log(resumed[0])
    assert first['elapsed_time'] == 1000.
    # The second epoch's seconds, added to the first's.
    assert 1000. < second['elapsed_time'] < 1000. + 600.


def test_dropout_masks_differ_from_step_to_step_and_epoch_to_epoch():
    device = chainer.get_device('@numpy')
    masks = []
    for epoch in (1, 2):
        for _ in train_mnist.dropout_seeded(range(2), device, 0, epoch, 0):
            masks.append(tuple(numpy.random.rand(8) < 0.5))
    again = list(train_mnist.dropout_seeded(range(2), device, 0, 2, 0))
    assert len(again) == 2 and tuple(numpy.random.rand(8) < 0.5) == masks[3]
    assert len(set(masks)) == 4


# Long runs: a snapshot every --frequency epochs, and what survives what.

def resume_flags(out):
    return ['--initmodel', str(out / 'mlp.model'), '--resume',
            str(out / 'mlp.state')]


def test_a_snapshot_is_taken_every_frequency_epochs(small_slice, tmp_path,
                                                    monkeypatch):
    taken = []
    save = snapshot_module.Snapshots.save

    def recording_save(self, model, optimizer, log, partial=None,
                       quiet=False):
        taken.append((optimizer.epoch, quiet))
        save(self, model, optimizer, log, partial, quiet)

    monkeypatch.setattr(snapshot_module.Snapshots, 'save', recording_save)
    assert run(small_slice, tmp_path, '-e', '5', '-u', '16',
               '--frequency', '2') == 0
    # Quiet but the last, which prints the port's two lines.
    assert taken == [(2, True), (4, True), (5, False)]
    assert train_mnist.parse_args([]).frequency == 1
    assert train_mnist.parse_args(['--preset', 'paper']).frequency == 1


@pytest.mark.parametrize('seed', [0, 1])
def test_a_kill_at_a_random_moment_resumes_as_the_uninterrupted_run(
        small_slice, trained, tmp_path, seed):
    flags = ['-e', '30', '-u', '16', '--noplot', '--dataset-dir',
             small_slice, '-o', 'run']
    out = tmp_path / 'run'
    process = start_script(*flags, cwd=tmp_path)
    while not (out / 'mlp.state').exists():
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.01)
    # Epochs take about 0.07 s here: anywhere in the next 5-10.
    time.sleep(numpy.random.RandomState(seed).uniform(0, 0.7))
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, 'ended before the kill'
    resumed = subprocess.run(
        [sys.executable, SCRIPT] + flags + resume_flags(pathlib.Path('run')),
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, trained('-e', '30', '-u', '16'))


class Killed(BaseException):
    """A SIGKILL, as far as the files are concerned: nothing after it runs,
    and nothing cleans up."""


@pytest.mark.parametrize('cut,epoch', [
    ('between renames', 2), ('while writing', 2), ('between renames', 1)])
def test_a_kill_in_a_snapshot_resumes_as_the_uninterrupted_run(
        small_slice, trained, tmp_path, monkeypatch, capsys, cut, epoch):
    flags = ['-e', '3', '-u', '16']
    snapshots = []
    save = snapshot_module.Snapshots.save
    replace = os.replace

    def killed_after_the_models_rename(src, dst):
        replace(src, dst)
        raise Killed

    def kill_in_epoch(self, model, optimizer, log, partial=None,
                      quiet=False):
        snapshots.append(optimizer.epoch)
        if optimizer.epoch != epoch:
            return save(self, model, optimizer, log, partial, quiet)
        if cut == 'between renames':
            monkeypatch.setattr(os, 'replace', killed_after_the_models_rename)
        else:
            # The state's part half written, and no clean-up.
            monkeypatch.setattr(atomic_file, 'remove', lambda paths: [])
            monkeypatch.setattr(snapshot_module, '_npz', killed_in_a_state)
        save(self, model, optimizer, log, partial, quiet)

    monkeypatch.setattr(snapshot_module.Snapshots, 'save', kill_in_epoch)
    with pytest.raises(Killed):
        run(small_slice, tmp_path, *flags)
    monkeypatch.undo()
    parts = sorted(n for n in os.listdir(tmp_path) if n.endswith('.part'))
    if cut == 'between renames':
        assert parts == ['.mlp.state.part']
        # The first snapshot's state is no file yet: only its part.
        assert (tmp_path / 'mlp.state').exists() == (epoch > 1)
        last = 'finished the snapshot of epoch {} that the run stopped ' \
            'in'.format(epoch)
        resumed_at = epoch + 1
    else:
        assert parts == ['.mlp.model.part', '.mlp.state.part']
        last = ('removed the snapshot that was being written into {} when '
                'the run stopped'.format(tmp_path))
        resumed_at = 2
    capsys.readouterr()
    assert run(small_slice, tmp_path, *flags, *resume_flags(tmp_path)) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == last
    assert printed[4] == 'epoch {}'.format(resumed_at)
    assert_same_run(tmp_path, trained(*flags))


def killed_in_a_state(arrays):
    """snapshot._npz, killed half way through a state."""
    def write(f):
        if 'model' not in arrays:
            return numpy.savez(f, **arrays)
        f.write(b'PK\x03\x04')
        raise Killed
    return write


@pytest.mark.parametrize('fault', ['ENOSPC', 'EACCES', 'folder removed'])
def test_a_failed_snapshot_is_one_line_and_keeps_the_last(
        small_slice, tmp_path, monkeypatch, capsys, fault):
    out = tmp_path / 'run'
    kept = {}
    save = snapshot_module.Snapshots.save

    def failing_in_epoch_2(self, model, optimizer, log, partial=None,
                           quiet=False):
        if optimizer.epoch == 1:
            save(self, model, optimizer, log, partial, quiet)
            kept.update(snapshot(out))
            return
        if fault == 'folder removed':
            shutil.rmtree(out)
        else:
            number = getattr(errno, fault)

            def fail(f):
                f.write(b'PK\x03\x04 and then')
                raise OSError(number, os.strerror(number))
            monkeypatch.setattr(snapshot_module, '_npz',
                                lambda arrays: fail)
        save(self, model, optimizer, log, partial, quiet)

    monkeypatch.setattr(snapshot_module.Snapshots, 'save', failing_in_epoch_2)
    assert run(small_slice, out, '-e', '3', '-u', '16') == 1
    cause = {'ENOSPC': 'No space left on device',
             'EACCES': 'Permission denied',
             'folder removed': 'No such file or directory'}[fault]
    assert capsys.readouterr().err.endswith(
        ': error: cannot write to {}: {}\n'.format(out, cause))
    if fault != 'folder removed':
        after = snapshot(out)
        for name in ('mlp.model', 'mlp.state'):
            assert after[name] == kept[name]
        # log.json has epoch 2, which a resume drops.
        assert set(after) == set(kept)


def test_a_second_signal_during_the_save_changes_nothing(
        small_slice, trained, tmp_path, monkeypatch, capsys):
    flags = ['-e', '2', '-u', '16']
    for path in (train_mnist.PlainPath, fast.FastPath):
        monkeypatch.setattr(path, 'batches', interrupted_at(
            path.batches, 2, 3))
    npz = snapshot_module._npz

    def signalled(arrays):
        """The write of the Ctrl-C's snapshot, meeting two signals more."""
        def write(f):
            if 'partial_epoch' in arrays:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)
            npz(arrays)(f)
        return write

    monkeypatch.setattr(snapshot_module, '_npz', signalled)
    assert run(small_slice, tmp_path, *flags) == 130
    monkeypatch.undo()
    assert capsys.readouterr().err.startswith(
        'interrupted after 1 complete epoch and 3 steps of epoch 2\n')
    assert run(small_slice, tmp_path, *flags, *resume_flags(tmp_path)) == 0
    assert_same_run(tmp_path, trained(*flags))


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_and_exit_as_a_shell_expects(
        data_slice, tmp_path, signum):
    out = tmp_path / 'run1'
    process = start_script('-u', '16', '-e', '20', '--noplot',
                           '--dataset-dir', data_slice, '-o', 'run1',
                           cwd=tmp_path)
    while not (out / 'graph.dot').exists():
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(signum)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    assert re.search('^stopped by {} after [0-9]+ complete epochs? and '
                     '[0-9]+ steps? of epoch [0-9]+\nresume with: .* '
                     '--initmodel run1/mlp.model --resume run1/mlp.state '
                     .format(signal.Signals(signum).name), printed, re.M)
    model = L.Classifier(MnistMLP(784, 16, 10))
    digest = snapshot_module.load_model(str(out / 'mlp.model'), model,
                                        {'preset': 'port', 'unit': 16,
                                         'bn': 'exact'})
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    snapshot_module.load_state(str(out / 'mlp.state'), optimizer,
                               dict(snapshot_module.PARTS, epoch=20),
                               False, 100,
                               (str(out / 'mlp.model'), digest))
    assert optimizer.t > 0


def test_sighup_ignored_as_under_nohup_stays_ignored():
    handler = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        interrupts = snapshot_module.Interrupts()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        interrupts.restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, handler)
        signal.signal(signal.SIGTERM, term)


def test_a_new_run_replaces_the_run_in_its_folder(small_slice, trained,
                                                  tmp_path, capsys):
    out = tmp_path / 'result'
    shutil.copytree(trained('-e', '2', '-u', '16', '--preset', 'paper'), out)
    (out / '.mlp.state.part').write_bytes(b'cut')
    (out / 'notes.txt').write_text('mine')
    capsys.readouterr()
    assert run(small_slice, out, '-e', '1', '-u', '8') == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == (
        'replaced the run in {}: mlp.model, mlp_best.model, mlp.state, '
        'log.json, graph.dot, .mlp.state.part'.format(out))
    assert sorted(os.listdir(out)) == [
        'graph.dot', 'log.json', 'mlp.model', 'mlp.state', 'notes.txt']
    assert len(read_log(out)) == 1
    assert arrays(out / 'mlp.model')['predictor/l1/W'].shape == (8, 784)
    # And again, as `make train` twice in a row.
    capsys.readouterr()
    assert run(small_slice, out, '-e', '1', '-u', '8') == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        'replaced the run in {}: mlp.model, mlp.state, log.json, '
        'graph.dot'.format(out))
