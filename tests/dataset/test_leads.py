"""The lead export: rows, filters, `--since`, formats, suppression, forgotten people.

The database is built from real ledger entries through the real projectors: companies on the
stream, officer pages sealed as the sender seals them, Snov.io answers as the stage records them
(tests/support/leads_ledger.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import apsw
import pytest

from eventlog.clock import FixedClock
from eventlog.commands.leads import export_leads, forget_person, suppress_add, suppress_list, suppress_remove
from eventlog.config.settings import Settings
from eventlog.dataset.leads import CSV_COLUMNS, COLUMNS, LeadFilters, escape_cell
from eventlog.errors import DatasetError
from support.leads_ledger import add_company, add_domain, add_email
from support.snov_stage import open_db

TODAY = dt.date(2024, 6, 1)
START = 1_700_000_000.0
DANGEROUS = ("=SUM(A1:A2)", "+44 20 7946 0000", "-2+3", "@cmd", "\tTABBED", "\rRETURN")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db(tmp_path: Path, clock: FixedClock) -> Path:
    path = tmp_path / "companies.db"
    conn, ledger = open_db(path, clock)
    add_company(ledger, "00000001", [("o1a", "ALPHA, Ann", "director"), ("o1b", "ALPHA, Bob", "secretary"),
                                     ("o1c", "ALPHA, Old", "director", "2021-05-05")],
                name="ALPHA WIDGETS LIMITED", sic=("62020", "62090"), postcode="HG1 1AA", region="North Yorkshire",
                created="2010-01-01")
    add_company(ledger, "00000002", [("o2a", "BRAVO, Bea", "director")], name="BRAVO LIMITED", sic=("47110",),
                postcode="EC1A 1BB", region=None, locality="London", created="2022-01-01")
    add_company(ledger, "SC000003", [("o3a", "CHARLIE, Cal", "llp-member")], name="CHARLIE LLP", sic=("62012",),
                postcode="EH1 1AA", region="Midlothian", created="2000-01-01", detail="active")  # not of interest
    add_company(ledger, "00000004", [("o4a", "DELTA, Dee", "director")], name="DELTA LIMITED", sic=("70229",),
                status="dissolved", detail="active-proposal-to-strike-off", postcode="HG2 9ZZ", region=None,
                locality="Leeds", created="2019-06-02")
    add_domain(ledger, "00000001", "ALPHA WIDGETS LIMITED", "alpha.example")
    add_email(ledger, "o1a", "00000001", "alpha.example", [("ann@alpha.example", "valid"),
                                                           ("a.alpha@alpha.example", "unknown")])
    conn.close()
    return path


def settings(db: Path) -> Settings:
    return Settings(database_path=str(db))


def run(db: Path, out: Path, fmt: str = "csv", clock=None, **kw):
    return export_leads(settings(db), str(out), fmt, today=TODAY, clock=clock, **kw)  # type: ignore[arg-type]


def csv_rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with open(path, newline="", encoding=encoding) as fh:
        return list(csv.DictReader(fh))


def officers_in(path: Path) -> list[str]:
    return [r["officer_id"] for r in csv_rows(path)]


def test_one_row_per_current_officer_of_each_company_of_interest_with_its_enrichment(db, tmp_path):
    report = run(db, tmp_path / "l.csv")
    rows = csv_rows(tmp_path / "l.csv")
    # o1c resigned; SC000003 is not of interest (its detail is "active").
    assert [r["officer_id"] for r in rows] == ["o1a", "o1b", "o2a", "o4a"] and report.rows == 4
    ann = rows[0]
    assert ann["officer_name"] == "ALPHA, Ann" and ann["officer_role"] == "director"
    assert ann["company_name"] == "ALPHA WIDGETS LIMITED" and ann["sic_codes"] == "62020; 62090"
    assert ann["registered_postcode"] == "HG1 1AA" and ann["incorporated_on"] == "2010-01-01"
    assert (ann["birth_month"], ann["birth_year"], ann["nationality"]) == ("7", "1971", "British")
    assert ann["correspondence_address"] == "1, Tulip Lane, Harrogate, HG1 1AA"
    assert ann["domain"] == "alpha.example"
    assert ann["emails"] == "ann@alpha.example; a.alpha@alpha.example" and ann["email_statuses"] == "valid; unknown"
    assert rows[1]["domain"] == "alpha.example" and rows[1]["emails"] == ""  # the company's domain, no e-mail
    assert rows[2]["domain"] == "" and list(rows[0]) == list(CSV_COLUMNS)
    everyone = run(db, tmp_path / "all.csv", filters=LeadFilters(all_companies=True))
    assert officers_in(tmp_path / "all.csv") == ["o1a", "o1b", "o2a", "o4a", "o3a"] and everyone.rows == 5


@pytest.mark.parametrize("filters, expected", [
    (LeadFilters(statuses=("dissolved",)), ["o4a"]),
    (LeadFilters(statuses=("active-proposal-to-strike-off",)), ["o1a", "o1b", "o2a", "o4a"]),
    (LeadFilters(sic=("62",)), ["o1a", "o1b"]),
    (LeadFilters(sic=("47110", "70229")), ["o2a", "o4a"]),
    (LeadFilters(postcodes=("hg",)), ["o1a", "o1b", "o4a"]),
    (LeadFilters(postcodes=("EC1A1",)), ["o2a"]),
    (LeadFilters(regions=("north yorkshire",)), ["o1a", "o1b"]),
    (LeadFilters(regions=("London",)), ["o2a"]),  # no region: the town counts
    (LeadFilters(min_age_years=5), ["o1a", "o1b"]),  # on or before 2019-06-01: not o4a (a day later)
    (LeadFilters(max_age_years=5), ["o2a", "o4a"]),
    (LeadFilters(roles=("secretary",)), ["o1b"]),
    (LeadFilters(with_email=True), ["o1a"]),
    (LeadFilters(all_companies=True, roles=("llp-member",), sic=("620",)), ["o3a"]),
])
def test_filters(db, tmp_path, filters, expected):
    run(db, tmp_path / "f.csv", filters=filters)
    assert officers_in(tmp_path / "f.csv") == expected


@pytest.mark.parametrize("filters", [LeadFilters(sic=("62a",)), LeadFilters(postcodes=("HG-1",)),
                                     LeadFilters(since="yesterday"), LeadFilters(min_age_years=-1)])
def test_a_bad_filter_is_refused_naming_it_and_writes_nothing(db, tmp_path, filters):
    with pytest.raises(DatasetError):
        run(db, tmp_path / "bad.csv", filters=filters)
    assert not (tmp_path / "bad.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if "bad" in p.name] == []


def test_since_last_delivers_only_the_rows_new_since_the_last_export_of_that_name(db, tmp_path, clock):
    first = run(db, tmp_path / "w1.csv", clock=clock, name="weekly", filters=LeadFilters(since="last"))
    assert first.since is None and first.rows == 4  # no earlier export of that name: everything
    clock.advance(3600)
    conn, ledger = open_db(db, clock)
    add_company(ledger, "00000005", [("o5a", "ECHO, Eve", "director")], name="ECHO LIMITED")
    add_email(ledger, "o2a", "00000002", "bravo.example", [("bea@bravo.example", "valid")])  # enrichment arrives
    conn.close()
    clock.advance(60)
    second = run(db, tmp_path / "w2.csv", clock=clock, name="weekly", filters=LeadFilters(since="last"))
    assert second.since == first.as_of
    assert officers_in(tmp_path / "w2.csv") == ["o2a", "o5a"] and second.rows == 2
    third = run(db, tmp_path / "w3.csv", clock=clock, name="weekly", filters=LeadFilters(since="last"))
    assert third.rows == 0 and officers_in(tmp_path / "w3.csv") == []
    # Another name has its own history; a date works too.
    assert run(db, tmp_path / "m.csv", clock=clock, name="monthly", filters=LeadFilters(since="last")).rows == 5
    assert run(db, tmp_path / "d.csv", clock=clock, filters=LeadFilters(since="2023-11-14T23:00:00")).rows == 2
    conn = apsw.Connection(str(db))
    recorded = conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'export.leads'").fetchone()[0]
    conn.close()
    assert recorded == 5


def test_csv_escapes_formulas_and_round_trips_through_the_csv_module(tmp_path, clock):
    db = tmp_path / "f.db"
    conn, ledger = open_db(db, clock)
    people = [(f"x{i}", name, "director") for i, name in enumerate(DANGEROUS)]
    add_company(ledger, "00000009", people, name="=1+1 LIMITED", occupation="@SUM(1)")
    conn.close()
    report = run(db, tmp_path / "f.csv", bom=True)
    raw = (tmp_path / "f.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and report.rows == len(DANGEROUS)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    names = [r[CSV_COLUMNS.index("officer_name")] for r in rows[1:]]
    assert names == ["'" + n for n in DANGEROUS]
    assert all(r[CSV_COLUMNS.index("company_name")] == "'=1+1 LIMITED" for r in rows[1:])
    assert all(r[CSV_COLUMNS.index("occupation")] == "'@SUM(1)" for r in rows[1:])
    # No cell a spreadsheet would run, and writing the cells read back gives the same bytes.
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)
    again = io.StringIO(newline="")
    csv.writer(again).writerows(rows)
    assert again.getvalue().encode() == raw[3:]
    assert escape_cell("plain") == "plain" and escape_cell("") == ""
    plain = run(db, tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").read_bytes().startswith(b"\xef\xbb\xbf") and plain.rows == report.rows
    # JSON lines keep the value as it is: escaping is for spreadsheets.
    run(db, tmp_path / "f.jsonl", "jsonl")
    lines = [json.loads(x) for x in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [x["officer_name"] for x in lines] == list(DANGEROUS)


def test_parquet_schema_and_rows(db, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) is not installed here")
    import pyarrow as pa

    report = run(db, tmp_path / "l.parquet", "parquet")
    schema = pq.read_schema(tmp_path / "l.parquet")
    assert schema.names == list(COLUMNS)
    assert schema.field("sic_codes").type == pa.list_(pa.string())
    assert schema.field("birth_year").type == pa.int32()
    email = schema.field("emails").type.value_type
    assert [email.field(i).name for i in range(email.num_fields)][:2] == ["email", "smtp_status"]
    table = pq.read_table(tmp_path / "l.parquet").to_pylist()
    assert report.rows == len(table) == 4
    assert table[0]["emails"][0]["email"] == "ann@alpha.example" and table[0]["sic_codes"] == ["62020", "62090"]


def _export_all(db: Path, tmp_path: Path, tag: str) -> dict[str, tuple[int, set[str]]]:
    """Every format: (withheld, officer ids delivered)."""
    out = {}
    for fmt in ("csv", "jsonl", "sqlite", "parquet"):
        if fmt == "parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                continue
        path = tmp_path / f"{tag}.{fmt}"
        report = run(db, path, fmt)
        if fmt == "csv":
            ids = {r["officer_id"] for r in csv_rows(path)}
        elif fmt == "jsonl":
            ids = {json.loads(x)["officer_id"] for x in path.read_text().splitlines()}
        elif fmt == "sqlite":
            conn = apsw.Connection(str(path))
            ids = {r[0] for r in conn.execute("SELECT officer_id FROM leads")}
            conn.close()
        else:
            ids = {r["officer_id"] for r in pq.read_table(path).to_pylist()}
        assert len(ids) == report.rows
        out[fmt] = (report.withheld, ids)
    return out


def test_suppression_is_honoured_by_every_format_and_counted(db, tmp_path):
    s = settings(db)
    assert suppress_add(s, "ANN@alpha.example ").changed  # an address: stored as its hash
    assert suppress_add(s, "company:2").subject == "company:00000002"
    assert suppress_add(s, "o4a").subject == "officer:o4a"
    assert not suppress_add(s, "officer:o4a").changed  # already
    for fmt, (withheld, ids) in _export_all(db, tmp_path, "s").items():
        assert (withheld, ids) == (3, {"o1b"}), fmt
    listed = [x.subject for x in suppress_list(s)]
    assert listed[1:] == ["company:00000002", "officer:o4a"] and listed[0].startswith("email:")
    conn = apsw.Connection(str(db))
    in_ledger = conn.execute("SELECT count(*) FROM event_log WHERE instr(lower(event_data), 'ann@alpha') > 0")
    assert in_ledger.fetchone()[0] == 0  # the address is never recorded
    conn.close()
    assert suppress_remove(s, "00000002").changed and not suppress_remove(s, "00000002").changed
    for fmt, (withheld, ids) in _export_all(db, tmp_path, "r").items():
        assert (withheld, ids) == (2, {"o1b", "o2a"}), fmt


def test_a_forgotten_officer_is_never_delivered(db, tmp_path):
    outcome = forget_person(settings(db), "o2a", vacuum=False)
    assert outcome.subjects[0].key_deleted
    report = run(db, tmp_path / "l.csv")
    assert officers_in(tmp_path / "l.csv") == ["o1a", "o1b", "o4a"] and report.erased == 1
    assert "BRAVO, Bea" not in (tmp_path / "l.csv").read_text()


def test_cli_lead_export_suppress_and_one_line_errors(db, tmp_path, run_cli):
    added = run_cli("suppress", "add", "o1a", "--db", db)
    assert added.returncode == 0 and "officer:o1a: suppressed" in added.stdout
    listed = run_cli("suppress", "list", "--db", db)
    assert listed.returncode == 0 and "officer:o1a" in listed.stdout
    done = run_cli("export", "--leads", tmp_path / "l.jsonl", "--format", "jsonl", "--role", "director",
                   "--all-companies", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "2 leads" in done.stdout and "withheld 1 suppressed" in done.stdout
    bad = run_cli("export", "--leads", tmp_path / "x.csv", "--sic", "6x", "--db", db)
    assert bad.returncode == 2 and bad.stderr.startswith("chledger: --sic '6x'") and bad.stderr.count("\n") == 1
    wrong = run_cli("export", tmp_path / "x.csv", "--with-email", "--db", db)
    assert wrong.returncode == 2 and "--with-email is for --leads exports" in wrong.stderr
    unknown = run_cli("suppress", "add", "company:12", "--db", db)
    assert unknown.returncode == 0 and "company:00000012" in unknown.stdout
    nonsense = run_cli("suppress", "add", "two words", "--db", db)
    assert nonsense.returncode == 2 and nonsense.stderr.startswith("chledger: ")
