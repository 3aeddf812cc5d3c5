"""Every reply the relay's policy gives, named after its code. Tests assert these."""

from __future__ import annotations

S250_QUEUED = "250 2.0.0 OK: queued as {queue_id}"
S250_SENDER_OK = "250 2.1.0 Sender OK"
S250_RECIPIENT_OK = "250 2.1.5 Recipient OK"

S421_TOO_MANY_AUTH_FAILURES = (
    "421 4.7.0 Too many failed logins for {username} from {peer}; try again later"
)
S421_NOT_A_TRUSTED_PROXY = "421 4.7.0 {peer} may not send a PROXY header here"
S421_SHUTTING_DOWN = "421 4.3.2 Relay shutting down; try again later"
S421_RELAY_FULL = "421 4.7.0 Too many connections; try again later"
S421_TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from {peer}; try again later"
S421_CONNECTION_RATE = (
    "421 4.7.0 Too many connections from {peer} (over {rate} a minute); try again later"
)
S421_TOO_MANY_ERRORS = "421 4.7.0 Too many errors in this session; closing"
S421_DATA_TOO_SLOW = "421 4.4.2 Message data arrived too slowly (under {rate} bytes/s); closing"
S451_RATE_LIMITED = "451 4.7.1 Rate limit exceeded: {limit} messages per minute; try again later"
S451_USER_RATE_LIMITED = (
    "451 4.7.1 Rate limit exceeded for user {user}: its share is {limit} messages per minute;"
    " try again later"
)
S452_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients: at most {limit} per message"
S454_AUTH_BUSY = "454 4.7.0 Too many logins in progress from this address; try again later"
S550_NUL_IN_HEADER = "550 5.6.0 Header fields may not contain NUL characters"
S550_FROM_NOT_ASCII = "550 5.6.0 The From: header address must be plain ASCII (no SMTPUTF8)"
S553_NOT_ASCII = "553 5.1.3 Addresses must be plain ASCII (SMTPUTF8 is not offered)"
S550_NOT_A_BOUNCE_ADDRESS = "550 5.7.1 Relay access denied: this server takes only bounce messages"
S452_ONE_BOUNCE_ADDRESS = "452 4.5.3 One bounce address per message"
S550_BOUNCE_NOT_OURS = "550 5.7.1 This report is not about a message sent from here"
S250_BOUNCE_TAKEN = "250 2.0.0 Report received"
S250_BOUNCE_KEPT = "250 2.0.0 Kept for inspection"
S451_QUEUE_FULL = (
    "451 4.3.2 The queue is full ({queued} messages waiting for delivery); try again later"
)
S451_LOCAL_ERROR = "451 4.3.0 Temporary failure storing the message; try again later"
S451_CANNOT_ACCOUNT = (
    "451 4.3.0 The relay cannot account for this against its limits now; try again later"
)
S452_DAILY_LIMIT = (
    "452 4.7.1 Daily recipient limit reached ({limit} per UTC day); try again tomorrow"
)
S535_BAD_CREDENTIALS = "535 5.7.8 Authentication credentials invalid"
S550_SENDER_NOT_APPROVED = "550 5.7.1 Sender <{address}> is not an approved sender"
S550_SENDER_NOT_ALLOWED = "550 5.7.1 Sender <{address}> is not approved for user {user}"
S550_FROM_NOT_APPROVED = "550 5.7.1 From: header address <{address}> is not an approved sender"
S550_FROM_NOT_ALLOWED = "550 5.7.1 From: header address <{address}> is not approved for user {user}"
# A null-sender message (MAIL FROM:<>, a bounce) goes only to the login's own addresses
# (relay/nullsender.py).
S550_NULL_SENDER_RECIPIENT = (
    "550 5.7.1 Sender <> (a bounce) may go only to addresses user {user} may send as,"
    " not to <{address}>"
)
S550_NULL_SENDER_REFUSED = (
    "550 5.7.1 Message refused: sender <> (a bounce) may go only to addresses user {user}"
    " may send as, and <{address}> is not one"
)
S550_FROM_COUNT = "550 5.6.0 A message needs exactly one From: header with one address ({found})"
S550_SUPPRESSED = "550 5.1.1 Recipient <{address}> is on the suppression list ({reason})"
S550_BARE_LINE_ENDING = (
    "550 5.5.2 Bare {kind} in message data: line endings must be CRLF (RFC 5321 2.3.8)"
)
S552_TOO_BIG = "552 5.3.4 Message too big: the limit is {limit} bytes"
S553_BAD_ADDRESS = (
    "553 5.1.3 Address <{address}> is not a plain ASCII address this relay can deliver"
)
S530_CREDENTIAL_REVOKED = "530 5.7.0 This credential was revoked; authenticate again"

# aiosmtpd's own wording for the size limit lacks an enhanced status code; the
# server rewrites these two replies to S552_TOO_BIG.
AIOSMTPD_SIZE_REPLIES = (
    "552 Error: message size exceeds fixed maximum message size",
    "552 Error: Too much mail data",
)
