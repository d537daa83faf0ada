"""429 to stream connects that come too often.

Companies House answers 429 to a client that opens stream connections too often. The simulator
keeps when a key's last connection was admitted (per key across both stream paths, or per
(key, path) with ``stream_connect_per_path``); a connect sooner than
``stream_connect_min_interval`` after it is refused and does not move that time, so a client that
waits the interval out always gets in.
"""

from __future__ import annotations

__all__ = ["ConnectPacer"]


class ConnectPacer:
    """Admission of stream connects by a minimum interval; 0 admits all."""

    def __init__(self, min_interval: float, per_path: bool = False) -> None:
        self.min_interval = min_interval
        self.per_path = per_path
        self._last: dict[tuple[str, str], float] = {}

    def admit(self, key: str, path: str, now: float) -> bool:
        """Whether a connect by ``key`` to ``path`` at ``now`` may proceed (and note it if so)."""
        if self.min_interval <= 0:
            return True
        scope = (key, path if self.per_path else "")
        last = self._last.get(scope)
        if last is not None and now - last < self.min_interval:
            return False
        self._last[scope] = now
        return True
