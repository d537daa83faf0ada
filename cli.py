"""chledger's command line: parse options, call one function, print.

The work lives in `eventlog/` and `projections/`; every known failure is a
`ChledgerError`, turned here into one line on stderr and its exit code.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from eventlog.errors import ChledgerError

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


def settings_from(**flags: Any):
    from eventlog.settings import load_settings

    return load_settings(flags)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chledger", prog_name="chledger")
def cli() -> None:
    """Follow the Companies House stream, fetch what matters within the
    rate limit, and prove it from an append-only ledger."""


@cli.command()
@db_option
@known_errors
def migrate(database_path: str | None) -> None:
    """Create or upgrade the database schema.

    \b
    Example:
        python cli.py migrate --db companies.db
    """
    from eventlog.db import connect
    from eventlog.migrate import current_version, migrate as run

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
@known_errors
def ingest(database_path: str | None, simulate: bool, duration: float | None) -> None:
    """Run the worker: stream in, queue, rate-limited fetches, projections.

    \b
    Example:
        python cli.py ingest --simulate --duration 60
    """
    raise click.ClickException("ingest is not built yet (issue: the worker)")


@cli.command()
@db_option
@known_errors
def replay(database_path: str | None) -> None:
    """Rebuild every projection from the ledger.

    \b
    Example:
        python cli.py replay --db companies.db
    """
    raise click.ClickException("replay is not built yet (issue: projections and replay)")


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@known_errors
def audit(database_path: str | None, as_json: bool) -> None:
    """Prove from the ledger that the key never exceeded its limit.

    \b
    Example:
        python cli.py audit --db companies.db
    """
    raise click.ClickException("audit is not built yet (issue: audit)")


def main() -> None:
    cli(prog_name="chledger")


if __name__ == "__main__":
    cli()
