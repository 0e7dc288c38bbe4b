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

__all__ = ["atomic_write"]


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
    any error the temporary file is removed and ``path`` is unchanged.
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
