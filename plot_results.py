#!/usr/bin/env python3
"""Draws the test accuracy per epoch of several runs in one figure, or,
with --ratios, the binary layers' flip, clip and pass ratios of each run.

Each run is LABEL=FILE, or FILE alone, labelled by its folder's name where
it is a log.json: a log.json written by train_mnist.py, or a log as the
port and train_mnist.py print it (results/port_log.txt is the port's README
log). The figure goes beside the first log unless --out names another
file. RESULTS.md's figure is drawn with

    ./plot_results.py -o results/accuracy.png \\
        "the port's README log (Chainer v1)=results/port_log.txt" ...

With --ratios each run is a log.json that holds them (binary_stats.py): a
column of three panels, flip, clip and pass ratio per epoch, a line per
layer. With --table1 the figure is Table 1's: each run's test error per
epoch on a log scale, beside the paper's MNIST figures (BNN Theano 0.96%,
BNN Torch7 1.40%) and the port's README one (2.34% at epoch 20) as lines.
"""
import json
import os
import re
import sys

from utils import atomic_file
from utils import cli

PROG = os.path.basename(sys.argv[0]) or 'plot_results.py'
# Beside a run's log, the name that train_mnist.py's accuracy.png leaves.
DEFAULT_OUT = 'test_accuracy.png'
RATIOS_OUT = 'binary_ratios.png'
TABLE1_OUT = 'table1.png'
# Table 1's MNIST test errors, and the port's README log's last epoch.
TABLE1 = (('paper, BNN (Theano), 1000 epochs', 0.0096),
          ('paper, BNN (Torch7)', 0.0140),
          ("the port's README log, epoch 20", 1 - 0.9766))
_TEST_LINE = re.compile(r'test  mean loss=\S+, accuracy=(\S+)$')
RATIOS = (('flip_ratio', 'sign(W) flipped in the epoch'),
          ('clip_ratio', '|W| at the clip (>= 1)'),
          ('pass_ratio', 'pre-activations with |r| <= 1'))


def default_label(path):
    """A log.json's folder name (a run's --out), or a file's own name."""
    if os.path.basename(path) == 'log.json':
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return os.path.splitext(os.path.basename(path))[0]


def test_accuracies(path):
    """The test accuracy of each epoch, in order, from either kind of log."""
    with open(path) as f:
        text = f.read()
    if path.endswith('.json'):
        entries = json.loads(text)
        # The port's preset logs its test set as validation.
        key = ('test/main/accuracy' if 'test/main/accuracy' in entries[0]
               else 'validation/main/accuracy')
        return [entry[key] for entry in entries]
    return [float(match.group(1)) for match in
            map(_TEST_LINE.match, text.splitlines()) if match]


def binary_ratios(path):
    """{quantity: {layer: [the ratio of each epoch]}} from a log.json."""
    with open(path) as f:
        try:
            entries = json.load(f)
        except ValueError:
            raise ValueError('{} is not a log.json'.format(path)) from None
    ratios = {quantity: {} for quantity, _ in RATIOS}
    for key in entries[0]:
        layer, _, quantity = key.partition('/')
        if quantity in ratios:
            ratios[quantity][layer] = [entry[key] for entry in entries]
    if not ratios['flip_ratio']:
        raise ValueError('{} holds no flip, clip or pass ratios: a log from '
                         'before train_mnist.py logged them'.format(path))
    return ratios


