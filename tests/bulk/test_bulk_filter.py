"""The interest filter: a cheap test on raw bytes, confirmed by the full parse, must never disagree
with the parse alone. Checked on hand-picked lines, on a synthetic file, and on lines hypothesis
makes up (stray quotes, unquoted fields, line breaks, case variants of the status words)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.bulk_files import COLUMNS, body, fields, line, write_csv, write_zip
from eventlog.bulk import LineFilter, SnapshotReader, read_snapshot
from eventlog.bulk.header import read_header
from eventlog.bulk.vocabulary import STATUS_WORDS
from eventlog.ledger.entries import Interest
from eventlog.errors import ConfigError
from eventlog.simulator.bulkfile import HEADER, write_synthetic

STRIKE_OFF = "Active - Proposal to Strike off"
INTERESTS = [
    Interest(),  # company_status_detail: active-proposal-to-strike-off
    Interest("company_status", ("liquidation", "administration")),
    Interest("company_status", ("active",)),
    Interest("company_status_detail", ("petition-to-restore-dissolved",)),  # no word maps to it
    Interest("type", ("plc",)),  # not decided by the status: every line is parsed
]


def test_the_default_interest_keeps_strike_off_only_and_parses_little(tmp_path: Path):
    statuses = ["Active", STRIKE_OFF, "Liquidation", "ACTIVE - PROPOSAL TO STRIKE OFF", "Active", "Struck off",
                "In Administration"]
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyStatus=s)) for n, s in enumerate(statuses, start=1)]
    rows.append(line(fields(CompanyNumber="00000099", CompanyName="PROPOSAL TO STRIKE OFF LTD")))
    rows.append(line(fields(CompanyNumber="00000100", CompanyName='X","Y', CompanyCategory="Active",
                            CompanyStatus=STRIKE_OFF)))
    kept, report = read_snapshot([write_zip(tmp_path, body(rows))], Interest())
    assert [r.company_number for r in kept] == ["00000002", "00000004", "00000100"]
    assert report.rows_read == 9 and report.rows_kept == 3
    # parsed: the three of interest and the unknown word; the rest were decided on bytes
    assert report.rows_parsed == 4
    assert [(w.word, w.line) for w in report.unknown_statuses] == [("Struck off", 7)]


def test_an_interest_in_company_status(tmp_path: Path):
    statuses = ["Active", "Liquidation", "In Administration", "ADMINISTRATION ORDER", STRIKE_OFF, "Dissolved"]
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyStatus=s)) for n, s in enumerate(statuses, start=1)]
    kept, _ = read_snapshot([write_zip(tmp_path, body(rows))], Interest("company_status", ("liquidation",
                                                                                           "administration")))
    assert [r.company_number for r in kept] == ["00000002", "00000003", "00000004"]


def test_an_interest_the_status_does_not_decide_parses_every_line(tmp_path: Path):
    categories = ["Private Limited Company", "Public Limited Company", "Public Limited Company"]
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyCategory=c)) for n, c in enumerate(categories, start=1)]
    kept, report = read_snapshot([write_zip(tmp_path, body(rows))], Interest("type", ("plc",)))
    assert [r.company_number for r in kept] == ["00000002", "00000003"]
    assert report.rows_parsed == report.rows_read == 3


def test_all_keeps_every_company(tmp_path: Path):
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyStatus=s))
            for n, s in enumerate(["Active", STRIKE_OFF, "Liquidation"], start=1)]
    kept, report = read_snapshot([write_zip(tmp_path, body(rows))], None)
    assert len(kept) == report.rows_kept == report.rows_parsed == 3 and report.interest is None


def test_an_interest_field_a_row_does_not_carry_is_a_config_error():
    with pytest.raises(ConfigError, match="INTEREST_FIELD 'officers' is not a field a bulk row carries"):
        LineFilter(Interest("officers", ("x",)))


def test_the_bytes_test_on_lines_chosen_to_trick_it():
    columns = read_header(HEADER.encode(), "header")
    f = LineFilter(Interest())
    assert f.bind(columns)
    plain = line(fields()).encode()
    assert f.skip(plain)
    assert not f.skip(line(fields(CompanyStatus=STRIKE_OFF)).encode())
    assert not f.skip(line(fields(CompanyStatus="ACTIVE")).encode())  # another spelling: parse it
    assert not f.skip(line(fields(CompanyName='A "QUOTED" NAME LTD')).encode())  # quotes before the status
    # an unquoted first field shifts what a split would call the status: the test must not trust it
    shifted = plain.replace(b'"ACORN ENGINEERING LTD",', b"ACORN,", 1)
    assert not f.skip(shifted)
    assert not f.skip(b"")
    # a separator inside the name moves every later field one place right in a plain split, so the
    # category ("Active", a status word here) would sit where the status is: it must be parsed
    tricky = line(fields(CompanyName='X","Y', CompanyCategory="Active", CompanyStatus=STRIKE_OFF)).encode()
    assert tricky.split(b'","', 12)[11] == b"Active" and not f.skip(tricky)


def test_a_bare_first_field_with_a_quote_does_not_fool_the_bytes_test(tmp_path: Path):
    # csv.reader reads `X"Y,Z"` as two bare fields, `X"Y` and `Z"`; a split on `","` sees one, so
    # every later field sits one place left of where the split puts it, and the column after the
    # status ("Active" here) is where the split looks for the status.
    order = ["URI", "RegAddress.CareOf", *[c for c in COLUMNS if c not in ("URI", "RegAddress.CareOf")]]
    values = dict(zip(COLUMNS, fields(CompanyStatus=STRIKE_OFF, CountryOfOrigin="Active"), strict=True))
    raw = 'X"Y,Z' + '","' + '","'.join(values[c] for c in order[2:]) + '"'
    columns = read_header(",".join(order).encode(), "header")
    f = LineFilter(Interest())
    assert f.bind(columns) and f.status_at == 12
    assert raw.encode().split(b'","', 13)[12] == b"Active" and not f.skip(raw.encode())
    path = write_csv(tmp_path, "\r\n".join([",".join(order), raw, ""]))
    kept, report = read_snapshot([path], Interest())
    assert [r.company_number for r in kept] == ["01234567"] and report.rejected == 0
    # the status column first or last: no bytes test at all
    moved = ",".join([COLUMNS[11], *COLUMNS[:11], *COLUMNS[12:]]).encode()
    assert not f.bind(read_header(moved, "header"))
    assert not LineFilter(None).bind(columns) and not LineFilter(Interest("type", ("ltd",))).bind(columns)


def test_a_synthetic_file_agrees_with_the_parse_and_the_writers_count(tmp_path: Path):
    made = write_synthetic(tmp_path / "BasicCompanyDataAsOneFile-2024-01-01.zip", 20_000, seed=7)
    everything, _ = read_snapshot([made.path], None)
    for interest in INTERESTS:
        f = LineFilter(interest)
        reader = SnapshotReader([made.path], interest)
        kept = list(reader)
        assert kept == [r for r in everything if f.matches(r)], interest
        assert reader.report.rows_read == 20_000
    strike_off = read_snapshot([made.path], Interest())[1]
    assert strike_off.rows_kept == made.of_interest and 250 < made.of_interest < 550
    assert strike_off.rows_parsed < 0.05 * 20_000  # the bytes test did decide nearly every line


# --- made-up lines ------------------------------------------------------------------------------

# pieces that make trouble: quotes, separators, line breaks, status words, the needle of a status
_PIECES = ["A", " ", ",", '"', '","', '","', "\r\n", "\n", "-", "é", "\t", "proposal", "Active", STRIKE_OFF]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=5).map("".join)
# few words, so that a status of interest beside a status word in another column is common
_WORDS = [STRIKE_OFF, "Active", "Liquidation"]
_STATUS = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(list(STATUS_WORDS)),
    st.sampled_from(_WORDS).map(str.upper),
    st.sampled_from(_WORDS).map(lambda w: f"  {w.lower()} "),
    st.sampled_from(_WORDS).map(lambda w: w.replace(" ", "\n", 1)),
    _TEXT,
)


@st.composite
def _record(draw) -> str:
    values = fields(CompanyNumber=draw(st.sampled_from(["01234567", "SC000123", "12345", "bad"])),
                    CompanyStatus=draw(_STATUS),
                    CompanyName=draw(st.one_of(st.just("ACORN LTD"), _TEXT)),
                    RegAddress__AddressLine1=draw(st.one_of(st.just("1 HIGH STREET"), _TEXT)),
                    PreviousName_1__CompanyName=draw(st.one_of(st.just(""), _TEXT)),  # after the status
                    CompanyCategory=draw(st.one_of(st.just("Private Limited Company"), st.sampled_from(_WORDS),
                                                   _STATUS)))
    how = draw(st.sampled_from(["quoted", "quoted", "quoted", "unquoted", "short", "long", "stray", "cut"]))
    if how == "unquoted":  # the first few fields written bare, as a spreadsheet might
        bare = draw(st.integers(1, 11))
        return ",".join(v.replace('"', "").replace("\n", "") for v in values[:bare]) + "," + line(values[bare:])
    if how == "short":
        return line(values[:-1])
    if how == "long":
        return line([*values, "EXTRA"])
    text = line(values)
    if how == "stray":
        at = draw(st.integers(0, len(text)))
        return text[:at] + '"' + text[at:]
    if how == "cut":
        return text[:draw(st.integers(0, len(text)))]
    return text


def _read(path: Path, interest: Interest | None):
    reader = SnapshotReader([path], interest)
    return list(reader), reader.report


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_record(), min_size=1, max_size=12), newline=st.sampled_from(["\r\n", "\n"]),
       final_newline=st.booleans())
def test_the_bytes_test_never_disagrees_with_the_parse(records, newline, final_newline):
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder), body(records, newline=newline, final_newline=final_newline))
        everything, full = _read(path, None)
        for interest in INTERESTS:
            kept, report = _read(path, interest)
            f = LineFilter(interest)
            assert kept == [r for r in everything if f.matches(r)], interest
            assert report.rows_read == full.rows_read


@settings(max_examples=500, deadline=None)
@given(record=_record())
def test_a_line_skipped_on_bytes_never_parses_to_a_row_of_interest(record):
    columns = read_header(HEADER.encode(), "header")
    raw = record.encode()
    if raw.count(b'"') % 2 or b"\n" in raw:
        return  # not a whole record on one line: the reader never gives such a line to the test
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder), body([record]))
        parsed, _ = _read(path, None)
    for interest in INTERESTS[:4]:
        f = LineFilter(interest)
        f.bind(columns)
        if f.skip(raw):
            assert not any(f.matches(r) for r in parsed), (interest, record)


def test_watched_companies_are_kept_whatever_their_status_and_the_rest_still_skipped(tmp_path: Path):
    """The import watches the companies the ledger holds as of interest, to see if they still are."""
    made = write_synthetic(tmp_path / "BasicCompanyDataAsOneFile-2024-01-01.zip", 5_000, seed=3)
    everything, _ = read_snapshot([made.path], None)
    watch = frozenset(r.company_number for r in everything[:200:7] if r.company_status_detail is None)
    assert len(watch) > 10
    reader = SnapshotReader([made.path], Interest(), watch=watch)
    kept = list(reader)
    f = LineFilter(Interest(), watch)
    assert kept == [r for r in everything if f.matches(r)]
    assert watch <= {r.company_number for r in kept}
    assert reader.report.rows_parsed < 0.1 * 5_000  # the bytes test still decides the rest
    columns = read_header(HEADER.encode(), "header")
    assert f.bind(columns) and f.number_at == 1
    plain = line(fields(CompanyNumber="01234567", CompanyStatus="Active")).encode()
    unwatched = LineFilter(Interest())
    assert unwatched.bind(columns) and unwatched.skip(plain)
    watching = LineFilter(Interest(), frozenset({"01234567"}))
    watching.bind(columns)
    assert not watching.skip(plain)
