"""One process at a time may rewrite a database: the worker, or a replay.

The worker holds `<db>.lock` with `fcntl.flock` for as long as it runs; replay
takes the same lock, so a replay can't swap tables under a running worker and a
worker can't start in the middle of a replay. flock is released by the kernel
when the holder dies (even by SIGKILL), so a crash never leaves a stale lock,
and the file itself is left in place on purpose: unlinking it would let two
processes lock two different files of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from eventlog.errors import DatabaseBusy

__all__ = ["worker_lock", "lock_path"]


def lock_path(db_path: str | os.PathLike[str]) -> str:
    """`<db>.lock` next to the real file, so a relative path, an absolute one and a
    symlink to the database all name the same lock."""
    return f"{os.path.realpath(os.fspath(db_path))}.lock"


def _holder(fd: int) -> tuple[str, str]:
    """The pid and role the current holder wrote into the file."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, what = text.partition(" ")
    return (pid or "unknown"), (what or "worker")


@contextlib.contextmanager
def worker_lock(db_path: str | os.PathLike[str], holder: str = "worker") -> Iterator[None]:
    """Hold the database's exclusive lock, or raise `DatabaseBusy` naming who holds it.

    `holder` is written next to the pid ("worker", "replay") so the message the
    other side sees says what is running.
    """
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatabaseBusy(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, what = _holder(fd)
            raise DatabaseBusy(
                f"{os.fspath(db_path)} is in use: a {what} is running (pid {pid}); "
                f"stop it first, or wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {holder}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
