"""Output folders written as a whole: one writer at a time, no stale files, nothing half done.

:func:`replace_folder` is how ``darkgan generate`` writes ``--out DIR`` (issue 17):

1. ``DIR``, if it exists, may only hold what the command writes (``owned`` name patterns):
   a folder with other files is refused before anything is created;
2. ``DIR`` is locked (:func:`darkgan.utils.io.folder_lock`, a lock file beside it) for the whole
   job: a second job into the same folder fails at once with a one-line error;
3. the files go to a hidden staging folder beside ``DIR`` (``.DIR.partial-<token>``, the same
   file system); when the job succeeds the staging folder *replaces* ``DIR`` (two renames), so
   the folder holds exactly one run's files, never a mix of two runs, never a stale file of an
   earlier run; when it fails (an error, Ctrl-C) the staging folder is removed and ``DIR`` is
   left as it was (a new ``DIR`` is only created when the job succeeds);
4. staging folders left by killed jobs are removed by the next job into ``DIR``.
"""
from __future__ import annotations

import contextlib
import fnmatch
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator, Sequence

from darkgan.errors import DarkGANError

#: Name prefixes of the hidden siblings of ``DIR``: ``.<DIR name>.partial-*`` and ``.<DIR name>.old-*``.
STAGING, OLD = "partial", "old"


def check_owned(out: Path, owned: Sequence[str]) -> None:
    """Refuse an existing ``out`` that holds anything but files matching ``owned`` patterns.

    Raises:
        DarkGANError: ``out`` is a file, or holds a foreign entry (one is named).
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise DarkGANError(f"{out}: exists and is not a folder")
    for entry in out.iterdir():
        ok = entry.is_file() and any(fnmatch.fnmatch(entry.name, p) for p in owned)
        if not ok:
            raise DarkGANError(f"{out}: holds {entry.name!r}, which this command did not write; its output replaces "
                               "the whole folder, so give a new or empty --out folder")


def check_target(out: str | os.PathLike, owned: Sequence[str]) -> Path:
    """Everything :func:`replace_folder` can check before any work, creating nothing: ``out``
    holds only ``owned`` files (:func:`check_owned`) and its nearest existing ancestor is a
    writable folder. Returns ``out`` as an absolute path.

    Raises:
        DarkGANError: naming the folder and the problem.
    """
    out = Path(os.path.abspath(out))
    check_owned(out, owned)
    anc = next(p for p in out.parents if p.exists())
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        what = "is a file" if not anc.is_dir() else "is not writable"
        raise DarkGANError(f"{out}: output folder is not writable ({anc} {what})")
    return out


def _remove_stale(out: Path) -> None:
    for pattern in (f".{out.name}.{STAGING}-*", f".{out.name}.{OLD}-*"):
        for p in out.parent.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def _publish(staging: Path, out: Path, token: str) -> None:
    """Swap ``staging`` in for ``out`` (two renames in one folder) and delete the old content."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = out.parent / f".{out.name}.{OLD}-{token}"
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except OSError as e:  # someone re-created out between the renames: put the old folder back
        os.rename(old, out) if not out.exists() else None
        raise DarkGANError(f"{out}: could not replace the folder ({e.strerror or e}); another job is using it") from None
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replace_folder(out: str | os.PathLike, owned: Sequence[str]) -> Iterator[Path]:
    """Yield an empty staging folder whose content replaces folder ``out`` on success (see the
    module docstring).

    Args:
        out: the output folder (created when missing).
        owned: name patterns (``fnmatch``) of the files the command writes; an existing ``out``
            may hold only those.

    Raises:
        DarkGANError: ``out`` holds foreign files, is a file, is locked by another job, or its
            parent is not writable.
    """
    from darkgan.utils.io import folder_lock

    out = check_target(out, owned)
    token = secrets.token_hex(4)
    staging = out.parent / f".{out.name}.{STAGING}-{token}"
    try:
        with folder_lock(out):
            _remove_stale(out)
            staging.mkdir()
            yield staging
            _publish(staging, out, token)
    except (PermissionError, NotADirectoryError, FileExistsError) as e:
        raise DarkGANError(f"{out}: output folder is not writable ({e.strerror or e})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
