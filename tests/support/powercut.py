"""A power cut for SQLite: an apsw VFS shim that, at a chosen sync, discards every write not yet synced.

As SQLite's own crash tests do (test6.c's "crash" VFS), every write goes through to the real file,
but the shim keeps, per file, the bytes each write or truncate replaced since that file's last
`xSync`, and the file's size at that sync. At the cut (the N-th `xSync` of the process, counted over
every file) that sync is not done: each file is put back as it was at its last sync (the saved bytes
written back newest first, then the size restored), the `-shm` index is removed (it lives in memory,
so a power cut loses it), and the process ends at once with exit code CUT_EXIT, sending nothing more.
What survives is exactly what a disk with a volatile write cache that honours fsync would keep.

Run any chledger command under it:

    CHLEDGER_POWERCUT_AT=17 CHLEDGER_POWERCUT_SYNCS=/tmp/n python tests/support/powercut.py ingest ...

Without CHLEDGER_POWERCUT_AT nothing is cut; CHLEDGER_POWERCUT_SYNCS, if set, receives the number
of syncs and of writes seen (at exit, or at the cut), so a test can first count the syncs of a run, then sweep.
CHLEDGER_POWERCUT_AT_WRITE=N cuts at the N-th write instead (before it reaches the file), which
lands between the syncs: in the middle of a commit's frames, or of a checkpoint.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path

import apsw

__all__ = ["PowerCutVFS", "CUT_EXIT", "install"]

CUT_EXIT = 86


class _Tracked:
    """The unsynced history of one file: its size at the last sync and the bytes overwritten since."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.synced_size = os.path.getsize(path) if os.path.exists(path) else 0
        self.undo: list[tuple[int, bytes]] = []

    def before_change(self, offset: int, length: int) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                self.undo.append((offset, f.read(length)))
        except FileNotFoundError:
            pass

    def synced(self) -> None:
        self.synced_size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        self.undo.clear()

    def lose_unsynced(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path, "r+b") as f:
            for offset, old in reversed(self.undo):
                f.seek(offset)
                f.write(old)
            f.truncate(self.synced_size)


class PowerCutVFS(apsw.VFS):
    """Pass-through VFS over the default one, counting syncs and cutting the power at `cut_at`."""

    def __init__(self, cut_at: int | None, report: str | None, name: str = "powercut",
                 cut_at_write: int | None = None) -> None:
        super().__init__(name, "unix", makedefault=True)
        self.cut_at = cut_at
        self.cut_at_write = cut_at_write
        self.report = report
        self.syncs = 0
        self.writes = 0
        self.files: dict[str, _Tracked] = {}
        self.lock = threading.Lock()

    def xOpen(self, name, flags):  # noqa: N802 (apsw's names)
        path = name if isinstance(name, str) else (name.filename() if name is not None else None)
        return _File(self, path, name, flags)

    def track(self, path: str | None) -> _Tracked | None:
        if not path:
            return None  # a temporary file: nothing of it outlives a power cut anyway
        with self.lock:
            if path not in self.files:
                self.files[path] = _Tracked(path)
            return self.files[path]

    def on_write(self) -> None:
        with self.lock:
            self.writes += 1
            if self.cut_at_write is not None and self.writes >= self.cut_at_write:
                self.cut()

    def on_sync(self, tracked: _Tracked | None) -> None:
        with self.lock:
            self.syncs += 1
            if self.cut_at is not None and self.syncs >= self.cut_at:
                self.cut()
            if tracked is not None:
                tracked.synced()

    def cut(self) -> None:
        """The power goes: every file back to its last sync, the shared-memory index gone, exit."""
        for tracked in self.files.values():
            tracked.lose_unsynced()
            shm = tracked.path + "-shm"
            if os.path.exists(shm):
                os.remove(shm)
        self.write_report()
        os._exit(CUT_EXIT)

    def write_report(self) -> None:
        if self.report:
            Path(self.report).write_text(f"{self.syncs} {self.writes}")


class _File(apsw.VFSFile):
    def __init__(self, vfs: PowerCutVFS, path: str | None, name, flags) -> None:
        super().__init__("unix", name, flags)
        self._vfs = vfs
        self._tracked = vfs.track(path)

    def xWrite(self, data, offset):  # noqa: N802
        self._vfs.on_write()
        if self._tracked is not None:
            with self._vfs.lock:
                self._tracked.before_change(offset, len(data))
        return super().xWrite(data, offset)

    def xTruncate(self, newsize):  # noqa: N802
        if self._tracked is not None and os.path.exists(self._tracked.path):
            with self._vfs.lock:
                size = os.path.getsize(self._tracked.path)
                if newsize < size:
                    self._tracked.before_change(newsize, size - newsize)
        return super().xTruncate(newsize)

    def xSync(self, flags):  # noqa: N802
        self._vfs.on_sync(self._tracked)
        return super().xSync(flags)


def install() -> PowerCutVFS:
    """Make the shim every new connection's VFS, as the environment asks."""
    raw = os.environ.get("CHLEDGER_POWERCUT_AT")
    at_write = os.environ.get("CHLEDGER_POWERCUT_AT_WRITE")
    vfs = PowerCutVFS(int(raw) if raw else None, os.environ.get("CHLEDGER_POWERCUT_SYNCS"),
                      cut_at_write=int(at_write) if at_write else None)
    atexit.register(vfs.write_report)
    return vfs


if __name__ == "__main__":
    _VFS = install()  # kept referenced: apsw unregisters a VFS that is garbage-collected
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root))
    sys.argv[0] = str(root / "cli.py")
    import cli  # noqa: E402

    cli.main()
