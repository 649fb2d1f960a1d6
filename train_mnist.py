#!/usr/bin/env python3
"""Chainer example: train the BinaryNet multi-layer perceptron on MNIST.

Two recipes for BinaryNet (Courbariaux et al., "Binarized Neural Networks",
arXiv:1602.02830):
- ``--preset port`` (the default) reproduces the 2016 Chainer port: Adam with
  its defaults, batches of 100, 20 epochs, two hidden binary layers of 1000
  units, softmax cross entropy, and its printed log. ``--clip binary`` clips
  only the binary weights, as the paper does; the port clipped every
  parameter.
- ``--preset paper`` is the paper's MNIST recipe (the authors' Theano code):
  three hidden layers of 4096 units with dropout, inputs in [-1, 1], squared
  hinge loss, Adam whose rate decays exponentially from 3e-3 to 3e-7, binary
  weights' steps scaled by Glorot's factor, and the model of the epoch with
  the lowest error on a validation split kept.
"""
import argparse
import json
import os
import signal
import sys
import time

import compat

import numpy

import chainer
from chainer import computational_graph
from chainer.dataset import convert
import chainer.links as L

import atomic_file
import mnist
import net
import safe_npz
from squared_hinge import squared_hinge
from weight_clip import WeightClip

PROG = os.path.basename(sys.argv[0]) or 'train_mnist.py'
MODEL_FILE = 'mlp.model'
STATE_FILE = 'mlp.state'
LOG_FILE = 'log.json'
BEST_MODEL_FILE = 'mlp_best.model'

# What a preset fixes unless a flag says otherwise.
PRESET_DEFAULTS = {
    'port': {'epoch': 20, 'unit': 1000, 'clip': 'all'},
    'paper': {'epoch': 1000, 'unit': 4096, 'clip': 'binary'},
}
# The paper's learning rate at the first and at the last epoch.
PAPER_LR = (3e-3, 3e-7)
# The paper's validation split: the last 10,000 of 60,000 training images.
VALIDATION_FRACTION = 1 / 6


class UsageError(Exception):
    """A request that cannot be carried out as asked."""


class OneLineParser(argparse.ArgumentParser):

    def error(self, message):
        # One line, without argparse's usage block: --help shows that.
        self.exit(2, '{}: error: {}\n'.format(self.prog, message))


def _integer(minimum, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                '{!r} is not an integer'.format(text))
        if value < minimum:
            raise argparse.ArgumentTypeError(
                'must be a {} integer, not {}'.format(what, value))
        return value
    return parse


positive_int = _integer(1, 'positive')


def parse_args(argv=None):
    parser = OneLineParser(prog=PROG, description='BinaryNet: MNIST')
    parser.add_argument('--preset', choices=sorted(PRESET_DEFAULTS),
                        default='port',
                        help="'port': the 2016 Chainer port's recipe; "
                        "'paper': the paper's (3x4096 units, dropout, squared "
                        "hinge loss, decaying rate, validation split)")
    parser.add_argument('--batchsize', '-b', type=positive_int, default=100,
                        help='Number of images in each mini-batch')
    parser.add_argument('--epoch', '-e', type=positive_int,
                        help='Number of sweeps over the dataset to train '
                        '(port: 20, paper: 1000; the paper\'s rate schedule '
                        'spans them)')
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU ID (negative value indicates CPU)')
    parser.add_argument('--out', '-o', default='result',
                        help='Directory to output the result')
    parser.add_argument('--unit', '-u', type=positive_int,
                        help='Number of units in each hidden layer '
                        '(port: 1000, paper: 4096)')
    parser.add_argument('--initmodel', '-m', default='',
                        help='Initialize the model from given file')
    parser.add_argument('--resume', '-r', default='',
                        help='Resume the optimization from snapshot '
                        '(with --initmodel: the model it belongs to)')
    parser.add_argument('--seed', type=_integer(0, 'non-negative'), default=0,
                        help='Random seed of the initial weights and of the '
                        'order of the training examples')
    parser.add_argument('--dataset-dir', default=None,
                        help='Folder holding the four MNIST IDX files (gzip '
                        'or not); default: the copy in data/mnist')
    parser.add_argument('--clip', choices=('all', 'binary'),
                        help="Parameters clipped to [-1, 1] after each "
                        "update: 'all', as the Chainer port (its default), "
                        "or 'binary', the binary weights only, as the paper "
                        "(its default)")
    parser.add_argument('--noplot', dest='plot', action='store_false',
                        help='Disable PlotReport extension')
    args = parser.parse_args(argv)
    for name, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.resume and not args.initmodel:
        parser.error('--resume needs --initmodel: the optimizer state '
                     'belongs to the model it was saved with')
    return args


