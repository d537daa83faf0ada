"""chledger's command line: parse options, call one function, print.

The work lives in `eventlog/` and `projections/`; every known failure is a
`ChledgerError`, turned here into one line on stderr and its exit code.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

import click

from eventlog import __version__
from eventlog.errors import ChledgerError

if TYPE_CHECKING:  # imported where used, so `--help` stays fast
    from eventlog.config.settings import Settings
    from eventlog.ops.status_report import StatusReport

__all__ = ["cli", "main"]


def known_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ChledgerError into `chledger: <one line>` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChledgerError as exc:
            click.echo(f"chledger: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "database_path", default=None, metavar="PATH",
        help="SQLite file (default: $DATABASE_PATH, else companies.db).",
    )(fn)


def _config_path() -> str | None:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    return (root.obj or {}).get("config") if root else None


def settings_from(**flags: Any):
    """Flags, then environment, then the `--config` file, then defaults; logging set up to match."""
    import os

    from eventlog.config.file import read_config_file
    from eventlog.ops.logs import setup_logging
    from eventlog.config.settings import load_settings
    from eventlog.ledger.db import set_busy_timeout

    path = _config_path()
    file_values = read_config_file(path) if path else None
    settings = load_settings(flags, os.environ, file_values)
    set_busy_timeout(settings.database_busy_timeout)
    setup_logging(settings.log_level, json_lines={"json": True, "text": False}.get(settings.log_format),
                  secrets=[k for k in (settings.api_key, settings.stream_key, settings.snov_client_secret) if k],
                  sample_rate=settings.log_sample_rate)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="chledger")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="CHLEDGER_CONFIG",
              default=None, help="YAML config file (its shape: docs/operations.md). "
              "Flags and environment override it.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Follow the Companies House stream, fetch what matters within the
    rate limit, and prove it from an append-only ledger."""
    ctx.obj = {"config": config_path}


@cli.command()
@db_option
@known_errors
def migrate(database_path: str | None) -> None:
    """Create or upgrade the database schema.

    \b
    Example:
        python cli.py migrate --db companies.db
    """
    from eventlog.ledger.db import connect
    from eventlog.ledger.migrate import migrate as run
    from eventlog.ledger.schema import current_version

    settings = settings_from(database_path=database_path)
    conn = connect(settings.database_path)
    applied = run(conn)
    if applied:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
        click.echo(f"applied {len(applied)} migration(s) to {settings.database_path}: {names}")
    else:
        click.echo(f"{settings.database_path} is up to date (schema version {current_version(conn)})")


@cli.command()
@db_option
@click.option("--simulate", is_flag=True, help="Run against the built-in Companies House simulator on loopback.")
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after this many seconds.")
@click.option("--progress-interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between one-line progress summaries.")
@click.option("--health-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /health, /metrics and the status page on this port (default: $HEALTH_PORT; 0 = off).")
@known_errors
def ingest(database_path: str | None, simulate: bool, duration: float | None, progress_interval: float,
           health_port: int | None) -> None:
    """Run the worker: stream in, queue, rate-limited fetches, projections.

    Stops cleanly on SIGTERM or Ctrl-C (exit 0). Exit 3 is an emergency stop
    after repeated 429s; the next start follows the stream but calls nothing
    for 12 windows (an hour) after it.

    \b
    Example:
        python cli.py ingest --simulate --duration 60
    """
    from eventlog.commands.ingest import StoppedBeforeStart, early_stop_signals, run_worker

    try:
        with early_stop_signals():  # until the worker's own handlers take over
            settings = settings_from(database_path=database_path, health_port=health_port)
            code = run_worker(settings, simulate=simulate, duration=duration,
                              report=lambda line: click.echo(line, err=True), progress_interval=progress_interval,
                              compressed=_compressed_time(simulate, settings))
    except StoppedBeforeStart as stop:
        click.echo(f"chledger: {stop} before the worker started: stopped without appending anything", err=True)
        sys.exit(0)
    click.echo(f"ledger and tables in {settings.database_path}: see `python cli.py status` and "
               f"`python cli.py audit`", err=True)
    sys.exit(code)


