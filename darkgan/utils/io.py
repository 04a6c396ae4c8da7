"""Atomic file writes, checksums and output-folder locks.

Every file the project writes goes through :func:`atomic_write` (or a helper built on it): the
data is written to a temporary file in the same folder, flushed, fsync'ed and renamed over the
target, so a crash or Ctrl-C never leaves a half-written file behind and an existing file is
never damaged. JSON is always strict (:func:`write_json` writes NaN/inf as ``null``).

Long jobs that write into a folder (train, label, prepare, distill) hold :func:`folder_lock` on
it, so a second job into the same folder fails at once instead of interleaving its files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter; done once, at
    import, before any thread of ours could create a file meanwhile)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of every file :func:`atomic_write` makes: what ``open`` would give
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    The file gets the permissions a plain ``open`` would give (``0o666`` minus the umask), not
    ``mkstemp``'s owner-only ``0o600``: exported instruments and rendered audio are read by other
    programs (a DAW, a web server) that may run as another user.

    Args:
        path: final destination. Its parent folder is created if missing.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Raises:
        OSError: the folder is not writable (the target is left untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON atomically (key order is kept; NaN/inf become ``null``,
    see :func:`json_safe`)."""
    with atomic_write(path, "w") as f:
        json.dump(json_safe(obj), f, indent=indent, allow_nan=False)
        f.write("\n")


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by ``None`` and numpy scalars,
    arrays and paths made JSON types, recursively: ``json.dumps(json_safe(x), allow_nan=False)``
    never fails on numbers and never writes the non-JSON tokens ``NaN``/``Infinity``.

    Raises:
        TypeError: an object JSON cannot represent (names its type).
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return json_safe(_json_default(obj))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; raises :class:`darkgan.errors.DataError` naming the file if unreadable."""
    from darkgan.errors import DataError

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed ``.npz`` atomically."""
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def folder_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on the output folder ``path`` for the duration of a job.

    The lock is the file ``.<name>.lock`` *beside* the folder (``runs/.a.lock`` for ``runs/a``),
    so the folder itself may be created, replaced or renamed into place atomically while locked,
    and a job that fails early leaves no empty folder behind (only the parent is created). It is
    locked with the OS's advisory file lock through the ``filelock`` library: released when the
    block ends *or the process dies* (``kill -9`` included), so a stale lock file never blocks a
    later run (the file stays; deleting it could let two jobs lock different files). Re-entrant
    within one process (a job may call another that locks the same folder); a second process
    fails at once.

    Used by ``darkgan train`` (the run folder), ``label`` (``DIR/labels``), ``data prepare``
    (``DIR/cache``) and ``distill`` (the student folder).

    Yields:
        ``Path(path)``.

    Raises:
        darkgan.errors.DarkGANError: another process holds the lock (one line naming the folder).
        OSError: the parent folder cannot be created.
    """
    from filelock import FileLock, Timeout

    from darkgan.errors import DarkGANError

    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(target)), timeout=0, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise DarkGANError(f"{path}: another darkgan job is writing into this folder (it holds "
                           f"{lock_path(target).name}); wait for it to finish or choose another folder") from None
    try:
        yield Path(path)
    finally:
        lock.release()


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of :func:`folder_lock` for ``folder``: ``<parent>/.<name>.lock``."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
