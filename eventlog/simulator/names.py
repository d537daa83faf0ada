"""Word lists (and the postcode shape) the fake companies and officers are assembled from.

Kept apart from the generators so the generators read as logic, and so the lists can grow without
touching anything that decides what the data means.
"""

from __future__ import annotations

import random

_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def postcode(rng: random.Random, area: str) -> str:
    """A plausible UK postcode in ``area`` ("NR16 2HS")."""
    letters = "".join(rng.choice(_POSTCODE_LETTERS) for _ in range(2))
    return f"{area}{rng.randint(1, 29)} {rng.randint(0, 9)}{letters}"

NAME_WORDS = (
    "ABBEY", "ACORN", "ALDER", "ANCHOR", "APEX", "ARDEN", "ASHFORD", "ATLAS", "AVON", "BEACON",
    "BIRCH", "BLUEBELL", "BRAMBLE", "BRIGHT", "BROOK", "CALDER", "CEDAR", "CHILTERN", "CLYDE",
    "COBALT", "CORNER", "COTSWOLD", "CROWN", "DERWENT", "DOVE", "EDEN", "ELM", "FALCON", "FERN",
    "GLENCOYNE", "GRANITE", "HARBOUR", "HAWTHORN", "HERON", "HIGHLAND", "IVY", "JUNIPER", "KESTREL",
    "LARCH", "LINDEN", "MAPLE", "MEADOW", "MERIDIAN", "MORAY", "NORTHGATE", "OAKLEY", "ORCHARD",
    "PENNINE", "PHOENIX", "QUARRY", "RAVEN", "RIVERSIDE", "ROWAN", "SEVERN", "SILVER", "SOLENT",
    "SPRUCE", "STERLING", "SUMMIT", "TAMAR", "THAMES", "TRENT", "TWEED", "VALLEY", "WESSEX",
    "WILLOW", "WYE", "YEW",
)

NAME_TRADES = (
    "ENGINEERING", "CONSULTING", "HOLDINGS", "SERVICES", "PROPERTIES", "TRADING", "LOGISTICS",
    "CONSTRUCTION", "DESIGN", "SOLUTIONS", "TECHNOLOGIES", "VENTURES", "CATERING", "MOTORS",
    "HEALTHCARE", "RECRUITMENT", "MEDIA", "ESTATES", "ROOFING", "ELECTRICAL",
)

SIC_CODES = (
    "45200", "41100", "41202", "43210", "43390", "46900", "47190", "49410", "56101", "56302",
    "62012", "62020", "62090", "68100", "68209", "69201", "70229", "71129", "73110", "74909",
    "82990", "85590", "86900", "93290", "96020", "99999",
)

STREETS = (
    "High Street", "Station Road", "Church Lane", "Mill Lane", "Victoria Road", "Park Avenue",
    "Heath Road", "King Street", "Queen Street", "London Road", "Manor Way", "Bridge Street",
    "Market Place", "The Green", "Castle Street", "North Road", "Harbour View", "Old Forge Lane",
)

ESTATES = (
    "Heath Road Industrial Estate", "Riverside Business Park", "Enterprise House",
    "The Old Dairy", "Innovation Centre", "Kingsway Trading Estate",
)

# (locality, postcode area) per jurisdiction, so an SC company sits in Scotland.
TOWNS = {
    "england-wales": (
        ("Norwich", "NR"), ("London", "EC"), ("London", "SW"), ("Manchester", "M"),
        ("Leeds", "LS"), ("Bristol", "BS"), ("Birmingham", "B"), ("Cardiff", "CF"),
        ("Exeter", "EX"), ("York", "YO"), ("Nottingham", "NG"), ("Brighton", "BN"),
        ("Swansea", "SA"), ("Cambridge", "CB"), ("Newcastle upon Tyne", "NE"),
    ),
    "scotland": (
        ("Glasgow", "G"), ("Edinburgh", "EH"), ("Aberdeen", "AB"), ("Dundee", "DD"),
        ("Inverness", "IV"), ("Perth", "PH"),
    ),
    "northern-ireland": (("Belfast", "BT"), ("Londonderry", "BT"), ("Newry", "BT")),
}

COUNTRY_OF_RESIDENCE = {
    "england-wales": ("England", "England", "England", "Wales", "United Kingdom"),
    "scotland": ("Scotland", "Scotland", "United Kingdom"),
    "northern-ireland": ("Northern Ireland", "Northern Ireland", "United Kingdom"),
}

ADDRESS_COUNTRY = {
    "england-wales": "England",
    "scotland": "Scotland",
    "northern-ireland": "Northern Ireland",
}

SURNAMES = (
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON",
    "WRIGHT", "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD", "JACKSON",
    "CLARKE", "PATEL", "KHAN", "MACDONALD", "CAMPBELL", "STEWART", "MURPHY", "O'NEILL", "KELLY",
    "HUGHES", "EDWARDS", "LEWIS", "MORGAN", "SCOTT", "MITCHELL", "NOWAK", "SINGH", "ALI", "BAKER",
)

FORENAMES = (
    "James", "Oliver", "Sarah", "Emma", "David", "Claire", "Mohammed", "Aisha", "Thomas", "Laura",
    "Richard", "Helen", "Daniel", "Sophie", "Andrew", "Rebecca", "Michael", "Priya", "Paul", "Fiona",
    "Stephen", "Karen", "Ian", "Joanne", "Mark", "Catherine", "Piotr", "Agnieszka", "Sean", "Niamh",
)

NATIONALITIES = (
    "British", "British", "British", "British", "British", "British", "Irish", "Polish", "Indian",
    "Pakistani", "Italian", "Romanian", "German", "American",
)

OCCUPATIONS = (
    "Director", "Company Director", "Managing Director", "Engineer", "Accountant", "Consultant",
    "Builder", "Electrician", "Software Developer", "Chef", "Retailer", "Property Developer",
    "Solicitor", "Nurse", "Sales Manager", "None",
)

ACCOUNTS_TYPES = ("micro-entity", "micro-entity", "dormant", "total-exemption-full", "small", "full")

FIELDS_CHANGED = (
    ("company_status",),
    ("company_status", "company_status_detail"),
    ("registered_office_address.address_line_1", "registered_office_address.postal_code"),
    ("accounts.next_due", "accounts.next_made_up_to", "accounts.last_accounts.made_up_to"),
    ("confirmation_statement.next_due", "confirmation_statement.last_made_up_to"),
    ("company_name",),
    ("sic_codes",),
)