def _compressed_time(simulate: bool, settings: "Settings"):
    """CHLEDGER_COMPRESSED_TIME=START,ORIGIN,RATE runs the worker in compressed time, for
    end-to-end runs over days against a simulator given the same clock (docs/operations.md);
    unset, the wall clock. Only against services on loopback (a simulator: the real Companies
    House must never see a worker whose ledger keeps a fake time), and not with --simulate, whose
    simulators keep the wall clock."""
    from urllib.parse import urlsplit

    from eventlog.clock import CompressedClock
    from eventlog.errors import ConfigError

    text = os.environ.get("CHLEDGER_COMPRESSED_TIME")
    if not text:
        return None
    try:
        clock = CompressedClock.parse(text)
    except ValueError as exc:
        raise ConfigError(f"CHLEDGER_COMPRESSED_TIME={text!r}: {exc} (epoch seconds, epoch seconds, "
                          "simulated seconds per real second)") from None
    if simulate:
        raise ConfigError("CHLEDGER_COMPRESSED_TIME is for a simulator that shares the clock: not with "
                          "--simulate, whose simulators keep the wall clock")
    hosts = {urlsplit(u).hostname for u in (settings.api_url, *settings.stream_urls)}
    if not hosts <= {"127.0.0.1", "localhost", "::1"}:
        raise ConfigError("CHLEDGER_COMPRESSED_TIME is set but the Companies House URLs are not on loopback: "
                          "compressed time is for a simulator, never the real service")
    return clock


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same companies and events.")
@click.option("--events-per-second", type=click.FloatRange(min=0.001), default=20.0, show_default=True,
              help="Live pace of the stream once its backlog is served.")
