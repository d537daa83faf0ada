"""429 to stream connects that come too often.

Companies House answers 429 to a client that opens stream connections too often. The simulator
keeps, per (key, path), when the last connection was admitted; a connect sooner than
``stream_connect_min_interval`` after it is refused and does not move that time, so a client that
waits the interval out always gets in.
"""

from __future__ import annotations

__all__ = ["ConnectPacer"]


class ConnectPacer:
    """Admission of stream connects by a minimum interval per (key, path); 0 admits all."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._last: dict[tuple[str, str], float] = {}

    def admit(self, key: str, path: str, now: float) -> bool:
        """Whether a connect by ``key`` to ``path`` at ``now`` may proceed (and note it if so)."""
        if self.min_interval <= 0:
            return True
        last = self._last.get((key, path))
        if last is not None and now - last < self.min_interval:
            return False
        self._last[(key, path)] = now
        return True
