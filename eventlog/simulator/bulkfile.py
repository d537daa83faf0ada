"""Basic Company Data files, written the way Companies House publishes them.

Two writers:

- `write_bulk_file`: the simulator's own companies (`Universe`), so the numbers, names and
  statuses in the file are the ones its stream and REST API serve. Dissolved companies are left
  out, as the published snapshot holds live companies only (`include_dissolved` puts them in).
- `write_synthetic`: N rows of made-up companies for the benchmark, fast (about a million rows
  in seconds), with about `interest_share` of them "Active - Proposal to Strike off" and a few
  other statuses, names containing the word "PROPOSAL", and names with quotes.

Both write the published format with its quirks: the header line unquoted with a leading space
before some names (` CompanyNumber`, ` RegAddress.AddressLine2`, ` PreviousName_1.CompanyName`,
…), every field quoted, commas inside quoted fields (a category word and some SIC texts hold
commas), dates DD/MM/YYYY, statuses and categories as words, SIC codes as "code - text", one
CSV per ZIP named like the ZIP, and the snapshot's date in the file name, whole
(`BasicCompanyDataAsOneFile-YYYY-MM-DD.zip`) or in parts (`BasicCompanyData-YYYY-MM-DD-partN_M.zip`).
Lines end in CRLF unless told otherwise, and a BOM can be put first, as a file that went through
a spreadsheet would have. Everything is a pure function of the seed: the same seed writes the
same bytes, so the same SHA-256.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import msgspec

from eventlog.simulator import names
from eventlog.simulator.companies import STRIKE_OFF_DETAIL, Universe
from eventlog.simulator.dates import add_years
from eventlog.simulator.models import CompanyProfile

__all__ = [
    "HEADER",
    "SNAPSHOT_DATE",
    "SIC_TEXTS",
    "BulkFiles",
    "SyntheticFile",
    "company_fields",
    "snapshot_file_names",
    "write_bulk_file",
    "write_synthetic",
]

# The header line exactly as published: unquoted, with the leading spaces.
HEADER = (
    "CompanyName, CompanyNumber,RegAddress.CareOf,RegAddress.POBox,RegAddress.AddressLine1, "
    "RegAddress.AddressLine2,RegAddress.PostTown,RegAddress.County,RegAddress.Country,RegAddress.PostCode,"
    "CompanyCategory,CompanyStatus,CountryOfOrigin,DissolutionDate,IncorporationDate,Accounts.AccountRefDay,"
    "Accounts.AccountRefMonth,Accounts.NextDueDate,Accounts.LastMadeUpDate,Accounts.AccountCategory,"
    "Returns.NextDueDate,Returns.LastMadeUpDate,Mortgages.NumMortCharges,Mortgages.NumMortOutstanding,"
    "Mortgages.NumMortPartSatisfied,Mortgages.NumMortSatisfied,SICCode.SicText_1,SICCode.SicText_2,"
    "SICCode.SicText_3,SICCode.SicText_4,LimitedPartnerships.NumGenPartners,"
    "LimitedPartnerships.NumLimPartners,URI,PreviousName_1.CONDATE, PreviousName_1.CompanyName, "
    + ",".join(f"PreviousName_{n}.CONDATE, PreviousName_{n}.CompanyName" for n in range(2, 11))
    + ",ConfStmtNextDueDate, ConfStmtLastMadeUpDate"
)
COLUMN_COUNT = 55

# A snapshot is dated the first of its month; the simulated register is as of 4 November 2023.
SNAPSHOT_DATE = date(2023, 11, 1)

# The file's words for the statuses and types the simulator's companies have.
_STATUS_WORD = {"active": "Active", "liquidation": "Liquidation", "dissolved": "Dissolved",
                "closed": "Closed", "converted-closed": "Converted/Closed"}
_CEASED = frozenset({"dissolved", "closed", "converted-closed"})  # not in the published snapshot
_STRIKE_OFF_WORD = "Active - Proposal to Strike off"
_CATEGORY_WORD = {
    "ltd": "Private Limited Company",
    "plc": "Public Limited Company",
    "llp": "Limited Liability Partnership",
    "private-limited-guarant-nsc": "PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)",
}

# SIC texts as the file writes them ("n.e.c." where the API's list says "not elsewhere classified").
SIC_TEXTS = {
    "41100": "Development of building projects",
    "41202": "Construction of domestic buildings",
    "43210": "Electrical installation",
    "43390": "Other building completion and finishing",
    "45200": "Maintenance and repair of motor vehicles",
    "46900": "Non-specialised wholesale trade",
    "47190": "Other retail sale in non-specialised stores",
    "49410": "Freight transport by road",
    "56101": "Licensed restaurants",
    "56302": "Public houses and bars",
    "62012": "Business and domestic software development",
    "62020": "Information technology consultancy activities",
    "62090": "Other information technology service activities",
    "68100": "Buying and selling of own real estate",
    "68209": "Other letting and operating of own or leased real estate",
    "69201": "Accounting and auditing activities",
    "70229": "Management consultancy activities other than financial management",
    "71129": "Other engineering activities",
    "73110": "Advertising agencies",
    "74909": "Other professional, scientific and technical activities n.e.c.",
    "82990": "Other business support service activities n.e.c.",
    "85590": "Other education n.e.c.",
    "86900": "Other human health activities",
    "93290": "Other amusement and recreation activities n.e.c.",
    "96020": "Hairdressing and other beauty treatment",
    "99999": "Dormant Company",
}


def _dmy(iso: str | None) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}" if iso else ""


def _quoted(fields: Iterable[str]) -> str:
    return '"' + '","'.join(f.replace('"', '""') for f in fields) + '"'


def company_fields(profile: CompanyProfile) -> list[str]:
    """The 55 fields of one company's row, from the profile the REST API serves."""
    number = profile.company_number
    if profile.company_status_detail == STRIKE_OFF_DETAIL:
        status = _STRIKE_OFF_WORD
    else:
        status = _STATUS_WORD[profile.company_status]
    address = profile.registered_office_address
    accounts = profile.accounts
    last = accounts.last_accounts
    ref = accounts.accounting_reference_date
    returns_last = profile.last_full_members_list_date
    returns_next = (add_years(date.fromisoformat(returns_last), 1) + timedelta(days=28)).isoformat() \
        if returns_last else None
    charges = "1" if profile.has_charges else "0"
    sics = [f"{code} - {SIC_TEXTS[code]}" for code in profile.sic_codes][:4]
    statement = profile.confirmation_statement
    return [
        profile.company_name, number, "", "", address.address_line_1, address.address_line_2 or "",
        address.locality, "", "", address.postal_code,
        _CATEGORY_WORD[profile.type], status, "United Kingdom", _dmy(profile.date_of_cessation),
        _dmy(profile.date_of_creation),
        # the file writes the reference month without its leading zero ("3", not "03")
        ref.day, str(int(ref.month)), _dmy(accounts.next_due), _dmy(last.made_up_to if last else None),
        last.type.upper().replace("-", " ") if last else "NO ACCOUNTS FILED",
        _dmy(returns_next), _dmy(returns_last),
        charges, charges, "0", "0",
        *sics, *[""] * (4 - len(sics)),
        "0", "0", f"http://business.data.gov.uk/id/company/{number}",
        *[""] * 20,
        _dmy(statement.next_due), _dmy(statement.last_made_up_to),
    ]


