"""What the enrichment tests share: a database seeded with companies of interest and their
officers (real ledger entries through the real projectors), a clock the simulator and the stage
share, and a way to run the stage for a while against the Snov.io simulator on loopback.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterable, Sequence

import apsw
import msgspec

import projections
from eventlog.clock import from_epoch
from eventlog.config.settings import Settings
from eventlog.ledger.db import connect
from eventlog.ledger.entries import RequestQueued, ResponseReceived, StreamEvent
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.simulator.snov import SIM_CLIENT_ID, SIM_CLIENT_SECRET, SnovSimulatorConfig, running_snov_simulator
from eventlog.worker.enrich.stage import Enricher
from eventlog.worker.sender import rest_session

Officer = tuple[str, str, str]  # officer id, "SURNAME, Forenames", role
Company = tuple[str, str, Sequence[Officer]]  # number, name, officers


class RealClock:
    """Wall-clock time plus an offset a test may push forward (to expire tokens on the server)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    __call__ = now  # the simulator takes a callable


def company(i: int, officers: int = 2, name: str | None = None) -> Company:
    number = f"{i:08d}"
    people = [(f"off{i}x{j}", f"{_SURNAMES[(i + j) % len(_SURNAMES)]}, {_FIRST[(i * 3 + j) % len(_FIRST)]}", "director")
              for j in range(officers)]
    return number, name or f"{_WORDS[i % len(_WORDS)]} {_WORDS[(i * 7 + 3) % len(_WORDS)]} {i} LIMITED", people


_WORDS = ("ACORN", "BRAMBLE", "CEDAR", "DAISY", "ELDER", "FERN", "GORSE", "HAZEL", "IVY", "JUNIPER", "LARCH")
_SURNAMES = ("SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "PATEL", "WRIGHT")
_FIRST = ("John", "Mary", "Peter", "Anne", "David", "Sarah", "James", "Emma", "Robert", "Laura", "Aisha")


def officer_page(number: str, officers: Iterable[Officer]) -> bytes:
    items = [{"name": name, "officer_role": role, "appointed_on": "2020-01-01",
              "links": {"officer": {"appointments": f"/officers/{oid}/appointments"},
                        "self": f"/company/{number}/appointments/{oid}a"}}
             for oid, name, role in officers]
    return msgspec.json.encode({"items": items, "total_results": len(items), "kind": "officer-list"})


def seed(ledger: Ledger, companies: Iterable[Company], timepoint: int = 1) -> None:
    """Each company on the stream with the status of interest, then its officers fetched."""
    for i, (number, name, people) in enumerate(companies):
        data = {"company_number": number, "company_name": name, "company_status": "active",
                "company_status_detail": "active-proposal-to-strike-off"}
        ledger.append(StreamEvent(stream="companies", timepoint=timepoint + i, published_at="2023-11-14T22:00:00",
                                  change="changed", resource_kind="company-profile", resource_id=number,
                                  resource_uri=f"/company/{number}", company_number=number,
                                  data=msgspec.Raw(msgspec.json.encode(data))))
        rid = f"officers-{number}-seed"
        ledger.append(RequestQueued(request_id=rid, kind="officers", company_number=number))
        ledger.append(ResponseReceived(request_id=rid, kind="officers", company_number=number, status=200,
                                       elapsed_ms=5, body=msgspec.Raw(officer_page(number, people))))


def open_db(path: Path | str, clock=None) -> tuple[apsw.Connection, Ledger]:
    conn = connect(path)
    migrate(conn)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    return conn, ledger


def stage_settings(base_url: str, **overrides) -> Settings:
    values = dict(snov_client_id=SIM_CLIENT_ID, snov_client_secret=SIM_CLIENT_SECRET, snov_api_url=base_url,
                  request_timeout=5.0, rate_limit_slack=0.2)
    values.update(overrides)
    return Settings(**values)


async def run_stage(ledger: Ledger, settings: Settings, clock, *, seconds: float, poll_interval: float = 0.05,
                    until=None) -> Enricher:
    """Run the stage for at most `seconds` (or until `until(enricher)` is true); its Enricher."""
    stop = asyncio.Event()
    async with rest_session() as session:
        enricher = Enricher(settings, ledger, session, clock=clock, stop=stop, poll_interval=poll_interval,
                            idle_wait=0.05)
        task = asyncio.create_task(enricher.run())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not task.done():
            if until is not None and until(enricher):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 10)
    return enricher


def table(conn: apsw.Connection, name: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()


__all__ = ["RealClock", "company", "seed", "open_db", "stage_settings", "run_stage", "table", "officer_page",
           "running_snov_simulator", "SnovSimulatorConfig", "from_epoch"]
