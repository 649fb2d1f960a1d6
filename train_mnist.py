#!/usr/bin/env python3
"""Chainer example: train the BinaryNet multi-layer perceptron on MNIST.

BinaryNet: Courbariaux et al., "Binarized Neural Networks", arXiv:1602.02830.
``--preset port`` (the default) reproduces the 2016 Chainer port and its
printed log; ``--preset paper`` runs the paper's MNIST recipe. recipes.py
holds the two side by side; this script is the loop they share, in the shape
of Chainer's examples/mnist/train_mnist_custom_loop.py. By default the data
is held on the device (device_data.py) and Adam updates all parameters at
once (flat_adam.py); ``--plain`` runs Chainer's iterator, optimizer and type
checks as they come, and trains the same model more slowly.
"""
import json
import os
import signal
import sys
import time

import compat

import numpy
import tqdm

import chainer
from chainer import computational_graph
from chainer.dataset import convert

import atomic_file
import cli
from cli import UsageError
import device_data
import flat_adam
import mnist
import recipes
import safe_npz

PROG = os.path.basename(sys.argv[0]) or 'train_mnist.py'
MODEL_FILE = 'mlp.model'
STATE_FILE = 'mlp.state'
LOG_FILE = 'log.json'
BEST_MODEL_FILE = 'mlp_best.model'


def parse_args(argv=None):
    parser = cli.OneLineParser(prog=PROG, description='BinaryNet: MNIST')
    parser.add_argument('--preset', choices=sorted(recipes.PRESETS),
                        default='port',
                        help="'port': the 2016 Chainer port's recipe; "
                        "'paper': the paper's (3x4096 units, dropout, squared "
                        "hinge loss, decaying rate, validation split)")
    parser.add_argument('--batchsize', '-b', type=cli.positive_int,
                        default=100,
                        help='Number of images in each mini-batch')
    parser.add_argument('--epoch', '-e', type=cli.positive_int,
                        help='Number of sweeps over the dataset to train '
                        '(port: 20, paper: 1000; the paper\'s rate schedule '
                        'spans them)')
    cli.add_gpu_flag(parser)
    parser.add_argument('--out', '-o', default='result',
                        help='Directory to output the result')
    parser.add_argument('--unit', '-u', type=cli.positive_int,
                        help='Number of units in each hidden layer '
                        '(port: 1000, paper: 4096)')
    parser.add_argument('--initmodel', '-m', default='',
                        help='Initialize the model from given file')
    parser.add_argument('--resume', '-r', default='',
                        help='Resume the optimization from snapshot '
                        '(with --initmodel: the model it belongs to)')
    parser.add_argument('--seed', type=cli.integer(0, 'non-negative'),
                        default=0,
                        help='Random seed of the initial weights and of the '
                        'order of the training examples')
    parser.add_argument('--dataset-dir', default=None,
                        help='Folder holding the four MNIST IDX files (gzip '
                        'or not); default: the copy in data/mnist')
    parser.add_argument('--clip', choices=('all', 'binary'),
                        help="Parameters clipped to [-1, 1] at each update: "
                        "'all', as the Chainer port (its default), or "
                        "'binary', the binary weights only, as the paper "
                        "(its default)")
    parser.add_argument('--eval-bn', choices=('population', 'batch'),
                        default='population',
                        help="BatchNormalization's statistics when "
                        "evaluating: 'population' (inference mode), or "
                        "'batch', each test batch's own, as the port "
                        "evaluated (port preset only)")
    parser.add_argument('--noplot', dest='plot', action='store_false',
                        help='Disable PlotReport extension')
    parser.add_argument('--plain', action='store_true',
                        help="Train with Chainer's SerialIterator, its "
                        "optimizer's update rules and hooks and its type "
                        "checks, and evaluate batch by batch: the same model, "
                        "slower (evaluated in chunks, a test figure may round "
                        "otherwise)")
    args = parser.parse_args(argv)
    recipe = recipes.PRESETS[args.preset]
    for name in ('epoch', 'unit', 'clip'):
        if getattr(args, name) is None:
            setattr(args, name, getattr(recipe, name))
    if args.resume and not args.initmodel:
        parser.error('--resume needs --initmodel: the optimizer state '
                     'belongs to the model it was saved with')
    if args.eval_bn == 'batch' and recipe is not recipes.Port:
        parser.error("--eval-bn batch is the port's evaluation; the paper "
                     "evaluates with population statistics")
    return args


def port_str(x):
    """x as the port's Python 2 printed it: str(float), 12 digits."""
    text = '{:.12g}'.format(x)
    return text if any(c in text for c in '.einf') else text + '.0'


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


def iterator_batches(iterator, device):
    """The (x, t) arrays of each batch of ``iterator``, on ``device``."""
    for batch in iterator:
        yield convert.concat_examples(batch, device)