@click.option("--strike-off-share", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Share of companies proposed for strike-off.")
@click.option("--rate-limit-requests", type=click.IntRange(min=1), default=600, show_default=True,
              help="REST requests allowed per window and key, as Companies House enforces them.")
@click.option("--rate-limit-window", type=click.FloatRange(min=0.001), default=300.0, show_default=True,
              help="The fixed window in seconds, starting at a key's first request.")
@click.option("--error-5xx-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of REST requests answered with a 5xx.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Added latency of every REST response.")
@known_errors
def simulate(host: str, port: int, seed: int, events_per_second: float, strike_off_share: float,
             rate_limit_requests: int, rate_limit_window: float, error_5xx_share: float,
             latency_ms: float) -> None:
    """Serve the Companies House simulator (stream + REST) standalone.

    The key is `sim-key` for both the stream and the REST API.

    \b
    Example:
        python cli.py simulate --port 8765 --seed 7
        STREAMING_API_URL=http://127.0.0.1:8765/companies \\
        COMPANIES_HOUSE_API_URL=http://127.0.0.1:8765 \\
        COMPANIES_HOUSE_API_KEY=sim-key python cli.py ingest
    """
    import asyncio

    from eventlog.simulator import SimulatorConfig, serve_forever

    config = SimulatorConfig(seed=seed, events_per_second=events_per_second,
                             strike_off_share=strike_off_share, rate_limit_requests=rate_limit_requests,
                             rate_limit_window=rate_limit_window, error_5xx_share=error_5xx_share,
                             latency_ms=latency_ms)
    try:
        asyncio.run(serve_forever(config, host, port,
                                  ready=lambda sim: click.echo(f"simulator listening on {sim.base_url}", err=True)))
    except KeyboardInterrupt:
        pass


@cli.command()
@db_option
@click.argument("source", type=click.File("rb"))
@click.option("--name", default=None, help="A name for the batch (default: the file name).")
@click.option("--expires-days", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Days until the batch's record may be cleaned up.")
@known_errors
def backfill(database_path: str | None, source, name: str | None, expires_days: float) -> None:
    """Queue a list of company numbers (one per line) at LOW priority.

    Stream-detected work always goes first; the worker fetches these with
    whatever allowance is left.

    \b
    Example:
        python cli.py backfill companies.txt --name officer-import
    """
    from eventlog.commands.backfill import create_backfill

    settings = settings_from(database_path=database_path)
    batch_id, count, rejected = create_backfill(settings.database_path, source, name or source.name,
                                                expires_days)
    click.echo(f"batch {batch_id}: {count} companies queued at LOW priority"
               + (f", {len(rejected)} lines rejected: {', '.join(rejected[:5])}" if rejected else ""))


@cli.command()
@db_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--all", "keep_all", is_flag=True,
              help="Record every company of the snapshot, not only those of interest (slower, and a much "
                   "larger ledger: see the README).")
@click.option("--dry-run", is_flag=True, help="Read the files and print what the import would do; append nothing.")
@click.option("--snapshot-date", default=None, metavar="YYYY-MM-DD",
              help="The snapshot's date, for files renamed so their name no longer says it.")
@click.option("--expires-days", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Days after which the batch's rows may be cleaned up once it is finished.")
@known_errors
def bulk(database_path: str | None, files: tuple[str, ...], keep_all: bool, dry_run: bool,
         snapshot_date: str | None, expires_days: float) -> None:
    """Import a Basic Company Data snapshot (ZIP or CSV, whole or in parts) and reconcile.

    Records the companies of interest (INTEREST_FIELD / INTEREST_VALUES) and the
    snapshot; those not yet done become one batch at LOW priority (stream work
    always first); companies held as of interest that the snapshot shows are
    not any more leave the pipeline; a whole snapshot reconciles the stream's
    gaps before its date. The same file twice imports nothing new.

    \b
    Example:
        python cli.py bulk BasicCompanyDataAsOneFile-2024-05-01.zip
        python cli.py bulk BasicCompanyData-2024-05-01-part*_7.zip --dry-run
    """
    from eventlog.commands.bulk import run_bulk

    settings = settings_from(database_path=database_path)
    progress, close = _bulk_progress()
    try:
        report = run_bulk(settings, list(files), keep_all=keep_all, dry_run=dry_run, snapshot_date=snapshot_date,
                          expires_days=expires_days, on_progress=progress)
    finally:
        close()
    click.echo(render_bulk(report))


def _bulk_progress():
    """The reader's progress as a bar per stage (hashing, reading) on a terminal: bytes, rows/s, ETA."""
    state: dict[str, Any] = {}

    def close() -> None:
        if "bar" in state:
            state.pop("bar").__exit__(None, None, None)

    def progress(p) -> None:
        if not sys.stderr.isatty():
            return
        if state.get("stage") != p.stage:
            close()
            state.update(stage=p.stage, done=0, started=time.perf_counter(), text="")
            state["bar"] = click.progressbar(length=max(p.bytes_total, 1), label=p.stage, file=sys.stderr,
                                             show_eta=True, show_percent=True, item_show_func=lambda item: item)
            state["bar"].__enter__()
        seconds = time.perf_counter() - state["started"]
        text = (f"{p.rows_read:,} rows ({p.rows_read / seconds:,.0f}/s), {p.rows_kept:,} kept"
                if p.stage == "reading" and seconds > 0 else p.file)
        state["bar"].update(p.bytes_done - state["done"], text)
        state["done"] = p.bytes_done

    return progress, close


def render_bulk(report) -> str:
    """The human lines of `bulk`: what was read, recorded and decided (or would be, dry)."""
    r = report
    would = "would be " if r.dry_run else ""
    lines = [f"dry run: nothing was appended ({r.snapshot_date or 'undated'} snapshot)"] if r.dry_run else []
    for f in r.already_imported:
        lines.append(f"{f.file_name}: imported already ({f.imported_at}, ledger position {f.position}, same "
                     f"SHA-256): not read again")
    if r.read is None:
        lines.append("nothing new to import")
        return "\n".join(lines)
    read = r.read
    rate = read.rows_read / r.seconds if r.seconds > 0 else 0.0
    lines.append(f"snapshot {r.snapshot_date}: {', '.join(r.files)}")
    kept = "every company recorded (--all)" if r.keep_all else f"{r.of_interest:,} of interest"
    lines.append(f"read {read.rows_read:,} rows in {r.seconds:.1f} s ({rate:,.0f} rows/s): {kept}")
    if read.rejected:
        by_reason = ", ".join(f"{n:,} {why}" for why, n in read.rejected_by_reason.items())
        lines.append(f"bad rows skipped: {read.rejected:,} ({by_reason}); first:")
        lines += [f"  {j.file} line {j.line:,}: {j.reason}: {j.excerpt[:80]!r}" for j in read.rejections]
    for what, words in (("status", read.unknown_statuses), ("category", read.unknown_categories)):
        for w in words[:5]:
            lines.append(f"unknown {what} word {w.word!r}: {w.rows:,} rows, first {w.file} line {w.line:,}")
    if read.parts_missing:
        lines.append(f"parts not given: {', '.join(map(str, read.parts_missing))} (a partial snapshot: "
                     "companies missing from it don't leave the pipeline, gaps are not reconciled)")
    recorded = f"{r.companies_recorded:,} companies {would}recorded"
    lines.append(recorded + (f" ({r.companies_known:,} already in the ledger)" if r.companies_known else "")
                 + ("" if r.dry_run else f" in {r.transactions} transactions"))
    if r.batch_companies:
        show = "" if r.dry_run else f": `python cli.py batch show {r.batch_id}`"
        lines.append(f"batch {r.batch_id or '(new)'}: {r.batch_companies:,} companies of interest not yet done "
                     f"{would}queued at LOW priority (stream work first){show}")
    else:
        lines.append("no batch: every company of interest is done or under way already")
    if r.in_hand or r.newer:
        lines.append(f"left alone: {r.in_hand:,} done or under way, {r.newer:,} with newer stream or REST data")
    if r.left:
        lines.append(f"{r.left:,} companies no longer of interest {would}taken out of the pipeline, e.g.:")
        lines += [f"  {n}: {why}" for n, why in r.left_examples[:5]]
    if r.gaps_reconciled:
        lines.append(f"stream gaps before {r.snapshot_date} {would}marked reconciled")
    if r.snapshot_position is not None:
        lines.append(f"snapshot recorded at ledger position {r.snapshot_position}")
    return "\n".join(lines)


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the batches as JSON.")
@known_errors
def batches(database_path: str | None, as_json: bool) -> None:
    """List the backfill batches, newest first: status, jobs finished, failed.

    \b
    Example:
        python cli.py batches
        python cli.py batch show 3f2a9c
    """
    import msgspec

    from eventlog.ops.batch_report import list_batches, render_batches

    settings = settings_from(database_path=database_path)
    rows = list_batches(settings.database_path)
    click.echo(msgspec.json.format(msgspec.json.encode(rows), indent=2).decode() if as_json else render_batches(rows))


@cli.group()
def batch() -> None:
    """Watch or cancel one backfill batch (`batch show ID`, `batch cancel ID`).

    \b
    Example:
        python cli.py batch show 3f2a9c --follow
        python cli.py batch cancel 3f2a9c --reason "wrong list"
    """


@batch.command("show")
@db_option
@click.argument("batch_id")
@click.option("--follow", is_flag=True, help="Keep showing its progress (a live bar on a terminal) until it finishes.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between updates with --follow.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@known_errors
def batch_show(database_path: str | None, batch_id: str, follow: bool, interval: float, as_json: bool) -> None:
    """One batch: jobs by status and stage, error codes, ETA from the window's real pace.

    BATCH_ID may be the start of the id (at least 4 characters).

    \b
    Example:
        python cli.py batch show 3f2a9c
        python cli.py batch show 3f2a9c --follow
    """
    import msgspec

    from eventlog.ops.batch_report import follow as follow_batch, read_batch, render_batch

    settings = settings_from(database_path=database_path)
    if not follow:
        report = read_batch(settings.database_path, settings, batch_id)
        click.echo(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() if as_json
                   else render_batch(report))
        return
    report = _follow(follow_batch(settings.database_path, settings, batch_id, interval=interval), as_json)
    click.echo(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() if as_json
               else render_batch(report))


def _follow(reports, quiet: bool):
    """Draw the reports as a live bar on a terminal (a line per change elsewhere); the last report."""
    from eventlog.ops.batch_report import eta_text

    bar, shown, last = None, None, None
    try:
        for last in reports:
            b = last.batch
            if sys.stderr.isatty():
                if bar is None:
                    bar = click.progressbar(length=max(b.total_jobs, 1), label=f"batch {b.id[:8]}", file=sys.stderr,
                                            show_percent=True, show_eta=False, item_show_func=lambda item: item)
                    bar.__enter__()
                bar.update(last.done - bar.pos, f"{last.done:,}/{b.total_jobs:,} {b.status}, {eta_text(last)}")
            elif not quiet and (last.done, b.status) != shown:
                click.echo(f"{last.generated_at} {b.status}: {last.done:,}/{b.total_jobs:,} jobs finished, "
                           f"{eta_text(last)}", err=True)
                shown = (last.done, b.status)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    return last


@batch.command("cancel")
@db_option
@click.argument("batch_id")
@click.option("--reason", default="", help="Why, for the ledger.")
@known_errors
def batch_cancel(database_path: str | None, batch_id: str, reason: str) -> None:
    """Cancel a batch: its queued work is dropped, work in flight finishes and is recorded.

    Recorded in the ledger (`batch.cancelled`). Stream work for the same
    companies goes on.

    \b
    Example:
        python cli.py batch cancel 3f2a9c --reason "wrong list"
    """
    from eventlog.commands.batches import cancel_batch

    settings = settings_from(database_path=database_path)
    r = cancel_batch(settings, batch_id, reason)
    if not r.cancelled:
        click.echo(f"batch {r.batch_id} is {r.was} already: nothing to cancel")
        return
    click.echo(f"batch {r.batch_id} cancelled (ledger position {r.position}): the work of {r.dropped:,} jobs "
               f"dropped (queued, or not yet sent); {r.still_open:,} jobs still open finish as their work in "
               "flight (or their stream work) does")


@cli.command()
@db_option
@click.option("--target", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Companies with officers needed for READY FOR STREAMING API.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@known_errors
def status(database_path: str | None, target: int, as_json: bool) -> None:
    """Where the pipeline stands: companies, officers against a target, window, queue, stream lag.

    \b
    Example:
        python cli.py status --target 10000
    """
    from eventlog.ops.status_report import read_status

    settings = settings_from(database_path=database_path)
    show_status(read_status(settings.database_path, target, settings=settings), as_json)


def show_status(report: StatusReport, as_json: bool) -> None:
    """Print a `StatusReport`: its human lines, or the whole report as indented JSON."""
    import msgspec

    from eventlog.ops.status_report import render_status

    click.echo(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() if as_json
               else render_status(report))


@cli.command()
@db_option
@click.option("--only", default=None, metavar="NAME",
              help="Rebuild one projection (companies, officers, company_processing_state, ...).")
@click.option("--verify", is_flag=True, help="Rebuild into scratch tables and report differences; change nothing.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Processes that rebuild projections side by side (default: one per usable core, "
                   "up to 3, for a ledger of 50,000 entries or more; --verify always uses one).")
@known_errors
def replay(database_path: str | None, only: str | None, verify: bool, jobs: int | None) -> None:
    """Rebuild every projection from the ledger (after a bug fix, or a projector upgrade).

    Atomic: a replay that is killed leaves the old tables as they were. Refused
    while a worker holds the database. Makes no API call.

    \b
    Example:
        python cli.py replay --db companies.db
        python cli.py replay --verify
        python cli.py replay --jobs 1      # one process, as on a one-core machine
    """
    settings = settings_from(database_path=database_path)
    sys.exit(replay_and_show(settings.database_path, only, verify, jobs))


def replay_and_show(path: str, only: str | None, verify: bool, jobs: int | None = None) -> int:
    """Run `replay` (or `replay --verify`) on `path` and print what it did; the exit code.

    0 done or verified equal, 1 verify found differences (each listed); known
    failures raise, for `known_errors`.
    """
    from eventlog.commands.replay import run_replay, run_verify

    if verify:
        checked = run_verify(path, only)
        which = checked.only or f"all {len(checked.projections)} projections"
        if not checked.differences:
            click.echo(f"verify: {which} match the ledger ({checked.entries:,} entries); nothing was changed")
            return 0
        click.echo(f"verify: {len(checked.differences)} difference(s) between the live tables and the ledger "
                   f"({which}); nothing was changed, `python cli.py replay` rebuilds them:")
        for d in checked.differences:
            click.echo(f"  {d}")
        return 1
    progress, close = _progress_bar("replaying", rate="entries")
    try:
        done = run_replay(path, only, jobs=jobs, progress=progress,
                          migrated=lambda n: click.echo(f"applied {n} migration(s) first"))
    finally:
        close()
    click.echo(f"replayed {done.entries:,} entries into {', '.join(done.projections)} "
               f"in {done.seconds:.1f} s ({done.rate:,.0f} entries/s"
               f"{f', {done.processes} processes' if done.processes > 1 else ''})")
    return 0


@cli.command()
@db_option
@click.option("--since", default=None, metavar="ISO", help="Only requests sent at or after this time (UTC).")
@click.option("--until", default=None, metavar="ISO", help="Only requests sent before this time (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Requests allowed per window (default: the last worker.started's, else 600).")
@click.option("--window", type=click.FloatRange(min=0.001), default=None,
              help="Window in seconds (default: the last worker.started's, else 300).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON (keys: eventlog/audit/report.md).")
@click.option("--plot", default=None, metavar="FILE", help="Draw requests per window to FILE.png/.svg (needs the plot extra).")
@known_errors
def audit(database_path: str | None, since: str | None, until: str | None, limit: int | None,
          window: float | None, as_json: bool, plot: str | None) -> None:
    """Prove from the ledger that the key never exceeded its limit.

    Exit 0 when compliant, 1 when the ledger shows a violation (each listed),
    2 when it could not check (missing or corrupt database).

    \b
    Example:
        python cli.py audit --db companies.db
        python cli.py audit --json --window 300 --limit 600
    """
    from eventlog.audit import audit as audit_ledger, summary, to_json

    settings = settings_from(database_path=database_path)
    report = audit_ledger(settings.database_path, since=since, until=until, limit=limit,
                          window=window, plot=plot)
    click.echo(to_json(report) if as_json else summary(report))
    if plot and not as_json:
        click.echo(f"plot written to {plot}")
    sys.exit(report.exit_code)


@cli.command("config")
@db_option
@known_errors
def config_cmd(database_path: str | None) -> None:
    """Print the effective settings and where each came from, keys masked.

    \b
    Example:
        python cli.py config
        python cli.py --config chledger.yaml config
    """
    import os

    from eventlog.config.file import read_config_file, render_effective

    flags = {"database_path": database_path}
    settings = settings_from(**flags)
    path = _config_path()
    click.echo(render_effective(settings, flags=flags, env=os.environ,
                                file_values=read_config_file(path) if path else None, config_path=path))


def _progress_bar(label: str, *, rate: str | None = None):
    """A progress callback `(done, total)` that draws a bar on a terminal and stays quiet otherwise.

    With `rate` (the unit counted, e.g. "entries"), the bar also shows the
    percentage and the speed in that unit per second. Returns the callback and
    a `close()` to call when the work is over.
    """
    state: dict[str, Any] = {}
    started = time.perf_counter()

    def speed(done: int | None) -> str:
        seconds = time.perf_counter() - started
        return f"{(done or 0) / seconds:,.0f} {rate}/s" if seconds > 0 and done else ""

    def progress(done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if "bar" not in state:
            options: dict[str, Any] = {"show_percent": True, "item_show_func": speed} if rate else {}
            state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, **options)
            state["bar"].__enter__()
            state["done"] = 0
        state["bar"].update(done - state["done"], done)
        state["done"] = done

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)

    return progress, close


@cli.command()
@db_option
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "sqlite", "parquet"]), default="csv",
              show_default=True,
              help="csv: a row per officer appointment; jsonl: a company per line with its officers; "
                   "sqlite: a consistent copy of the whole database. With --leads: the leads as CSV, JSON "
                   "lines, a SQLite file (table leads) or Parquet (needs the parquet extra).")
