"""Prometheus metrics (prometheus-client): what a deliverability dashboard shows."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "postform_messages",
            "Messages by sender domain and outcome (accepted, rejected).",
            ["sender_domain", "outcome"],
            registry=self.registry,
        )
        self.recipients = Counter(
            "postform_recipients",
            "Recipients by sender domain and outcome (delivered, deferred, bounced, suppressed).",
            ["sender_domain", "outcome"],
            registry=self.registry,
        )
        self.queue_size = Gauge(
            "postform_queue_messages", "Messages in the spool.", registry=self.registry
        )
        self.oldest = Gauge(
            "postform_queue_oldest_age_seconds",
            "Age of the oldest message in the spool.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "postform_delivery_latency_seconds",
            "From acceptance to delivery.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
            registry=self.registry,
        )

    def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry)
