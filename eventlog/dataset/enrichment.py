"""The one join of the lead export to enrichment: a company's domain, an officer's e-mails.

Reads `domains` and `emails` only through the read functions their projector modules export,
one chunk of rows at a time (a few hundred companies), so an export of any size keeps memory
flat and does one indexed lookup per table per chunk.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import apsw

from projections.projectors import domains, emails

__all__ = ["Enrichment", "FoundEmail", "enrichment_for"]

FoundEmail = emails.FoundEmail


class Enrichment(NamedTuple):
    domain: str | None
    emails: list[emails.FoundEmail]
    changed_at: str | None  # the latest answer behind it (domain or e-mail), ISO 8601 UTC

    @property
    def has_email(self) -> bool:
        return bool(self.emails)


_NONE = Enrichment(None, [], None)


def enrichment_for(conn: apsw.Connection, keys: Sequence[tuple[str, str | None]]) -> list[Enrichment]:
    """For each (company number, officer id), in order: the company's domain and the e-mails
    found for that officer at that company (none when not enriched, or erased)."""
    if not keys:
        return []
    found_domains = domains.found_for(conn, sorted({c for c, _ in keys}))
    found_emails = emails.found_for(conn, sorted({o for _, o in keys if o}))
    out = []
    for company, officer in keys:
        d = found_domains.get(company)
        mails = found_emails.get((officer, company), []) if officer else []
        if d is None and not mails:
            out.append(_NONE)
            continue
        stamps = [s for s in ([d.answered_at] if d else []) + [m.answered_at for m in mails] if s]
        out.append(Enrichment(d.domain if d else None, mails, max(stamps) if stamps else None))
    return out
