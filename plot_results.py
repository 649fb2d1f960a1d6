#!/usr/bin/env python3
"""Draws the test accuracy per epoch of several runs in one figure, or,
with --ratios, the binary layers' flip, clip and pass ratios of each run.

Each run is LABEL=FILE: a log.json written by train_mnist.py, or a log as
the port and train_mnist.py print it (results/port_log.txt is the port's
README log). RESULTS.md's figure is drawn with

    ./plot_results.py -o results/accuracy.png \\
        'port (Chainer v1, its README)=results/port_log.txt' ...

With --ratios each run is a log.json that holds them (binary_stats.py): a
column of three panels, flip, clip and pass ratio per epoch, a line per
layer.
"""
import json
import os
import re
import sys

from utils import atomic_file
from utils import cli

PROG = os.path.basename(sys.argv[0]) or 'plot_results.py'
_TEST_LINE = re.compile(r'test  mean loss=\S+, accuracy=(\S+)$')
RATIOS = (('flip_ratio', 'sign(W) flipped in the epoch'),
          ('clip_ratio', '|W| at the clip (>= 1)'),
          ('pass_ratio', 'pre-activations with |r| <= 1'))


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
                # Flips fall by orders of magnitude as a run settles.
                panel.set_yscale('log', nonpositive='mask')
            if column == 0:
                panel.set_ylabel('{}\n{}'.format(quantity, meaning))
            panel.xaxis.set_major_locator(MaxNLocator(integer=True))
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

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label, accuracies in runs:
        axes.plot(range(1, len(accuracies) + 1),
                  [100 * a for a in accuracies], marker='.', label=label)
    axes.set_xlabel('epoch')
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel('test accuracy (%)')
    axes.grid(alpha=0.3)
    axes.legend(loc='lower right')
    figure.tight_layout()
    with atomic_file.open_for_write(out) as f:
        figure.savefig(f, format='png', dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = cli.OneLineParser(prog=PROG, description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', metavar='LABEL=FILE')
    parser.add_argument('--out', '-o', default='accuracy.png',
                        help='The PNG file to write')
    parser.add_argument('--ratios', action='store_true',
                        help="Draw the binary layers' flip, clip and pass "
                        "ratios of each run (from its log.json) instead")
    args = parser.parse_args(argv)
    runs = []
    try:
        for run in args.runs:
            label, sep, path = run.rpartition('=')
            if not sep or not label:
                raise ValueError('{!r} is not LABEL=FILE'.format(run))
            if args.ratios:
                runs.append((label, binary_ratios(path)))
                continue
            accuracies = test_accuracies(path)
            if not accuracies:
                raise ValueError('{} holds no test accuracy'.format(path))
            runs.append((label, accuracies))
        (plot_ratios if args.ratios else plot)(runs, args.out)
    except (ImportError, OSError, ValueError, KeyError, IndexError,
            TypeError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
