"""Officers' names as Companies House writes them, split for Snov.io."""

from __future__ import annotations

import pytest

from eventlog.worker.enrich.officer_names import PersonName, split_officer_name
from eventlog.simulator import SimulatorConfig, Universe


@pytest.mark.parametrize("written, first, last", [
    ("SMITH, John Paul", "John", "Smith"),
    ("SMITH, JOHN PAUL", "John", "Smith"),
    ("JONES, Dr Mary", "Mary", "Jones"),
    ("BROWN, Peter, Sir", "Peter", "Brown"),
    ("GREEN, Anne Louise, Obe", "Anne", "Green"),
    ("WHITE, Mr. J.", "J", "White"),
    ("O'NEILL, SEAN", "Sean", "O'Neill"),
    ("SMITH-JONES, Jean-Luc", "Jean-Luc", "Smith-Jones"),
    ("McDONALD, Fiona", "Fiona", "McDONALD"),  # mixed case is kept as written
    ("VAN DER BERG, Pieter", "Pieter", "Van Der Berg"),
    ("MAJOR, John", "John", "Major"),  # a surname that is also a title stays
    ("SMITH JR, John", "John", "Smith"),
    ("  smith ,  john  ", "John", "Smith"),
    ("LI, Ma", "Ma", "Li"),
])
def test_a_person_is_split_into_first_and_last(written: str, first: str, last: str) -> None:
    assert split_officer_name(written) == PersonName(first_name=first, last_name=last)


@pytest.mark.parametrize("written", ["ACME HOLDINGS LIMITED", "SMITH,", "SMITH, Dr", ", John", ""])
def test_what_is_not_a_person_gives_none(written: str) -> None:
    assert split_officer_name(written) is None


def test_every_natural_person_of_the_simulated_register_splits() -> None:
    universe = Universe(SimulatorConfig(seed=11, company_count=200))
    names = [o.name for number in universe.numbers for o in universe.officers(number)]
    split = [split_officer_name(n) for n in names]
    assert names and all(s is not None for s in split)
    for name, person in zip(names, split):
        assert person is not None
        assert name.split(",")[1].split()[0].lower() == person.first_name.lower()
        assert person.last_name.upper() == name.split(",")[0]