class Means(object):

    """Mean loss and accuracy over batches, each weighted by its size.

    Summed on the device, in float64 as the port's Python floats: a float()
    at each batch would wait for the GPU.
    """

    def __init__(self):
        self.loss = self.accuracy = 0
        self.count = 0

    def add(self, loss, accuracy, n):
        self.loss += loss.array.astype(numpy.float64) * n
        self.accuracy += accuracy.array.astype(numpy.float64) * n
        self.count += n

    def result(self):
        return float(self.loss) / self.count, float(self.accuracy) / self.count


class Interrupts(object):

    """Ctrl-C, taken only where ``check()`` asks, until ``restore()``:
    between training steps and once an epoch's evaluation and log are
    written. A snapshot then holds whole steps, and no epoch is left out of
    the log."""

    def __init__(self):
        self.requested = False
        self._handler = signal.signal(signal.SIGINT, self._request)

    def restore(self):
        signal.signal(signal.SIGINT, self._handler)

    def _request(self, signum, frame):
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def between(self, batches):
        """``batches``, with Ctrl-C taken before each."""
        for batch in batches:
            self.check()
            yield batch


def run_epoch(model, optimizer, batches, n_examples, write_graph_to=None):
    """Trains on (x, t) ``batches``, ``n_examples`` images in all; returns
    mean loss and accuracy. ``optimizer.update`` takes each step."""
    means = Means()
    # A progress line on a terminal only (disable=None): nothing in logs.
    with tqdm.tqdm(total=n_examples, unit='img', leave=False,
                   disable=None) as progress:
        for x, t in batches:
            optimizer.update(model, x, t)
            if write_graph_to:
                write_graph(model.loss, write_graph_to)
                write_graph_to = None
            means.add(model.loss, model.accuracy, len(t))
            progress.update(len(t))
    return means.result()


def evaluate(model, batches, batch_statistics):
    """Mean loss and accuracy, BatchNormalization using its population
    statistics, or each batch's own (``batch_statistics``), as the port did,
    which also moves the running averages as training does."""
    means = Means()
    with chainer.using_config('train', batch_statistics), \
            chainer.no_backprop_mode():
        for x, t in batches:
            model(x, t)
            means.add(model.loss, model.accuracy, len(t))
    return means.result()


def training_batches(dataset, args, epoch, device):
    """The (x, t) batches of ``epoch``: slices of a DeviceDataset or, with
    --plain, Chainer's iterator over the examples; the same either way."""
    if args.plain:
        return iterator_batches(epoch_iterator(
            dataset, args.batchsize, args.seed, epoch), device)
    return dataset.batches(args.batchsize, device_data.epoch_order(
        len(dataset), args.seed, epoch))


def evaluation(model, dataset, args, device):
    """Mean loss and accuracy on ``dataset`` in batches of --batchsize: the
    net run on device_data's wide chunks where BatchNormalization uses its
    population statistics, batch by batch with --plain or batch statistics.
    """
    batch_statistics = args.eval_bn == 'batch'
    if args.plain:
        batches = iterator_batches(chainer.iterators.SerialIterator(
            dataset, args.batchsize, repeat=False, shuffle=False), device)
    elif batch_statistics:
        batches = dataset.batches(args.batchsize)
    else:
        means = Means()
        device_data.evaluate(model, dataset, args.batchsize, means)
        return means.result()
    return evaluate(model, batches, batch_statistics)


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


def save_snapshot(model, optimizer, out, recipe):
    # A second Ctrl-C must not cut the snapshot short.
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print('save the model')
        safe_npz.save(os.path.join(out, MODEL_FILE), model, recipe)
        print('save the optimizer')
        safe_npz.save(os.path.join(out, STATE_FILE), optimizer, recipe)
    finally:
        signal.signal(signal.SIGINT, handler)


def load_model(path, model, recipe):
    """--initmodel: a model of another recipe is refused in one line."""
    arrays = safe_npz.read(path)
    saved = safe_npz.recipe_of(arrays, path)
    if saved is not None and any(saved.get(key) != recipe[key]
                                 for key in ('preset', 'unit')):
        raise UsageError('{} is a --preset {} --unit {} model, not --preset '
                         '{} --unit {}'.format(
                             path, saved.get('preset'), saved.get('unit'),
                             recipe['preset'], recipe['unit']))
    safe_npz.load_arrays(arrays, model, path)


def load_state(path, optimizer, recipe, n_epochs):
    """--resume: a schedule spanning ``n_epochs`` cannot change midway."""
    arrays = safe_npz.read(path)
    saved = safe_npz.recipe_of(arrays, path)
    if recipe.learning_rate is not None:
        if saved is None:
            raise UsageError('{} names no recipe, so not the --epoch its '
                             'learning-rate schedule spans'.format(path))
        epochs = saved.get('epoch')
        if epochs != n_epochs:
            raise UsageError('{} follows the learning-rate schedule of '
                             '--epoch {}: resume it with that --epoch'.format(
                                 path, epochs))
    safe_npz.load_arrays(arrays, optimizer, path)


