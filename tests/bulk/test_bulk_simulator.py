"""The simulator's bulk file: the published format, the same companies its REST API serves, and
read back by the bulk reader to exactly those companies."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from eventlog.bulk import SnapshotReader, read_snapshot
from eventlog.ledger.entries import Interest
from eventlog.simulator import STRIKE_OFF_DETAIL, SimulatorConfig, Universe
from eventlog.simulator.bulkfile import HEADER, write_bulk_file, write_synthetic


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe(SimulatorConfig(seed=11, company_count=1500))


def _as_profile(row) -> dict:
    """The fields the simulator's profile and a bulk row both carry, from the bulk row."""
    address = row.registered_office_address
    return {
        "company_number": row.company_number, "company_name": row.company_name,
        "company_status": row.company_status, "company_status_detail": row.company_status_detail,
        "type": row.type, "jurisdiction": row.jurisdiction, "date_of_creation": row.date_of_creation,
        "date_of_cessation": row.date_of_cessation,
        "address": (address.address_line_1, address.address_line_2, address.locality, address.postal_code),
        "sic_codes": row.sic_codes,
        "reference_date": (row.accounts.accounting_reference_date.day, row.accounts.accounting_reference_date.month),
        "next_due": row.accounts.next_due,
        "last_accounts": (row.accounts.last_accounts.made_up_to, row.accounts.last_accounts.type)
        if row.accounts.last_accounts else None,
        "confirmation_statement": (row.confirmation_statement.last_made_up_to, row.confirmation_statement.next_due),
    }


def _expected(profile) -> dict:
    address = profile.registered_office_address
    accounts = profile.accounts
    last = accounts.last_accounts
    return {
        "company_number": profile.company_number, "company_name": profile.company_name,
        "company_status": profile.company_status, "company_status_detail": profile.company_status_detail,
        "type": profile.type, "jurisdiction": profile.jurisdiction, "date_of_creation": profile.date_of_creation,
        "date_of_cessation": profile.date_of_cessation,
        "address": (address.address_line_1, address.address_line_2, address.locality, address.postal_code),
        "sic_codes": profile.sic_codes,
        "reference_date": (accounts.accounting_reference_date.day, accounts.accounting_reference_date.month),
        "next_due": accounts.next_due,
        "last_accounts": (last.made_up_to, last.type) if last else None,
        "confirmation_statement": (profile.confirmation_statement.last_made_up_to,
                                   profile.confirmation_statement.next_due),
    }


def test_the_file_read_back_is_the_simulators_live_companies(tmp_path: Path, universe: Universe):
    written = write_bulk_file(tmp_path, universe)
    (path,) = written.paths
    assert Path(path).name == "BasicCompanyDataAsOneFile-2023-11-01.zip"
    rows, report = read_snapshot([path], None)
    assert report.rejected == report.odd_values == 0 and not report.unknown_statuses and not report.unknown_categories
    live = [universe.profile(n) for n in universe.numbers if universe.profile(n).company_status not in ("dissolved", "closed", "converted-closed")]
    assert 0 < len(live) < len(universe)  # the published file holds live companies only
    assert sorted(map(_as_profile, rows), key=lambda d: d["company_number"]) == \
        sorted(map(_expected, live), key=lambda d: d["company_number"])
    assert [r.company_number for r in rows] == list(written.company_numbers)  # sorted by name, as published
    assert report.snapshot_date == "2023-11-01"


def test_the_companies_of_interest_are_the_simulators_strike_offs(tmp_path: Path, universe: Universe):
    (path,) = write_bulk_file(tmp_path, universe).paths
    kept, report = read_snapshot([path], Interest())
    strike_off = {n for n in universe.numbers if universe.profile(n).company_status_detail == STRIKE_OFF_DETAIL}
    assert {r.company_number for r in kept} == strike_off and len(kept) == len(strike_off) > 0
    assert report.rows_parsed == len(kept)  # everything else was ruled out on bytes


def test_part_files_dissolved_companies_and_the_quirks(tmp_path: Path, universe: Universe):
    written = write_bulk_file(tmp_path, universe, parts=4, include_dissolved=True, bom=True)
    assert [Path(p).name for p in written.paths] == [f"BasicCompanyData-2023-11-01-part{n}_4.zip" for n in range(1, 5)]
    with zipfile.ZipFile(written.paths[0]) as archive:
        (member,) = archive.infolist()
        raw = archive.read(member)
    assert member.filename == "BasicCompanyData-2023-11-01-part1_4.csv"
    head, first = raw.split(b"\r\n")[:2]
    assert head == b"\xef\xbb\xbf" + HEADER.encode()  # unquoted, leading spaces, after a BOM
    assert first.startswith(b'"') and first.count(b'","') == 54  # every field quoted
    reader = SnapshotReader(written.paths, None)
    rows = list(reader)
    assert len(rows) == len(universe) and reader.report.rejected == 0 and reader.report.parts_missing == []
    dissolved = [r for r in rows if r.company_status == "dissolved"]
    assert dissolved and all(r.date_of_cessation for r in dissolved)
    assert {_as_profile(r)["company_number"]: _as_profile(r) for r in rows} == \
        {n: _expected(universe.profile(n)) for n in universe.numbers}


def test_a_bare_csv_with_lf_reads_the_same(tmp_path: Path, universe: Universe):
    (zipped,) = write_bulk_file(tmp_path / "zip", universe).paths
    (bare,) = write_bulk_file(tmp_path / "csv", universe, as_zip=False, line_ending="\n").paths
    assert bare.endswith("BasicCompanyDataAsOneFile-2023-11-01.csv")
    assert read_snapshot([bare], None)[0] == read_snapshot([zipped], None)[0]


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path):
    def digest(folder: str, seed: int) -> str:
        (path,) = write_bulk_file(tmp_path / folder, Universe(SimulatorConfig(seed=seed, company_count=300))).paths
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    assert digest("a", 5) == digest("b", 5) != digest("c", 6)


def test_the_synthetic_file_is_deterministic_and_counts_its_rows_of_interest(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_synthetic(tmp_path / "a" / "BasicCompanyDataAsOneFile-2024-01-01.zip", 3000, seed=2)
    b = write_synthetic(tmp_path / "b" / "BasicCompanyDataAsOneFile-2024-01-01.zip", 3000, seed=2)
    assert Path(a.path).read_bytes() == Path(b.path).read_bytes() and a.of_interest == b.of_interest
    kept, report = read_snapshot([a.path], Interest())
    assert (report.rows_read, report.rows_kept, report.rejected) == (3000, a.of_interest, 0)
    assert not report.unknown_statuses and not report.unknown_categories
    assert 400 < a.csv_bytes / a.rows < 520  # about the published file's row size
