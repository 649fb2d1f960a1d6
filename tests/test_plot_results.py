import json
import os
import sys

import pytest

from conftest import ROOT
import plot_results

PORT_LOG = os.path.join(ROOT, 'results', 'port_log.txt')


def test_reads_the_ports_printed_log():
    accuracies = plot_results.test_accuracies(PORT_LOG)
    assert len(accuracies) == 20
    assert accuracies[0] == 0.957400003672
    assert accuracies[-1] == 0.976600005627


def test_reads_log_json_of_either_preset(tmp_path):
    port = tmp_path / 'port.json'
    port.write_text(json.dumps([
        {'epoch': 1, 'validation/main/accuracy': .9},
        {'epoch': 2, 'validation/main/accuracy': .95}]))
    assert plot_results.test_accuracies(str(port)) == [.9, .95]
    paper = tmp_path / 'paper.json'
    paper.write_text(json.dumps([{'epoch': 1, 'validation/main/accuracy': .9,
                                  'test/main/accuracy': .8}]))
    assert plot_results.test_accuracies(str(paper)) == [.8]


def test_draws_a_png(tmp_path):
    pytest.importorskip('matplotlib')
    out = tmp_path / 'a.png'
    assert plot_results.main(['-o', str(out), 'port=' + PORT_LOG]) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_bad_runs_are_one_line_and_keep_the_old_figure(tmp_path, capsys):
    out = tmp_path / 'a.png'
    out.write_bytes(b'old')
    for run in ('nolabel', 'x=' + str(tmp_path / 'absent.json'),
                'x=' + str(out)):
        assert plot_results.main(['-o', str(out), run]) == 1
        err = capsys.readouterr().err
        assert ': error: ' in err
        assert err.count('\n') == 1
    assert out.read_bytes() == b'old'


def test_without_matplotlib_one_line_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    assert plot_results.main(['-o', str(tmp_path / 'a.png'),
                              'port=' + PORT_LOG]) == 1
    err = capsys.readouterr().err
    assert 'matplotlib' in err and err.count('\n') == 1


def test_a_bare_log_json_is_labelled_by_its_folder_and_drawn_beside_it(
        tmp_path, monkeypatch):
    pytest.importorskip('matplotlib')
    run = tmp_path / 'clip-binary'
    run.mkdir()
    (run / 'log.json').write_text(json.dumps(
        [{'epoch': 1, 'validation/main/accuracy': .9}]))
    drawn = []
    monkeypatch.setattr(plot_results, 'plot',
                        lambda runs, out: drawn.append((runs, out)))
    assert plot_results.main([str(run / 'log.json'),
                              'port=' + PORT_LOG]) == 0
    (runs, out), = drawn
    assert [label for label, _ in runs] == ['clip-binary', 'port']
    assert out == str(run / 'test_accuracy.png')
    assert plot_results.default_label(PORT_LOG) == 'port_log'


def test_help_shows_an_example_and_a_whole_sentence(capsys):
    with pytest.raises(SystemExit):
        plot_results.main(['--help'])
    out = capsys.readouterr().out
    assert "'clip all=result/log.json'" in out
    assert ('Draws the test accuracy per epoch of several runs in one '
            'figure, or, with --ratios,') in ' '.join(out.split())


def test_says_where_the_figure_went_and_names_a_missing_log(tmp_path,
                                                            capsys):
    pytest.importorskip('matplotlib')
    out = tmp_path / 'a.png'
    assert plot_results.main(['-o', str(out), 'port=' + PORT_LOG]) == 0
    assert capsys.readouterr().out == 'wrote {}\n'.format(out)
    assert plot_results.main(['nope.json']) == 1
    assert capsys.readouterr().err.endswith(
        ': error: nope.json: no such file\n')


def test_a_one_epoch_log_has_whole_epoch_ticks(tmp_path, monkeypatch):
    pytest.importorskip('matplotlib')
    import matplotlib.figure
    ticks = []
    savefig = matplotlib.figure.Figure.savefig

    def recording(figure, *args, **kwargs):
        savefig(figure, *args, **kwargs)
        for axes in figure.axes:
            ticks.append([t for t in axes.get_xticks()
                          if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]])

    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', recording)
    one = ratios_log(tmp_path / 'log.json', n_epochs=1)
    assert plot_results.main(['-o', str(tmp_path / 'a.png'), one]) == 0
    assert plot_results.main(['--ratios', one]) == 0
    assert ticks and all(t == [1.] for t in ticks)


