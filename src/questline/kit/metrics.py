"""Prometheus metrics, in a registry owned by one engine instance (no global state)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class HttpMetrics:
    """The engine's metrics: HTTP requests, and the pipeline's (ingest, worker, partitions)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "questline_http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "questline_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.role = Gauge("questline_role", "The roles this process runs (1 per role)", ["role"], registry=registry)
        self.events_ingested = Counter("questline_events_ingested_total", "Events accepted into the event log",
                                       registry=registry)
        self.events_processed = Counter("questline_events_processed_total", "Events whose effects committed",
                                        registry=registry)
        self.batch_seconds = Histogram(
            "questline_worker_batch_seconds", "Time of one worker batch (load, handle, flush, commit)",
            registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.partition_lag = Gauge("questline_partition_lag_events", "Events not yet applied, per partition",
                                   ["partition"], registry=registry)
        self.stream_pending = Gauge("questline_jetstream_pending", "JetStream messages not yet delivered, "
                                    "per partition consumer", ["partition"], registry=registry)
        self.stream_restarts = Counter(
            "questline_stream_restarts_total", "Partition consumers restarted from the applied position "
            "after an out-of-order delivery (a handover or a zombie worker)", registry=registry)
        # kit/loopwatch.py: how late ready work runs, and the collector's stop-the-world pauses.
        pause_buckets = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5)
        self.loop_lag = Histogram("questline_event_loop_lag_seconds", "How late a timer due on the event loop "
                                  "fired (synchronous work holding the loop)", registry=registry,
                                  buckets=pause_buckets)
        self.gc_pause = Histogram("questline_gc_pause_seconds", "Garbage collections by generation",
                                  ["generation"], registry=registry, buckets=pause_buckets)
        self.partitions_owned = Gauge("questline_partitions_owned", "Partitions this worker holds a lease on",
                                      registry=registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children of a request's (method, route, status), found once: ``labels`` takes
        # a lock and checks and joins its values on every call (routes are templates: a bounded set).
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[(method, route, status)] = (
                self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