def get_device(gpu):
    if gpu < 0:
        return chainer.get_device('@numpy')
    from chainer.backends import cuda
    if not cuda.available:
        raise UsageError('--gpu {}: CUDA is not available (CuPy is not '
                         'installed, or does not import)'.format(gpu))
    try:
        count = cuda.cupy.cuda.runtime.getDeviceCount()
    except cuda.cupy.cuda.runtime.CUDARuntimeError as e:
        raise UsageError('--gpu {}: no usable GPU ({})'.format(gpu, e))
    if gpu >= count:
        raise UsageError('--gpu {}: this machine has {} GPU(s)'.format(
            gpu, count))
    return chainer.get_device('@cupy:{}'.format(gpu))


def make_model(preset, n_units):
    """The port's classifier, or the paper's (Theano code, mnist.py)."""
    if preset == 'port':
        return L.Classifier(net.MnistMLP(784, n_units, 10))
    return L.Classifier(
        net.MnistMLP(784, n_units, 10, n_hidden=3, input_dropout=0.2,
                     hidden_dropout=0.5,
                     initialW=chainer.initializers.Uniform(1.),
                     bn_eps=1e-4),
        lossfun=squared_hinge)


def make_optimizer(model, preset, clip):
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(model)
    add_clipping(optimizer, model, clip)
    if preset == 'paper':
        scale_binary_steps(model)
    return optimizer


def glorot_factor(link):
    """1 / sqrt(1.5 / (fan_in + fan_out)): the paper's W_LR_scale."""
    return (1.5 / (link.in_size + link.out_size)) ** -0.5


def scale_binary_steps(model):
    """W <- W - glorot_factor * (Adam's step), for each binary W only.

    Adam's ``eta`` multiplies the step of one parameter: the real-valued
    weights start in [-1, 1], and unscaled steps would take long to flip
    their signs.
    """
    for link in model.predictor.binary_links():
        link.W.update_rule.hyperparam.eta = glorot_factor(link)


def learning_rate(epoch, n_epochs, first=PAPER_LR[0], last=PAPER_LR[1]):
    """first * (last / first)^((epoch - 1) / (n_epochs - 1)), epoch 1..n."""
    if n_epochs == 1:
        return first
    return first * (last / first) ** ((epoch - 1) / (n_epochs - 1))


def get_data(preset, dataset_dir):
    """(train, validation, test); validation is None for the port."""
    train, test = mnist.get_mnist(dataset_dir, signed=preset == 'paper')
    if preset == 'port':
        return train, None, test
    n_train = len(train) - round(len(train) * VALIDATION_FRACTION)
    train, validation = chainer.datasets.split_dataset(train, n_train)
    return train, validation, test


def add_clipping(optimizer, model, which):
    """Clips every parameter (the port), or the binary weights (the paper)."""
    if which == 'all':
        optimizer.add_hook(WeightClip())
    else:
        for link in model.predictor.binary_links():
            link.W.update_rule.add_hook(WeightClip())


def epoch_iterator(dataset, batchsize, seed, epoch):
    """One pass over ``dataset`` in an order drawn from (seed, epoch) alone.

    A resumed run then sees the very orders an uninterrupted one would.
    """
    orders = numpy.random.RandomState([seed, epoch])
    return chainer.iterators.SerialIterator(
        dataset, batchsize, repeat=False,
        order_sampler=chainer.iterators.ShuffleOrderSampler(orders))


