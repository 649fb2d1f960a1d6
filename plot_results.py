#!/usr/bin/env python3
"""Draws the test accuracy per epoch of several runs in one figure.

Each run is LABEL=FILE: a log.json written by train_mnist.py, or a log as
the port and train_mnist.py print it (results/port_log.txt is the port's
README log). RESULTS.md's figure is drawn with

    ./plot_results.py -o results/accuracy.png \\
        "the port's README log (Chainer v1)=results/port_log.txt" ...
"""
import json
import os
import re
import sys

from utils import atomic_file
from utils import cli

PROG = os.path.basename(sys.argv[0]) or 'plot_results.py'
_TEST_LINE = re.compile(r'test  mean loss=\S+, accuracy=(\S+)$')


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
    args = parser.parse_args(argv)
    runs = []
    try:
        for run in args.runs:
            label, sep, path = run.rpartition('=')
            if not sep or not label:
                raise ValueError('{!r} is not LABEL=FILE'.format(run))
            accuracies = test_accuracies(path)
            if not accuracies:
                raise ValueError('{} holds no test accuracy'.format(path))
            runs.append((label, accuracies))
        plot(runs, args.out)
    except (ImportError, OSError, ValueError, KeyError, IndexError,
            TypeError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
