"""README's percentages and ratios are RESULTS', and RESULTS' tables quote
the logs and printed outputs in results/ that they name."""
import json
import math
import os
import re

import pytest

from utils import training_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A measured figure: a percentage or a ratio with its decimals ("1.55%",
# "4.10x"), or a range of them ("1.17-1.29x": both ends); whole numbers are
# counts and settings more often than results.
FIGURE = re.compile(r'(?<![\w.^])(\d+\.\d+)(?:-(\d+\.\d+))?(%|x)(?!\w)')
LOG = re.compile(r'results/[\w.-]+\.log\.json')
# The paper's and the port's own figures, which README quotes from them.
QUOTED_FROM_THE_PAPER = {'0.96%', '1.40%', '2.34%'}


def read(name):
    with open(os.path.join(ROOT, name), encoding='utf-8') as f:
        return f.read()


def figures(text):
    return {number + unit for *ends, unit in FIGURE.findall(text)
            for number in ends if number}


def percent(fraction):
    return '{:.2f}%'.format(100 * fraction)


class Log(object):

    """A run's log.json, read as RESULTS' tables quote it: the test set is
    'test/main', or 'validation/main' where a run (the port's) evaluates on
    the test set alone; the best epoch is that of the lowest validation
    error, the latest on a tie, as train_mnist.py keeps mlp_best.model."""

    def __init__(self, path):
        with open(os.path.join(ROOT, path)) as f:
            self.entries = {e['epoch']: e for e in json.load(f)}
        self.last = max(self.entries)
        self.validated = 'test/main/accuracy' in self.entries[self.last]
        self.best = training_log.best_entry(
            self.entries.values())['epoch'] if self.validated else self.last

    def test_accuracy(self, epoch):
        key = 'test' if self.validated else 'validation'
        return self.entries[epoch][key + '/main/accuracy']

    def cell(self, header, row_epoch):
        """What a table's cell under ``header`` must read, or None for a
        column that quotes nothing from the log."""
        header = header.strip('` ')
        at = row_epoch or self.best
        if header in ('test error', 'its test error'):
            return percent(1 - self.test_accuracy(at))
        if header == 'validation error':
            return percent(
                1 - self.entries[at]['validation/main/accuracy'])
        if header == 'last epoch':
            return percent(1 - self.test_accuracy(self.last))
        if header == 'best validation epoch':
            return str(self.best)
        if header == 'epochs':
            return str(self.last)
        if header == 'rate':
            return '2^{:.0f}'.format(math.log2(self.entries[at]['lr']))
        if header == 'time':
            return '{:.0f} s'.format(self.entries[self.last]['elapsed_time'])
        match = re.fullmatch(r'epoch (\d+)', header)
        if match:
            return percent(self.test_accuracy(int(match.group(1))))
        return None


def tables(text):
    """(header cells, row cells) of each row of each Markdown table."""
    header = None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None
            continue
        # A cell may hold an escaped pipe, \|.
        cells = [c.strip()
                 for c in re.split(r'(?<!\\)\|', line.strip()[1:-1])]
        if header is None:
            header = cells
        elif not set(line) <= set('|-: '):
            assert len(cells) == len(header), line
            yield header, cells


def test_every_figure_readme_gives_is_in_results():
    missing = figures(read('README.md')) - figures(read('RESULTS.md'))
    assert not missing - QUOTED_FROM_THE_PAPER


@pytest.mark.parametrize('page', ['README.md', 'RESULTS.md'])
def test_every_log_a_page_names_exists(page):
    for name in set(LOG.findall(read(page))):
        assert os.path.isfile(os.path.join(ROOT, name)), name


def check_rows(text):
    """The cells of every table row that names one log, against the log;
    the number of cells checked."""
    checked = 0
    for header, cells in tables(text):
        names = set(LOG.findall(' '.join(cells)))
        if len(names) != 1:
            continue
        log = Log(names.pop())
        row_epoch = None
        if header[0] == 'epoch':
            row_epoch = int(re.match(r'\d+', cells[0]).group())
        for column, cell in zip(header, cells):
            if column == 'epoch':
                continue
            expected = log.cell(column, row_epoch)
            if expected is not None and cell:
                # The figure, then nothing or words: 950 is not 95.
                assert re.match(re.escape(expected) + r'($|[^\w.^])', cell), (
                    cells, column, expected)
                checked += 1
    return checked


def test_results_tables_quote_their_logs():
    assert check_rows(read('RESULTS.md')) >= 20


def test_a_wrong_figure_is_caught():
    row = ('| run | epochs | test error | last epoch | time | log |\n'
           '|---|---:|---:|---:|---:|---|\n'
           '| torch7 | 100 | {} | 1.54% | 3985 s | '
           '`results/torch7-100-epochs.log.json` |\n')
    assert check_rows(row.format('1.55%')) == 4
    with pytest.raises(AssertionError):
        check_rows(row.format('1.56%'))
    by_epoch = ('| epoch | test error | log |\n|---|---|---|\n'
                '| 95, the best | {} | `results/torch7-100-epochs.log.json` |')
    assert check_rows(by_epoch.format('1.55%')) == 1
    with pytest.raises(AssertionError):
        check_rows(by_epoch.format('1.54%'))
    best = ('| run \\| flags | best validation epoch | log |\n|---|---|---|\n'
            '| torch7 \\| --epoch 100 | {} | '
            '`results/torch7-100-epochs.log.json` |')
    assert check_rows(best.format('95')) == 1
    with pytest.raises(AssertionError):
        check_rows(best.format('950'))
    assert figures('1.55% test error, 4.10x as fast, 3 x 2048, 20 epochs, '
                   '1.17-1.29x') == {'1.55%', '4.10x', '1.17x', '1.29x'}


def test_the_pages_keep_their_sizes():
    assert len(read('README.md').encode()) <= 14000
    assert len(read('RESULTS.md').encode()) <= 25000


def sections(text):
    """{'## title': its text} of a Markdown page."""
    parts = re.split(r'^(## .*)$', text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


# What each speed section quotes from the printed outputs in results/.
SPEED_SECTIONS = [('## The packed engine against float', 'x'),
                  ('## Training speed against its products', 'x'),
                  ('## Against PyTorch', 'x'),
                  ("## Snapshots' cost", '%')]
PRINTED = ['benchmark-py311.txt', 'benchmark-py312.txt',
           'benchmark-torch-fused-adam.txt',
           'xnor-port-20-epochs.txt', 'xnor-torch7-100-epochs.txt',
           'xnor-paper-60-epochs.txt']


@pytest.mark.parametrize('title, unit', SPEED_SECTIONS)
def test_speed_figures_are_ones_the_tools_printed(title, unit):
    printed = ''.join(read(os.path.join('results', name)) for name in PRINTED)
    quoted = {f for f in figures(sections(read('RESULTS.md'))[title])
              if f.endswith(unit)}
    assert quoted
    assert not {f for f in quoted if f not in printed}