def seed_epoch(device, seed, epoch):
    """Seeds dropout's generator from (seed, epoch): resumes are exact."""
    derived = numpy.random.RandomState([seed, epoch]).randint(2 ** 31)
    numpy.random.seed(derived)
    if device.xp is not numpy:
        device.xp.random.seed(derived)


def run_epoch(model, optimizer, iterator, device, write_graph_to=None):
    """Trains on one pass of ``iterator``; returns mean loss and accuracy."""
    sum_loss = sum_accuracy = 0
    count = 0
    for batch in iterator:
        x, t = convert.concat_examples(batch, device)
        optimizer.update(model, x, t)
        if write_graph_to:
            write_graph(model.loss, write_graph_to)
            write_graph_to = None
        # Summed on the device: a float() here would wait for the GPU at
        # every step.
        sum_loss += model.loss.array * len(t)
        sum_accuracy += model.accuracy.array * len(t)
        count += len(t)
    return float(sum_loss) / count, float(sum_accuracy) / count


def evaluate(model, iterator, device):
    """Mean loss and accuracy in inference mode (population statistics)."""
    sum_loss = sum_accuracy = 0
    count = 0
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for batch in iterator:
            x, t = convert.concat_examples(batch, device)
            loss = model(x, t)
            sum_loss += loss.array * len(t)
            sum_accuracy += model.accuracy.array * len(t)
            count += len(t)
    iterator.reset()
    return float(sum_loss) / count, float(sum_accuracy) / count


def write_graph(loss, path):
    graph = computational_graph.build_computational_graph(
        (loss,), remove_split=True)
    with atomic_file.open_for_write(path, 'w') as f:
        f.write(graph.dump())
    print('graph generated')


def read_log(path, last_epoch):
    """The entries of an earlier run's log.json up to ``last_epoch``."""
    try:
        with open(path) as f:
            entries = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise UsageError('{} cannot be continued: {}'.format(path, e))
    if not (isinstance(entries, list) and
            all(isinstance(e, dict) and 'epoch' in e for e in entries)):
        raise UsageError('{} cannot be continued: it is not a log of '
                         'epochs'.format(path))
    return [e for e in entries if e['epoch'] <= last_epoch]


def write_log(entries, out, plot):
    with atomic_file.open_for_write(os.path.join(out, LOG_FILE), 'w') as f:
        json.dump(entries, f, indent=4)
    if plot:
        plot_log(entries, out)


