"""The relay's own settings (listeners, TLS files, data folder, smarthost, delivery,
webhooks) and the service limits, as the policy document carries them, with their
defaults: the one place both planes take a default from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1024 * 1024
UNSIGNED_SIZE_LIMIT = 2 * MIB  # the largest message unless every sending domain has SPF+DKIM
HARD_SIZE_LIMIT = 60 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    """Service limits, with OCI Email Delivery's defaults."""

    recipients_per_day: int = 50_000
    messages_per_minute: int = 18_000
    max_message_bytes: int = UNSIGNED_SIZE_LIMIT
    max_approved_senders: int = 10_000
    credentials_per_user: int = 2
    # Not OCI's: the most of messages_per_minute one user may take (percent) when there
    # are several users, so one application cannot starve the others.
    user_share: int = 50
    max_recipients: int = 1_000  # recipients of one message (Postfix's default): 452 beyond


LIMIT_NAMES: tuple[str, ...] = tuple(Limits.__dataclass_fields__)


def limit_defaults() -> dict[str, int]:
    return asdict(Limits())


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: str  # PEM paths; relative ones are relative to the relay's config folder
    key: str


@dataclass(frozen=True, slots=True)
class Smarthost:
    host: str
    port: int = 25
    tls: str = "opportunistic"  # required | opportunistic | none
    username: str | None = None
    password_env: str | None = None  # the variable holding the password, never the password


TLS_MODES = ("verify", "required", "opportunistic", "none")
WEBHOOK_EVENTS = ("delivered", "bounced", "complaint", "suppressed", "deferred")


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where the relay POSTs the events an application asked for, signed with the secret
    in the relay host's environment variable `secret_env` (never the secret itself)."""

    name: str
    url: str
    events: tuple[str, ...]
    secret_env: str
    timeout: float = 10.0  # seconds for one request
    max_pending: int = 100_000  # events kept for it while it fails; more are dropped


def webhook_settings(values: Iterable[Mapping[str, Any]]) -> tuple[Webhook, ...]:
    """Webhooks from the YAML's or the policy document's list."""
    return tuple(
        Webhook(
            name=w["name"],
            url=w["url"],
            events=tuple(w["events"]),
            secret_env=w["secret_env"],
            timeout=float(w.get("timeout", 10.0)),
            max_pending=w.get("max_pending", 100_000),
        )
        for w in values
    )


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """What one destination domain gets instead of the defaults (Postfix's per-destination
    limits and smtp_tls_policy_maps): each None keeps the default."""

    concurrency: int | None = None  # sessions at once to it (default: per_destination)
    rate: int | None = None  # messages per minute to it (default: as fast as it takes)
    # verify: STARTTLS with a certificate valid for the MX host name; required: STARTTLS,
    # any certificate; opportunistic: STARTTLS when offered; none: never. Default: the
    # domain's MTA-STS policy when it publishes one, else opportunistic.
    tls: str | None = None


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    max_age: float = 3 * 86_400
    retry_base: float = 60.0
    retry_max: float = 3_600.0
    concurrency: int = 20
    per_destination: int = 4
    timeout: float = 60.0
    backlog_slow: int = 10_000  # queued messages past which each 250 waits (0: never)
    backlog_max: int = 100_000  # queued messages at which new mail gets 451 4.3.2 (0: never)
    # Per recipient domain ("example.com"; ".example.com" for its subdomains).
    destinations: dict[str, DestinationRule] = field(default_factory=dict)
    mta_sts: bool = True  # honour the MTA-STS policies destinations publish (RFC 8461)

    def rule(self, domain: str) -> DestinationRule:
        """The rule for a recipient domain: its own, else its nearest parent's ".parent"
        one, else the defaults."""
        domain = domain.lower().rstrip(".")
        found = self.destinations.get(domain)
        if found is not None:
            return found
        labels = domain.split(".")
        for start in range(1, len(labels)):
            found = self.destinations.get("." + ".".join(labels[start:]))
            if found is not None:
                return found
        return NO_RULE

    def concurrency_for(self, domain: str) -> int:
        return self.rule(domain).concurrency or self.per_destination


NO_RULE = DestinationRule()


def delivery_settings(values: Mapping[str, Any]) -> DeliverySettings:
    """DeliverySettings from the YAML's or the policy document's mapping."""
    rules = values.get("destinations") or {}
    return DeliverySettings(
        **{k: v for k, v in values.items() if k != "destinations"},
        destinations={name.lower(): DestinationRule(**rule) for name, rule in rules.items()},
    )


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What one client may hold of a relay (Postfix's anvil and error limits, per relay
    process): connections at once and per minute, the DATA rate, errors per session."""

    max_connections: int = 1_000  # in all; also kept below the open-files limit
    per_client: int = 50  # connections at once from one client address
    per_client_rate: int = 3_000  # new connections per minute from one client address
    min_data_rate: int = 500  # bytes per second in DATA, averaged ...
    data_grace: float = 30.0  # ... after this many seconds
    slow_after_errors: int = 10  # from here each error reply waits 1 s (smtpd_soft_error_limit)
    max_errors: int = 20  # then 421 and the session is closed (smtpd_hard_error_limit)


@dataclass(frozen=True, slots=True)
class RelaySettings:
    hostname: str = "localhost"
    listen: tuple[str, ...] = ("127.0.0.1:587/starttls",)
    tls: TlsFiles | None = None
    data_dir: str | None = None
    smarthost: Smarthost | None = None
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    # Load balancers allowed to send a PROXY header on a +proxy listener (IPs, networks).
    proxy_from: tuple[str, ...] = ()
    # Where suppressions, limits and the login throttle live: "embedded" (this relay's
    # SQLite file) or "postgres" (shared by every relay of the state).
    store: str = "embedded"
    sessions: SessionSettings = field(default_factory=SessionSettings)
    webhooks: tuple[Webhook, ...] = ()
    # Days the event index (`relay trace`) and a fleet's shared event table keep events.
    event_retention_days: int = 30
