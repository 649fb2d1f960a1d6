"""Writing a file so that it is either wholly replaced or left as it was."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def open_for_write(path, mode='wb'):
    """Yields a file that takes ``path``'s place when the block succeeds.

    A crash or Ctrl-C before the end leaves the old file (if any) untouched
    and no temporary file behind; ``os.replace`` is atomic on POSIX and
    Windows when both names are on one file system, hence the same folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path),
                               suffix='.tmp')
    umask = os.umask(0)
    os.umask(umask)
    try:
        # mkstemp makes the file private; give it the usual permissions.
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