def ratios_log(path, n_epochs=3):
    entries = []
    for epoch in range(1, n_epochs + 1):
        entry = {'epoch': epoch, 'validation/main/accuracy': .9}
        for k in (1, 2, 3):
            entry['l{}/flip_ratio'.format(k)] = 0.1 / epoch
            entry['l{}/clip_ratio'.format(k)] = 0.01 * epoch
            if k < 3:
                entry['l{}/pass_ratio'.format(k)] = 0.5 + 0.01 * k
        entries.append(entry)
    path.write_text(json.dumps(entries))
    return str(path)


def test_reads_each_layers_ratios(tmp_path):
    ratios = plot_results.binary_ratios(ratios_log(tmp_path / 'log.json'))
    assert ratios['flip_ratio']['l2'] == [0.1, 0.05, 0.1 / 3]
    assert sorted(ratios['clip_ratio']) == ['l1', 'l2', 'l3']
    assert sorted(ratios['pass_ratio']) == ['l1', 'l2']
    assert ratios['pass_ratio']['l2'] == [0.52] * 3


def test_draws_the_ratios_of_several_logs(tmp_path):
    pytest.importorskip('matplotlib')
    out = tmp_path / 'ratios.png'
    assert plot_results.main([
        '--ratios', '-o', str(out),
        'port=' + ratios_log(tmp_path / 'a.json', 20),
        'paper=' + ratios_log(tmp_path / 'b.json', 3)]) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_an_old_log_without_ratios_is_one_line(tmp_path, capsys):
    out = tmp_path / 'ratios.png'
    old = tmp_path / 'old.json'
    old.write_text(json.dumps([{'epoch': 1, 'main/loss': .57,
                                'validation/main/accuracy': .96}]))
    old = str(old)
    assert plot_results.main(['--ratios', '-o', str(out),
                              'new=' + ratios_log(tmp_path / 'a.json'),
                              'old=' + old]) == 1
    err = capsys.readouterr().err
    assert err == ('{}: error: {} holds no flip, clip or pass ratios: a log '
                   'from before train_mnist.py logged them\n'.format(
                       plot_results.PROG, old))
    assert not out.exists()
    assert plot_results.main(['--ratios', '-o', str(out),
                              'port=' + PORT_LOG]) == 1
    assert capsys.readouterr().err == '{}: error: {} is not a {}\n'.format(
        plot_results.PROG, PORT_LOG, 'log.json')


def test_table1_draws_test_errors_beside_the_papers_figures(tmp_path,
                                                            monkeypatch):
    pytest.importorskip('matplotlib')
    import matplotlib.figure
    drawn = {}
    savefig = matplotlib.figure.Figure.savefig

    def recording(figure, *args, **kwargs):
        savefig(figure, *args, **kwargs)
        axes, = figure.axes
        drawn['scale'] = axes.get_yscale()
        drawn['lines'] = [(line.get_label(), list(line.get_ydata()))
                          for line in axes.get_lines()]

    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', recording)
    run = tmp_path / 'run' / 'log.json'
    run.parent.mkdir()
    run.write_text(json.dumps([
        {'epoch': 1, 'validation/main/accuracy': .9,
         'test/main/accuracy': .98},
        {'epoch': 2, 'validation/main/accuracy': .9,
         'test/main/accuracy': .99}]))
    assert plot_results.main(['--table1', 'paper=' + str(run)]) == 0
    assert (run.parent / 'table1.png').read_bytes()[:4] == b'\x89PNG'
    assert drawn['scale'] == 'log'
    label, errors = drawn['lines'][0]
    assert label == 'paper' and errors == pytest.approx([2., 1.])
    assert [(label, errors[0]) for label, errors in drawn['lines'][1:]] == [
        ('paper, BNN (Theano), 1000 epochs (0.96%)', pytest.approx(0.96)),
        ('paper, BNN (Torch7) (1.40%)', pytest.approx(1.40)),
        ("the port's README log, epoch 20 (2.34%)", pytest.approx(2.34))]