@click.option("--leads", is_flag=True, help="The customer's leads: one row per current officer of each "
              "company of interest, with its domain and e-mails when enriched.")
@click.option("--name", default=None, help="(--leads) the delivery's name, for --since last (default: OUT's file name).")
@click.option("--since", default=None, metavar="DATE|last",
              help="(--leads) only rows updated after DATE, or after the last export of this --name.")
@click.option("--status", "statuses", multiple=True, help="(--leads) company_status or its detail is this value (repeatable).")
@click.option("--sic", multiple=True, help="(--leads) a SIC code or its first digits (repeatable).")
@click.option("--postcode", "postcodes", multiple=True, help="(--leads) registered postcode starts with this (repeatable).")
@click.option("--region", "regions", multiple=True, help="(--leads) registered address's region or town (repeatable).")
@click.option("--min-age", type=int, default=None, metavar="YEARS", help="(--leads) incorporated at least YEARS ago.")
@click.option("--max-age", type=int, default=None, metavar="YEARS", help="(--leads) incorporated less than YEARS ago.")
@click.option("--role", "roles", multiple=True, help="(--leads) officer role, e.g. director (repeatable).")
@click.option("--with-email", is_flag=True, help="(--leads) only officers with an e-mail found.")
@click.option("--all-companies", is_flag=True, help="(--leads) every company, not only those of interest.")
@click.option("--bom", is_flag=True, help="(--leads, csv) start with a UTF-8 BOM, for Excel.")
@known_errors
def export(database_path: str | None, out: str, fmt: str, leads: bool, name: str | None, since: str | None,
           statuses: tuple[str, ...], sic: tuple[str, ...], postcodes: tuple[str, ...], regions: tuple[str, ...],
           min_age: int | None, max_age: int | None, roles: tuple[str, ...], with_email: bool,
           all_companies: bool, bom: bool) -> None:
    """Export companies with their officers (CSV, JSON lines, or a SQLite copy), or, with
    --leads, the customer's leads.

    Taken from one consistent snapshot: safe while the worker runs. A lead export leaves out
    suppressed and forgotten people (and says how many), and is recorded in the ledger.

    \b
    Example:
        python cli.py export companies.csv
        python cli.py export --format jsonl companies.jsonl
        python cli.py export --leads leads.csv --role director --with-email --bom
        python cli.py export --leads weekly.parquet --format parquet --since last
    """
    leads_only = [flag for flag, value in (("--name", name), ("--since", since), ("--status", statuses),
                  ("--sic", sic), ("--postcode", postcodes), ("--region", regions), ("--min-age", min_age),
                  ("--max-age", max_age), ("--role", roles), ("--with-email", with_email),
                  ("--all-companies", all_companies), ("--bom", bom)) if value not in (None, (), False)]
    if not leads:
        if fmt == "parquet":
            raise click.UsageError("--format parquet is for --leads exports")
        if leads_only:
            raise click.UsageError(f"{leads_only[0]} is for --leads exports")
    settings = settings_from(database_path=database_path)
    if leads:
        from eventlog.commands.leads import export_leads
        from eventlog.dataset.leads import LeadFilters

        filters = LeadFilters(statuses=statuses, sic=sic, postcodes=postcodes, regions=regions,
                              min_age_years=min_age, max_age_years=max_age, roles=roles, with_email=with_email,
                              since=since, all_companies=all_companies)
        progress, close = _progress_bar("exporting leads", rate="rows")
        try:
            lead = export_leads(settings, out, fmt, filters=filters, name=name, bom=bom,  # type: ignore[arg-type]
                                progress=progress)
        finally:
            close()
        click.echo(f"{lead.path}: {lead.rows} leads as of ledger position {lead.position}"
                   + (f", updated after {lead.since}" if lead.since else "")
                   + f"; withheld {lead.withheld} suppressed row(s) and {lead.erased} of forgotten people")
        return
    from eventlog.dataset.export import export as run

    progress, close = _progress_bar("exporting")
    try:
        report = run(settings.database_path, out, fmt, progress=progress)  # type: ignore[arg-type]
    finally:
        close()
    click.echo(f"{report.path}: {report.companies} companies, {report.officers} officers "
               f"as of ledger position {report.position}"
               + (f" ({report.orphan_officers} officers without a company row left out)"
                  if report.orphan_officers else ""))


