"""What the simulated Snov.io knows: a domain per company name, e-mails per person on a domain.

Both are pure functions of (seed, input), so they agree with the Companies House simulator's data
without reading it: any company name its universe makes gets the same domain every time, and any
officer's name on that domain the same e-mails. Inputs are normalised first (case, spacing,
accents), as a real lookup service would, so "Acorn Ltd" and "ACORN  LTD" are one company.
"""

from __future__ import annotations

import random
import re
import unicodedata

import msgspec

from eventlog.simulator.snov.config import SnovSimulatorConfig

__all__ = ["Directory", "EmailFound", "fold", "normalise"]

# Legal suffixes say nothing about the web address; dropped from the end of a name.
_SUFFIXES = frozenset({"ltd", "limited", "plc", "llp", "lp", "cic", "uk", "co", "company"})
_TLDS = ("co.uk", "co.uk", "com", "uk", "net")
_PATTERNS = ("{first}.{last}", "{f}{last}", "{first}", "{first}{last}", "{f}.{last}")
_UNKNOWN_REASONS = ("catchall", "greylisted", "connection_error")


def normalise(text: str) -> str:
    """Lower case, accents dropped, runs of spaces made one: the identity of a lookup input."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def fold(text: str) -> str:
    """The characters of ``text`` an address or a host name may carry: a-z, 0-9 and hyphens."""
    return re.sub(r"[^a-z0-9-]", "", normalise(text).replace(" ", "-")).strip("-")


class EmailFound(msgspec.Struct, frozen=True):
    """One address in an e-mail result, with the flags the real service sends."""

    email: str
    smtp_status: str  # "valid", "unknown" or "not_valid"
    is_valid_format: bool = True
    is_disposable: bool = False
    is_webmail: bool = False
    is_gibberish: bool = False
    unknown_status_reason: str | None = None


class Directory:
    """The deterministic answers, one method per lookup kind."""

    def __init__(self, config: SnovSimulatorConfig) -> None:
        self.config = config

    def domain_of(self, company_name: str) -> str | None:
        """The web domain of a company name, or None for the ``no_domain_share`` it can't find."""
        key = normalise(company_name)
        rng = random.Random(f"{self.config.seed}:domain:{key}")
        if rng.random() < self.config.no_domain_share:
            return None
        words = key.replace("&", " and ").split()
        while words and words[-1].strip(".") in _SUFFIXES:
            words.pop()
        labels = [fold(word) for word in words]
        labels = [label for label in labels if label]
        if not labels:
            return None
        joiner = "-" if rng.random() < 0.3 else ""
        return f"{joiner.join(labels)}.{rng.choice(_TLDS)}"

    def emails_of(self, first_name: str, last_name: str, domain: str) -> tuple[EmailFound, ...]:
        """The addresses of a person on a domain: none for ``no_email_share`` of people, else one,
        sometimes followed by a second that is "unknown" or "not_valid"."""
        first, last, host = fold(first_name), fold(last_name), normalise(domain)
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:email:{first}|{last}|{host}")
        if not first or not last or not host or rng.random() < cfg.no_email_share:
            return ()
        patterns = list(_PATTERNS)
        rng.shuffle(patterns)
        values = {"first": first, "last": last, "f": first[0]}
        primary = self._finding(patterns[0].format(**values), host, rng.random() < cfg.unknown_email_share, rng)
        if rng.random() >= cfg.extra_email_share:
            return (primary,)
        second_address = f"{patterns[1].format(**values)}@{host}"
        if rng.random() < 0.5:
            second = EmailFound(email=second_address, smtp_status="not_valid")
        else:
            second = self._finding(patterns[1].format(**values), host, True, rng)
        return (primary, second)

    @staticmethod
    def _finding(local: str, host: str, unknown: bool, rng: random.Random) -> EmailFound:
        if unknown:
            return EmailFound(
                email=f"{local}@{host}",
                smtp_status="unknown",
                unknown_status_reason=rng.choice(_UNKNOWN_REASONS),
            )
        return EmailFound(email=f"{local}@{host}", smtp_status="valid")
