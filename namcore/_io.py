"""Writing files atomically: a crash or a full disk never leaves half a file behind.

Examples
--------
>>> import pathlib, tempfile
>>> from namcore._io import atomic_write
>>> path = pathlib.Path(tempfile.mkdtemp()) / "table.md"
>>> atomic_write(path, b"| a |\\n")
>>> path.read_bytes()
b'| a |\\n'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_link", "atomic_write"]


def atomic_write(
    path: str | os.PathLike, data: bytes | Callable[[str], None], *, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if needed.
    data : bytes or callable
        The bytes, or a function that writes the file at the temporary path it is given
        (e.g. ``lambda tmp: figure.savefig(tmp, format="png")``).
    overwrite : bool, optional
        Replace an existing file. Default: True. With False an existing ``path``
        raises ``FileExistsError`` and is left untouched.

    The new file gets the permissions a plain ``open(path, "w")`` would give it; on
    any error (a full disk included) or interruption the temporary file is removed and
    ``path`` is unchanged. The file's data is flushed to disk before the rename, and
    the rename itself (the folder) after it, where the platform allows.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(tmp)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def atomic_link(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make ``target`` hold the bytes of ``source``, atomically like :func:`atomic_write`.

    A hard link renamed over ``target``: no copy and no extra space, and the two names
    stay independent as long as ``source`` is replaced (not modified in place). Where
    the file system has no hard links, the bytes are copied with :func:`atomic_write`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "last", b"weights")
    >>> atomic_link(folder / "last", folder / "best")
    >>> atomic_write(folder / "last", b"newer")
    >>> (folder / "best").read_bytes()
    b'weights'
    """
    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
    except OSError:  # a file system without hard links
        atomic_write(target, source.read_bytes())
        return
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
