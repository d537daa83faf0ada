"""Auditing a ledger of 1,000,000 requests: seconds and peak memory.

    python benchmarks/audit.py                     # 1,000,000 requests (fixture cached in /tmp)
    python benchmarks/audit.py --requests 50000    # a quick check that it works
    python benchmarks/audit.py --sizes 250000,1000000   # memory at two sizes: is it flat?

The fixture (`benchmarks/audit_fixture.py`): per request a `request.queued`, a `request.sent`
and a `response.received` with a ~500-byte profile body, sent every 0.5-0.55 s (~1.9 req/s), three
honoured 429s, a stream gap: 3,000,002 entries, ~1.9 GB. Built once (~1.5 min), cached under
/tmp. Before measuring, the file is read once so every run starts from a warm page cache.

Each measurement runs in its own child process, so its memory is its own:
- window check: `window_stats` on the 1M send times (µs), after reading them with one SELECT
  (timed separately): `window` all in Python, `window-c` with the counts in C (the chain
  extension, as the audit uses them); baseline: the simulator's `max_in_any_window` on float
  seconds. All must agree on the maximum;
- whole audit (`eventlog.audit.run.collect` + `assemble.build_report`): chain + windows +
  cooldowns + orphans + table. `audit`: the engine this install has (the chain extension: ranges in threads), with the
  default parallel ranges; `audit-1`: one range; `audit-py`: the Python engine
  (CHLEDGER_NATIVE_CHAIN=0: ranges in forked processes), what runs without a compiler. All
  must agree on the verdict and the counts;
- `verify`: `Ledger.verify()` alone (the chain only; in C when built), `verify-py` in Python.
Memory: peak anonymous RSS (`RssAnon`, sampled every 20 ms) of the process and of its forked
workers (the forkserver's too). File pages mapped by SQLite's mmap are the OS page cache, not
the audit's memory, so they are left out (ru_maxrss, which counts them, is printed too). CPU
seconds (user+sys, threads included; forked workers report their own, since a forkserver's
children escape rusage) are printed next to wall seconds: on a shared 2-core machine wall time
partly measures the neighbours; the load average is printed with each run.

Goals (issue 6): window check <= 0.5 s, whole audit with the hash chain <= 3 s, memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.audit_fixture import ensure_fixture  # noqa: E402


def _rss_anon_kb(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakSampler:
    """Peak RssAnon of this process and (summed) of its live descendants, sampled in a thread."""

    def __init__(self, every: float = 0.02):
        self.every = every
        self.self_kb = self.children_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list[str]:
        """Children and their children: the audit's workers are forked by a forkserver."""
        parent: dict[str, str] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        parent[entry] = f.read().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
        found, frontier = [], {str(os.getpid())}
        while frontier:
            frontier = {pid for pid, ppid in parent.items() if ppid in frontier}
            found.extend(frontier)
        return found

    def _run(self) -> None:
        # Walking all of /proc for descendants costs ~0.13 CPU-s per second at every 20 ms, which
        # the measured process would pay: the list is refreshed every 0.25 s (workers live long).
        kids: list[str] = []
        refreshed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 0.25:
                kids, refreshed = self._descendants(), time.monotonic()
            self.self_kb = max(self.self_kb, _rss_anon_kb())
            self.children_kb = max(self.children_kb, sum(_rss_anon_kb(p) for p in kids))
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.self_kb = max(self.self_kb, _rss_anon_kb())


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn):
    wall, cpu = time.perf_counter(), _cpu()
    result = fn()
    return result, time.perf_counter() - wall, _cpu() - cpu


# --- measurements, each run in a child: `audit.py --measure NAME --db PATH` ------------------


def send_times(db: str):
    from array import array

    import apsw

    from eventlog.audit.timestamps import to_us

    conn = apsw.Connection(db, flags=apsw.SQLITE_OPEN_READONLY)
    conn.execute("PRAGMA mmap_size=17179869184")
    times = array("q", (to_us(at) for (at,) in conn.execute(
        "SELECT received_at FROM event_log WHERE event_type = 'request.sent' ORDER BY id")))
    conn.close()
    return times


