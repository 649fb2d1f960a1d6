#!/usr/bin/env python3
"""Draws the test accuracy per epoch of several runs in one figure.

Each run is LABEL=FILE, or FILE alone, labelled by its folder's name where
it is a log.json: a log.json written by train_mnist.py, or a log as the
port and train_mnist.py print it (results/port_log.txt is the port's README
log). The figure goes beside the first log unless --out names another
file. RESULTS.md's figure is drawn with

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
# Beside a run's log, the name that train_mnist.py's accuracy.png leaves.
DEFAULT_OUT = 'test_accuracy.png'
_TEST_LINE = re.compile(r'test  mean loss=\S+, accuracy=(\S+)$')


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
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel('test accuracy (%)')
    axes.grid(alpha=0.3)
    # Below the axes: it covers no point.
    figure.legend(loc='outside lower center', ncols=2)
    with atomic_file.open_for_write(out) as f:
        figure.savefig(f, format='png', dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = cli.OneLineParser(prog=PROG, description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', metavar='[LABEL=]FILE',
                        help="a run's log: 'clip all=result/log.json', or "
                        "result/log.json, labelled by its folder's name "
                        "(result)")
    parser.add_argument('--out', '-o',
                        help='The PNG file to write (default: {} beside the '
                        'first log)'.format(DEFAULT_OUT))
    args = parser.parse_args(argv)
    runs, paths = [], []
    try:
        for run in args.runs:
            label, _, path = run.rpartition('=')
            accuracies = test_accuracies(path)
            if not accuracies:
                raise ValueError('{} holds no test accuracy'.format(path))
            runs.append((label or default_label(path), accuracies))
            paths.append(path)
        plot(runs, args.out or os.path.join(os.path.dirname(paths[0]),
                                            DEFAULT_OUT))
    except (ImportError, OSError, ValueError, KeyError, IndexError,
            TypeError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
