"""Per-recipient delivery progress of a spooled message, in `<id>.state` beside it.

Written atomically (temporary file, fsync, rename) after every delivery attempt, so a
restart never delivers again to a recipient whose destination already said 250. The
message leaves the spool only when every recipient has a final result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from relay.durable import atomic_write, fsync_dir

PENDING, DELIVERED, BOUNCED = "pending", "delivered", "bounced"


@dataclass
class RecipientState:
    status: str = PENDING
    attempts: int = 0
    next_attempt: float = 0.0
    last_reply: str = ""
    bounce: str = ""  # hard | soft, when bounced


@dataclass
class MessageState:
    recipients: dict[str, RecipientState] = field(default_factory=dict)

    @classmethod
    def new(cls, recipients: list[str]) -> MessageState:
        """Every recipient pending and due at once."""
        return cls({r: RecipientState() for r in recipients})

    def pending(self) -> list[str]:
        return [r for r, s in self.recipients.items() if s.status == PENDING]

    def due(self, now: float) -> list[str]:
        return [
            r for r, s in self.recipients.items() if s.status == PENDING and s.next_attempt <= now
        ]

    def next_due(self) -> float | None:
        times = [s.next_attempt for s in self.recipients.values() if s.status == PENDING]
        return min(times) if times else None

    @property
    def done(self) -> bool:
        return not self.pending()


def state_path(queue_dir: Path, queue_id: str) -> Path:
    return queue_dir / f"{queue_id}.state"


def load_state(queue_dir: Path, queue_id: str) -> MessageState | None:
    try:
        data = json.loads(state_path(queue_dir, queue_id).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable progress: start over rather than lose the message
    return MessageState({r: RecipientState(**s) for r, s in data["recipients"].items()})


def save_state(queue_dir: Path, queue_id: str, state: MessageState) -> None:
    payload = json.dumps({"recipients": {r: asdict(s) for r, s in state.recipients.items()}})
    atomic_write(state_path(queue_dir, queue_id), payload.encode())


def remove_message(queue_dir: Path, queue_id: str) -> None:
    """Drop a finished message: the message first, then its progress, then sync the dir."""
    (queue_dir / f"{queue_id}.msg").unlink(missing_ok=True)
    state_path(queue_dir, queue_id).unlink(missing_ok=True)
    fsync_dir(queue_dir)