@cli.group()
def suppress() -> None:
    """The people and companies never to deliver: e-mail addresses, officer ids, company numbers.

    Recorded in the ledger (the address of an e-mail only as its SHA-256); every lead export
    leaves them out and says how many rows it withheld.

    \b
    Example:
        python cli.py suppress add jane@example.co.uk
        python cli.py suppress list
    """


@suppress.command("add")
@db_option
@click.argument("target")
@known_errors
def suppress_add(database_path: str | None, target: str) -> None:
    """Suppress TARGET: an e-mail address, an officer id or a company number (or officer:/company:/email: prefixed).

    \b
    Example:
        python cli.py suppress add jane@example.co.uk
        python cli.py suppress add company:05954546
    """
    from eventlog.commands.leads import suppress_add as run

    report = run(settings_from(database_path=database_path), target)
    click.echo(f"{report.subject}: " + ("suppressed" if report.changed else "already suppressed"))


@suppress.command("remove")
@db_option
@click.argument("target")
@known_errors
def suppress_remove(database_path: str | None, target: str) -> None:
    """Deliver TARGET again.

    \b
    Example:
        python cli.py suppress remove company:05954546
    """
    from eventlog.commands.leads import suppress_remove as run

    report = run(settings_from(database_path=database_path), target)
    click.echo(f"{report.subject}: " + ("no longer suppressed" if report.changed else "was not suppressed"))


