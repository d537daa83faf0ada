"""`/metrics`: the worker in Prometheus's text format, via prometheus-client.

A custom `Collector` registered on a `CollectorRegistry` of our own (not the
library's global one, which would mix in whatever else the process imported
and can't be built twice in one test run). Values are read at scrape time,
from two places, and each metric's help says which:
- the stream clients' `StreamStats` (events received and processed, rejected
  lines, reconnects): counters of this process, reset by a restart, which
  Prometheus's `rate()` handles;
- the projections (window usage, queue, 429s, companies by state): the
  ledger's view, the same for every process looking at the file.

Latency quantiles are gauges labelled `quantile` rather than a summary: they
are taken over the most recent stream events in the ledger, so there is no
honest cumulative `_count`/`_sum` to go with them.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from eventlog.ops.enrichment_status import collect_enrichment
from eventlog.ops.probe import LATENCY_SAMPLE, Probe
from projections.projectors import processing_state, snov_request_log
from projections.projectors.request_queue import depth_by_priority

__all__ = ["ChledgerCollector", "metrics_registry", "render_metrics", "CONTENT_TYPE_LATEST"]

_P = "chledger_"


class ChledgerCollector(Collector):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def collect(self) -> Iterator[Metric]:
        p = self.probe
        yield from self._stream(p)
        yield from self._requests(p)
        yield from self._pipeline(p)
        yield from self._enrichment(p)

    def _stream(self, p: Probe) -> Iterator[Metric]:
        stats = p.streams()
        received = CounterMetricFamily(_P + "stream_events_received",
                                       "Stream lines read by this process: events (new or repeated) "
                                       "and malformed lines", labels=["stream"])
        processed = CounterMetricFamily(_P + "stream_events_processed",
                                        "Stream events appended to the ledger (and so projected) by "
                                        "this process", labels=["stream"])
        duplicates = CounterMetricFamily(_P + "stream_events_duplicate",
                                         "Stream events the ledger already held (re-sent after a "
                                         "reconnect)", labels=["stream"])
        rejected = CounterMetricFamily(_P + "stream_lines_rejected",
                                       "Stream lines recorded as stream.rejected", labels=["stream"])
        reconnects = CounterMetricFamily(_P + "stream_reconnects",
                                         "Successful connections after the first, this process",
                                         labels=["stream"])
        gaps = CounterMetricFamily(_P + "stream_gaps", "416 answers: events lost before the live head",
                                   labels=["stream"])
        connected = GaugeMetricFamily(_P + "stream_connected", "1 while the stream is connected",
                                      labels=["stream"])
        errors = GaugeMetricFamily(_P + "stream_error_ratio",
                                   "Rejected lines / lines received, this process", labels=["stream"])
        for s in stats:
            seen = s.events_seen + s.rejected
            received.add_metric([s.stream], seen)
            processed.add_metric([s.stream], s.events)
            duplicates.add_metric([s.stream], s.duplicates)
            rejected.add_metric([s.stream], s.rejected)
            reconnects.add_metric([s.stream], s.reconnects)
            gaps.add_metric([s.stream], s.gaps)
            connected.add_metric([s.stream], 1 if s.connected else 0)
            errors.add_metric([s.stream], s.rejected / seen if seen else 0.0)
        yield from (received, processed, duplicates, rejected, reconnects, gaps, connected, errors)
        latency = GaugeMetricFamily(
            _P + "processing_latency_seconds",
            f"Stream event published_at to ledger received_at, over the last {LATENCY_SAMPLE} "
            "stream events in the ledger", labels=["quantile"])
        for q, v in p.latency_quantiles().items():
            latency.add_metric([f"{q:g}"], v)
        yield latency

    def _requests(self, p: Probe) -> Iterator[Metric]:
        now = p.now()
        used = p.limiter.in_window(now)
        yield GaugeMetricFamily(_P + "rate_limit_window_used",
                                "Requests sent in the sliding window (api_rate_limit_log)", value=used)
        yield GaugeMetricFamily(_P + "rate_limit_window_limit", "RATE_LIMIT_REQUESTS",
                                value=p.limiter.limit)
        yield GaugeMetricFamily(_P + "rate_limit_window_seconds", "RATE_LIMIT_WINDOW",
                                value=p.limiter.window)
        cooldown = p.limiter.cooldown_until()
        yield GaugeMetricFamily(_P + "rate_limit_cooldown_seconds",
                                "Seconds until calls may resume after a 429/403 (0 = none)",
                                value=max(0.0, cooldown - now))
        limited = CounterMetricFamily(_P + "rate_limited_responses",
                                      "429 and 403 answers in the whole ledger (api_rate_limit_log)",
                                      labels=["status"])
        for status, n in sorted(p.rate_limited_total().items()):
            limited.add_metric([str(status)], n)
        yield limited
        answered, failed = p.request_outcomes()
        yield GaugeMetricFamily(_P + "request_error_ratio",
                                "Share of requests answered in the window that were not 2xx or 404",
                                value=failed / answered if answered else 0.0)

    def _pipeline(self, p: Probe) -> Iterator[Metric]:
        depth = GaugeMetricFamily(_P + "queue_depth", "Requests queued or in flight (request_queue)",
                                  labels=["priority"])
        for priority, n in depth_by_priority(p.conn).items():
            depth.add_metric([priority], n)
        yield depth
        states = GaugeMetricFamily(_P + "companies", "Companies by processing_state",
                                   labels=["state"])
        for state, n in processing_state.state_counts(p.conn).items():
            states.add_metric([state], n)
        yield states
        yield GaugeMetricFamily(_P + "ledger_head", "Position of the newest ledger entry",
                                value=p.head())
        yield GaugeMetricFamily(_P + "uptime_seconds", "Seconds since the worker started",
                                value=max(0.0, p.now() - p.view.started_at))
        yield GaugeMetricFamily(_P + "memory_rss_bytes", "Resident memory of this process",
                                value=p.rss_bytes())
        if not p.conn.filename:
            return
        disk = p.disk()
        yield GaugeMetricFamily(_P + "database_bytes", "Size of the database file, its WAL and shm",
                                value=disk.database_bytes)
        yield GaugeMetricFamily(_P + "disk_free_bytes", "Bytes free on the database's filesystem",
                                value=disk.free_bytes)
        yield GaugeMetricFamily(_P + "disk_reserve_bytes", "DISK_RESERVE_MB: the worker stops below it",
                                value=disk.reserve_bytes)
        if disk.days_left is not None:  # absent until the ledger is an hour old
            yield GaugeMetricFamily(_P + "disk_days_left",
                                    "Days until free space reaches the reserve, at the last day's growth",
                                    value=disk.days_left)


    def _enrichment(self, p: Probe) -> Iterator[Metric]:
        """Snov.io, from its projections; nothing while enrichment is off and has never run here."""
        e = collect_enrichment(p.conn, p.settings, p.now(), detail=False)
        if e is None:
            return
        requests = CounterMetricFamily(_P + "snov_requests", "Snov.io requests by call and outcome, in the "
                                       "whole ledger (snov_request_log; outcome waiting while unanswered)",
                                       labels=["call", "outcome"])
        for (call, outcome), n in sorted(snov_request_log.outcome_counts(p.conn).items()):
            requests.add_metric([call, outcome], n)
        yield requests
        yield GaugeMetricFamily(_P + "snov_window_used", "Snov.io requests in its sliding window",
                                value=e.window_used)
        yield GaugeMetricFamily(_P + "snov_window_limit", "SNOV_RATE_LIMIT", value=e.window_limit)
        yield CounterMetricFamily(_P + "snov_credits_spent", "Snov.io credits spent (lost starts at their "
                                  "worst case)", value=e.credits_spent)
        yield GaugeMetricFamily(_P + "snov_credits_reserved", "Worst case of the lookups running",
                                value=e.credits_reserved)
        for name, counts, what in (("snov_domains", e.domains, "Companies by domain lookup state"),
                                   ("snov_emails", e.emails, "E-mail rows by state (found: one per address)")):
            family = GaugeMetricFamily(_P + name, what, labels=["state"])
            for state, n in counts.items():
                family.add_metric([state], n)
            yield family
        stopped = GaugeMetricFamily(_P + "snov_stopped", "1 while enrichment is stopped, by why",
                                    labels=["code"])
        stopped.add_metric([e.stopped or "none"], 1 if e.stopped else 0)
        yield stopped


def metrics_registry(probe: Probe) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ChledgerCollector(probe))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
