"""The officer counts, as Companies House's metrics service keeps them.

``total_results``, ``active_count``, ``inactive_count`` and ``resigned_count`` of an officer list do
not come from the list: they come from a separate metrics service, updated on its own schedule, so
they can count appointments the list no longer has or miss ones it already shows. A client must
page on the items it receives, not on ``total_results``.

For a company that has ceased (dissolved, closed, converted-closed) the officers still in office
when it ceased are not resigned (no ``resigned_on``); the service reports them as inactive:
``active_count`` 0, ``inactive_count`` what the metrics hold as active.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .companies import CEASED_STATUSES
from .models import Officer

__all__ = ["OfficerCounts", "officer_counts"]


class OfficerCounts(msgspec.Struct, frozen=True, kw_only=True):
    total_results: int
    active_count: int
    inactive_count: int
    resigned_count: int


def officer_counts(company_status: str, officers: Sequence[Officer], lag: int = 0) -> OfficerCounts:
    """The counts the metrics service reports for ``officers``, ``lag`` appointments off.

    A negative lag leaves out the newest appointments (the list is ahead of the metrics); a
    positive one still counts appointments since removed (the metrics are behind the list).
    """
    active = sum(1 for officer in officers if officer.resigned_on is None)
    resigned = len(officers) - active
    if lag < 0:
        missing = -lag
        from_active = min(missing, active)
        active -= from_active
        resigned -= min(missing - from_active, resigned)
    else:
        active += lag
    inactive = 0
    if company_status in CEASED_STATUSES:
        active, inactive = 0, active
    return OfficerCounts(
        total_results=active + inactive + resigned,
        active_count=active,
        inactive_count=inactive,
        resigned_count=resigned,
    )
