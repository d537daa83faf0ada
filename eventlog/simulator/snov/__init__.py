"""A Snov.io simulator on loopback: OAuth token with expiry, company domain by name, e-mails by
name and domain (asynchronous start and result polling), balance, the 60-a-minute limit and
credits that run out.

It lets ``ingest --simulate`` enrich with no account and no network, and lets tests judge a client
from the server's side (``SnovSimulatorState``: every request with its outcome and credits, starts
per lookup, the busiest window, tokens issued). Everything is deterministic from
``SnovSimulatorConfig.seed`` and an injectable clock. Where Snov.io's documentation is silent the
simulator takes the strictest plausible behaviour; each module's docstring says which.
"""

from eventlog.simulator.snov.app import RunningSnovSimulator, build_snov_app, running_snov_simulator
from eventlog.simulator.snov.config import MAX_BATCH, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SnovSimulatorConfig
from eventlog.simulator.snov.context import SNOV_SIMULATOR, SnovSimulator
from eventlog.simulator.snov.directory import Directory, EmailFound, normalise
from eventlog.simulator.snov.ratelimit import SlidingWindowLimit, WindowDecision
from eventlog.simulator.snov.record import SnovRequestRecord, SnovSimulatorState, TokenIssued
from eventlog.simulator.snov.tasks import domain_lookup_key, email_lookup_key

__all__ = [
    "MAX_BATCH",
    "SIM_CLIENT_ID",
    "SIM_CLIENT_SECRET",
    "SNOV_SIMULATOR",
    "Directory",
    "EmailFound",
    "RunningSnovSimulator",
    "SlidingWindowLimit",
    "SnovRequestRecord",
    "SnovSimulator",
    "SnovSimulatorConfig",
    "SnovSimulatorState",
    "TokenIssued",
    "WindowDecision",
    "build_snov_app",
    "domain_lookup_key",
    "email_lookup_key",
    "normalise",
    "running_snov_simulator",
]
