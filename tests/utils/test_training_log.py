import json

import numpy
import pytest

from utils import training_log


def test_printed_numbers_are_python_2s_str_of_a_float():
    assert training_log.port_str(0.57386117875576019) == '0.573861178756'
    assert training_log.port_str(0.92756666926) == '0.92756666926'
    assert training_log.port_str(1.0) == '1.0'
    assert training_log.port_str(0.5) == '0.5'
    assert training_log.port_str(1e-13) == '1e-13'


def test_best_entry_is_the_latest_of_highest_validation_accuracy():
    log = [{'epoch': e, 'validation/main/accuracy': a,
            'test/main/accuracy': 0.5}
           for e, a in ((1, 0.9), (2, 0.95), (3, 0.93), (4, 0.95), (5, .9))]
    assert training_log.best_entry(log)['epoch'] == 4
    assert training_log.best_entry([{'epoch': 1,
                                     'validation/main/accuracy': 1}]) is None


def test_plots_say_what_they_show(tmp_path, monkeypatch):
    pytest.importorskip('matplotlib')
    import matplotlib.pyplot as plt
    figures = []
    monkeypatch.setattr(plt, 'close', figures.append)
    # One epoch of the port's preset: its test set under 'validation'.
    training_log.write_log([{'epoch': 1, 'main/loss': .5,
                             'main/accuracy': .9,
                             'validation/main/loss': .4,
                             'validation/main/accuracy': .95}],
                           str(tmp_path), plot=True)
    for figure, quantity in zip(figures, ('loss', 'accuracy')):
        axes, = figure.axes
        assert axes.get_ylabel() == quantity
        legend, = figure.legends
        assert [t.get_text() for t in legend.get_texts()] == ['train', 'test']
        figure.canvas.draw()
        # The legend covers no point; the ticks are whole epochs.
        renderer = figure.canvas.get_renderer()
        assert not legend.get_window_extent(renderer).overlaps(
            axes.get_window_extent(renderer))
        ticks = [t for t in axes.get_xticks()
                 if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
        assert ticks and all(t == int(t) for t in ticks)
        plt.close(figure)


def test_means_continue_from_their_partial_sums():
    import chainer
    values = numpy.random.RandomState(0).rand(10).astype(numpy.float32)
    whole, first = training_log.Means(), training_log.Means()
    for i, value in enumerate(values):
        v = chainer.Variable(numpy.array(value))
        whole.add(v, v, 100)
        if i == 3:
            first = training_log.Means(**json.loads(json.dumps(
                whole.partial())))
        elif i > 3:
            first.add(v, v, 100)
    assert first.result() == whole.result()
    assert (first.count, first.batches) == (1000, 10)
