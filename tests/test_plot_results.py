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


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        plot_results.main(['--help'])
    assert "'clip all=result/log.json'" in capsys.readouterr().out
