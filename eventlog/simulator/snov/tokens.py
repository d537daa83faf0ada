"""Access tokens: issued for ``token_lifetime`` seconds, no refresh grant, 401 once expired.

A token stays valid until it expires even after a newer one was issued (the documentation says
nothing about revoking older ones; a client must not rely on either). An expired token still
names its account, so requests made with it count against that account's limit.
"""

from __future__ import annotations

import hashlib

import msgspec

__all__ = ["TokenBook", "TokenState"]


class TokenState(msgspec.Struct, frozen=True):
    account: str
    expires_at: float


class TokenBook:
    """Every token handed out, by value."""

    def __init__(self, seed: int, lifetime: int) -> None:
        self.seed = seed
        self.lifetime = lifetime
        self._tokens: dict[str, TokenState] = {}

    def issue(self, account: str, now: float) -> tuple[str, TokenState]:
        value = hashlib.sha256(f"{self.seed}:token:{len(self._tokens)}".encode()).hexdigest()[:40]
        state = TokenState(account=account, expires_at=now + self.lifetime)
        self._tokens[value] = state
        return value, state

    def lookup(self, value: str | None) -> TokenState | None:
        return None if value is None else self._tokens.get(value)
