"""Stream catch-up speed: loopback stream → split → decode → ledger, against raw ledger appends.

What a day offline costs: how many events per second the stream client records
when the server has a backlog to pour out. Every figure is measured in the same
run, on the same realistic company-profile lines (built by the simulator's
timeline, ~1.5 KiB each), each into a fresh ledger file:

  parse only       split + msgspec decode, no I/O (the client's CPU ceiling)
  raw append       Ledger.append_many of the already-decoded entries, in batches of
                   BATCH_SIZE and of BUFFER_SIZE (the baseline: during a burst the
                   client lets a batch grow to BUFFER_SIZE, one commit per batch)
  stream, fast     a purpose-built server in another process pours pre-encoded
                   lines over loopback; the full StreamClient records them
  stream, sim      the same through the project's simulator (it encodes each
                   event as it goes, so its own speed is part of the figure)
  + projections    the same with projections.attach(ledger), when it exists

Usage:  python benchmarks/stream.py [--events 50000] [--batch-size 100] [--rounds 3] [--no-projections]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from aiohttp import web  # noqa: E402

from eventlog.clock import SystemClock  # noqa: E402
from eventlog.ledger.db import connect  # noqa: E402
from eventlog.ledger.entries import StreamEvent  # noqa: E402
from eventlog.ledger.store import Ledger  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402
from eventlog.worker.stream.ndjson import LineSplitter  # noqa: E402
from eventlog.config.settings import Settings  # noqa: E402
from eventlog.worker.stream.client import StreamClient  # noqa: E402
from eventlog.worker.stream.wire import decode_line  # noqa: E402

KEY = "sim-stream-key"
FIRST = 1000


def make_body(n: int, seed: int = 1) -> bytes:
    from eventlog.simulator import SimulatorConfig
    from eventlog.simulator.companies import Universe
    from eventlog.simulator.timeline import Timeline

    config = SimulatorConfig(seed=seed, backlog_events=n, first_timepoint=FIRST)
    timeline = Timeline(config, Universe(config), start=time.time())
    enc = msgspec.json.Encoder()
    return b"".join(enc.encode(timeline.event_at(i)) + b"\n" for i in range(n))


def fresh_ledger(folder: str, name: str, attach: bool) -> Ledger:
    conn = connect(os.path.join(folder, f"{name}.db"))
    migrate(conn)
    ledger = Ledger(conn, SystemClock())
    if attach:
        import projections
        projections.attach(ledger)  # type: ignore[attr-defined]
    return ledger


def bench_parse(body: bytes) -> tuple[float, float, list]:
    start, cpu = time.perf_counter(), time.process_time()
    splitter = LineSplitter()
    entries = []
    for i in range(0, len(body), 65536):
        for line in splitter.feed(body[i:i + 65536]):
            entries.append(decode_line("companies", line))
    return time.perf_counter() - start, time.process_time() - cpu, entries


def bench_raw_append(ledger: Ledger, entries: list, batch_size: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(entries), batch_size):
        ledger.append_many(entries[i:i + batch_size])
    return time.perf_counter() - start, time.process_time() - cpu


# --- the servers, each in its own process so the client has a core to itself ------------------


async def serve_fast(body_path: str) -> None:
    body = Path(body_path).read_bytes()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for i in range(0, len(body), 65536):
            await response.write(body[i:i + 65536])
        while request.transport is not None and not request.transport.is_closing():
            await response.write(b"\n")  # heartbeats until the client goes
            await asyncio.sleep(1.0)
        return response

    app = web.Application()
    app.router.add_get("/companies", handler)
    await serve(app)


async def serve_simulator(events: str) -> None:
    from eventlog.simulator import SimulatorConfig, build_app

    config = SimulatorConfig(seed=1, backlog_events=int(events), first_timepoint=FIRST,
                             events_per_second=0.001, retention=10**9, retention_seconds=0)
    await serve(build_app(config))


async def serve(app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


async def bench_stream(ledger: Ledger, server: list[str], n: int, batch_size: int,
                       resume: bool) -> tuple[float, float, int]:
    """Seconds (wall, this process's CPU) from connected to the n-th event recorded, and
    how many commits it took. The server's CPU is its own process's, not counted."""
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, *server,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        port = int((await proc.stdout.readline()).decode())  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/companies"
        if resume:  # the simulator serves its backlog only to a client resuming from before it
            ledger.append(StreamEvent(stream="companies", timepoint=FIRST - 1, published_at="-",
                                      change="changed", resource_kind="company-profile",
                                      resource_id="0", resource_uri="/company/0"))
        settings = Settings(stream_key=KEY, streaming_api_url=url, batch_size=batch_size,
                            flush_interval=0.5)
        client = StreamClient(settings, ledger, url=url)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        while not client.stats.connected and not task.done():
            await asyncio.sleep(0.001)
        start, cpu = time.perf_counter(), time.process_time()
        while client.stats.events < n and not task.done():
            await asyncio.sleep(0.002)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        stop.set()
        await task
        assert client.stats.events == n and client.stats.rejected == 0, client.stats.as_dict()
        return elapsed, cpu, client.stats.batches
    finally:
        proc.terminate()
        await proc.wait()


def bench_logging(entries: list, folder: str, rounds: int, batch_size: int) -> None:
    """What the worker's log observer (`eventlog.ops.fact_log`, after every commit) adds to the append path.

    Appends with projections, as the worker does, three ways: no observer (the
    baseline, same run), the observer at INFO with the default 10% sampling
    writing JSON lines to /dev/null, and at WARNING (only failures would log).
    """
    import logging

    from eventlog.ops import fact_log as ledger_logging
    from eventlog.ops.logs import setup_logging

    n = len(entries)
    with open(os.devnull, "w") as devnull:
        for level in (None, "INFO", "WARNING"):
            times = []
            for r in range(rounds):
                ledger = fresh_ledger(folder, f"log{level}{r}", True)
                if level is not None:
                    setup_logging(level, stream=devnull, json_lines=True, sample_rate=0.1)
                    ledger_logging.attach(ledger, Settings(log_sample_rate=0.1))
                times.append(bench_raw_append(ledger, entries, batch_size))
                logging.getLogger().handlers.clear()
            mid = statistics.median(t for t, _ in times)
            cpu = statistics.median(c for _, c in times)
            label = "no log observer (baseline)" if level is None else f"log observer at {level}, 10% sampled"
            print(f"  append + projections, {label:<40} {rate(n, mid, cpu)}")


def rate(n: int, seconds: float, cpu: float) -> str:
    return f"{n / seconds:>9,.0f} events/s ({seconds:5.2f} s) {n / cpu:>9,.0f} per CPU-s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="BATCH_SIZE (BUFFER_SIZE stays at its default 1000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each row is the median of this many interleaved runs")
    parser.add_argument("--no-projections", action="store_true",
                        help="skip the rows with projections.attach (they take the longest)")
    parser.add_argument("--logging-only", action="store_true",
                        help="only what the worker's log observer adds to appends with projections")
    args = parser.parse_args()
    if args.logging_only:
        body = make_body(args.events)
        print(f"{args.events:,} company-profile events, batches of {args.batch_size}, median of {args.rounds} "
              f"rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        with tempfile.TemporaryDirectory() as folder:
            bench_logging(bench_parse(body)[2], folder, args.rounds, args.batch_size)
        return
    n, batch = args.events, args.batch_size
    burst = max(batch, Settings().buffer_size)  # how big the client lets a batch grow in a burst
    try:
        import projections
        can_attach = callable(getattr(projections, "attach", None)) and not args.no_projections
    except ImportError:
        can_attach = False

    body = make_body(n)
    print(f"{n:,} company-profile events, {len(body) / n:,.0f} bytes/line on average, "
          f"BATCH_SIZE {batch}, SQLite WAL + synchronous=FULL, median of {args.rounds} rounds")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(other processes on the machine skew every row alike)")
    rows: dict[str, list[float]] = {}
    commits: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        body_path = os.path.join(folder, "body.ndjson")
        Path(body_path).write_bytes(body)
        for r in range(args.rounds):
            seconds, cpu, entries = bench_parse(body)
            rows.setdefault("parse only (split + decode)", []).append((seconds, cpu))
            for attach in ([False, True] if can_attach else [False]):
                tag = " + projections" if attach else ""
                for size in sorted({batch, burst}):
                    timing = bench_raw_append(fresh_ledger(folder, f"raw{size}{attach}{r}", attach),
                                           entries, size)
                    rows.setdefault(f"raw append_many, batches of {size}{tag}", []).append(timing)
                for name, server, resume in (("fast server", ["--serve-fast", body_path], False),
                                             ("simulator", ["--serve-simulator", str(n)], True)):
                    label = f"stream client, {name}{tag}"
                    took, cpu, flushes = await bench_stream(
                        fresh_ledger(folder, f"{name[:4]}{attach}{r}", attach), server, n, batch,
                        resume)
                    rows.setdefault(label, []).append((took, cpu))
                    commits.setdefault(label, []).append(flushes)
    baseline = {}
    for label, times in rows.items():
        mid = statistics.median(t for t, _ in times)
        cpu = statistics.median(c for _, c in times)
        extra = ""
        if label.startswith(f"raw append_many, batches of {burst}"):
            baseline[label.endswith("projections")] = mid
        elif label in commits:
            raw = baseline[label.endswith("projections")]
            extra = (f"  {raw / mid:4.0%} of raw append ({burst}), "
                     f"{n / statistics.median(commits[label]):,.0f} events/commit")
        print(f"  {label:<48} {rate(n, mid, cpu)}{extra}")
    if not can_attach:
        print("  (measured without projections: --no-projections, or projections.attach missing)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-fast":
        asyncio.run(serve_fast(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--serve-simulator":
        asyncio.run(serve_simulator(sys.argv[2]))
    else:
        asyncio.run(main())
