"""The bulk file as published and as it goes wrong: header quirks, quoting, line endings, bad rows,
part files, and files that are not snapshots at all. Every file is a real ZIP or CSV in tmp_path."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from support.bulk_files import HEADER, NAME, body, fields, line, write_csv, write_zip
from eventlog.bulk import BulkFileError, Progress, SnapshotReader, parse_snapshot_name, read_snapshot
from eventlog.bulk.header import COLUMNS
from eventlog.ledger.entries import Interest
from eventlog.errors import ChledgerError

STRIKE_OFF = "Active - Proposal to Strike off"


def numbers(rows) -> list[str]:
    return [r.company_number for r in rows]


def test_the_published_header_has_55_columns_some_with_a_leading_space():
    names = HEADER.split(",")
    assert len(names) == 55
    assert [n.strip() for n in names] == list(COLUMNS)
    assert " CompanyNumber" in names and " RegAddress.AddressLine2" in names


def test_header_quirks_bom_leading_spaces_and_crlf(tmp_path: Path):
    text = body([line(fields(CompanyNumber="00000001")), line(fields(CompanyNumber="00000002"))], bom=True)
    rows, report = read_snapshot([write_zip(tmp_path, text)], None)
    assert numbers(rows) == ["00000001", "00000002"]
    assert rows[0].company_name == "ACORN ENGINEERING LTD"  # CompanyName found after the BOM
    assert rows[0].registered_office_address.address_line_2 == "BANHAM"  # " RegAddress.AddressLine2"
    assert report.rejected == 0 and report.rows_read == 2 and report.complete


def test_a_quoted_header_and_lf_endings_read_the_same(tmp_path: Path):
    quoted = ",".join(f'"{n}"' for n in HEADER.split(","))
    text = body([line(fields(CompanyNumber="00000003"))], header=quoted, newline="\n")
    rows, report = read_snapshot([write_csv(tmp_path, text)], None)
    assert numbers(rows) == ["00000003"] and report.rejected == 0


def test_commas_and_quotes_inside_quoted_fields(tmp_path: Path):
    guarantee = "PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)"
    rows, report = read_snapshot([write_zip(tmp_path, body([
        line(fields(CompanyName="SMITH, JONES & CO LIMITED", CompanyCategory=guarantee,
                    SICCode__SicText_1="74909 - Other professional, scientific and technical activities n.e.c.")),
        line(fields(CompanyName='THE "BEST" BAKERY LTD', CompanyNumber="00000009")),
    ]))], None)
    assert report.rejected == 0
    assert rows[0].company_name == "SMITH, JONES & CO LIMITED"
    assert rows[0].type == "private-limited-guarant-nsc" and rows[0].sic_codes == ("74909",)
    assert rows[1].company_name == 'THE "BEST" BAKERY LTD'


def test_a_line_break_inside_a_quoted_field_is_one_record_reported_at_its_first_line(tmp_path: Path):
    text = body([
        line(fields(CompanyNumber="00000001")),
        line(fields(CompanyNumber="00000002", RegAddress__AddressLine1="FLAT 1\r\nTHE OLD MILL")),
        line(fields(CompanyNumber="00000003", CompanyStatus="Liquidation", Accounts__NextDueDate="31/02/2024")),
    ])
    rows, report = read_snapshot([write_zip(tmp_path, text)], None)
    assert numbers(rows) == ["00000001", "00000002", "00000003"]
    assert rows[1].registered_office_address.address_line_1 == "FLAT 1\r\nTHE OLD MILL"
    assert report.rows_read == 3 and report.rejected == 0
    assert report.odd_values == 1  # 31 February is not a date: recorded as absent, and counted


def test_blank_lines_are_not_rows(tmp_path: Path):
    text = body([line(fields(CompanyNumber="00000001")), "", line(fields(CompanyNumber="00000002")), ""])
    rows, report = read_snapshot([write_csv(tmp_path, text)], None)
    assert numbers(rows) == ["00000001", "00000002"] and report.rows_read == 2 and report.rejected == 0


def test_a_truncated_last_line_is_reported_and_the_rows_before_it_kept(tmp_path: Path):
    whole = line(fields(CompanyNumber="00000002"))
    text = body([line(fields(CompanyNumber="00000001")), whole[:120]], final_newline=False)
    rows, report = read_snapshot([write_zip(tmp_path, text)], None)
    assert numbers(rows) == ["00000001"]
    assert report.rows_read == 2 and report.rejected == 1 and report.complete
    (rejection,) = report.rejections
    assert rejection.file == f"{NAME}.zip" and rejection.line == 3
    assert rejection.reason.startswith("truncated last line")
    assert rejection.excerpt == whole[:120]


def test_a_last_line_cut_between_fields_is_truncated_too(tmp_path: Path):
    whole = line(fields(CompanyNumber="00000002"))
    cut = whole[:whole.index('"Active"') + len('"Active"')]  # ends after a closing quote
    rows, report = read_snapshot([write_csv(tmp_path, body([cut], final_newline=False))], None)
    assert rows == []
    assert report.rejections[0].reason == "truncated last line (12 columns, expected 55)"


def test_a_last_line_without_a_line_break_is_fine_when_whole(tmp_path: Path):
    text = body([line(fields(CompanyNumber="00000001"))], final_newline=False)
    rows, report = read_snapshot([write_zip(tmp_path, text)], None)
    assert numbers(rows) == ["00000001"] and report.rejected == 0


def test_malformed_rows_are_reported_with_file_and_line_and_skipped(tmp_path: Path):
    good = [line(fields(CompanyNumber=f"0000000{n}")) for n in range(1, 5)]
    short = line(fields(CompanyNumber="00000020")[:54])
    bad_quote = line(fields(CompanyNumber="00000021")).replace('"ACORN', '"AC"O"RN', 1)  # even quotes, wrongly placed
    bad_number = line(fields(CompanyNumber="not-a-number"))
    text = body([good[0], short, good[1], bad_quote, good[2], bad_number, good[3]])
    rows, report = read_snapshot([write_zip(tmp_path, text)], None)
    assert numbers(rows) == ["00000001", "00000002", "00000003", "00000004"]
    assert report.rows_read == 7 and report.rejected == 3
    assert [(r.line, r.reason) for r in report.rejections] == [
        (3, "54 columns, expected 55"),
        (5, "bad quoting (',' expected after '\"')"),
        (7, "not a company number"),
    ]
    assert report.rejected_by_reason == {"54 columns, expected 55": 1, "bad quoting": 1, "not a company number": 1}
    assert all(r.file == f"{NAME}.zip" for r in report.rejections)


def test_a_stray_quote_costs_its_own_row_not_the_ones_after_it(tmp_path: Path):
    stray = line(fields(CompanyNumber="00000020")).replace('"ACORN ENGINEERING LTD"', '"ACORN "ENGINEERING LTD"')
    rest = [line(fields(CompanyNumber=f"{n:08d}")) for n in range(1, 16)]
    rows, report = read_snapshot([write_csv(tmp_path, body([stray, *rest]))], None)
    assert numbers(rows) == [f"{n:08d}" for n in range(1, 16)]
    assert report.rejected == 1 and report.rejections[0].line == 2
    assert report.rejections[0].reason == "unbalanced quotes"
    assert report.rows_read == 16


def test_a_file_ending_inside_an_open_quote_loses_only_that_line(tmp_path: Path):
    stray = line(fields(CompanyNumber="00000009")).replace('"BANHAM"', '"BAN"HAM"')
    text = body([line(fields(CompanyNumber="00000001")), stray, line(fields(CompanyNumber="00000002"))])
    rows, report = read_snapshot([write_zip(tmp_path, text)], Interest("company_status", ("active",)))
    assert numbers(rows) == ["00000001", "00000002"]
    assert [(r.line, r.reason) for r in report.rejections] == [(3, "unbalanced quotes")]


@pytest.mark.parametrize("interest", [None, Interest()])
def test_a_line_of_megabytes_is_refused_without_holding_it(tmp_path: Path, interest):
    huge = "X" * (5 * 2**20)  # 5 MiB, no line break
    text = body([line(fields(CompanyNumber="00000001", CompanyStatus=STRIKE_OFF)), huge,
                 line(fields(CompanyNumber="00000002", CompanyStatus=STRIKE_OFF))])
    rows, report = read_snapshot([write_zip(tmp_path, text)], interest)
    assert numbers(rows) == ["00000001", "00000002"]
    assert [(r.line, r.reason, r.excerpt[:3]) for r in report.rejections] == [
        (3, "a line longer than 1,048,576 bytes", "XXX")]
    assert report.rows_read == 3 and report.complete
    # the same line last in the file, with no line break after it
    rows, report = read_snapshot([write_csv(tmp_path, body([line(fields()), huge], final_newline=False))], None)
    assert numbers(rows) == ["01234567"] and report.rejections[0].line == 3


def test_several_part_files_in_one_call(tmp_path: Path):
    paths = []
    for part in (1, 2, 3):
        rows = [line(fields(CompanyNumber=f"{part}000000{n}",
                            CompanyStatus=STRIKE_OFF if n == 1 else "Active")) for n in (1, 2)]
        paths.append(write_zip(tmp_path, body(rows), name=f"BasicCompanyData-2024-05-01-part{part}_3"))
    reader = SnapshotReader(paths, Interest())
    assert [f.part for f in reader.files] == [1, 2, 3] and {f.parts for f in reader.files} == {3}
    assert numbers(reader) == ["10000001", "20000001", "30000001"]
    report = reader.report
    assert report.snapshot_date == "2024-05-01" and report.parts_missing == []
    assert [(f.rows_read, f.rows_kept, f.complete) for f in report.files] == [(2, 1, True)] * 3
    assert (report.rows_read, report.rows_kept, report.complete) == (6, 3, True)


def test_parts_given_are_checked_against_their_count(tmp_path: Path):
    paths = [write_zip(tmp_path, body([line(fields(CompanyNumber=f"{n:08d}"))]),
                       name=f"BasicCompanyData-2024-05-01-part{n}_4") for n in (1, 3)]
    assert SnapshotReader(paths, None).report.parts_missing == [2, 4]


def test_parts_of_different_snapshots_are_refused(tmp_path: Path):
    a = write_zip(tmp_path, body([line(fields())]), name="BasicCompanyData-2024-05-01-part1_2")
    b = write_zip(tmp_path, body([line(fields(CompanyNumber="00000002"))]),
                  name="BasicCompanyData-2024-06-01-part2_2")
    with pytest.raises(BulkFileError, match=r"different snapshots \(2024-05-01, 2024-06-01\)"):
        SnapshotReader([a, b], None)


def test_the_same_file_twice_is_refused(tmp_path: Path):
    a = write_zip(tmp_path, body([line(fields())]))
    copy = tmp_path / "copy.zip"
    copy.write_bytes(a.read_bytes())
    with pytest.raises(BulkFileError, match="the same file as"):
        SnapshotReader([a, copy], None)


def test_name_hash_and_sizes_of_each_file(tmp_path: Path):
    text = body([line(fields())])
    path = write_zip(tmp_path, text)
    (file,) = SnapshotReader([path], None).files
    assert file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (file.name, file.member, file.snapshot_date, file.part) == (f"{NAME}.zip", f"{NAME}.csv", "2024-05-01", None)
    assert file.size == path.stat().st_size and file.csv_size == len(text.encode())


@pytest.mark.parametrize("name, expected", [
    ("BasicCompanyDataAsOneFile-2024-05-01.zip", ("2024-05-01", None, None)),
    ("/data/BasicCompanyData-2023-11-01-part3_7.zip", ("2023-11-01", 3, 7)),
    ("BasicCompanyData-2023-11-01-part7_7.csv", ("2023-11-01", 7, 7)),
    ("BasicCompanyData-2023-11-01-part8_7.zip", ("2023-11-01", None, None)),
    ("BasicCompanyDataAsOneFile-2024-02-30.zip", (None, None, None)),
    ("companies.zip", (None, None, None)),
])
def test_the_snapshot_date_and_part_come_from_the_name(name, expected):
    parsed = parse_snapshot_name(name)
    assert (parsed.date, parsed.part, parsed.parts) == expected


def test_a_renamed_file_takes_the_date_given(tmp_path: Path):
    path = write_zip(tmp_path, body([line(fields())]), name="companies")
    assert SnapshotReader([path], None).report.snapshot_date is None
    assert SnapshotReader([path], None, snapshot_date="2024-05-01").report.snapshot_date == "2024-05-01"
    named = write_zip(tmp_path, body([line(fields())]))
    with pytest.raises(BulkFileError, match="named for 2024-05-01, but the snapshot date given is 2024-06-01"):
        SnapshotReader([named], None, snapshot_date="2024-06-01")


def _error(paths) -> str:
    with pytest.raises(BulkFileError) as caught:
        SnapshotReader(paths, None)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, ChledgerError) and caught.value.exit_code == 2
    return message


def test_files_that_are_not_snapshots_get_one_line_each(tmp_path: Path):
    not_zip = tmp_path / "BasicCompanyDataAsOneFile-2024-05-01.zip"
    not_zip.write_text("<html>Service unavailable</html>")
    assert _error([not_zip]) == f"{not_zip.name}: not a ZIP file, though named .zip (truncated download?)"

    empty_zip = tmp_path / "empty.zip"
    zipfile.ZipFile(empty_zip, "w").close()
    assert _error([empty_zip]) == "empty.zip: an empty ZIP (no files in it)"

    no_csv = tmp_path / "nocsv.zip"
    with zipfile.ZipFile(no_csv, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert _error([no_csv]) == "nocsv.zip: no CSV file in this ZIP (it holds readme.txt)"

    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", HEADER)
        archive.writestr("b.csv", HEADER)
    assert _error([two]).startswith("two.zip: 2 CSV files in this ZIP (a.csv, b.csv); expected one")

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert _error([empty]) == "empty.csv: the file is empty"

    assert _error([tmp_path / "missing.zip"]).startswith("missing.zip: can't be read (")
    assert _error([]) == "no snapshot file given"


def test_a_zip_rezipped_on_a_mac_still_holds_one_csv(tmp_path: Path):
    path = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{NAME}/{NAME}.csv", body([line(fields())]))
        archive.writestr(f"__MACOSX/{NAME}/._{NAME}.csv", b"\x00\x05\x16\x07 resource fork")
    rows, report = read_snapshot([path], None)
    assert len(rows) == 1 and report.files[0].file.member == f"{NAME}/{NAME}.csv"


def test_a_wrong_header_is_refused_naming_what_is_missing(tmp_path: Path):
    other = write_csv(tmp_path, "company_number,name\r\n01234567,ACORN LTD\r\n", name="list")
    message = _error([other])
    assert message.startswith("list.csv: not a Basic Company Data header (no CompanyName, CompanyNumber, "
                              "CompanyCategory, CompanyStatus, IncorporationDate)")
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert _error([binary]) == "image.csv: the first line is not UTF-8 text, so this is not a Basic Company Data CSV"
    # one bad file among good ones stops the read before any row
    good = write_zip(tmp_path, body([line(fields())]))
    assert _error([good, other]).startswith("list.csv: not a Basic Company Data header")


def test_a_zip_damaged_part_way_raises_with_the_line_reached(tmp_path: Path):
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyName=f"COMPANY {n * 7919 % 100003} LTD"))
            for n in range(1, 20001)]
    path = write_zip(tmp_path, body(rows))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # the central directory survives; the deflate stream does not
    path.write_bytes(bytes(data))
    reader = SnapshotReader([path], None)
    read = []
    with pytest.raises(BulkFileError, match=rf"{NAME}.zip: damaged after line [\d,]+ \((error|BadZipFile)"):
        for row in reader:
            read.append(row)
    assert 0 < len(read) < 20000
    assert not reader.report.complete and not reader.report.files[0].complete


def test_progress_hashes_then_reads_to_the_total(tmp_path: Path):
    rows = [line(fields(CompanyNumber=f"{n:08d}")) for n in range(1, 5001)]
    paths = [write_zip(tmp_path, body(rows[:2500]), name="BasicCompanyData-2024-05-01-part1_2"),
             write_zip(tmp_path, body(rows[2500:]), name="BasicCompanyData-2024-05-01-part2_2")]
    seen: list[Progress] = []
    reader = SnapshotReader(paths, None, on_progress=seen.append)
    assert {p.stage for p in seen} == {"hashing"}
    assert seen[-1].bytes_done == seen[-1].bytes_total == sum(p.stat().st_size for p in paths)
    seen.clear()
    assert len(list(reader)) == 5000
    assert {p.stage for p in seen} == {"reading"}
    done = [p.bytes_done for p in seen]
    assert done == sorted(done) and done[-1] == seen[-1].bytes_total == sum(f.csv_size for f in reader.files)
    assert seen[-1].rows_read == seen[-1].rows_kept == 5000
    assert [p.file for p in seen][0] == paths[0].name and seen[-1].file == paths[1].name


def test_a_reader_reads_once(tmp_path: Path):
    reader = SnapshotReader([write_zip(tmp_path, body([line(fields())]))], None)
    assert len(list(reader)) == 1
    with pytest.raises(RuntimeError):
        list(reader)
