"""What is in the spool now: messages, the oldest one's age, deferred recipients per
destination and the replies that deferred them (`relay status`, the dashboard)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from relay.contract.addresses import domain_of
from relay.dashboardstats import reason_of
from relay.queuestate import load_state
from relay.spool import read_envelope


@dataclass(frozen=True)
class QueueView:
    messages: int = 0
    oldest_age_seconds: float | None = None
    deferred_by_destination: dict[str, int] = field(default_factory=dict)
    deferral_reasons: list[tuple[str, int]] = field(default_factory=list)  # most first


def queue_view(folder: Path, top: int = 10) -> QueueView:
    """The spool of the relay data folder `folder` as it is now."""
    queue = folder / "spool" / "queue"
    ids = sorted(p.stem for p in queue.glob("*.msg")) if queue.exists() else []
    deferred: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    oldest: float | None = None
    for queue_id in ids:
        try:  # the envelope alone: a large backlog is not read whole
            envelope = read_envelope(queue / f"{queue_id}.msg")
        except (OSError, ValueError):
            continue
        received = float(envelope.get("received_at", 0.0))
        oldest = received if oldest is None else min(oldest, received)
        state = load_state(queue, queue_id)
        for rcpt in state.pending() if state else []:
            assert state is not None
            entry = state.recipients[rcpt]
            if entry.attempts:
                deferred[domain_of(rcpt)] += 1
                reasons[reason_of(entry.last_reply or "?")] += 1
    return QueueView(
        messages=len(ids),
        oldest_age_seconds=round(time.time() - oldest, 1) if oldest else None,
        deferred_by_destination=dict(deferred.most_common()),
        deferral_reasons=reasons.most_common(top),
    )
