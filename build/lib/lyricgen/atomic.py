"""Files written so that a reader, or a crash, never sees half of one."""

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """write(partial) then rename the partial file to `path`: readers see the old file or the new, whole."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def publish_dir(work: Path, target: Path, done: str) -> None:
    """Rename a finished folder into place. Parallel processes (a sweep, DDP ranks) may make the same one
    at once: the first to finish wins, and the others' identical work is dropped. `done` is the file
    whose presence marks a finished folder."""
    try:
        os.replace(work, target)
    except OSError:
        if not (target / done).is_file():
            raise