def train(args):
    device = cli.get_device(args.gpu)
    # Current before seeding: CuPy seeds the current device's generator.
    compat.use_device(device)
    if args.plot and not plotting_available():
        print('note: matplotlib is not installed, so no plots are drawn',
              file=sys.stderr)
        args.plot = False
    recipe = recipes.PRESETS[args.preset]
    saved_recipe = {'preset': args.preset, 'unit': args.unit,
                    'epoch': args.epoch}
    # The initializers draw from NumPy's global generator, even on a GPU.
    numpy.random.seed(args.seed)
    if device.xp is not numpy:
        device.xp.random.seed(args.seed)

    print('load MNIST dataset')
    train_data, validation_data, test_data = recipe.data(args.dataset_dir)

    model = recipe.model(args.unit)
    if args.initmodel:
        print('Load model from', args.initmodel)
        load_model(args.initmodel, model, saved_recipe)
    model.to_device(device)

    optimizer = recipe.optimizer(model, args.clip)
    if args.resume:
        print('Load optimizer state from', args.resume)
        load_state(args.resume, optimizer, recipe, args.epoch)
    if optimizer.epoch >= args.epoch:
        raise UsageError('{} has trained {} epochs already: ask for more '
                         'with --epoch'.format(args.resume, optimizer.epoch))
    step = optimizer
    if not args.plain:
        # One update for all parameters; the data on the device, in slices.
        step = flat_adam.FlatAdam(
            optimizer, recipes.clipped_params(model, args.clip),
            recipe.clip_timing)
        train_data, validation_data, test_data = (
            None if data is None else device_data.DeviceDataset(data, device)
            for data in (train_data, validation_data, test_data))

    os.makedirs(args.out, exist_ok=True)
    log = []
    if args.resume:
        log = read_log(os.path.join(args.out, LOG_FILE), optimizer.epoch)

    graph_path = os.path.join(args.out, 'graph.dot')
    elapsed = log[-1].get('elapsed_time', 0.) if log else 0.

    interrupts = Interrupts()
    try:
        for epoch in range(optimizer.epoch + 1, args.epoch + 1):
            print('epoch', epoch)
            start = time.perf_counter()
            rate = None
            if recipe.learning_rate is not None:
                rate = optimizer.alpha = recipe.learning_rate(
                    epoch, args.epoch)
            seed_epoch(device, args.seed, epoch)
            batches = interrupts.between(
                training_batches(train_data, args, epoch, device))
            loss, accuracy = run_epoch(model, step, batches, len(train_data),
                                       graph_path if epoch == 1 else None)
            optimizer.new_epoch()
            print('train mean loss={}, accuracy={}'.format(
                port_str(loss), port_str(accuracy)))
            entry = {'epoch': epoch, 'iteration': optimizer.t,
                     'main/loss': loss, 'main/accuracy': accuracy}
            if rate is not None:
                entry['lr'] = rate
            if validation_data is not None:
                report(entry, 'valid', 'validation',
                       evaluation(model, validation_data, args, device))
                report(entry, 'test ', 'test',
                       evaluation(model, test_data, args, device))
            else:
                # The port evaluates on the test set and calls it validation.
                report(entry, 'test ', 'validation',
                       evaluation(model, test_data, args, device))
            elapsed += time.perf_counter() - start
            entry['elapsed_time'] = elapsed
            log.append(entry)
            if validation_data is not None and best_entry(log) is entry:
                path = os.path.join(args.out, BEST_MODEL_FILE)
                safe_npz.save(path, model, saved_recipe)
                print('lowest validation error so far: saved', path)
            write_log(log, args.out, args.plot)
            interrupts.check()
    except KeyboardInterrupt:
        if optimizer.t == 0:
            print('interrupted before the first update: nothing to save',
                  file=sys.stderr)
            return 130
        print('interrupted after {} complete epoch(s)'.format(
            optimizer.epoch), file=sys.stderr)
        save_snapshot(model, optimizer, args.out, saved_recipe)
        print('resume with: --initmodel {} --resume {}'.format(
            os.path.join(args.out, MODEL_FILE),
            os.path.join(args.out, STATE_FILE)), file=sys.stderr)
        return 130
    finally:
        interrupts.restore()
    save_snapshot(model, optimizer, args.out, saved_recipe)
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
    print('{} mean loss={}, accuracy={}'.format(
        label, port_str(loss), port_str(accuracy)))
    entry[key + '/main/loss'] = loss
    entry[key + '/main/accuracy'] = accuracy


def best_entry(log):
    """The epoch of lowest validation error, where test is apart; on a tie
    the latest, as the authors' ``val_err <= best_val_err``."""
    best = None
    for entry in log:
        if 'test/main/accuracy' in entry and (
                best is None or entry['validation/main/accuracy'] >=
                best['validation/main/accuracy']):
            best = entry
    return best


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
