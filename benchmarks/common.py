"""Small helpers shared by the benchmarks: timing, memory, realistic payloads.

Benchmarks compare against a baseline measured in the same run, so these
helpers only have to be consistent, not absolute. Payloads are deterministic
for a given seed, so two runs (or a benchmark and its baseline) see the same
bytes.

Run a benchmark from the repository root (`python benchmarks/<name>.py`);
each script puts the root on `sys.path` and imports `benchmarks.common`.
"""

from __future__ import annotations

import os
import random
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import msgspec

from eventlog.ledger.entries import RequestSent, StreamEvent

__all__ = [
    "Stopwatch",
    "stopwatch",
    "load_average",
    "per_second",
    "rss_mb",
    "peak_rss_mb",
    "fresh_db",
    "company_number",
    "company_profile",
    "stream_event_line",
    "stream_event",
    "small_stream_event",
    "request_sent",
]


# --- time and memory --------------------------------------------------------------


class Stopwatch:
    """Wall-clock and CPU seconds of a `with stopwatch() as sw:` block.

    `cpu_seconds` is this process's CPU time: on a shared machine it moves far
    less than wall time, so it tells "the code got slower" from "the box was busy".
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    sw = Stopwatch()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield sw
    finally:
        sw.seconds = time.perf_counter() - start
        sw.cpu_seconds = time.process_time() - cpu


def load_average() -> str:
    """The 1-minute load average and the core count, e.g. `3.1 on 2 cores`: context for the figures."""
    try:
        return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return f"unknown on {os.cpu_count()} cores"


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def rss_mb() -> float:
    """Resident set size now, in MiB (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:  # the test extra doesn't pull psutil in
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """The process's high-water RSS in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_db(path: str | os.PathLike[str]) -> Path:
    """Remove a database and its WAL/SHM side files, so a run starts empty."""
    p = Path(path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(p) + suffix).unlink(missing_ok=True)
    return p


# --- payloads ---------------------------------------------------------------------

_STATUSES = ("active", "active", "active", "dissolved", "liquidation")
_DETAILS = (None, None, None, "active-proposal-to-strike-off")
_TOWNS = ("Norwich", "Leeds", "Cardiff", "Glasgow", "Belfast", "Bristol")


def company_number(i: int) -> str:
    """A varied but deterministic 8-digit company number for index `i`."""
    return f"{(i * 7919 + 1000003) % 100_000_000:08d}"


def company_profile(i: int, rng: random.Random | None = None) -> dict:
    """A company profile shaped like the stream's `company-profile` data."""
    rng = rng or random.Random(i)
    cn = company_number(i)
    year = rng.randint(1990, 2023)
    profile: dict = {
        "accounts": {
            "accounting_reference_date": {"day": str(rng.randint(1, 28)), "month": f"{rng.randint(1, 12):02d}"},
            "next_due": f"{year + 1}-06-30",
            "next_made_up_to": f"{year}-09-30",
        },
        "can_file": True,
        "company_name": f"COMPANY {i} {rng.choice(('LTD', 'LIMITED', 'PLC', 'LLP'))}",
        "company_number": cn,
        "company_status": rng.choice(_STATUSES),
        "date_of_creation": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "etag": f"{rng.getrandbits(160):040x}",
        "jurisdiction": "england-wales",
        "links": {"officers": f"/company/{cn}/officers", "self": f"/company/{cn}"},
        "registered_office_address": {
            "address_line_1": f"Unit {rng.randint(1, 99)} Heath Road Industrial Estate",
            "locality": rng.choice(_TOWNS),
            "postal_code": f"NR{rng.randint(1, 30)} {rng.randint(1, 9)}HS",
        },
        "sic_codes": [str(rng.randint(10000, 99999))],
        "type": "ltd",
    }
    detail = rng.choice(_DETAILS)
    if detail:
        profile["company_status_detail"] = detail
    return profile


def stream_event_line(i: int, timepoint: int | None = None, rng: random.Random | None = None) -> bytes:
    """One NDJSON line as the companies stream sends it (no trailing newline)."""
    rng = rng or random.Random(i)
    cn = company_number(i)
    return msgspec.json.encode({
        "resource_kind": "company-profile",
        "resource_uri": f"/company/{cn}",
        "resource_id": cn,
        "data": company_profile(i, rng),
        "event": {"timepoint": timepoint if timepoint is not None else 68_805_561 + i,
                  "published_at": "2023-11-04T14:33:29", "type": "changed"},
    })


def stream_event(i: int, timepoint: int | None = None, rng: random.Random | None = None) -> StreamEvent:
    """A `StreamEvent` carrying a whole realistic profile (~1 KB of data)."""
    rng = rng or random.Random(i)
    cn = company_number(i)
    return StreamEvent(
        stream="companies", timepoint=timepoint if timepoint is not None else 68_805_561 + i,
        published_at="2023-11-04T14:33:29", change="changed", resource_kind="company-profile",
        resource_id=cn, resource_uri=f"/company/{cn}", company_number=cn,
        data=msgspec.Raw(msgspec.json.encode(company_profile(i, rng))),
    )


def small_stream_event(i: int) -> StreamEvent:
    """A `StreamEvent` with a small payload (~100 bytes of data)."""
    cn = company_number(i)
    data = {"company_number": cn, "company_name": f"COMPANY {i} LTD",
            "company_status": _STATUSES[i % len(_STATUSES)]}
    return StreamEvent(
        stream="companies", timepoint=68_805_561 + i, published_at="2023-11-04T14:33:29",
        change="changed", resource_kind="company-profile", resource_id=cn,
        resource_uri=f"/company/{cn}", company_number=cn, data=msgspec.Raw(msgspec.json.encode(data)),
    )


def request_sent(i: int) -> RequestSent:
    cn = company_number(i)
    kind = "officers" if i % 3 == 0 else "profile"
    path = f"/company/{cn}/officers" if kind == "officers" else f"/company/{cn}"
    return RequestSent(request_id=f"req-{i:08d}", kind=kind, company_number=cn, path=path)
