"""Which rows to keep, decided first on the raw line's bytes and then on the parsed row.

About 2% of the register is of interest (by default `company_status_detail` =
`active-proposal-to-strike-off`), so parsing every line of a 5-million-line file to keep one in
fifty wastes most of the time. The interest setting names API values; the vocabulary maps them
back to the file's status words, and the raw line is tested on bytes:

1. Split off the fields up to the status column (`line.split(b'","', k + 1)`, C speed).
2. If the line starts with a quote and those first k + 1 fields hold no quote but their own
   (one opening quote, then two per separator), those fields are exactly what `csv.reader`
   would read, whatever the rest of the line holds: so the status field is known exactly, as
   bytes, without decoding or parsing anything.
3. A status that is a published word not of interest: the line is skipped. Anything else (a
   word of interest, an unknown word, another spelling of a known one, a line whose first
   fields hold quotes) is parsed in full, and kept only if the parsed row matches.

So the bytes test never drops a row of interest and never keeps one wrongly: the parse has the
last word. An interest on another field (e.g. `type`) has no word to look for, so every line is
parsed. `interest=None` keeps every company.

`watch` adds companies to keep whatever their status: the ones the ledger holds as of interest,
whose rows the import needs to see whether they still are. The bytes test then also reads the
number field (it comes before the status, so it is just as exact) and never skips a watched one.
"""

from __future__ import annotations

from eventlog.ledger.entries import Interest
from eventlog.errors import ConfigError

from eventlog.bulk.company import BulkCompany
from eventlog.bulk.header import Columns
from eventlog.bulk.vocabulary import STATUS_FIELDS, STATUS_WORDS

__all__ = ["LineFilter"]

_ROW_FIELDS = frozenset(BulkCompany.__struct_fields__) - {"status_word", "category_word"}
_QUOTE = 34


class LineFilter:
    """`skip(line)`: cheap, on the bytes of one record's line, True only for a line certainly not
    of interest (nor watched). `matches(row)`: exact, on the parsed row. `keep_all`: no filtering."""

    def __init__(self, interest: Interest | None, watch: frozenset[str] = frozenset()) -> None:
        self.interest = interest
        self.watch = watch
        self.watch_bytes = frozenset(n.encode() for n in watch)
        self.keep_all = interest is None
        self.field = interest.field if interest is not None else None
        self.values = frozenset(interest.values) if interest is not None else frozenset()
        if self.field is not None and self.field not in _ROW_FIELDS:
            raise ConfigError(f"INTEREST_FIELD {self.field!r} is not a field a bulk row carries "
                              f"(one of: {', '.join(sorted(_ROW_FIELDS))})")
        # The published words, as bytes, whose API value is not of interest: a line whose status
        # field is exactly one of these is skipped. Empty when the status can't decide.
        self.skip_words: frozenset[bytes] = frozenset()
        if self.field in STATUS_FIELDS:
            position = STATUS_FIELDS.index(self.field)
            self.skip_words = frozenset(word.encode() for word, api in STATUS_WORDS.items()
                                        if api[position] not in self.values)
        self.status_at: int | None = None
        self.number_at: int | None = None  # set when watching: the number field's position
        self.count = 0

    def bind(self, columns: Columns) -> bool:
        """Fix the status column for one file; False when the bytes test can't be used on it
        (keeping all, an interest the status doesn't decide, or the status in the first or last
        column, where a quote or line ending sticks to it; when watching, a number column that
        doesn't come before the status)."""
        at = columns.at("CompanyStatus")
        usable = bool(self.skip_words) and at is not None and 0 < at < columns.count - 1
        number = columns.at("CompanyNumber")
        if self.watch and (number is None or at is None or number >= at):
            usable = False
        self.status_at = at if usable else None
        self.number_at = number if usable and self.watch else None
        self.count = columns.count
        return usable

    def skip(self, line: bytes) -> bool:
        """The bytes test on a line that is a whole record (even quotes): True only when the
        status field is certainly a published word not of interest. The reader inlines this."""
        k = self.status_at
        if k is None or not line or line[0] != _QUOTE:
            return False
        parts = line.split(b'","', k + 1)
        if len(parts) <= k + 1 or not parts[0]:
            return False
        prefix = len(line) - len(parts[-1])
        if line.count(b'"', 0, prefix) != 2 * k + 3:
            return False
        if self.number_at is not None and parts[self.number_at].lstrip(b'"') in self.watch_bytes:
            return False
        return parts[k] in self.skip_words

    def matches(self, row: BulkCompany) -> bool:
        if self.keep_all:
            return True
        return getattr(row, self.field) in self.values or row.company_number in self.watch  # type: ignore[arg-type]

    def of_interest(self, row: BulkCompany) -> bool:
        """The interest setting alone (watched rows are kept but may not be of interest)."""
        return self.keep_all if self.field is None else getattr(row, self.field) in self.values
