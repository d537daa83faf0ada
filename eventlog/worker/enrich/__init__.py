"""Enrichment of companies and officers through Snov.io: the wire vocabulary (``snov_api``),
matching results to what was asked (``snov_match``), officers' names as Snov.io wants them
(``officer_names``) and a thin transport with a token holder (``snov_http``).

Nothing here touches the ledger or decides when to call: the worker's enrichment stage does,
wrapping every call of ``snov_http`` in a write-ahead ledger step and a sliding-window limiter.
"""
