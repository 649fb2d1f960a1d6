#!/usr/bin/env python3
"""Chainer example: train the BinaryNet multi-layer perceptron on MNIST.

BinaryNet: Courbariaux et al., "Binarized Neural Networks", arXiv:1602.02830.
``--preset port`` (the default) reproduces the 2016 Chainer port and its
printed log; ``--preset paper`` runs the paper's MNIST recipe. recipes.py
holds the two side by side; this script is the loop they share, in the shape
of Chainer's examples/mnist/train_mnist_custom_loop.py. By default it trains
on the fast path (fast/: the data on the device, one Adam step for all
parameters); ``--plain`` runs Chainer's iterator, optimizer and type checks
as they come (PlainPath), and trains the same model more slowly.
"""
import itertools
import os
import signal
import sys
import time

import compat

import numpy
import tqdm

import chainer
from chainer.dataset import convert

import binary_stats
import fast
import mnist
import recipes
from utils import cli
from utils import safe_npz
from utils import snapshot
from utils import training_log
from utils.cli import UsageError

PROG = os.path.basename(sys.argv[0]) or 'train_mnist.py'
# The flags that a saved model or state names, besides --preset.
SAVED_FLAGS = ('unit', 'epoch', 'bn', 'optimizer', 'binarize')


def make_parser():
    parser = cli.OneLineParser(prog=PROG, description='BinaryNet: MNIST')
    parser.add_argument('--preset', choices=sorted(recipes.PRESETS),
                        default='port',
                        help="'port': the 2016 Chainer port's recipe; "
                        "'paper': the paper's, as its Theano code (3x4096 "
                        "units, dropout, squared hinge loss, decaying rate, "
                        "validation split); 'torch7': the paper's, as its "
                        "Torch7 code (3x2048 units, the shift-based parts, "
                        "stochastic activations)")
    parser.add_argument('--batchsize', '-b', type=cli.positive_int,
                        default=100,
                        help='Number of images in each mini-batch')
    parser.add_argument('--epoch', '-e', type=cli.positive_int,
                        help='Number of sweeps over the dataset to train '
                        '(port: 20, paper: 1000; the paper\'s rate schedule '
                        'spans them)')
    cli.add_gpu_flag(parser)
    parser.add_argument('--frequency', '-f', type=cli.positive_int,
                        default=1,
                        help='Frequency of taking a snapshot, in epochs '
                        '(also taken at the end, and at Ctrl-C, SIGTERM or '
                        'SIGHUP)')
    parser.add_argument('--out', '-o', default='result',
                        help='Directory to output the result (a new run '
                        'replaces the files of a run before it there)')
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
    parser.add_argument('--bn', choices=sorted(recipes.BN),
                        help="The hidden layers' BatchNormalization: "
                        "'exact', or 'shift', the paper's shift-based one "
                        "(torch7's default)")
    parser.add_argument('--optimizer', choices=sorted(recipes.OPTIMIZERS),
                        help="'adam', or 'shift-adamax', the paper's "
                        "shift-based AdaMax (torch7's default), at the "
                        "preset's rate")
    parser.add_argument('--binarize', choices=sorted(recipes.BINARIZE),
                        help="The hidden activations in training: "
                        "'deterministic', sign(x), or 'stochastic', +1 with "
                        "probability clip((x + 1) / 2, 0, 1) (torch7's "
                        "default)")
    parser.add_argument('--eval-bn', choices=('population', 'batch'),
                        default='population',
                        help="BatchNormalization's statistics when "
                        "evaluating: 'population' (inference mode), or "
                        "'batch', each test batch's own, as the port "
                        "evaluated (port preset only)")
    parser.add_argument('--noplot', dest='plot', action='store_false',
                        help='Draw no loss.png and accuracy.png')
    parser.add_argument('--plain', action='store_true',
                        help="Train with Chainer's SerialIterator, its "
                        "optimizer's update rules and hooks and its type "
                        "checks: the same model and log, slower")
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    recipe = recipes.PRESETS[args.preset]
    for name, value in recipe.defaults().items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.resume and not args.initmodel:
        parser.error('--resume needs --initmodel: the optimizer state '
                     'belongs to the model it was saved with')
    if args.eval_bn == 'batch' and recipe is not recipes.Port:
        parser.error("--eval-bn batch is the port's evaluation; the paper "
                     "evaluates with population statistics")
    if args.eval_bn == 'batch' and args.binarize == 'stochastic':
        parser.error('--eval-bn batch evaluates in training mode, where '
                     '--binarize stochastic would draw the activations')
    return args


