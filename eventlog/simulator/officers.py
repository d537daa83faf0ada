"""Fake officers (appointments) of a company.

The list is a pure function of (seed, company profile). Sizes are skewed like the real register:
most companies have a handful of officers, a few have dozens, so a client must follow pagination
(35 per page by default) for some of them. (Companies with none at all are the universe's quirk,
see quirks.py.)

A company that has ceased (dissolved, closed, converted-closed) had its officers appointed and
resigned before it ceased; those still in office then keep no ``resigned_on``: the register does
not resign them, it counts them as inactive.
"""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import date

from . import names
from .dates import AS_OF, date_between
from .models import (
    CompanyProfile,
    DateOfBirth,
    Officer,
    OfficerAddress,
    OfficerLinks,
    OfficerRef,
)

__all__ = ["make_officers", "officer_count", "officer_id"]


def officer_count(rng: random.Random) -> int:
    """1-60 officers: 75% have 1-6, 18% 7-35, 7% more than one default page (36-60)."""
    draw = rng.random()
    if draw < 0.75:
        return rng.randint(1, 6)
    if draw < 0.93:
        return rng.randint(7, 35)
    return rng.randint(36, 60)


def officer_id(*parts: object) -> str:
    """A 27-character URL-safe id, the shape of the real ``/officers/<id>/appointments`` ids."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_officers(seed: int, profile: CompanyProfile) -> tuple[Officer, ...]:
    """All appointments of a company: current ones first (newest first), then resigned ones."""
    number = profile.company_number
    rng = random.Random(f"{seed}:officers:{number}")
    created = date.fromisoformat(profile.date_of_creation)
    ceased = profile.date_of_cessation
    end = date.fromisoformat(ceased) if ceased else AS_OF
    officers = [
        _officer(rng, seed, profile, created, end, position)
        for position in range(officer_count(rng))
    ]
    active = sorted(
        (o for o in officers if o.resigned_on is None), key=lambda o: o.appointed_on, reverse=True
    )
    resigned = sorted(
        (o for o in officers if o.resigned_on is not None),
        key=lambda o: o.resigned_on or "",
        reverse=True,
    )
    return tuple(active + resigned)


def _role(rng: random.Random, profile: CompanyProfile, position: int) -> str:
    if profile.type == "llp":
        return "llp-designated-member" if position < 2 else "llp-member"
    if position > 0 and rng.random() < 0.12:
        return "secretary"
    return "director"


def _name(rng: random.Random) -> str:
    forenames = [rng.choice(names.FORENAMES)]
    if rng.random() < 0.5:
        forenames.append(rng.choice(names.FORENAMES))
    return f"{rng.choice(names.SURNAMES)}, {' '.join(forenames)}"


def _officer(
    rng: random.Random,
    seed: int,
    profile: CompanyProfile,
    created: date,
    end: date,
    position: int,
) -> Officer:
    """One appointment, made and (for some) ended between ``created`` and ``end``."""
    number = profile.company_number
    role = _role(rng, profile, position)
    appointed = date_between(rng, created, end)
    resigned = date_between(rng, appointed, end) if rng.random() < 0.3 else None
    locality, area = rng.choice(names.TOWNS[profile.jurisdiction])
    person = officer_id(seed, "officer", number, position)
    appointment = officer_id(seed, "appointment", number, position)
    individual = role != "secretary"
    return Officer(
        address=OfficerAddress(
            address_line_1=rng.choice(names.STREETS),
            country=names.ADDRESS_COUNTRY[profile.jurisdiction],
            locality=locality,
            postal_code=names.postcode(rng, area),
            premises=str(rng.randint(1, 200)),
        ),
        appointed_on=appointed.isoformat(),
        country_of_residence=rng.choice(names.COUNTRY_OF_RESIDENCE[profile.jurisdiction]),
        date_of_birth=(
            DateOfBirth(month=rng.randint(1, 12), year=rng.randint(1940, 2000))
            if individual
            else None
        ),
        links=OfficerLinks(
            officer=OfficerRef(appointments=f"/officers/{person}/appointments"),
            self=f"/company/{number}/appointments/{appointment}",
        ),
        name=_name(rng),
        nationality=rng.choice(names.NATIONALITIES),
        occupation=rng.choice(names.OCCUPATIONS) if individual else None,
        officer_role=role,
        resigned_on=resigned.isoformat() if resigned else None,
    )