def plot_log(entries, out):
    """Draws loss.png and accuracy.png, as Chainer's PlotReport does."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [e['epoch'] for e in entries]
    for quantity in ('loss', 'accuracy'):
        figure, axes = plt.subplots()
        for prefix in ('', 'validation/', 'test/'):
            key = prefix + 'main/' + quantity
            if key in entries[0]:
                axes.plot(epochs, [e[key] for e in entries], marker='x',
                          label=key)
        axes.set_xlabel('epoch')
        axes.legend(loc='best')
        with atomic_file.open_for_write(
                os.path.join(out, quantity + '.png')) as f:
            figure.savefig(f, format='png')
        plt.close(figure)


def plotting_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def save_snapshot(model, optimizer, out):
    # A second Ctrl-C must not cut the snapshot short.
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print('save the model')
        safe_npz.save(os.path.join(out, MODEL_FILE), model)
        print('save the optimizer')
        safe_npz.save(os.path.join(out, STATE_FILE), optimizer)
    finally:
        signal.signal(signal.SIGINT, handler)


def train(args):
    device = get_device(args.gpu)
    if args.plot and not plotting_available():
        print('note: matplotlib is not installed, so no plots are drawn',
              file=sys.stderr)
        args.plot = False
    # The initializers draw from NumPy's global generator, even on a GPU.
    numpy.random.seed(args.seed)
    if device.xp is not numpy:
        device.xp.random.seed(args.seed)

    print('load MNIST dataset')
    train_data, validation_data, test_data = get_data(args.preset,
                                                      args.dataset_dir)

    model = make_model(args.preset, args.unit)
    if args.initmodel:
        print('Load model from', args.initmodel)
        safe_npz.load(args.initmodel, model)
    compat.use_device(device)
    model.to_device(device)

    optimizer = make_optimizer(model, args.preset, args.clip)
    if args.resume:
        print('Load optimizer state from', args.resume)
        safe_npz.load(args.resume, optimizer)
    if optimizer.epoch >= args.epoch:
        raise UsageError('{} has trained {} epochs already: ask for more '
                         'with --epoch'.format(args.resume, optimizer.epoch))

    os.makedirs(args.out, exist_ok=True)
    log = []
    if args.resume:
        log = read_log(os.path.join(args.out, LOG_FILE), optimizer.epoch)

    def iterator(dataset):
        return chainer.iterators.SerialIterator(
            dataset, args.batchsize, repeat=False, shuffle=False)

    test_iter = iterator(test_data)
    validation_iter = (None if validation_data is None
                       else iterator(validation_data))
    graph_path = os.path.join(args.out, 'graph.dot')
    elapsed = log[-1].get('elapsed_time', 0.) if log else 0.

    try:
        for epoch in range(optimizer.epoch + 1, args.epoch + 1):
            print('epoch', epoch)
            start = time.perf_counter()
            if args.preset == 'paper':
                optimizer.alpha = learning_rate(epoch, args.epoch)
            seed_epoch(device, args.seed, epoch)
            train_iter = epoch_iterator(train_data, args.batchsize,
                                        args.seed, epoch)
            loss, accuracy = run_epoch(model, optimizer, train_iter, device,
                                       graph_path if epoch == 1 else None)
            optimizer.new_epoch()
            print('train mean loss={}, accuracy={}'.format(loss, accuracy))
            entry = {'epoch': epoch, 'iteration': optimizer.t,
                     'main/loss': loss, 'main/accuracy': accuracy}
            if validation_iter is not None:
                entry['lr'] = optimizer.alpha
                report(entry, 'valid', 'validation',
                       evaluate(model, validation_iter, device))
                report(entry, 'test ', 'test',
                       evaluate(model, test_iter, device))
            else:
                # The port evaluates on the test set and calls it validation.
                report(entry, 'test ', 'validation',
                       evaluate(model, test_iter, device))
            elapsed += time.perf_counter() - start
            entry['elapsed_time'] = elapsed
            log.append(entry)
            if validation_iter is not None and best_entry(log) is entry:
                path = os.path.join(args.out, BEST_MODEL_FILE)
                safe_npz.save(path, model)
                print('lowest validation error so far: saved', path)
            write_log(log, args.out, args.plot)
    except KeyboardInterrupt:
        if optimizer.t == 0:
            print('interrupted before the first update: nothing to save',
                  file=sys.stderr)
            return 130
        print('interrupted after {} complete epoch(s)'.format(
            optimizer.epoch), file=sys.stderr)
        save_snapshot(model, optimizer, args.out)
        print('resume with: --initmodel {} --resume {}'.format(
            os.path.join(args.out, MODEL_FILE),
            os.path.join(args.out, STATE_FILE)), file=sys.stderr)
        return 130
    save_snapshot(model, optimizer, args.out)
    best = best_entry(log)
    if best:
        print('lowest validation error {:.2%} at epoch {}: test error '
              '{:.2%} ({})'.format(
                  1 - best['validation/main/accuracy'], best['epoch'],
                  1 - best['test/main/accuracy'],
                  os.path.join(args.out, BEST_MODEL_FILE)))
    return 0


def report(entry, label, key, result):
    loss, accuracy = result
    print('{} mean loss={}, accuracy={}'.format(label, loss, accuracy))
    entry[key + '/main/loss'] = loss
    entry[key + '/main/accuracy'] = accuracy


def best_entry(log):
    """The first epoch of highest validation accuracy, where test is apart."""
    entries = [e for e in log if 'test/main/accuracy' in e]
    if not entries:
        return None
    return max(entries, key=lambda e: e['validation/main/accuracy'])


def main(argv=None):
    args = parse_args(argv)
    try:
        return train(args)
    except (UsageError, mnist.MnistError, safe_npz.LoadError) as e:
        message = str(e)
    except OSError as e:
        message = 'cannot write to {}: {}'.format(args.out, e.strerror or e)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    print('{}: error: {}'.format(PROG, message), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