@suppress.command("list")
@db_option
@known_errors
def suppress_list(database_path: str | None) -> None:
    """List what is suppressed (e-mail addresses show as their SHA-256).

    \b
    Example:
        python cli.py suppress list
    """
    from eventlog.commands.leads import suppress_list as run

    rows = run(settings_from(database_path=database_path))
    for row in rows:
        click.echo(f"{row.subject}\tsince {row.since}")
    click.echo(f"{len(rows)} suppressed", err=True)


@cli.command()
@db_option
@click.argument("who")
@known_errors
def forget(database_path: str | None, who: str) -> None:
    """Erase a person: WHO is an officer id or an e-mail address.

    Their key is deleted (what the ledger holds of them sealed can't be read again), their rows
    rewritten as [erased], the fact recorded without the data, and the file scrubbed (VACUUM, WAL
    truncated). The hash chain and the audit are unchanged. Stop the worker first on a large
    database (docs/data-protection.md).

    \b
    Example:
        python cli.py forget pQxZ7mXw3kLrT9bYc2VnD8sHfJ1
        python cli.py forget jane@example.co.uk
    """
    from eventlog.commands.leads import forget_person

    outcome = forget_person(settings_from(database_path=database_path), who)
    for r in outcome.subjects:
        click.echo(f"{r.subject}: key " + ("deleted" if r.key_deleted else "absent (none, or deleted before)")
                   + ("" if r.newly_listed else "; already forgotten"))
    if outcome.complete:
        click.echo("scrubbed: database rebuilt, WAL truncated")
    else:
        click.echo("chledger: erasure recorded but the scrub is incomplete (another connection was reading or "
                   "writing): run forget again once it is done", err=True)
        sys.exit(1)


@cli.command()
@db_option
@click.argument("out", type=click.Path(dir_okay=False))
@known_errors
def backup(database_path: str | None, out: str) -> None:
    """Copy the database with SQLite's online backup API (safe while the worker runs).

    \b
    Example:
        python cli.py backup /var/data/backups/companies-$(date +%F).db
    """
    from eventlog.dataset.export import backup as run

    settings = settings_from(database_path=database_path)
    progress, close = _progress_bar("backing up")
    try:
        report = run(settings.database_path, out, progress=progress)
    finally:
        close()
    click.echo(f"{report.path}: a consistent copy as of ledger position {report.position}")


def main() -> None:
    cli(prog_name="chledger")


if __name__ == "__main__":
    cli()