class PlainPath(object):

    """Chainer's own loop: SerialIterator and concat_examples for the
    batches, ``Optimizer.update`` with its update rules and hooks for the
    step, and the test set batch by batch; fast.FastPath's three methods."""

    def __init__(self, model, optimizer, args, device):
        self.model = model
        self.optimizer = optimizer
        self.args = args
        self.device = device

    def dataset(self, data):
        return data

    def step(self, x, t):
        self.optimizer.update(self.model, x, t)

    def batches(self, data, epoch, start=0):
        """One pass over ``data`` in an order drawn from (seed, epoch) alone,
        from batch ``start`` on: a resumed run sees the very batches an
        uninterrupted one would."""
        order = chainer.iterators.ShuffleOrderSampler(
            numpy.random.RandomState([self.args.seed, epoch]))
        iterator = chainer.iterators.SerialIterator(
            data, self.args.batchsize, repeat=False, order_sampler=order)
        for batch in itertools.islice(iterator, start, None):
            yield convert.concat_examples(batch, self.device)

    def evaluate(self, data):
        """Mean loss and accuracy, BatchNormalization using its population
        statistics, or each batch's own (--eval-bn batch), as the port did,
        which also moves the running averages as training does."""
        means = training_log.Means()
        iterator = chainer.iterators.SerialIterator(
            data, self.args.batchsize, repeat=False, shuffle=False)
        with chainer.using_config('train', self.args.eval_bn == 'batch'), \
                chainer.no_backprop_mode():
            for batch in iterator:
                x, t = convert.concat_examples(batch, self.device)
                self.model(x, t)
                means.add(self.model.loss, self.model.accuracy, len(t))
        return means.result()


def dropout_seeded(batches, device, seed, epoch, first):
    """``batches``, numbered from ``first``, each after seeding the
    generator that dropout and stochastic activations draw from, from (seed,
    epoch, its number): an epoch resumed at any step draws the masks and
    activations the uninterrupted run drew."""
    for step, batch in enumerate(batches, first):
        derived = numpy.random.RandomState([seed, epoch, step]).randint(
            2 ** 31)
        numpy.random.seed(derived)
        if device.xp is not numpy:
            device.xp.random.seed(derived)
        yield batch


def run_epoch(model, step, batches, n_examples, write_graph_to=None,
              means=None):
    """Trains on (x, t) ``batches``, ``n_examples`` images in all, a
    ``step(x, t)`` each; returns mean loss and accuracy. ``means`` holds
    the sums of the steps taken so far (training_log.Means), and the new
    ones as they are taken."""
    if means is None:
        means = training_log.Means()
    # A progress line on a terminal only (disable=None): nothing in logs.
    with tqdm.tqdm(total=n_examples, initial=means.count, unit='img',
                   leave=False, disable=None,
                   ncols=cli.progress_width()) as progress:
        for x, t in batches:
            step(x, t)
            if write_graph_to:
                training_log.write_graph(model.loss, write_graph_to)
                write_graph_to = None
                # Above the progress line, not through it.
                progress.write('graph generated')
            means.add(model.loss, model.accuracy, len(t))
            progress.update(len(t))
    return means.result()


