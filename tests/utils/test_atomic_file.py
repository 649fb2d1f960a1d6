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