class BulkFiles(msgspec.Struct, frozen=True):
    """What `write_bulk_file` wrote: the files, and the companies in them."""

    paths: tuple[str, ...]
    snapshot_date: str
    company_numbers: tuple[str, ...]


def snapshot_file_names(snapshot: date, parts: int, suffix: str = ".zip") -> list[str]:
    """The published names: one file `BasicCompanyDataAsOneFile-…`, or `BasicCompanyData-…-partN_M`."""
    day = snapshot.isoformat()
    if parts == 1:
        return [f"BasicCompanyDataAsOneFile-{day}{suffix}"]
    return [f"BasicCompanyData-{day}-part{n}_{parts}{suffix}" for n in range(1, parts + 1)]


def _write_csv(path: Path, lines: Iterable[str], *, as_zip: bool, line_ending: str, bom: bool,
               stamp: date, large: bool = False) -> int:
    """Write the header and `lines` to `path` (a ZIP holding one CSV named like it, or a bare CSV);
    returns the CSV's size in bytes."""
    csv_name = path.with_suffix(".csv").name
    size = 0

    def write_all(out) -> None:
        nonlocal size
        head = ("\ufeff" if bom else "") + HEADER + line_ending
        buffer = [head]
        for line in lines:
            buffer.append(line + line_ending)
            if len(buffer) >= 4096:
                block = "".join(buffer).encode()
                size += len(block)
                out.write(block)
                buffer.clear()
        block = "".join(buffer).encode()
        size += len(block)
        out.write(block)

    if as_zip:
        # A fixed timestamp, so the same seed gives the same bytes (and the same SHA-256).
        member = zipfile.ZipInfo(csv_name, date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
        member.compress_type = zipfile.ZIP_DEFLATED
        member.external_attr = 0o644 << 16  # rw-r--r-- when unzipped
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive, \
                archive.open(member, "w", force_zip64=large) as out:
            write_all(out)
    else:
        with open(path, "wb") as out:
            write_all(out)
    return size


def write_bulk_file(directory: str | Path, universe: Universe, *, snapshot: date = SNAPSHOT_DATE,
                    parts: int = 1, include_dissolved: bool = False, as_zip: bool = True,
                    line_ending: str = "\r\n", bom: bool = False) -> BulkFiles:
    """Write the universe's companies as a snapshot into `directory`, sorted by name as published.

    `parts` > 1 cuts the rows into that many part files (each with its header), in order.
    """
    if parts < 1:
        raise ValueError("parts must be at least 1")
    profiles = [universe.profile(n) for n in universe.numbers]
    if not include_dissolved:
        profiles = [p for p in profiles if p.company_status not in _CEASED]
    profiles.sort(key=lambda p: (p.company_name, p.company_number))
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    size = -(-len(profiles) // parts)
    for n, name in enumerate(snapshot_file_names(snapshot, parts, ".zip" if as_zip else ".csv")):
        chunk = profiles[n * size:(n + 1) * size]
        path = folder / name
        _write_csv(path, (_quoted(company_fields(p)) for p in chunk), as_zip=as_zip,
                   line_ending=line_ending, bom=bom, stamp=snapshot)
        paths.append(str(path))
    return BulkFiles(paths=tuple(paths), snapshot_date=snapshot.isoformat(),
                     company_numbers=tuple(p.company_number for p in profiles))


# --- the synthetic file of the benchmark ---------------------------------------------------------


class SyntheticFile(msgspec.Struct, frozen=True):
    path: str
    rows: int
    of_interest: int  # rows written "Active - Proposal to Strike off"
    csv_bytes: int


# (word, weight per 10,000) for rows that are neither Active nor of interest.
_OTHER_STATUSES = (
    ("Liquidation", 110), ("In Administration", 12), ("Voluntary Arrangement", 8),
    ("Live but Receiver Manager on at least one charge", 4), ("RECEIVERSHIP", 2),
    ("ADMINISTRATIVE RECEIVER", 1), ("In Administration/Administrative Receiver", 1),
)
_CATEGORIES = (
    ("Private Limited Company", 9300), ("Limited Liability Partnership", 120), ("Public Limited Company", 30),
    ("PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)", 300),
    ("Community Interest Company", 150), ("Limited Partnership", 60),
    ("PRI/LBG/NSC (Private, Limited by guarantee, no share capital, use of 'Limited' exemption)", 40),
)
_ACCOUNT_CATEGORIES = ("MICRO ENTITY", "MICRO ENTITY", "TOTAL EXEMPTION FULL", "DORMANT", "UNAUDITED ABRIDGED",
                       "SMALL", "FULL", "NO ACCOUNTS FILED")
_COUNTIES = ("", "", "", "", "", "", "GREATER LONDON", "WEST YORKSHIRE", "KENT", "ESSEX", "LANCASHIRE", "HAMPSHIRE")
_SECOND_LINES = ("", "", "", "", "FIRST FLOOR", "SUITE 2", "OLD TOWN")
_SYLLABLES = ("ba", "lo", "ran", "tek", "mi", "sor", "vin", "qua", "del", "ex", "ar", "on", "tri", "ny",
              "ko", "zu", "pel", "gar", "wen", "fi", "ham", "ste", "rod", "lux", "cor", "bri", "ta", "mon")
_COUNTRIES = ("", "", "UNITED KINGDOM", "ENGLAND", "ENGLAND", "WALES", "SCOTLAND")


def _pool_dates(rng: random.Random, count: int, start: date, days: int) -> list[str]:
    return [(start + timedelta(days=rng.randrange(days))).strftime("%d/%m/%Y") for _ in range(count)]


def _weighted(rng: random.Random, pairs, count: int) -> list[str]:
    words, weights = zip(*pairs, strict=True)
    return rng.choices(words, weights=weights, k=count)


def _synthetic_lines(rows: int, seed: int, interest_share: float, counter: list[int]):
    rng = random.Random(f"{seed}:synthetic")
    dates = _pool_dates(rng, 20_000, date(1990, 1, 1), 12_000)
    recent = _pool_dates(rng, 5_000, date(2018, 1, 1), 2_500)
    future = _pool_dates(rng, 2_000, date(2023, 12, 1), 400)
    towns = [town.upper() for area in names.TOWNS.values() for town, _ in area]
    streets = [s.upper() for s in names.STREETS] + [e.upper() for e in names.ESTATES]
    sic = [f"{code} - {text}" for code, text in SIC_TEXTS.items()]
    categories = _weighted(rng, _CATEGORIES, 4096)
    others = _weighted(rng, _OTHER_STATUSES, 4096)
    other_share = sum(w for _, w in _OTHER_STATUSES) / 10_000
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    # Made-up words, so names and streets vary about as much as the register's (and the file
    # compresses about as well as the published one, which matters to the inflate rate).
    coined = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).upper() for _ in range(40_000)]
    words, trades = names.NAME_WORDS, names.NAME_TRADES
    rand, choice, randrange = rng.random, rng.choice, rng.randrange
    of_interest = 0
    for i in range(rows):
        draw = rand()
        if draw < interest_share:
            status = _STRIKE_OFF_WORD
            of_interest += 1
        elif draw < interest_share + other_share:
            status = others[i & 4095]
        else:
            status = "Active"
        name = f"{choice(coined)} {choice(words)} {choice(trades)} {'LIMITED' if i & 1 else 'LTD'}"
        quirk = randrange(2000)
        if quirk == 0:
            name = f'THE "{choice(words)}" {choice(trades)} LTD'  # a quote inside a field
        elif quirk == 1:
            name = f"PROPOSAL {choice(trades)} LTD"  # passes the bytes test, fails the parse
        elif quirk < 40:
            name = f"{choice(words)}, {choice(words)} & CO LIMITED"  # a comma inside a field
        number = f"{randrange(1, 16_000_000):08d}" if quirk < 1800 else f"SC{randrange(1, 999_999):06d}"
        # the four SIC fields, joined as they sit between a row's outer quotes
        sic_fields = (f'{choice(sic)}","","","' if quirk & 15 else f'{choice(sic)}","{choice(sic)}","","')
        previous = (f'{choice(recent)}","{choice(words)} {choice(trades)} LIMITED'
                    if quirk % 10 == 0 else '","')
        town = choice(towns)
        street = f"{randrange(1, 300)} {choice(coined)} {choice(streets)}" if quirk & 4 else \
            f"{randrange(1, 300)} {choice(streets)}"
        fields = (
            f'"{name.replace(chr(34), chr(34) * 2)}","{number}","","",'
            f'"{street}","{choice(_SECOND_LINES)}",'
            f'"{town}","{choice(_COUNTIES)}","{choice(_COUNTRIES)}","{town[:2]}{randrange(1, 30)} {randrange(10)}'
            f'{choice(letters)}{choice(letters)}","{categories[i & 4095]}","{status}","United Kingdom","",'
            f'"{dates[randrange(20_000)]}","{randrange(1, 29)}","{randrange(1, 13)}","{choice(future)}",'
            f'"{choice(recent)}","{choice(_ACCOUNT_CATEGORIES)}","","","0","0","0","0","{sic_fields}",'
            f'"0","0","http://business.data.gov.uk/id/company/{number}","{previous}",'
            + '"","",' * 9
            + f'"{choice(future)}","{choice(recent)}"'
        )
        yield fields
    counter.append(of_interest)


def write_synthetic(path: str | Path, rows: int, *, seed: int = 0, interest_share: float = 0.02,
                    as_zip: bool = True) -> SyntheticFile:
    """`rows` made-up companies in the published format, about `interest_share` of them of
    interest (strike-off proposed), for benchmarks. Name the path like a published file if the
    snapshot's date should be read from it."""
    if not 0.0 <= interest_share <= 0.5:
        raise ValueError("interest_share must be between 0 and 0.5")
    counter: list[int] = []
    large = rows * 600 > 2**31  # zipfile must be told up front when a member may pass 2 GiB
    size = _write_csv(Path(path), _synthetic_lines(rows, seed, interest_share, counter), as_zip=as_zip,
                      line_ending="\r\n", bom=False, stamp=SNAPSHOT_DATE, large=large)
    return SyntheticFile(path=str(path), rows=rows, of_interest=counter[0], csv_bytes=size)
