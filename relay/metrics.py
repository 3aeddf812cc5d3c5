"""Prometheus metrics (prometheus-client): what a deliverability dashboard shows.

With `--workers N` every worker process counts into files in one folder
(prometheus_client's multiprocess mode) and the scrape sums them, so the numbers
are the relay's, not one worker's. `prepare_multiprocess` must run in the parent
before the workers are forked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from relay.contract.hostport import split_hostport

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


def prepare_multiprocess(folder: Path) -> None:
    """Start an empty multiprocess folder and make metrics created from now on (in this
    process and the workers it forks) write there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    # The value class is chosen when prometheus_client is imported; choose again now.
    _values.ValueClass = _values.get_value_class()  # type: ignore[no-untyped-call]


def worker_exited(pid: int, folder: Path) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sum)."""
    mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if multiprocess_dir is not None:
            if os.environ.get(MULTIPROC_ENV) != str(multiprocess_dir):
                raise RuntimeError("prepare_multiprocess() must run before the workers start")
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
            own = None  # the collector reads every worker's files
        self.messages = Counter(
            "postform_messages",
            "Messages by sender domain and outcome (accepted, rejected).",
            ["sender_domain", "outcome"],
            registry=own,
        )
        self.recipients = Counter(
            "postform_recipients",
            "Recipients by sender domain and outcome (delivered, deferred, bounced, suppressed).",
            ["sender_domain", "outcome"],
            registry=own,
        )
        self.queue_size = Gauge(
            "postform_queue_messages",
            "Messages in the spool.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.oldest = Gauge(
            "postform_queue_oldest_age_seconds",
            "Age of the oldest message in the spool.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self._policy_metrics(own)
        self._feedback_metrics(own)
        self.latency = Histogram(
            "postform_delivery_latency_seconds",
            "From acceptance to delivery.",
            buckets=LATENCY_BUCKETS,
            registry=own,
        )

    def _policy_metrics(self, own: CollectorRegistry | None) -> None:
        """Which relay policy is in force, and whether the newest one failed to load."""
        self.policy_serial = Gauge(
            "postform_policy_serial",
            "Serial of the relay policy this relay enforces.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.policy_age = Gauge(
            "postform_policy_age_seconds",
            "Seconds since the relay policy this relay enforces was published.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.policy_errors = Counter(
            "postform_policy_load_errors",
            "Relay policies that could not be loaded (the last good one stays in force).",
            registry=own,
        )
        self.policy_failing = Gauge(
            "postform_policy_load_failing",
            "1 while the newest relay policy cannot be loaded, else 0.",
            registry=own,
            multiprocess_mode="livemax",
        )

    def _feedback_metrics(self, own: CollectorRegistry | None) -> None:
        """What comes back after delivery (bounces by kind, complaints) and what the
        webhooks told the applications."""
        self.bounces = Counter(
            "postform_bounces",
            "Bounced recipients by sender domain, kind (hard, soft) and source (delivery: "
            "the receiving server refused it; report: a bounce message came back later).",
            ["sender_domain", "bounce", "source"],
            registry=own,
        )
        self.complaints = Counter(
            "postform_complaints",
            "Spam complaints (ARF feedback reports) by sender domain.",
            ["sender_domain"],
            registry=own,
        )
        self.webhook_events = Counter(
            "postform_webhook_events",
            "Webhook events by webhook name and outcome (sent, retried, dropped).",
            ["webhook", "outcome"],
            registry=own,
        )
        self.webhook_outbox = Gauge(
            "postform_webhook_outbox_events",
            "Webhook events waiting in the outbox, by webhook name.",
            ["webhook"],
            registry=own,
            multiprocess_mode="livemax",
        )

    def serve(self, address: str) -> None:
        host, port = split_hostport(address)
        start_http_server(port, addr=host, registry=self.registry)


OTHER = "other"  # the label of every domain the policy does not name


def count_message(
    metrics: Metrics | None, known: frozenset[str], sender: str, outcome: str
) -> None:
    """One message's outcome (accepted, rejected), by its sender's domain when the policy
    names it (`known`), else `other`: a client cannot make labels up."""
    if metrics is not None:
        metrics.messages.labels(label_of(known, sender), outcome).inc()


def label_of(known: frozenset[str], sender: str) -> str:
    domain = sender.rpartition("@")[2].lower()
    return domain if domain in known else OTHER