def percent_log_axis(axis, subs, percent_per_unit):
    """A log-scaled y axis labelled in percent (``percent_per_unit`` times
    its values) at ``subs`` of each decade, its minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter
    from matplotlib.ticker import LogLocator
    from matplotlib.ticker import NullFormatter

    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(
        lambda value, _: '{:g}%'.format(float('{:.2g}'.format(
            percent_per_unit * value)))))


def plot_ratios(runs, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(len(RATIOS), len(runs), squeeze=False,
                                figsize=(1 + 3.6 * len(runs), 7.5))
    for column, (label, ratios) in enumerate(runs):
        for row, (quantity, meaning) in enumerate(RATIOS):
            panel = axes[row][column]
            # l1, l2, ...: each layer's colour the same in every panel.
            for layer, values in sorted(ratios[quantity].items(),
                                        key=lambda item: int(item[0][1:])):
                panel.plot(range(1, len(values) + 1), values, marker='.',
                           label=layer)
            if row == 0:
                panel.set_title(label)
                panel.legend(loc='best', fontsize='small')
                # Flips fall by orders of magnitude as a run settles;
                # ticks in percent, at 1, 2, 3, 5 and 7 of a decade where
                # the values span less than two, so that they still read.
                panel.set_yscale('log', nonpositive='mask')
                values = [v for series in ratios[quantity].values()
                          for v in series if v > 0]
                narrow = max(values) < 100 * min(values)
                percent_log_axis(panel.yaxis,
                                 (1, 2, 3, 5, 7) if narrow else (1,), 100)
            if column == 0:
                panel.set_ylabel('{}\n{}'.format(quantity, meaning))
            # Whole epochs, one tick at least (a 1-epoch log).
            panel.xaxis.set_major_locator(
                MaxNLocator(integer=True, min_n_ticks=1))
            panel.grid(alpha=0.3)
        axes[-1][column].set_xlabel('epoch')
    figure.tight_layout()
    with atomic_file.open_for_write(out) as f:
        figure.savefig(f, format='png', dpi=100)
    plt.close(figure)


def plot(runs, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7, 4.2), layout='constrained')
    for label, accuracies in runs:
        axes.plot(range(1, len(accuracies) + 1),
                  [100 * a for a in accuracies], marker='.', label=label)
    axes.set_xlabel('epoch')
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.set_ylabel('test accuracy (%)')
    axes.grid(alpha=0.3)
    # Below the axes: it covers no point.
    figure.legend(loc='outside lower center', ncols=2)
    with atomic_file.open_for_write(out) as f:
        figure.savefig(f, format='png', dpi=100)
    plt.close(figure)


def plot_table1(runs, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7.5, 4.8), layout='constrained')
    for label, accuracies in runs:
        axes.plot(range(1, len(accuracies) + 1),
                  [100 * (1 - a) for a in accuracies], marker='.',
                  markersize=3, label=label)
    for (label, error), style in zip(TABLE1, ('--', '-.', ':')):
        axes.axhline(100 * error, color='black', linestyle=style,
                     linewidth=1, label='{} ({:.2f}%)'.format(
                         label, 100 * error))
    axes.set_yscale('log')
    percent_log_axis(axes.yaxis, (1, 2, 3, 5, 7), 1)
    axes.set_xlabel('epoch')
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.set_ylabel('test error')
    axes.grid(alpha=0.3, which='both')
    figure.legend(loc='outside lower center', ncols=2, fontsize='small')
    with atomic_file.open_for_write(out) as f:
        figure.savefig(f, format='png', dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = cli.OneLineParser(
        prog=PROG, description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('runs', nargs='+', metavar='[LABEL=]FILE',
                        help="a run's log: 'clip all=result/log.json', or "
                        "result/log.json, labelled by its folder's name "
                        "(result)")
    parser.add_argument('--out', '-o',
                        help='The PNG file to write (default: {} beside the '
                        'first log, {} with --ratios, {} with --table1)'
                        .format(DEFAULT_OUT, RATIOS_OUT, TABLE1_OUT))
    figure = parser.add_mutually_exclusive_group()
    figure.add_argument('--ratios', action='store_true',
                        help="Draw the binary layers' flip, clip and pass "
                        "ratios of each run (from its log.json) instead")
    figure.add_argument('--table1', action='store_true',
                        help="Draw each run's test error (log scale) beside "
                        "Table 1's MNIST figures instead")
    args = parser.parse_args(argv)
    runs, paths = [], []
    try:
        for run in args.runs:
            label, _, path = run.rpartition('=')
            label = label or default_label(path)
            paths.append(path)
            if not os.path.isfile(path):
                raise ValueError('{}: no such file'.format(path))
            if args.ratios:
                runs.append((label, binary_ratios(path)))
                continue
            accuracies = test_accuracies(path)
            if not accuracies:
                raise ValueError('{} holds no test accuracy'.format(path))
            runs.append((label, accuracies))
        out = args.out or os.path.join(
            os.path.dirname(paths[0]), RATIOS_OUT if args.ratios else
            TABLE1_OUT if args.table1 else DEFAULT_OUT)
        draw = (plot_ratios if args.ratios else plot_table1 if args.table1
                else plot)
        draw(runs, out)
    except (ImportError, OSError, ValueError, KeyError, IndexError,
            TypeError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 1
    print('wrote', out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
