"""Writing files so that each is either wholly replaced or left as it was."""
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


def part_path(path):
    """Where write_together writes ``path`` before it takes its place."""
    folder, name = os.path.split(path)
    return os.path.join(folder, '.' + name + '.part')


def write_together(writes):
    """Replaces several files of one folder as a set.

    ``writes`` is a list of (path, write) pairs, ``write(f)`` filling a
    binary file. Each is written to its part_path and synced to the disk;
    only then are the parts renamed over their paths, in the order given.
    A failure while writing removes the parts and leaves every old file. A
    process killed between two renames (SIGKILL, a power cut) leaves the
    parts not yet renamed, under names a later process can find: the caller
    names last the file that says the others are in place, and finishes or
    removes such parts (snapshot.finish_cut).
    """
    parts = []
    try:
        for path, write in writes:
            parts.append(part_path(path))
            with open(parts[-1], 'wb') as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        remove(parts)
        raise
    for part, (path, _) in zip(parts, writes):
        os.replace(part, path)
    # The renames themselves reach the disk with the folder's entry.
    folder = os.open(os.path.dirname(os.path.abspath(writes[0][0])),
                     os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def remove(paths):
    """Removes those of ``paths`` that exist; returns their names."""
    removed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed
