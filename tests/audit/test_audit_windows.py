"""The exact window count, on integer microseconds, against a brute force that can't be wrong."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.audit.windows import window_counts, window_stats

S = 300_000_000  # 300 s in µs


def brute_max(times: list[int], span: int) -> int:
    """Max over every start t of #{x : t <= x < t + span}; t ranges over the points and every
    point minus span (the only places the count can change), plus one after each."""
    starts = set()
    for x in times:
        starts.update((x, x - span, x - span + 1, x + 1))
    return max((sum(1 for x in times if t <= x < t + span) for t in starts), default=0)


def test_exactly_at_the_limit_is_not_over():
    times = array("q", [i * 500_000 for i in range(600)])  # 600 sends, 0.5 s apart
    stats = window_stats(times, S, 600)
    assert stats.max.count == 600 and stats.max.start == 0
    assert stats.over_limit == []


def test_one_over_is_named_by_its_window():
    times = array("q", [i * 500_000 for i in range(600)] + [299_999_999])
    stats = window_stats(times, S, 600)
    assert stats.max.count == 601
    [run] = stats.over_limit
    assert run.peak.start == 0 and run.peak.count == 601
    assert run.first_start == run.last_start == 0 and run.windows == 1


def test_the_window_is_half_open():
    # A send exactly S after the first one falls in the next window, not this one.
    times = array("q", [0, 1, S])
    assert window_stats(times, S, 2).max.count == 2
    assert window_stats(times, S, 2).over_limit == []
    # One microsecond earlier and all three share a window.
    times = array("q", [0, 1, S - 1])
    stats = window_stats(times, S, 2)
    assert stats.max.count == 3 and stats.over_limit[0].peak.start == 0


def test_overlapping_over_limit_windows_merge_into_one_run_per_burst():
    burst = [10 * S + i for i in range(5)]
    later = [30 * S + i * 1000 for i in range(6)]
    times = array("q", burst + later)
    stats = window_stats(times, S, 3)
    assert [(r.first_start, r.last_start, r.peak.count, r.windows) for r in stats.over_limit] == [
        (burst[0], burst[1], 5, 2),  # windows starting at the 1st and 2nd send hold 5 and 4
        (later[0], later[2], 6, 3),
    ]


def test_busiest_windows_never_overlap_and_come_best_first():
    times = array("q", [0, 1, 2, 3] + [S + 10, S + 11] + [5 * S, 5 * S + 1, 5 * S + 2])
    busiest = window_stats(times, S, 100, top=3).busiest
    assert [(w.start, w.count) for w in busiest] == [(0, 4), (5 * S, 3), (S + 10, 2)]
    starts = [w.start for w in busiest]
    assert all(abs(a - b) >= S for a in starts for b in starts if a != b)


def test_unsorted_input_is_sorted_first_and_empty_input_is_fine():
    assert window_stats(array("q", [S, 0, 1]), S, 10).max.count == 2
    stats = window_stats(array("q"), S, 10)
    assert stats.max is None and stats.sends == 0 and stats.busiest == []


def test_the_profile_keeps_every_peak():
    times = array("q", [i * 1_000_000 for i in range(1000)] + [2_000 * 1_000_000 + i for i in range(50)])
    stats = window_stats(times, 10_000_000, 100, profile_bins=20)
    assert len(stats.profile) <= 21
    assert max(w.count for w in stats.profile) == stats.max.count == 50


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5_000), max_size=60),
       st.integers(min_value=1, max_value=2_000), st.integers(min_value=1, max_value=8))
def test_matches_brute_force(points, span, chunk):
    times = sorted(points)
    arr = array("q", times)
    counts = window_counts(arr, span, chunk=chunk)  # small chunks: windows cross chunk edges
    assert list(counts) == [sum(1 for x in times if t <= x < t + span) for t in times]
    stats = window_stats(arr, span, limit=3)
    assert (stats.max.count if stats.max else 0) == brute_max(times, span)
    over = {i for i, c in enumerate(counts) if c > 3}
    assert sum(r.windows for r in stats.over_limit) == len(over)
