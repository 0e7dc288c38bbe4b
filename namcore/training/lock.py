"""One writer per folder: an OS lock that dies with the process holding it.

``namcore train`` holds the lock of its run folder and ``namcore reproduce`` that of
its output folder for as long as they write there, so a second process on the same
folder stops at once with ``FOLDER is in use by process N`` instead of interleaving
its files with the first one's. The lock is the file ``.namcore.lock`` in the folder,
locked with ``fcntl.flock`` (``msvcrt.locking`` on Windows): the operating system
releases it when its process ends, however it ends (a ``SIGKILL`` included), so a
killed run never leaves a stale lock behind. While the lock is held the file holds
the holder's process id; it is emptied on release.

Examples
--------
>>> import os, tempfile
>>> from namcore.training.lock import FolderLock
>>> folder = tempfile.mkdtemp()
>>> with FolderLock(folder):
...     FolderLock(folder).acquire()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
namcore.training.lock.FolderInUse: ... is in use by process ...
>>> with FolderLock(folder):  # released: free again
...     pass
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType

from .errors import TrainingError

__all__ = ["LOCK_NAME", "FolderInUse", "FolderLock"]

#: Name of the lock file inside a locked folder.
LOCK_NAME = ".namcore.lock"

# msvcrt locks a byte range; lock one byte far past the process id written at 0.
_WINDOWS_LOCK_OFFSET = 1 << 30


class FolderInUse(TrainingError):
    """Another process holds the lock of the folder; ``pid`` is its id when known."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{folder} is in use by {who}")
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or "x")
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _try_lock(fd: int) -> bool | None:
    """Lock ``fd`` without waiting: True if locked, False if held elsewhere, None if
    this platform or file system has no such lock."""
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            return None  # e.g. ENOLCK or EOPNOTSUPP on some network file systems
        return True
    try:
        import msvcrt
    except ImportError:
        return None
    try:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


class FolderLock:
    """The lock of ``folder``, held from :meth:`acquire` (or ``with``) to :meth:`release`.

    Parameters
    ----------
    folder : path-like
        The folder; it is created (with its parents) when the lock is acquired.

    Where the platform or the file system offers no lock, the process id in the lock
    file is checked instead: a folder whose recorded process still runs counts as in
    use.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FolderLock({str(self.folder)!r})"

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock; :class:`FolderInUse` if another process (or object) holds it.

        Raises
        ------
        FolderInUse
            The folder is locked by another process, or by another :class:`FolderLock`
            of this process.
        OSError
            The folder or its lock file cannot be created.
        """
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            locked = _try_lock(fd)
            if locked is False:
                raise FolderInUse(self.folder, _read_pid(fd))
            if locked is None:  # no OS lock here: fall back to the recorded process id
                pid = _read_pid(fd)
                if pid is not None and pid != os.getpid() and _pid_alive(pid):
                    raise FolderInUse(self.folder, pid)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file and let go of the lock (closing it releases the OS lock)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
