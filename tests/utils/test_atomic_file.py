import os
import stat

import pytest

from utils import atomic_file


def test_replaces_the_file_with_usual_permissions(tmp_path):
    path = tmp_path / 'f.txt'
    path.write_text('old')
    with atomic_file.open_for_write(str(path), 'w') as f:
        f.write('new')
    assert path.read_text() == 'new'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ['f.txt']


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'good')
    with pytest.raises(KeyboardInterrupt):
        with atomic_file.open_for_write(str(path)) as f:
            f.write(b'half')
            raise KeyboardInterrupt
    assert path.read_bytes() == b'good'
    assert os.listdir(tmp_path) == ['f.bin']


def writer(data):
    return lambda f: f.write(data)


def test_write_together_replaces_every_file(tmp_path):
    (tmp_path / 'a').write_bytes(b'old a')
    atomic_file.write_together([(str(tmp_path / 'a'), writer(b'new a')),
                                (str(tmp_path / 'b'), writer(b'new b'))])
    assert (tmp_path / 'a').read_bytes() == b'new a'
    assert (tmp_path / 'b').read_bytes() == b'new b'
    assert sorted(os.listdir(tmp_path)) == ['a', 'b']


@pytest.mark.parametrize('error', [OSError(28, 'No space left on device'),
                                   KeyboardInterrupt()])
def test_a_failed_write_together_leaves_every_old_file(tmp_path, error):
    for name in 'ab':
        (tmp_path / name).write_bytes(b'old ' + name.encode())

    def failing(f):
        f.write(b'half of b')
        raise error

    with pytest.raises(type(error)):
        atomic_file.write_together([(str(tmp_path / 'a'), writer(b'new a')),
                                    (str(tmp_path / 'b'), failing)])
    assert (tmp_path / 'a').read_bytes() == b'old a'
    assert (tmp_path / 'b').read_bytes() == b'old b'
    assert sorted(os.listdir(tmp_path)) == ['a', 'b']


def test_a_cut_between_renames_leaves_the_parts_still_to_rename(
        tmp_path, monkeypatch):
    replace = os.replace

    def killed_after_the_first(src, dst):
        replace(src, dst)
        raise SystemExit('killed')

    monkeypatch.setattr(os, 'replace', killed_after_the_first)
    with pytest.raises(SystemExit):
        atomic_file.write_together([(str(tmp_path / 'a'), writer(b'new a')),
                                    (str(tmp_path / 'b'), writer(b'new b'))])
    assert (tmp_path / 'a').read_bytes() == b'new a'
    assert atomic_file.part_path(str(tmp_path / 'b')) == str(
        tmp_path / '.b.part')
    assert (tmp_path / '.b.part').read_bytes() == b'new b'
    assert sorted(os.listdir(tmp_path)) == ['.b.part', 'a']
