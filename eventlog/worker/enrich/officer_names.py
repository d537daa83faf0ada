"""An officer's name as Companies House writes it, split into the first and last names Snov.io
wants.

Companies House writes a natural person as ``SURNAME, Forenames`` ("SMITH, John Paul"), the
surname in capitals, sometimes everything in capitals, sometimes with a title or honours among
the forenames or after a second comma ("JONES, Dr Mary", "BROWN, Peter, Sir", "GREEN, Anne
Louise, Obe"). A corporate officer's name has no comma: there is no person to look up, so the
answer is None, as it is for anything else that doesn't have that shape. Capitals become the
name's usual case ("O'NEILL" -> "O'Neill", "SMITH-JONES" -> "Smith-Jones"); a name already in
mixed case is kept as written ("McDonald").
"""

from __future__ import annotations

import msgspec

__all__ = ["PersonName", "split_officer_name"]

_TITLES = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "sir", "dame", "lord", "lady", "prof",
    "professor", "rev", "revd", "reverend", "fr", "father", "capt", "captain", "col", "colonel",
    "major", "maj", "lt", "cllr", "councillor", "hon", "honourable", "rt", "the", "baron",
    "baroness", "viscount", "earl", "count", "countess", "sheikh", "rabbi", "imam", "canon",
})
_HONOURS = frozenset({
    "obe", "mbe", "cbe", "kbe", "dbe", "bem", "qc", "kc", "jp", "mp", "dl", "frcs", "phd", "frs",
    "jr", "jnr", "junior", "sr", "snr", "senior", "ii", "iii", "iv", "esq", "bsc", "ma", "msc", "mba",
})


class PersonName(msgspec.Struct, frozen=True):
    first_name: str
    last_name: str


def _bare(token: str) -> str:
    return token.strip(".").casefold()


def _usual_case(word: str) -> str:
    """"SMITH" -> "Smith", "O'NEILL" -> "O'Neill", "SMITH-JONES" -> "Smith-Jones"."""
    if not (word.isupper() or word.islower()):
        return word
    out = []
    capital = True
    for char in word.lower():
        out.append(char.upper() if capital else char)
        capital = not char.isalpha()
    return "".join(out)


def split_officer_name(name: str) -> PersonName | None:
    """("SMITH, John Paul") -> PersonName("John", "Smith"); None when it is not a person's name.

    The first name is the first forename that is not a title; honours can only follow it. Only
    trailing honours leave the surname ("SMITH JR"), so surnames such as MAJOR or LORD stay.
    """
    surname_part, comma, rest = name.partition(",")
    if not comma:
        return None
    surname = surname_part.split()
    while len(surname) > 1 and _bare(surname[-1]) in _HONOURS:
        surname.pop()
    forenames = [t.strip(".") for t in rest.replace(",", " ").split()]
    first = next((t for t in forenames if t and _bare(t) not in _TITLES), "")
    if not surname or not first:
        return None
    last = " ".join(_usual_case(t) for t in surname)
    return PersonName(first_name=_usual_case(first), last_name=last)
