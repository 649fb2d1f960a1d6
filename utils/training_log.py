"""log.json and what goes into it: the epoch's means, printed as the port
printed them, and the plots and graph that Chainer's extensions draw."""
import json
import os
import sys

import compat  # noqa: F401  (must precede chainer)

import numpy

from chainer import computational_graph

from utils import atomic_file
from utils.cli import UsageError

LOG_FILE = 'log.json'
GRAPH_FILE = 'graph.dot'
PLOTS = ('loss', 'accuracy')
# What a run writes into its folder besides its snapshots.
FILES = (LOG_FILE, GRAPH_FILE) + tuple(name + '.png' for name in PLOTS)


class Means(object):

    """Mean loss and accuracy over batches, each weighted by its size.

    Summed on the device, in float64 as the port's Python floats: a float()
    at each batch would wait for the GPU. ``Means(**means.partial())``
    continues the sums where an interrupted epoch left them.
    """

    def __init__(self, loss=0, accuracy=0, count=0, batches=0):
        self.loss, self.accuracy = loss, accuracy
        self.count, self.batches = count, batches

    def add(self, loss, accuracy, n):
        self.loss += loss.array.astype(numpy.float64) * n
        self.accuracy += accuracy.array.astype(numpy.float64) * n
        self.count += n
        self.batches += 1

    def partial(self):
        """The sums so far, as JSON takes them (float64 round-trips)."""
        return {'loss': float(self.loss), 'accuracy': float(self.accuracy),
                'count': self.count, 'batches': self.batches}

    def result(self):
        return float(self.loss) / self.count, float(self.accuracy) / self.count


def port_str(x):
    """x as the port's Python 2 printed it: str(float), 12 digits."""
    text = '{:.12g}'.format(x)
    return text if any(c in text for c in '.einf') else text + '.0'


def report(entry, label, key, result):
    """Prints ``result`` (loss, accuracy) as the port's line ``label`` and
    puts it into the log ``entry`` under ``key``."""
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


def read_log(out):
    """The entries of an earlier run's log.json in ``out`` ([] if none)."""
    path = os.path.join(out, LOG_FILE)
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
    return entries


def write_log(entries, out, plot):
    """log.json into ``out`` as Chainer's LogReport writes it, and with
    ``plot`` loss.png and accuracy.png as its PlotReport draws them."""
    with atomic_file.open_for_write(os.path.join(out, LOG_FILE), 'w') as f:
        json.dump(entries, f, indent=4)
    if plot:
        _plot_log(entries, out)


def _plot_log(entries, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [e['epoch'] for e in entries]
    # The port's preset evaluates the test set under Chainer's key
    # 'validation' (as its LogReport did); the console calls it test.
    names = {'': 'train', 'validation/': 'validation', 'test/': 'test'}
    if 'test/main/accuracy' not in entries[0]:
        names['validation/'] = 'test'
    for quantity in PLOTS:
        figure, axes = plt.subplots(layout='constrained')
        for prefix, name in names.items():
            key = prefix + 'main/' + quantity
            if key in entries[0]:
                axes.plot(epochs, [e[key] for e in entries], marker='x',
                          label=name)
        axes.set_xlabel('epoch')
        axes.xaxis.set_major_locator(
            MaxNLocator(integer=True, min_n_ticks=1))
        axes.set_ylabel(quantity)
        # Outside the axes: it covers no point, whatever the curves do.
        figure.legend(loc='outside right upper')
        with atomic_file.open_for_write(
                os.path.join(out, quantity + '.png')) as f:
            figure.savefig(f, format='png')
        plt.close(figure)


def plotting_available():
    """Whether matplotlib imports; where not, one line says so."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('note: matplotlib is not installed, so no plots are drawn',
              file=sys.stderr)
        return False
    return True


def write_graph(loss, path):
    """The computational graph of ``loss`` as a dot file, as Chainer's
    dump_graph extension writes it."""
    graph = computational_graph.build_computational_graph(
        (loss,), remove_split=True)
    with atomic_file.open_for_write(path, 'w') as f:
        f.write(graph.dump())


def print_end(log, description, out, best_path):
    """The run's last lines, after the port's: the epoch of lowest
    validation error, where the recipe keeps a validation split, then what
    ran, its final test accuracy and where its files are."""
    best = best_entry(log)
    if best:
        print('lowest validation error {:.2%} at epoch {}: test error '
              '{:.2%} ({})'.format(
                  1 - best['validation/main/accuracy'], best['epoch'],
                  1 - best['test/main/accuracy'], best_path))
    final = log[-1].get('test/main/accuracy',
                        log[-1]['validation/main/accuracy'])
    print('{}: test accuracy {:.2%} after epoch {}; the model, its optimizer '
          'state and log.json are in {}'.format(
              description, final, log[-1]['epoch'], out))