def measure(name: str, db: str) -> dict:
    out: dict = {"load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    with PeakSampler() as peak:
        if name in ("window", "window-c"):
            from eventlog.ledger import native as native_chain
            from eventlog.audit.windows import window_stats

            times, out["read_s"], out["read_cpu_s"] = _timed(lambda: send_times(db))
            if name == "window":  # all in Python, as without the extension
                run = lambda: window_stats(times, 300_000_000, 600)  # noqa: E731
            else:  # the counts in C (as the audit does with the extension), the rest in Python
                run = lambda: window_stats(times, 300_000_000, 600, presorted=True,  # noqa: E731
                                           counts=native_chain.window_counts(times, 300_000_000))
            stats, out["wall_s"], out["cpu_s"] = _timed(run)
            out["max"], out["sends"] = stats.max.count, stats.sends
        elif name == "window-baseline":
            from eventlog.simulator import max_in_any_window

            floats = [t / 1e6 for t in send_times(db)]
            out["max"], out["wall_s"], out["cpu_s"] = _timed(lambda: max_in_any_window(floats, 300.0))
        elif name in ("audit", "audit-1", "audit-py", "audit-py-1"):
            from eventlog.audit.run import collect
            from eventlog.audit.assemble import build_report

            data, out["wall_s"], out["cpu_s"] = _timed(
                lambda: collect(db, jobs=1 if name.endswith("-1") else None))
            if data.chain_engine == "python":
                # Workers are forked by a forkserver, so rusage can't see them: they time
                # themselves. (The C engine's ranges run in threads, which rusage counts.)
                out["cpu_s"] += sum(scan.cpu_seconds for scan in data.scans[1:])
            out["engine"] = data.chain_engine
            out["ranges"] = len(data.scans)
            (report, report_s, _) = _timed(lambda: build_report(data))
            out["wall_s"] += report_s
            out["verdict"], out["max"] = report.verdict, report.windows.max.count
            out["chain_ok"], out["entries"] = report.chain.ok, report.chain.checked
            out["table_ok"], out["sent"] = report.table.ok, report.requests.sent
        elif name in ("verify", "verify-py"):
            from eventlog.ledger.db import connect
            from eventlog.ledger.store import Ledger

            rep, out["wall_s"], out["cpu_s"] = _timed(lambda: Ledger(connect(db, readonly=True)).verify())
            out["chain_ok"], out["entries"] = rep.ok, rep.checked
        else:
            raise SystemExit(f"unknown measurement {name}")
    out["peak_anon_mb"] = round(peak.self_kb / 1024, 1)
    out["peak_anon_workers_mb"] = round(peak.children_kb / 1024, 1)
    out["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_child(name: str, db: str) -> dict:
    env = dict(os.environ)
    if name.endswith("-py") or "-py-" in name:  # the Python engine, as without the extension
        env["CHLEDGER_NATIVE_CHAIN"] = "0"
    proc = subprocess.run([sys.executable, __file__, "--measure", name, "--db", db],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def report(requests: int, names: list[str]) -> dict[str, dict]:
    from eventlog.ledger import native as native_chain

    db, built = ensure_fixture(requests)
    size_gb = os.path.getsize(db) / 1e9
    print(f"\n== {requests:,} requests: {db} ({size_gb:.2f} GB"
          + (f", built in {built:.0f} s)" if built else ", cached)"))
    print(f"chain engine here: {native_chain.engine()}"
          + (f" ({native_chain.unavailable_reason()})" if native_chain.engine() != "c" else
             f" ({native_chain.extension_path().name})"))
    warm(db)
    results = {}
    for name in names:
        r = results[name] = run_child(name, db)
        extra = {k: v for k, v in r.items() if k not in ("wall_s", "cpu_s", "load")}
        print(f"{name:16s} wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s  load {r['load']}  {extra}")
    maxima = {r["max"] for n, r in results.items() if n.startswith("window")}
    assert len(maxima) <= 1, f"window checks disagree: {maxima}"
    verdicts = {(r["verdict"], r["max"], r["sent"], r["table_ok"], r["chain_ok"])
                for n, r in results.items() if n.startswith("audit")}
    assert len(verdicts) <= 1, f"the audits disagree: {verdicts}"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--sizes", help="comma-separated request counts (overrides --requests)")
    parser.add_argument("--only", help="comma-separated measurements")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return
    names = (args.only.split(",") if args.only else
             ["window", "window-c", "window-baseline", "audit", "audit-1", "audit-py", "verify",
              "verify-py"])
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.requests]
    for n in sizes:
        report(n, names)


if __name__ == "__main__":
    main()
