"""The exact sliding-window count: how many sends fell in any half-open window [t, t+S).

The maximum over every real `t` is reached at a `t` that is itself a send time (sliding a
window's start forward to its first send never loses one), so one pass of two pointers over the
sorted send times is exact: for each send i, `ends[i]` is the first send at or after `t_i + S`,
and `ends[i] - i` sends share that window. Times are integer microseconds, the resolution of the
ledger's ISO timestamps, so the boundary `t_j < t_i + S` is decided exactly, with no float
rounding.

From the per-start counts come the busiest windows (one per stretch of S seconds, the best
first, never two that overlap) and every window over the limit, with overlapping over-limit
windows merged into one run so that a burst is reported once, by its peak.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import compress, islice
from operator import le

import msgspec

__all__ = ["Window", "OverLimitRun", "WindowStats", "window_counts", "window_stats"]

_SENTINEL = 1 << 62


class Window(msgspec.Struct, frozen=True):
    """One window `[start, start + span)` and how many sends it holds (times in µs)."""

    start: int
    count: int


class OverLimitRun(msgspec.Struct, frozen=True):
    """Overlapping windows over the limit, merged: from the first over-limit start to the last
    one's end; `peak` is the fullest of them, `windows` how many send times start one."""

    first_start: int
    last_start: int
    peak: Window
    windows: int


class WindowStats(msgspec.Struct, frozen=True):
    sends: int
    max: Window | None
    busiest: list[Window]
    over_limit: list[OverLimitRun]
    profile: list[Window] = []  # the fullest window starting in each time bin, for a plot


def window_counts(times: array, span: int, *, chunk: int = 65_536) -> array:
    """`counts[i]` = sends in `[times[i], times[i] + span)`; `times` sorted ascending (µs).

    The two-pointer walk runs over a list (indexing a list is what makes it fast) but one chunk
    of starts at a time, with just the look-ahead its windows need, so memory stays at the two
    arrays instead of a million Python ints. Sends that share a timestamp share a window: each
    gets the count from the first of them (`lo`). Indices inside a chunk are relative to `a`.
    """
    n = len(times)
    counts = array("l")
    push = counts.append
    j = lo = 0
    previous = None
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        stop = bisect_left(times, times[b - 1] + span, b)
        window = times[a:stop].tolist()
        window.append(_SENTINEL)  # lets the inner loop skip its bounds check
        j -= a
        lo -= a
        for i, t in enumerate(window[:b - a]):
            if t != previous:
                lo, previous = i, t
            limit = t + span
            while window[j] < limit:
                j += 1
            push(j - lo)
        j += a
        lo += a
    return counts


def is_sorted(times: array) -> bool:
    return all(map(le, times, islice(times, 1, None)))  # islice: no copy of a big array


def _busiest(times: array, counts: array, span: int, top: int) -> list[Window]:
    """The fullest window of each stretch of `span` (stretches start at a send), best first,
    skipping any that overlaps one already taken."""
    n = len(times)
    best: list[Window] = []
    a = 0
    while a < n:
        b = bisect_left(times, times[a] + span, a)
        peak = max(counts[a:b])
        i = counts.index(peak, a, b)
        best.append(Window(times[i], peak))
        a = b
    best.sort(key=lambda w: (-w.count, w.start))
    chosen: list[Window] = []
    for w in best:
        if len(chosen) == top:
            break
        if all(abs(w.start - c.start) >= span for c in chosen):
            chosen.append(w)
    return chosen


def _over_limit(times: array, counts: array, span: int, limit: int) -> list[OverLimitRun]:
    runs: list[OverLimitRun] = []
    first = last = peak_i = -1
    starts = 0
    for i in compress(range(len(counts)), map(limit.__lt__, counts)):
        if last >= 0 and times[i] < times[last] + span:
            last = i
            starts += 1
            if counts[i] > counts[peak_i]:
                peak_i = i
            continue
        if last >= 0:
            runs.append(OverLimitRun(times[first], times[last], Window(times[peak_i], counts[peak_i]), starts))
        first = last = peak_i = i
        starts = 1
    if last >= 0:
        runs.append(OverLimitRun(times[first], times[last], Window(times[peak_i], counts[peak_i]), starts))
    return runs


def _profile(times: array, counts: array, bins: int) -> list[Window]:
    """At most `bins` points: the fullest window starting in each equal slice of time."""
    t0, t1 = times[0], times[-1]
    step = max(1, -(-(t1 - t0 + 1) // bins))
    out: list[Window] = []
    a, n = 0, len(times)
    while a < n:
        b = bisect_left(times, t0 + ((times[a] - t0) // step + 1) * step, a)
        peak = max(counts[a:b])
        out.append(Window(times[counts.index(peak, a, b)], peak))
        a = b
    return out


def window_stats(times: array, span: int, limit: int, *, top: int = 5, profile_bins: int = 0,
                 presorted: bool | None = None, counts: array | None = None) -> WindowStats:
    """Everything the audit says about windows, from send times in µs (sorted here if needed;
    `presorted` says whether the caller already knows). `counts`, when given, are
    `window_counts(times, span)` computed already (in C: `ledger.native.window_counts`)."""
    if span <= 0:
        raise ValueError(f"the window must be positive, not {span} µs")
    if counts is None and not (is_sorted(times) if presorted is None else presorted):
        times = array("q", sorted(times))
    if not times:
        return WindowStats(0, None, [], [])
    if counts is None:
        counts = window_counts(times, span)
    peak = max(counts)
    i = counts.index(peak)
    return WindowStats(
        sends=len(times),
        max=Window(times[i], peak),
        busiest=_busiest(times, counts, span, top),
        over_limit=_over_limit(times, counts, span, limit) if peak > limit else [],
        profile=_profile(times, counts, profile_bins) if profile_bins else [],
    )
