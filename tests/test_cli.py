import argparse

import numpy
import pytest

import cli


def test_integer_flags_say_what_is_wrong():
    parse = cli.integer(0, 'non-negative')
    assert parse('7') == 7 and parse('0') == 0
    with pytest.raises(argparse.ArgumentTypeError,
                       match="'x' is not an integer"):
        parse('x')
    with pytest.raises(argparse.ArgumentTypeError,
                       match='must be a non-negative integer, not -1'):
        parse('-1')


def test_negative_gpu_is_the_cpu():
    assert cli.get_device(-1).xp is numpy


def test_parser_errors_are_one_line(capsys):
    parser = cli.OneLineParser(prog='prog')
    parser.add_argument('--n', type=cli.positive_int)
    with pytest.raises(SystemExit) as exit:
        parser.parse_args(['--n', '0'])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        'prog: error: argument --n: must be a positive integer, not 0\n')