def train(args):
    snapshot.check_paths(args)
    device = cli.get_device(args.gpu)
    # Current before seeding: CuPy seeds the current device's generator.
    compat.use_device(device)
    args.plot = args.plot and training_log.plotting_available()
    recipe = recipes.PRESETS[args.preset]
    saved_recipe = dict({name: getattr(args, name) for name in SAVED_FLAGS},
                        preset=args.preset)
    # The initializers draw from NumPy's global generator, even on a GPU.
    numpy.random.seed(args.seed)
    if device.xp is not numpy:
        device.xp.random.seed(args.seed)

    print('load MNIST dataset')
    data = recipe.data(args.dataset_dir)

    # Setup a model
    model = recipe.model(args.unit, args.bn, args.binarize)
    if args.resume:
        finished = snapshot.finish_cut(args.out)
        if finished:
            print(finished)
    if args.initmodel:
        print('Load model from', args.initmodel)
        digest = snapshot.load_model(args.initmodel, model, saved_recipe)
    model.to_device(device)

    # Setup an optimizer
    optimizer = recipe.optimizer(model, args.clip, args.optimizer)
    log, partial = [], None
    if args.resume:
        print('Load optimizer state from', args.resume)
        log_end, partial = snapshot.load_state(
            args.resume, optimizer, saved_recipe, recipe.rate_decays,
            args.batchsize, (args.initmodel, digest))
    if optimizer.epoch >= args.epoch:
        raise UsageError('{} has trained {} already: ask for more with '
                         '--epoch'.format(args.resume,
                                          cli.plural(optimizer.epoch,
                                                     'epoch')))
    if args.resume:
        log = snapshot.resumed_log(args.out, args.resume, optimizer.epoch,
                                   log_end)
    elif os.path.isdir(args.out):
        replaced = snapshot.replace_run(args.out, args.initmodel)
        if replaced:
            print(replaced)

    # Chainer's own loop, or the fast path: the same model
    if args.plain:
        path = PlainPath(model, optimizer, args, device)
    else:
        path = fast.FastPath(
            model, optimizer, recipes.clipped_params(model, args.clip),
            recipe.clip_timing, args, device)
    train_data, validation_data, test_data = (path.dataset(d) for d in data)

    os.makedirs(args.out, exist_ok=True)
    graph_path = os.path.join(args.out, training_log.GRAPH_FILE)
    best_path = os.path.join(args.out, snapshot.BEST_MODEL_FILE)
    snapshots = snapshot.Snapshots(args.out, saved_recipe)
    elapsed = log[-1].get('elapsed_time', 0.) if log else 0.
    # An epoch cut short goes on from its step, sums and counts.
    means = training_log.Means()
    stats = binary_stats.BinaryStats(model.predictor)
    if partial:
        elapsed = partial.pop('elapsed_time')
        stats.resume(*(partial.pop(key)
                       for key in ('passed', 'counted', 'start_signs')))
        means = training_log.Means(**partial)

    # Learning loop
    interrupts = snapshot.Interrupts()
    try:
        for epoch in range(optimizer.epoch + 1, args.epoch + 1):
            print('epoch', epoch)
            start = time.perf_counter()
            rate = recipe.learning_rate(epoch, args.epoch)
            if rate is not None:
                optimizer.alpha = rate
            batches = path.batches(train_data, epoch, means.batches)
            if model.predictor.draws():
                batches = dropout_seeded(batches, device, args.seed, epoch,
                                         means.batches)
            batches = interrupts.between(batches)
            first = epoch == 1 and means.batches == 0
            with stats:
                loss, accuracy = run_epoch(model, path.step, batches,
                                           len(train_data),
                                           graph_path if first else None,
                                           means)
            optimizer.new_epoch()
            means = training_log.Means()
            print('train mean loss={}, accuracy={}'.format(
                training_log.port_str(loss), training_log.port_str(accuracy)))
            entry = {'epoch': epoch, 'iteration': optimizer.t,
                     'main/loss': loss, 'main/accuracy': accuracy}
            # Flips, clipped weights, passed gradients: log.json only.
            entry.update(stats.ratios())
            if rate is not None:
                entry['lr'] = rate
            if validation_data is not None:
                training_log.report(entry, 'valid', 'validation',
                                    path.evaluate(validation_data))
                training_log.report(entry, 'test ', 'test',
                                    path.evaluate(test_data))
            else:
                # The port evaluates on the test set and calls it validation.
                training_log.report(entry, 'test ', 'validation',
                                    path.evaluate(test_data))
            elapsed += time.perf_counter() - start
            entry['elapsed_time'] = elapsed
            log.append(entry)
            last = epoch == args.epoch
            due = last or epoch % args.frequency == 0
            if (validation_data is not None and
                    training_log.best_entry(log) is entry):
                snapshots.keep_best(model)
                print('lowest validation error so far: {} {}'.format(
                    'saved' if due else 'to be saved with the next snapshot',
                    best_path))
            training_log.write_log(log, args.out, args.plot)
            if due:
                snapshots.save(model, optimizer, log, quiet=not last)
            if not last:
                interrupts.check()
    except KeyboardInterrupt:
        what = describe_stop(interrupts.signum)
        status = 128 + (interrupts.signum or signal.SIGINT)
        if optimizer.t == 0:
            print('{} before the first update: nothing to save'.format(what),
                  file=sys.stderr)
            return status
        # Saved first: the messages may meet a closed pipe (tee, which
        # the same Ctrl-C ended).
        partial = None
        if means.batches:
            partial = dict(means.partial(), elapsed_time=(
                elapsed + time.perf_counter() - start), **stats.partial())
        snapshots.save(model, optimizer, log, partial)
        within = (' and {} of epoch {}'.format(
            cli.plural(means.batches, 'step'), optimizer.epoch + 1)
            if partial else '')
        print('{} after {}{}'.format(
            what, cli.plural(optimizer.epoch, 'complete epoch'), within),
            file=sys.stderr)
        print('resume with:', snapshot.resume_command(
            make_parser(), args, __file__,
            recipe.defaults()),
            file=sys.stderr)
        return status
    finally:
        interrupts.restore()
    training_log.print_end(log, recipe.describe(
        args.unit, args.epoch, args.bn, args.optimizer, args.binarize),
        args.out, best_path)
    return 0


def describe_stop(signum):
    """How the run was stopped, as its closing message says it."""
    if signum in (None, signal.SIGINT):
        return 'interrupted'
    return 'stopped by {}'.format(signal.Signals(signum).name)


def main(argv=None):
    args = parse_args(argv)
    # Nothing printed may stop the run: the console's reader may be gone.
    with cli.console_may_close():
        try:
            return train(args)
        except (UsageError, mnist.MnistError, safe_npz.LoadError) as e:
            message = str(e)
        except OSError as e:
            message = 'cannot write to {}: {}'.format(args.out,
                                                      e.strerror or e)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            return 130
        print('{}: error: {}'.format(PROG, message), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
